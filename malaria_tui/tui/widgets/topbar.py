"""The top line: numbered screen tabs (clickable) and the TensorFlow / run status."""

from __future__ import annotations

from textual.app import ComposeResult, RenderResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from malaria_tui.tui.screen_host import ScreenHost
from malaria_tui.tui.screen_table import SCREENS


def status_content(app: ScreenHost) -> Content:
    """The right end of the top line: the run's state, then TensorFlow's."""
    tf = {
        "loading": "[$warning]TF loading…[/]",
        "ready": "[$success]TF ready[/]",
        "failed": "[$error]TF failed[/]",
        "off": "[$text-muted]TF off[/]",
    }[app.tf_state]
    s = app.session
    run = ""
    if app.controller.watching is not None:
        run = f"[$accent]watch[/] {s.status} "
    elif s.status == "starting":
        run = "[$warning]starting…[/] "
    elif s.active:
        pct = 100 * s.global_step / s.total_steps if s.total_steps else 0
        verb = "stopping" if s.status == "stopping" else "training"
        run = f"[$warning]● {verb}[/] {pct:.0f}% "
    elif s.status != "idle":
        run = f"{s.status.replace('_', ' ')} "
    return Content.from_markup(run + tf)


class NavTabs(Widget):
    """``1 Dataset 2 Augment …``; short labels when the line is narrow."""

    DEFAULT_CSS = "NavTabs { width: 1fr; height: 1; }"

    def __init__(self, current: str) -> None:
        super().__init__(id="nav")
        self.current = current

    def content_for(self, width: int) -> Content:
        for short, pad in ((False, " "), (True, " "), (True, "")):
            parts: list[Content] = []
            for entry in SCREENS:
                key, text = entry.key, entry.short if short else entry.title
                if entry.mode == self.current:
                    parts.append(Content.from_markup(f"[reverse $accent]{pad}{key} {text}{pad}[/]"))
                else:
                    parts.append(
                        Content.from_markup(
                            f"[@click=app.show('{entry.mode}')]{pad}[b $accent]{key}[/] {text}{pad}[/]"
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
        yield Static(status_content(self.app), id="status", markup=False)  # type: ignore[arg-type]

    def update_status(self) -> None:
        # not there while the bar is still composing or already torn down (app shutting down)
        for status in self.query("#status").results(Static):
            status.update(status_content(self.app))  # type: ignore[arg-type]
