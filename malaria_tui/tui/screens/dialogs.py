"""Modal dialogs: quit while training, and one cell shown large."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from malaria_tui.tui.widgets.cell_view import CellView
from malaria_tui.tui.widgets.cells import CellItem


class QuitDialog(ModalScreen[str | None]):
    """Quit while training: leave the run training headless, stop it cleanly, or stay.

    ``can_keep=False`` (training in this process's own thread) offers only stop or stay."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [
        Binding(
            "escape,n",
            "dismiss(None)",
            "Cancel",
            id="quit.cancel",
            tooltip="Stay in the app; the run goes on",
        ),
        Binding(
            "s,y",
            "dismiss('stop')",
            "Stop & quit",
            id="quit.stop",
            tooltip="Stop the run at a resumable checkpoint, then quit",
        ),
        Binding(
            "k",
            "keep",
            "Keep training & quit",
            id="quit.keep",
            tooltip="Quit and leave the run training headless in its own process",
        ),
    ]

    def __init__(self, can_keep: bool = True) -> None:
        super().__init__()
        self.can_keep = can_keep

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("A training run is in progress.", id="title")
            if self.can_keep:
                body = (
                    "It trains in its own process. Leave it training headless (follow it with "
                    "`malaria-tui watch`), stop it now with a resumable checkpoint (resume it "
                    "from the Runs screen or with `malaria-tui resume`), or cancel."
                )
            else:
                body = (
                    "Training runs inside this window, so it cannot keep going after it closes. "
                    "Stop it now with a resumable checkpoint (resume it later from the Runs "
                    "screen or with `malaria-tui resume`), or cancel and keep training."
                )
            yield Static(body, id="body")
            with Horizontal(id="buttons"):
                if self.can_keep:
                    yield Button("Keep training", id="keep", variant="success")
                yield Button("Stop at a checkpoint", id="stop", variant="error")
                yield Button("Cancel", id="cancel", variant="primary")
            keys = (
                "k keep training · s stop · esc cancel" if self.can_keep else "s stop · esc cancel"
            )
            yield Static(keys, id="hint")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_keep(self) -> None:
        if self.can_keep:
            self.dismiss("keep")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.can_keep if action == "keep" else True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id if event.button.id in ("keep", "stop") else None)


class CellDialog(ModalScreen[None]):
    """One cell, large, with its file name, label and patient (and anything else known).

    With ``heat=True`` its Grad-CAM heat map with the model at ``model`` is shown beside it,
    or ``note`` saying why there is none.
    """

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [
        Binding(
            "escape,enter,q",
            "dismiss(None)",
            "Close",
            id="cell.close",
            tooltip="Close the large view",
        )
    ]

    def __init__(self, item: CellItem, heat: bool = False, model: str = "", note: str = "") -> None:
        super().__init__()
        self.item = item
        self.heat = heat
        self.model = model
        self.note = note

    @property
    def _native(self) -> bool:
        return getattr(self.app, "graphics", "") == "native" and self.item.pixels is None

    @property
    def view(self) -> CellView:
        return self.query_one(CellView)

    @property
    def heat_value(self) -> object:
        """The heat map shown (uint8 pixels), or the sentence shown in its place."""
        return self.view.heat_value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="cell"):
            yield CellView(heat=self.heat, native=self._native, id="images")
            yield Static(self._details(), id="details", markup=False)
            yield Label("[dim]esc closes[/]", id="hint")

    def _details(self) -> str:
        rows = [("file", self.item.path.rsplit("/", 1)[-1])]
        rows += [(k, str(v)) for k, v in self.item.info.items()]
        return "\n".join(f"{k:>9}: {v}" for k, v in rows)

    def on_mount(self) -> None:
        view = self.view
        view.side = self._side()
        view.show(self.item.path, model=self.model, note=self.note, pixels=self.item.pixels)

    def on_resize(self) -> None:
        self.view.side = self._side()
        self.view.redraw()

    def _side(self) -> int:
        size = self.app.size
        cols = max(8, min(64, size.width - 8))
        if self.heat:
            cols = max(8, min(48, (size.width - 9) // 2))
        rows = max(4, min(32, size.height - 6 - len(self.item.info)))
        return min(cols, rows * 2)
