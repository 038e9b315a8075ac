"""Review: the cells whose labels a cross-validation's out-of-fold probabilities doubt, surest
first, each large enough to judge; one key to keep, relabel or exclude it.

Suspects come from ``engine/review/suspects.py`` (cleanlab on ``oof.csv``); decisions go to
the CV directory's label overlay (``label_overrides.csv``), never to the images, and a run
uses them with ``--set data.label_overrides=PATH``. The montage on the left is the list, a
page at a time; the selected cell is shown large on the right (Kitty/Sixel where the terminal
has it, half-blocks otherwise), as its colour original when the data folder has a sibling
``<name>-rgb`` folder holding the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual.worker import get_current_worker

from malaria_tui.engine.data.records import CLASS_NAMES
from malaria_tui.engine.errors import one_line
from malaria_tui.engine.inference.diagnose import short_paths
from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand
from malaria_tui.tui.widgets.cell_view import CellView
from malaria_tui.tui.widgets.cells import CellGrid, CellItem

MARK = {"keep": "✓", "relabel": "⇄", "exclude": "✗", "": " "}


def newest_cv_dir(runs_dir: Path) -> Path | None:
    """The most recent cross-validation directory under ``runs_dir``."""
    from malaria_tui.engine import cvdir

    if not runs_dir.is_dir():
        return None
    found = [p for p in runs_dir.iterdir() if cvdir.is_cv_dir(p)]
    return max(found, key=lambda p: p.name) if found else None


def colour_original(path: str) -> str:
    """The colour original of a cell when the data folder has one: ``<data>-rgb/`` beside the
    data folder, holding the same relative path (the NIH grayscale copies and their originals
    are laid out so); else the cell itself."""
    p = Path(path)
    for up in range(2, min(5, len(p.parents))):
        data = p.parents[up]
        rel = p.relative_to(data)
        for sibling in (data.parent / f"{data.name}-rgb", data.parent / f"{data.name}_rgb"):
            candidate = sibling / rel
            if candidate.is_file():
                return str(candidate)
    return path


class ReviewScreen(BaseScreen):
    MODE = "review"
    CSS_PATH = "review.tcss"
    AUTO_FOCUS = "#suspects"
    BINDINGS = [
        Binding("k", "decide('keep')", "Keep", id="review.keep", tooltip="Keep the given label"),
        Binding(
            "r",
            "decide('relabel')",
            "Relabel",
            id="review.relabel",
            tooltip="The given label is wrong: train on the other one",
        ),
        Binding(
            "x",
            "decide('exclude')",
            "Exclude",
            id="review.exclude",
            tooltip="Leave the cell out of training (unclear, not a cell, two cells...)",
        ),
        Binding(
            "u",
            "undo",
            "Undo",
            id="review.undo",
            tooltip="Forget the decision about the selected cell",
        ),
        Binding(
            "o",
            "open_cell",
            "Open",
            id="review.open",
            tooltip="Open the selected cell large with its details",
            show=False,
        ),
        Binding(
            "ctrl+r",
            "reload",
            "Reload",
            id="review.reload",
            tooltip="Find the newest cross-validation again and read its suspects",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cv_path: Path | None = None
        self.found: Any = None  # engine.review.suspects.Suspects
        self.error = ""
        self.loading = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="montage"):
                yield Static("", id="review-title", markup=False)
                yield CellGrid(id="suspects", empty_text="no suspects")
            with Vertical(id="judge"):
                yield CellView(
                    heat=False, native=getattr(self.app, "graphics", "") == "native", id="large"
                )
                yield Static("", id="review-details", markup=False)

    def on_mount(self) -> None:
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.update_status()
        if self.focused is None:
            self.grid.focus()

    @property
    def overlay(self) -> Path | None:
        return Path(self.found.overlay) if self.found is not None else None

    # --- loading ---------------------------------------------------------------------------------

    def action_reload(self) -> None:
        chosen = self.mapp.cv_dir
        self.cv_path = chosen if chosen else newest_cv_dir(self.mapp.runs_dir)
        self.error = ""
        if self.cv_path is None:
            self.found = None
            self._draw()
            return
        self.loading = True
        self._draw()
        self._load(self.cv_path)

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def _load(self, path: Path) -> None:
        from malaria_tui.engine.review import suspects

        try:
            found: Any = suspects.for_cv(path)
            error = ""
        except Exception as e:  # a CV still training, a foreign folder: one line on screen
            found, error = None, one_line(e, 300)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._loaded, found, error)

    def _loaded(self, found: Any, error: str) -> None:
        self.loading = False
        self.found, self.error = found, error
        self._draw(keep_selection=False)
        if self.is_current and self.focused is None:
            self.grid.focus()  # the arrows move through the suspects at once

    # --- drawing ---------------------------------------------------------------------------------

    @property
    def grid(self) -> CellGrid:
        return self.query_one("#suspects", CellGrid)

    def _item(self, s: Any) -> CellItem:
        given = "P" if s.label else "U"
        return CellItem(
            s.path,
            f"{MARK[s.decision]}{s.rank} {given} {s.prob:.2f}",
            positive=bool(s.label),
            info={
                "given label": CLASS_NAMES[s.label],
                "P(Parasitized)": f"{s.prob:.3f} out of fold (fold {s.fold})",
                "patient": s.patient,
                "rank": f"{s.rank} (P(given label) {s.score:.3f})",
                "decision": s.decision or "none yet",
            },
        )

    def _draw(self, keep_selection: bool = True) -> None:
        title = self.query_one("#review-title", Static)
        if self.cv_path is None:
            title.update("No cross-validation yet")
            self.grid.set_items([])
            self._details(
                "Suspect labels come from a cross-validation's out-of-fold probabilities:\n"
                "malaria-tui cv --folds 5 --no-ui --data folder:PATH\n"
                "then come back here (ctrl+r reads it)."
            )
            return
        if self.loading:
            title.update(f"Reading the suspects of {self.cv_path.name}…")
            return
        if self.found is None:
            title.update(self.cv_path.name)
            self.grid.set_items([])
            self._details(self.error)
            return
        f = self.found
        decided = sum(1 for s in f.suspects if s.decision)
        title.update(
            f"{f.n_flagged} of {f.n_images} cells flagged · {decided} decided · {self.cv_path.name}"
        )
        self.grid.set_items([self._item(s) for s in f.suspects], keep_selection=keep_selection)
        self._show_selected()

    def _details(self, text: str | Text) -> None:
        self.query_one("#review-details", Static).update(text)

    def _show_selected(self) -> None:
        s = self.selected
        view = self.query_one("#large", CellView)
        if s is None:
            view.show(None)
            return
        shown = colour_original(s.path)
        view.show(shown)
        width = max(20, self.query_one("#review-details").size.width or 36)
        name = short_paths([s.path], width - 5)[s.path]
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"#{s.rank} ", style="bold")
        text.append(name + "\ngiven ")
        text.append(CLASS_NAMES[s.label], style=f"bold {'red' if s.label else 'green'}")
        text.append(f" · p(P) {s.prob:.3f}\n")  # out of fold, as the captions show it
        text.append(f"patient {s.patient} · fold {s.fold}")
        if shown != s.path:
            text.append(" · colour original", style="dim")
        text.append("\ndecision: ")
        text.append(s.decision or "none yet", style="bold" if s.decision else "dim")
        text.append(f"\n{self._shown_path()}", style="dim")
        self._details(text)

    def _shown_path(self) -> str:
        """The overlay file, relative to the working folder when it is below it."""
        if self.overlay is None:
            return ""
        try:
            return str(self.overlay.relative_to(Path.cwd()))
        except ValueError:
            return str(self.overlay)

    @property
    def selected(self) -> Any:
        if self.found is None or not self.found.suspects:
            return None
        i = self.grid.selected
        return self.found.suspects[i] if 0 <= i < len(self.found.suspects) else None

    @on(CellGrid.Highlighted)
    def _highlighted(self, event: CellGrid.Highlighted) -> None:
        self._show_selected()

    # --- decisions -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("decide", "undo", "open_cell"):
            return self.selected is not None
        return super().check_action(action, parameters)

    def action_decide(self, decision: str) -> None:
        """Write ``decision`` about the selected cell to the overlay, then go to the next."""
        from dataclasses import replace

        from malaria_tui.engine.review import suspects

        s, overlay = self.selected, self.overlay
        if s is None or overlay is None:
            return
        try:
            suspects.decide(overlay, s, decision)
        except Exception as e:  # an unwritable folder: say so, keep the screen
            self.notify(one_line(e), severity="error", timeout=8)
            return
        i = self.grid.selected
        self._replace(s, replace(s, decision=decision))
        self.grid.selected = min(i + 1, len(self.found.suspects) - 1)  # the next, across rows

    def action_undo(self) -> None:
        from dataclasses import replace

        from malaria_tui.engine.data import label_overlay

        s, overlay = self.selected, self.overlay
        if s is None or overlay is None or not s.decision:
            return
        label_overlay.forget(overlay, s.path)
        self._replace(s, replace(s, decision=""))

    def _replace(self, old: Any, new: Any) -> None:
        from dataclasses import replace

        items = list(self.found.suspects)
        items[items.index(old)] = new
        self.found = replace(self.found, suspects=items)
        self._draw()

    def action_open_cell(self) -> None:
        self.grid.action_open()

    @on(CellGrid.Opened)
    def _open(self, event: CellGrid.Opened) -> None:
        from malaria_tui.tui.screens.dialogs import CellDialog

        self.app.push_screen(CellDialog(event.item))

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            (
                "Keep the given label",
                "Review: keep the selected cell's label",
                lambda: self.action_decide("keep"),
            ),
            (
                "Relabel the cell",
                "Review: train on the other label",
                lambda: self.action_decide("relabel"),
            ),
            (
                "Exclude the cell",
                "Review: leave it out of training",
                lambda: self.action_decide("exclude"),
            ),
            ("Reload suspects", "Read the newest cross-validation's suspects", self.action_reload),
        ]
