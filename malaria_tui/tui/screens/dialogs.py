"""Modal dialogs: quit while training, the keys of a screen, and one cell shown large."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.actions import parse
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Label, Static

from malaria_tui.tui.widgets.cell_view import CellView
from malaria_tui.tui.widgets.cells import CellItem

if TYPE_CHECKING:
    from textual.app import App

# The keys every screen shares, listed once under "Everywhere" (the screen's own come first).
EVERYWHERE: list[tuple[str, str]] = [
    ("1-9", "show that screen (the tabs in the top bar are clickable too)"),
    ("alt+1-9", "show that screen, even from inside a text field"),
    ("esc, enter", "leave the text field being edited (digits switch screens again)"),
    ("?, F1", "this list (F1 works inside a text field too)"),
    ("^p", "command palette: every screen, plus this screen's commands"),
    ("F2", "switch between the light and dark theme"),
    ("q, ^q", "quit; during a run, ask whether to keep it training, stop it or stay"),
    ("^c", "stop training at the next step with a resumable checkpoint, then quit"),
]
SHARED_ACTIONS = {"leave_field", "app.quit", "show_keys"}


def key_display(app: App, binding: Binding) -> str:
    """How the key bar shows the binding's key(s): ``+/-``, ``^d``, ``space``, ``o``."""
    if binding.key_display:
        return binding.key_display
    keys = [k.strip() for k in binding.key.split(",") if k.strip()]
    return "/".join(app.get_key_display(replace(binding, key=k)) for k in keys)


def _our_bindings(node: DOMNode) -> list[Binding]:
    """The bindings ``node``'s own classes declare (its malaria_tui classes, base first)."""
    out: list[Binding] = []
    for cls in reversed(type(node).__mro__):
        if not cls.__module__.startswith("malaria_tui"):
            continue
        out += [b for b in vars(cls).get("BINDINGS", ()) if isinstance(b, Binding)]
    return out


def screen_keys(screen: Screen) -> list[tuple[str, str, bool]]:
    """(key, what it does, usable now) for the screen's keys and those of the focused widget,
    ours only (not Textual's cursor keys), without the keys every screen shares."""
    rows: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    shown: dict[str, list[str]] = {}  # action name -> the key displays listed for it
    nodes: list[DOMNode] = [screen]
    focused = screen.focused
    if focused is not None:
        nodes += [n for n in focused.ancestors_with_self if n is not screen and n is not screen.app]
    for node in nodes:
        for b in _our_bindings(node):
            ident = b.id or f"{b.key}:{b.action}"
            if ident in seen or b.action in SHARED_ACTIONS:
                continue
            seen.add(ident)
            _ns, name, params = parse(b.action)
            state = node.check_action(name, params)
            if state is False:  # hidden here (e.g. start while watching a run)
                continue
            keys = key_display(screen.app, b)
            if any(keys in other.split("/") for other in shown.get(name, ())):
                continue  # "-" when "+/-" is listed
            shown.setdefault(name, []).append(keys)
            rows.append((keys, b.tooltip or b.description, bool(state)))
    return rows


class KeysDialog(ModalScreen[None]):
    """The keys of the screen it was opened on (``?`` or ``F1``), then those of every screen;
    ``escape``, ``?`` or ``F1`` closes it."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [
        Binding(
            "escape,question_mark,f1,enter",
            "dismiss(None)",
            "Close",
            id="keys.close",
            tooltip="Close the list of keys",
        )
    ]

    def __init__(self, title: str, rows: list[tuple[str, str, bool]]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows

    @classmethod
    def for_screen(cls, screen: Screen) -> KeysDialog:
        from malaria_tui.tui.screen_table import SCREENS

        mode = getattr(screen, "MODE", "")
        title = next((f"{e.key} {e.title}" for e in SCREENS if e.mode == mode), "this")
        return cls(f"Keys of the {title} screen", screen_keys(screen))

    def on_mount(self) -> None:
        self.on_resize()
        self.query_one("#keys-list").focus()  # up/down/pgdn scroll a long list

    def on_resize(self) -> None:
        # the list scrolls rather than pushing the hint off a short terminal
        self.query_one("#keys-list").styles.max_height = max(4, self.app.size.height - 6)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="keys"):
            yield Label(self.title_text, id="title")
            with VerticalScroll(id="keys-list"):
                yield Static(self._table(), id="keys-table")
            yield Static("esc or ? closes", id="hint")

    def _table(self) -> Table:
        t = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False, expand=True)
        t.add_column("key", style="bold", no_wrap=True, min_width=6)
        t.add_column("what", ratio=1)
        for key, what, usable in self.rows:
            style = "" if usable else "dim"
            t.add_row(Text(key, style=style), Text(what, style=style))
        if not self.rows:
            t.add_row("", Text("no keys of its own", style="dim"))
        t.add_row("", "")
        t.add_row(Text("Everywhere", style="bold"), "")
        for key, what in EVERYWHERE:
            t.add_row(key, what)
        if any(not usable for _k, _w, usable in self.rows):
            t.add_row("", "")
            t.add_row("", Text("dimmed: not available right now", style="dim"))
        return t


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
            "Stop training and quit",
            id="quit.stop",
            tooltip="Stop the run at a resumable checkpoint, then quit",
        ),
        Binding(
            "k",
            "keep",
            "Quit, keep training",
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
                    yield Button("Quit, keep training", id="keep", variant="success")
                yield Button("Stop training and quit", id="stop", variant="error")
                yield Button("Cancel", id="cancel", variant="primary")
            keys = (
                "k quit, keep training · s stop training and quit · esc cancel"
                if self.can_keep
                else "s stop training and quit · esc cancel"
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
