"""The top line: numbered screen tabs (clickable) and the TensorFlow / run status."""

from __future__ import annotations

from textual.app import ComposeResult, RenderResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from malaria_tui.tui.screen_host import ScreenHost
from malaria_tui.tui.screen_table import SCREENS


def status_content(app: ScreenHost, width: int | None = None) -> Content:
    """The right end of the top line: the run's state, then TensorFlow's; in at most ``width``
    cells, shortened (``TF ready`` goes first, then words) rather than cut."""
    tf_long = {
        "loading": "[$warning]TF loading…[/]",
        "ready": "[$success]TF ready[/]",
        "failed": "[$error]TF failed[/]",
        "off": "[$text-muted]TF off[/]",
    }[app.tf_state]
    s = app.session
    runs: list[str] = []  # the run's state, longest form first
    if app.controller.watching is not None:
        runs = [f"[$accent]watch[/] {s.status.replace('_', ' ')}", "[$accent]watch[/]"]
    elif s.status == "starting":
        runs = ["[$warning]starting…[/]"]
    elif s.active:
        pct = 100 * s.global_step / s.total_steps if s.total_steps else 0
        verb = "stopping" if s.status == "stopping" else "training"
        runs = [f"[$warning]● {verb}[/] {pct:.0f}%", f"[$warning]●[/] {pct:.0f}%"]
    elif s.status != "idle":
        runs = [s.status.replace("_", " ")]
    # TensorFlow's state matters less once a run is shown, unless it is not ready
    tf_short = "" if app.tf_state in ("ready", "off") else tf_long
    forms = [f"{runs[0]} {tf_long}" if runs else tf_long]
    forms += [f"{run} {tf_short}".strip() for run in runs]
    contents = [Content.from_markup(f) for f in forms]
    if width is None:
        return contents[0]
    return next((c for c in contents if c.cell_length <= width), contents[-1])


class NavTabs(Widget):
    """``1 Dataset 2 Augment …``; short labels when the line is narrow. The status beside it
    gives way first: the tabs are never cut."""

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

    def min_width(self) -> int:
        """The narrowest form of the tabs (short labels, no padding)."""
        return self.content_for(0).cell_length

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
        yield Static(
            status_content(self.app, self.app.size.width - 58),  # type: ignore[arg-type]
            id="status",
            markup=False,
        )

    def _status_width(self) -> int:
        """What the status may take of the line: all but the tabs' narrowest form and its
        padding."""
        nav = self.query("#nav").results(NavTabs)
        tabs = next(nav, None)
        width = self.size.width or self.app.size.width
        return max(8, width - (tabs.min_width() if tabs else 0) - 2)

    def on_resize(self) -> None:
        self.update_status()

    def update_status(self) -> None:
        # not there while the bar is still composing or already torn down (app shutting down)
        for status in self.query("#status").results(Static):
            status.update(status_content(self.app, self._status_width()))  # type: ignore[arg-type]
