"""What every screen shares: the top bar, the key bar, screen-specific palette commands, and
the keys that work the same on every screen.

Keys and text fields: while a field takes typed characters (an Input, or a Select that
searches as you type), digits go into it. ``enter`` or ``escape`` leaves the field (focus goes
back to the screen's main widget, so ``1``-``8`` switch screens again), ``alt+1``-``8``
switch screens even from inside a field, and the key bar says so while a field has the focus.
``?`` (or ``F1``, which also works inside a field) lists the screen's keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

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
            tooltip="Raise (+) or lower (-) the decision threshold by 0.01",
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


def takes_typing(widget: Widget | None) -> bool:
    """The widget takes printable keys (digits included) while it has the focus."""
    return widget is not None and widget.check_consume_key("1", "1")


class BaseScreen(Screen):
    MODE: str = ""
    BINDINGS = [
        Binding(
            "escape",
            "leave_field",
            "done",
            id="screen.leave_field",
            key_display="esc/enter",
            tooltip="Leave the field (a valid value is kept); 1-9 switch screens again",
        ),
        Binding(
            "q",
            "app.quit",
            "Quit",
            id="app.quit",
            tooltip=QUIT_TOOLTIP,
        ),
        Binding(
            "question_mark",
            "show_keys",
            "keys",
            id="screen.keys",
            key_display="?",
            tooltip="List this screen's keys",
        ),
        Binding(
            "f1",
            "show_keys",
            "keys",
            id="screen.keys_f1",
            key_display="F1",
            tooltip="List this screen's keys (works inside a text field too)",
        ),
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

    # --- keys and fields ----------------------------------------------------------------------

    @property
    def editing(self) -> bool:
        """A field that takes typed characters has the focus: digits go into it."""
        return takes_typing(self.focused)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Screens that override this return ``super().check_action(...)`` for actions that
        are not theirs."""
        if action == "leave_field":
            return self.editing or False  # False: not shown, and escape goes on
        return True

    def action_leave_field(self) -> None:
        """Leave the field being edited: focus goes back to the screen's main widget."""
        home = self.query(self.AUTO_FOCUS).first() if self.AUTO_FOCUS else None
        if home is not None and home.focusable:
            home.focus()
        else:
            self.set_focus(None)

    @on(Input.Submitted)
    def _leave_submitted_field(self, event: Input.Submitted) -> None:
        if self.focused is event.input:
            self.action_leave_field()

    def action_show_keys(self) -> None:
        from malaria_tui.tui.screens.dialogs import KeysDialog

        self.app.push_screen(KeysDialog.for_screen(self))

    def update_status(self) -> None:
        for bar in self.query(TopBar):
            bar.update_status()
