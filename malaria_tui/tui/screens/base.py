"""What every screen shares: the top bar, the key bar, and screen-specific palette commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from malaria_tui.tui.screen_host import ScreenHost
from malaria_tui.tui.widgets.keybar import KeyBar
from malaria_tui.tui.widgets.topbar import TopBar

QUIT_TOOLTIP = "Quit; during a run, ask whether to keep it training, stop it or stay"

PaletteCommand = tuple[str, str, Callable[[], object]]


def threshold_bindings(screen: str) -> list[Binding]:
    """``+``/``-`` move a decision threshold by 0.01: the same keys wherever there is one."""
    return [
        Binding(
            "plus,equals_sign",
            "threshold(0.01)",
            "Threshold",
            id=f"{screen}.threshold_up",
            tooltip="Raise the decision threshold by 0.01",
            key_display="+/-",
        ),
        Binding(
            "minus,underscore",
            "threshold(-0.01)",
            "Thr -",
            id=f"{screen}.threshold_down",
            tooltip="Lower the decision threshold by 0.01",
            key_display="-",
            show=False,
        ),
    ]


class BaseScreen(Screen):
    MODE: str = ""
    BINDINGS = [
        Binding(
            "q",
            "app.quit",
            "Quit",
            id="app.quit",
            tooltip=QUIT_TOOLTIP,
        )
    ]

    @property
    def mapp(self) -> ScreenHost:
        return cast(ScreenHost, self.app)

    def compose(self) -> ComposeResult:
        yield TopBar(self.MODE)
        yield from self.compose_body()
        yield KeyBar()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def palette_commands(self) -> list[PaletteCommand]:
        """(title, help, callback) commands the command palette offers on this screen."""
        return []

    def on_tf_ready(self) -> None:
        """Called on the screen shown when TensorFlow has been imported (the others catch up
        in ``on_screen_resume``)."""

    def update_status(self) -> None:
        for bar in self.query(TopBar):
            bar.update_status()
