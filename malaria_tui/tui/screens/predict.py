"""Predict: diagnose a folder of new cell images with a trained model.

Per-cell P(Parasitized) and label (sortable, most suspicious first), parasitemia per folder
with a 95% Wilson interval, unreadable files listed, TTA, and a threshold that moves with
+/- and relabels at once without running the model again. The highlighted cell is shown
large next to its Grad-CAM heat map (Keras models only). The model runs in a worker thread.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Static
from textual.worker import get_current_worker

from malaria_tui.engine.errors import one_line
from malaria_tui.tui.run_list import newest_with_model
from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand, threshold_bindings
from malaria_tui.tui.training_session import fmt_duration
from malaria_tui.tui.widgets.cell_table import NARROW, CellTable, short_name
from malaria_tui.tui.widgets.cell_view import CellView
from malaria_tui.tui.widgets.folder_summary import FolderSummary


class _Cancelled(Exception):
    """A newer prediction replaced the one running (raised from its progress callback)."""


def relabel(cells: list, threshold: float) -> list:
    """The same cells labelled at another threshold (no model call)."""
    out = []
    for c in cells:
        label = "Parasitized" if c.prob >= threshold else "Uninfected"
        out.append(c if c.label == label else replace(c, label=label))
    return out


class PredictScreen(BaseScreen):
    MODE = "predict"
    CSS_PATH = "predict.tcss"
    AUTO_FOCUS = "#cells"  # number keys switch screens; i / m type into the fields
    BINDINGS = [
        Binding(
            "ctrl+r",
            "predict",
            "Predict",
            id="predict.run",
            tooltip="Predict every image of the folder with the chosen model",
            priority=True,
        ),
        Binding(
            "i",
            "edit('images')",
            "Images",
            id="predict.edit_images",
            tooltip="Edit the image folder or file",
        ),
        Binding(
            "m",
            "edit('model')",
            "Model",
            id="predict.edit_model",
            tooltip="Edit the model (.keras file or run directory)",
        ),
        *threshold_bindings("predict"),
        Binding(
            "t",
            "toggle_tta",
            "TTA",
            id="predict.tta",
            tooltip="Test-time augmentation: average flips and rotations of each cell",
        ),
        Binding(
            "o",
            "cycle_sort",
            "Sort",
            id="predict.sort",
            tooltip="Sort the results by the next column",
            show=False,
        ),
        Binding(
            "d",
            "reset_threshold",
            "Run's thr.",
            id="predict.threshold_reset",
            tooltip="Back to the run's own threshold",
            show=False,
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cells: list = []  # CellResult, labelled at self.threshold
        self.folders: list = []  # FolderSummary at self.threshold
        self.unreadable: list[tuple[str, str]] = []
        self.threshold: float | None = None
        self.model_threshold: float | None = None  # the model's own operating point
        self.model_desc = ""
        self.model_kind = ""
        self.model_source = ""  # what the last successful prediction used
        self.tta_used = False
        self.error = ""
        self.running = False
        self.progress: tuple[int, int, float] | None = None  # (done, total, seconds) while running
        self._default_model = ""  # filled in automatically (replaced while the user did not type)
        self.predictions_done = 0  # counts finished predictions (tests, screenshots)

    # --- layout -------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="form"):
            yield Label("model", classes="field-label")
            yield Input(
                placeholder="run dir or model file",
                id="model",
                compact=True,
                tooltip="A run directory, a .keras or .tflite file, or a SavedModel folder "
                "(m edits it; enter or esc leaves the field)",
            )
            yield Label("images", classes="field-label")
            yield Input(
                placeholder="folder or image",
                id="images",
                compact=True,
                tooltip="A folder of cell images (searched recursively) or one image "
                "(i edits it; enter predicts)",
            )
            yield Checkbox("TTA", id="tta", compact=True)
            yield Button("Predict", id="go", compact=True, variant="primary")
        yield Static("", id="message", markup=False)
        with Horizontal(id="body"):
            yield CellTable(id="cells")
            with Vertical(id="side"):
                yield FolderSummary("", id="summary")
                yield Static("", id="cell-info", markup=False)
                yield CellView(id="cell-view")

    @property
    def table(self) -> CellTable:
        return self.query_one(CellTable)

    @property
    def cell_view(self) -> CellView:
        return self.query_one(CellView)

    @property
    def cam_ready(self) -> bool:
        """The highlighted cell's heat map, or why there is none, is on screen (screenshots)."""
        return self.cell_view.heat_ready

    def on_mount(self) -> None:
        self.table.show(self.cells)
        self._fill_default_model()
        self._show_message()
        self._show_summary()
        self._show_cell()
        self._sync_go()

    def on_screen_resume(self) -> None:
        self._fill_default_model()
        self._show_message()
        self._sync_go()
        self.update_status()

    def on_tf_ready(self) -> None:
        if self.is_mounted:
            self._show_message()
            self._sync_go()

    def on_run_done(self) -> None:
        if self.is_mounted:
            self._fill_default_model()

    @property
    def narrow(self) -> bool:
        return self.app.size.width < NARROW

    def on_resize(self) -> None:
        self._show_summary()
        self._show_cell()

    def _fill_default_model(self) -> None:
        field = self.query_one("#model", Input)
        if field.value and field.value != self._default_model:
            return  # the user's own choice
        run = newest_with_model(self.mapp.runs_dir, self.mapp.current_run)
        self._default_model = str(run.path) if run is not None else ""
        field.value = self._default_model

    # --- messages -----------------------------------------------------------------------------

    @property
    def tf_note(self) -> str:
        app = self.mapp
        if app.tf_ready:
            return ""
        if app.tf_state == "loading":
            return "TensorFlow is loading… Predict becomes available when it is ready."
        if app.tf_state == "off":
            return "TensorFlow is off in this session: predictions need it."
        return f"TensorFlow is unavailable ({app.tf_error or 'not loaded'}): predictions need it."

    def _show_message(self, text: str | None = None, style: str = "") -> None:
        bar = self.query_one("#message", Static)
        bar.remove_class("-error", "-busy")
        if text is not None:
            bar.update(text)
            if style:
                bar.add_class(style)
            return
        if self.error:
            bar.update(self.error)
            bar.add_class("-error")
        elif self.running:
            bar.update("predicting…")
            bar.add_class("-busy")
        elif self.tf_note:
            bar.update(self.tf_note)
        elif self.model_desc:
            bar.update(self.model_desc)
        elif not self.query_one("#model", Input).value:
            bar.update(
                "No trained run yet: train one on screen 4, or m: type a model path; "
                "i: a folder of cells, enter."
            )
        else:
            bar.update("i: type a folder (or image) of cells, then enter (or ctrl+r) to predict.")

    def _sync_go(self) -> None:
        self.query_one("#go", Button).disabled = not self.mapp.tf_ready or self.running
        self.refresh_bindings()

    def action_edit(self, field: str) -> None:
        self.query_one(f"#{field}", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "predict":
            return True if self.mapp.tf_ready and not self.running else None
        if action in ("threshold", "reset_threshold", "cycle_sort"):
            return True if self.cells else None
        return super().check_action(action, parameters)

    # --- running the model ----------------------------------------------------------------------

    @on(Input.Submitted)
    @on(Button.Pressed, "#go")
    def _submitted(self) -> None:
        self.action_predict()

    def action_predict(self) -> None:
        model = self.query_one("#model", Input).value.strip()
        images = self.query_one("#images", Input).value.strip()
        why = ""
        if not self.mapp.tf_ready:
            why = self.tf_note
        elif not model:
            why = "model: enter a run directory, a .keras/.tflite file or a SavedModel folder"
        elif not images:
            why = "images: enter a folder of cell images (searched recursively) or one image"
        if why:
            self.error = why
            self._show_message()
            return
        self.predict(model, images, tta=self.query_one("#tta", Checkbox).value)

    def predict(self, model: str, images: str, tta: bool = False) -> None:
        """Run the model on ``images`` in a worker thread (the UI stays live); the previous
        results go at once, and the message bar counts the cells done, the rate and the ETA."""
        self.error = ""
        self.running = True
        if self.editing:  # keys are keys again while it runs (1 then 7 must not type "17")
            self.action_leave_field()
        self.cells, self.folders, self.unreadable = [], [], []
        self.progress = None
        self.table.selected = None
        self.table.show([])
        self._show_summary()
        self._show_cell()
        self._show_message()
        self._sync_go()
        self._predict_worker(model, images, tta)

    @work(thread=True, exclusive=True, exit_on_error=False, group="predict", name="predict")
    def _predict_worker(self, source: str, images: str, tta: bool) -> None:
        from malaria_tui.engine.inference.diagnose import run_predict

        worker = get_current_worker()
        t0 = time.monotonic()

        def progress(done: int, total: int) -> None:  # after every chunk the engine scores
            if worker.is_cancelled:  # a newer prediction replaced this one: stop reading
                raise _Cancelled
            self.app.call_from_thread(self._progress, done, total, time.monotonic() - t0, tta)

        try:
            self.app.call_from_thread(self._show_message, f"loading the model {source}…", "-busy")
            predictor = self.mapp.predictors.load(source)
            t0 = time.monotonic()
            cells, folders, bad, threshold, _x = run_predict(
                predictor, [images], tta=tta, on_progress=progress
            )
            del _x  # the selected cell is reloaded for Grad-CAM: memory stays flat
        except _Cancelled:
            return
        except Exception as e:  # every failure is one line in the message bar
            if not worker.is_cancelled:
                self.app.call_from_thread(self._failed, one_line(e, 200))
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(
                self._predicted, source, predictor, cells, folders, bad, threshold, tta
            )

    def _progress(self, done: int, total: int, elapsed: float, tta: bool) -> None:
        """``done`` of ``total`` cells predicted after ``elapsed`` seconds."""
        if not self.running:
            return
        self.progress = (done, total, elapsed)
        rate = done / elapsed if elapsed > 0 and done else 0.0
        eta = (total - done) / rate if rate else None
        how = " with TTA" if tta else ""
        speed = f", {rate:,.0f} cells/s, ETA {fmt_duration(eta)}" if rate else ""
        pct = 100 * done / total if total else 0.0
        self._show_message(
            f"predicting{how}: {done:,} of {total:,} cells ({pct:.0f}%){speed}", "-busy"
        )

    def _failed(self, reason: str) -> None:
        self.running = False
        self.error = reason
        self._show_message()
        self._sync_go()

    def _predicted(self, source, predictor, cells, folders, bad, threshold, tta) -> None:
        from malaria_tui.engine.inference.diagnose import summarise

        same_model = source == self.model_source and self.threshold is not None
        self.running = False
        self.model_source = source
        self.model_kind = predictor.kind if not predictor.members else "a fold ensemble"
        self.model_threshold = float(threshold)
        self.tta_used = tta
        self.unreadable = list(bad)
        self.cell_view.forget_heat_maps()
        name = Path(predictor.source).name
        if name == "best.keras":
            name = Path(predictor.source).parent.parent.name
        self.model_desc = (
            f"{name}: {predictor.kind}, {predictor.image_size} px {predictor.color}, "
            f"operating point {predictor.operating_point} = {threshold:.3f}"
        )
        if not same_model:
            self.threshold = float(threshold)
        self.cells = relabel(list(cells), self.threshold)
        self.folders = summarise(self.cells) if self.threshold != threshold else list(folders)
        if not cells:
            self.error = f"no readable images: {len(bad)} file(s) could not be decoded"
        self.predictions_done += 1
        self.table.selected = None
        self.table.show(self.cells)
        self._show_summary()
        self._show_cell()
        self._show_message()
        self._sync_go()
        if self.cells:
            self.table.focus()

    # --- the table, the threshold and TTA ------------------------------------------------------

    def action_cycle_sort(self) -> None:
        self.table.cycle_sort()

    @on(CellTable.Highlighted)
    def _highlighted(self) -> None:
        self._show_cell()

    def action_threshold(self, delta: float) -> None:
        if self.threshold is not None:
            self.set_threshold(round(self.threshold + delta, 4))

    def action_reset_threshold(self) -> None:
        if self.model_threshold is not None:
            self.set_threshold(self.model_threshold)

    def set_threshold(self, value: float) -> None:
        """Relabel every cell and the folder summaries at ``value`` (no model call)."""
        from malaria_tui.engine.inference.diagnose import summarise

        if not self.cells:
            return
        self.threshold = min(1.0, max(0.0, float(value)))
        self.cells = relabel(self.cells, self.threshold)
        self.folders = summarise(self.cells)
        self.table.relabel(self.cells)
        self._show_summary()
        self._show_cell()

    def action_toggle_tta(self) -> None:
        box_ = self.query_one("#tta", Checkbox)
        box_.value = not box_.value

    @on(Checkbox.Changed, "#tta")
    def _tta_changed(self, event: Checkbox.Changed) -> None:
        if self.cells and event.value != self.tta_used and self.mapp.tf_ready and not self.running:
            self.action_predict()  # the same images again, with/without the 8 views

    # --- the side panel -------------------------------------------------------------------------

    def _show_summary(self) -> None:
        self.query_one(FolderSummary).show(
            threshold=self.threshold,
            model_threshold=self.model_threshold,
            cells=self.cells,
            folders=self.folders,
            unreadable=self.unreadable,
            tta=self.tta_used,
            narrow=self.narrow,
        )

    def _show_cell(self) -> None:
        """The highlighted cell, large, with its Grad-CAM heat map (Keras models only)."""
        info = self.query_one("#cell-info", Static)
        i = self.table.selected
        if i is None or i >= len(self.cells):
            info.update("Highlight a cell to see it large with its Grad-CAM heat map.")
            self.cell_view.show(None)
            return
        c = self.cells[i]
        verdict = f"P(parasitized) {c.prob:.4f} -> {c.label}"
        width = max(10, info.content_size.width or (40 if self.narrow else 56))
        if self.narrow:  # the file name, cut in its middle (the folder is in the summary)
            path = short_name(c.path, width)
        else:  # the path, cut at its start: its end says most
            path = c.path if len(c.path) <= width else "…" + c.path[-(width - 1) :]
        info.update(f"{path}\n{verdict}")
        note = ""
        if self.model_kind != "keras":
            note = (
                f"Grad-CAM needs one Keras model (a run directory or a .keras file); "
                f"this one is {self.model_kind or 'not loaded'}."
            )
        self.cell_view.show(c.path, model=self.model_source, note=note)

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            ("Predict", "Run the model on the folder (ctrl+r)", self.action_predict),
            ("Toggle TTA", "Average the 8 flips/rotations of each cell", self.action_toggle_tta),
            ("Sort cells", "Cycle the table's sort column", self.action_cycle_sort),
            (
                "Threshold: model's operating point",
                "Back to the run's chosen threshold",
                self.action_reset_threshold,
            ),
        ]
