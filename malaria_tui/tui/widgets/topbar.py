"""The top line: numbered screen tabs (clickable) and the TensorFlow / run status."""

from __future__ import annotations

from textual.app import ComposeResult, RenderResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

SCREENS: list[tuple[str, str, str, str]] = [
    # (key, mode name, label, short label)
    ("1", "dataset", "Dataset", "Data"),
    ("2", "augment", "Augment", "Aug"),
    ("3", "model", "Model", "Model"),
    ("4", "train", "Train", "Train"),
    ("5", "hparams", "HParams", "HPar"),
    ("6", "evaluate", "Evaluate", "Eval"),
    ("7", "predict", "Predict", "Pred"),
    ("8", "runs", "Runs", "Runs"),
]


class NavTabs(Widget):
    """``1 Dataset 2 Augment …``; short labels when the line is narrow."""

    DEFAULT_CSS = "NavTabs { width: 1fr; height: 1; }"

    def __init__(self, current: str) -> None:
        super().__init__(id="nav")
        self.current = current

    def content_for(self, width: int) -> Content:
        for short, pad in ((False, " "), (True, " "), (True, "")):
            parts: list[Content] = []
            for key, mode, label, short_label in SCREENS:
                text = short_label if short else label
                if mode == self.current:
                    parts.append(Content.from_markup(f"[reverse $accent]{pad}{key} {text}{pad}[/]"))
                else:
                    parts.append(
                        Content.from_markup(
                            f"[@click=app.show('{mode}')]{pad}[b $accent]{key}[/] {text}{pad}[/]"
                        )
                    )
            content = Content(" ").join(parts) if not pad else Content("").join(parts)
            if content.cell_length <= width:
                return content
        return content

    def render(self) -> RenderResult:
        return self.content_for(self.size.width)


class TopBar(Horizontal):
    DEFAULT_CSS = """
    TopBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
    }
    TopBar > #status { width: auto; height: 1; padding: 0 1; text-wrap: nowrap; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        yield NavTabs(self.current)
        yield Static(self.app.status_content(), id="status", markup=False)  # type: ignore[attr-defined]

    def update_status(self, content: Content) -> None:
        # not there while the bar is still composing or already torn down (app shutting down)
        for status in self.query("#status").results(Static):
            status.update(content)
