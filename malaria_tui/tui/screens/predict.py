"""7 Predict: diagnose a folder of new cell images with a trained model.

Per-cell P(Parasitized) and label (sortable, most suspicious first), parasitemia per folder
with a 95% Wilson interval, unreadable files listed, TTA, and a threshold that moves with
+/- and relabels at once without running the model again. The highlighted cell is shown
large next to its Grad-CAM heat map (Keras models only). The model runs in a worker thread.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Static
from textual.worker import get_current_worker

from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand
from malaria_tui.tui.widgets.cells import HalfBlockImage, fit_array, load_rgb

SORTS = {  # column key -> (header, sort key of a CellResult, largest first by default)
    "file": ("file", lambda c: Path(c.path).name.lower(), False),
    "prob": ("P(parasitized)", lambda c: c.prob, True),
    "label": ("label", lambda c: (c.label, c.prob), True),
}
NARROW = 110  # terminal columns below which the table and summary use short forms
CAM_CACHE = 256


def first_line(e: BaseException) -> str:
    """An exception as one line for the message bar."""
    from malaria_tui.engine.errors import UserError

    text = str(e).strip().splitlines()
    head = text[0][:200] if text else ""
    if isinstance(e, UserError):
        return head or type(e).__name__
    return f"{type(e).__name__}: {head}" if head else type(e).__name__


def short_name(path: str, width: int = 28) -> str:
    name = Path(path).name
    if len(name) <= width:
        return name
    keep = width - 1
    return name[: keep // 2] + "…" + name[len(name) - (keep - keep // 2) :]


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
            show=False,
        ),
        Binding(
            "escape",
            "leave_field",
            "Done editing",
            id="predict.leave_field",
            tooltip="Leave the field being edited",
            show=False,
        ),
        Binding(
            "plus,equals_sign",
            "threshold(0.01)",
            "Threshold",
            id="predict.threshold_up",
            tooltip="Raise the decision threshold by 0.01",
            key_display="+/-",
        ),
        Binding(
            "minus,underscore",
            "threshold(-0.01)",
            "Thr -",
            id="predict.threshold_down",
            tooltip="Lower the decision threshold by 0.01",
            key_display="-",
            show=False,
        ),
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
        self.image_size = 0
        self.gray = False
        self.tta_used = False
        self.error = ""
        self.running = False
        self.sort_key = "prob"
        self.sort_reverse = True
        self.order: list[int] = []  # row i of the table shows self.cells[order[i]]
        self.selected: int | None = None
        self.cam_note = ""
        self._cams: OrderedDict[tuple, object] = OrderedDict()
        self._default_model = ""  # filled in automatically (replaced while the user did not type)
        self.predictions_done = 0  # counts finished predictions (tests, screenshots)
        self._layout: tuple = ()

    # --- layout -------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="form"):
            yield Label("model", classes="field-label")
            yield Input(
                placeholder="run dir, .keras, .tflite or SavedModel",
                id="model",
                compact=True,
            )
            yield Label("images", classes="field-label")
            yield Input(placeholder="folder or image file", id="images", compact=True)
            yield Checkbox("TTA", id="tta", compact=True)
            yield Button("Predict", id="go", compact=True, variant="primary")
        yield Static("", id="message", markup=False)
        with Horizontal(id="body"):
            yield DataTable(id="cells", cursor_type="row", zebra_stripes=True)
            with Vertical(id="side"):
                yield Static("", id="summary")
                yield Static("", id="cell-info", markup=False)
                with Horizontal(id="cell-view"):
                    yield Static("", id="cell-img")
                    yield Static("", id="cam-img")

    def on_mount(self) -> None:
        self._fill_table()
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
        if self._layout != (self.narrow, self._name_width()):
            self._fill_table()
            self._show_summary()
        self._show_cell()

    def _fill_default_model(self) -> None:
        field = self.query_one("#model", Input)
        if field.value and field.value != self._default_model:
            return  # the user's own choice
        run = self.mapp.newest_run_with_model()
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

    def action_leave_field(self) -> None:
        self.query_one("#cells", DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "predict":
            return True if self.mapp.tf_ready and not self.running else None
        if action in ("threshold", "reset_threshold", "cycle_sort"):
            return True if self.cells else None
        return True

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
        """Run the model on ``images`` in a worker thread (the UI stays live)."""
        self.error = ""
        self.running = True
        self._show_message()
        self._sync_go()
        self._predict_worker(model, images, tta)

    @work(thread=True, exclusive=True, exit_on_error=False, group="predict", name="predict")
    def _predict_worker(self, source: str, images: str, tta: bool) -> None:
        from malaria_tui.engine.inference.diagnose import run_predict

        worker = get_current_worker()
        try:
            self.app.call_from_thread(self._show_message, f"loading the model {source}…", "-busy")
            predictor = self.mapp.load_predictor(source)
            self.app.call_from_thread(
                self._show_message,
                f"predicting {images}{' with TTA (8 views per cell)' if tta else ''}…",
                "-busy",
            )
            cells, folders, bad, threshold, _x = run_predict(predictor, [images], tta=tta)
            del _x  # the selected cell is reloaded for Grad-CAM: memory stays flat
        except Exception as e:  # noqa: BLE001 - every failure is one line in the message bar
            if not worker.is_cancelled:
                self.app.call_from_thread(self._failed, first_line(e))
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(
                self._predicted, source, predictor, cells, folders, bad, threshold, tta
            )

    def _failed(self, reason: str) -> None:
        self.running = False
        self.error = reason
        self._show_message()
        self._sync_go()

    def _predicted(self, source, predictor, cells, folders, bad, threshold, tta) -> None:
        same_model = source == self.model_source and self.threshold is not None
        self.running = False
        self.model_source = source
        self.model_kind = predictor.kind
        self.image_size = int(predictor.image_size)
        self.gray = predictor.color == "gray"
        self.model_threshold = float(threshold)
        self.tta_used = tta
        self.unreadable = list(bad)
        self._cams.clear()
        name = Path(predictor.source).name
        if name == "best.keras":
            name = Path(predictor.source).parent.parent.name
        self.model_desc = (
            f"{name}: {predictor.kind}, {predictor.image_size} px {predictor.color}, "
            f"operating point {predictor.operating_point} = {threshold:.3f}"
        )
        self.cells = list(cells)
        if not same_model:
            self.threshold = float(threshold)
        self.cells = relabel(self.cells, self.threshold)
        from malaria_tui.engine.inference.diagnose import summarise

        self.folders = summarise(self.cells) if self.threshold != threshold else list(folders)
        if not cells:
            self.error = f"no readable images: {len(bad)} file(s) could not be decoded"
        self.selected = None
        self.predictions_done += 1
        self._fill_table()
        self._show_summary()
        self._show_message()
        self._sync_go()
        if self.cells:
            self.query_one("#cells", DataTable).focus()

    # --- the table -------------------------------------------------------------------------

    def _name_width(self) -> int:
        """Characters of file name that fit beside the probability and label columns."""
        width = self.query_one("#cells", DataTable).size.width or self.app.size.width - 46
        label_w, prob_w = (6, 9) if self.narrow else (11, 16)
        return max(10, min(48, width - label_w - prob_w - 2 * 3 - 4))  # 4: the scrollbar

    def _label(self, label: str) -> Text:
        pos = label == "Parasitized"
        text = ("Para." if pos else "Uninf.") if self.narrow else label
        return Text(text, style="bold red" if pos else "green")

    def _row(self, i: int) -> list:
        c = self.cells[i]
        return [
            Text(short_name(c.path, self._layout[1])),
            Text(f"{c.prob:.4f}", justify="right"),
            self._label(c.label),
        ]

    def _fill_table(self) -> None:
        table = self.query_one("#cells", DataTable)
        self._layout = (self.narrow, self._name_width())
        keep = self.selected
        _, key, _ = SORTS[self.sort_key]
        self.order = sorted(
            range(len(self.cells)), key=lambda i: key(self.cells[i]), reverse=self.sort_reverse
        )
        table.clear(columns=True)
        for col_key, (header, _, _) in SORTS.items():
            if self.narrow and col_key == "prob":
                header = "P(para.)"
            arrow = ""
            if col_key == self.sort_key:
                arrow = " ▼" if self.sort_reverse else " ▲"
            width = self._layout[1] if col_key == "file" else None
            table.add_column(Text(header + arrow), key=col_key, width=width)
        for i in self.order:
            table.add_row(*self._row(i), key=str(i))
        if self.order:
            row = self.order.index(keep) if keep in self.order else 0
            table.move_cursor(row=row)
            self.selected = self.order[row]
        self._show_cell()

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        if key not in SORTS:
            return
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else SORTS[key][2]
        self.sort_key, self.sort_reverse = key, reverse
        self._fill_table()

    def action_cycle_sort(self) -> None:
        keys = list(SORTS)
        self.sort_by(keys[(keys.index(self.sort_key) + 1) % len(keys)])

    @on(DataTable.HeaderSelected, "#cells")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))

    @on(DataTable.RowHighlighted, "#cells")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is None or event.row_key.value is None:
            return
        i = int(event.row_key.value)
        if i != self.selected:
            self.selected = i
            self._show_cell()

    @property
    def sorted_cells(self) -> list:
        return [self.cells[i] for i in self.order]

    # --- the threshold and TTA -----------------------------------------------------------------

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
        old = self.cells
        self.cells = relabel(old, self.threshold)
        self.folders = summarise(self.cells)
        table = self.query_one("#cells", DataTable)
        if self.sort_key == "label":
            self._fill_table()
        else:
            for i, (a, b) in enumerate(zip(old, self.cells, strict=True)):
                if a.label != b.label:
                    table.update_cell(str(i), "label", self._label(b.label))
        self._show_summary()
        self._show_cell()

    def action_toggle_tta(self) -> None:
        box_ = self.query_one("#tta", Checkbox)
        box_.value = not box_.value

    @on(Checkbox.Changed, "#tta")
    def _tta_changed(self, event: Checkbox.Changed) -> None:
        if self.cells and event.value != self.tta_used and self.mapp.tf_ready and not self.running:
            self.action_predict()  # the same images again, with/without the 8 views

    # --- the summary -----------------------------------------------------------------------

    def _show_summary(self) -> None:
        parts: list = []
        head = Text()
        if self.threshold is None:
            head.append("threshold: the model's operating point", style="dim")
        else:
            head.append(f" threshold {self.threshold:.2f} ", style="bold reverse")
            note = "" if self.threshold == self.model_threshold else " (d: model's)"
            head.append(f"  +/- moves it{note}", style="dim")
        parts.append(head)
        if self.cells:
            n = len(self.cells)
            k = sum(c.label == "Parasitized" for c in self.cells)
            parts.append(
                Text(
                    f"{n} cells, {k} parasitized{'  (TTA)' if self.tta_used else ''}",
                    style="bold",
                )
            )
            narrow = self.narrow
            t = Table(
                box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, expand=True, show_edge=False
            )
            t.add_column("folder", ratio=1, no_wrap=True, overflow="ellipsis", min_width=6)
            t.add_column("n" if narrow else "cells", justify="right")
            t.add_column("+" if narrow else "par.", justify="right")
            t.add_column("% (95% CI)" if narrow else "parasitemia (95% CI)", justify="right")
            ci = "{:.0f}-{:.0f}" if narrow else "{:.1f}-{:.1f}"
            for f in self.folders:
                t.add_row(
                    Path(f.folder).name or f.folder,
                    str(f.cells),
                    str(f.parasitized),
                    f"{f.parasitemia:.1f}% ({ci.format(f.ci_low, f.ci_high)})",
                )
            parts.append(t)
        if self.unreadable:
            shown = 2 if self.narrow else 5
            parts.append(Text(f"{len(self.unreadable)} unreadable:", style="yellow"))
            for path, reason in self.unreadable[:shown]:
                line = Text(f"  {short_name(path, 30)}  {reason}", style="yellow")
                line.no_wrap, line.overflow = True, "ellipsis"
                parts.append(line)
            if len(self.unreadable) > shown:
                parts.append(Text(f"  … and {len(self.unreadable) - shown} more", style="yellow"))
        self.query_one("#summary", Static).update(Group(*parts))

    # --- the highlighted cell, large, with its Grad-CAM ----------------------------------------

    def _view_side(self) -> int:
        view = self.query_one("#cell-view")
        w, h = view.size.width, view.size.height
        return max(4, min((w - 1) // 2, 2 * h, 64))

    def _show_cell(self) -> None:
        img = self.query_one("#cell-img", Static)
        cam = self.query_one("#cam-img", Static)
        info = self.query_one("#cell-info", Static)
        if self.selected is None or self.selected >= len(self.cells):
            img.update("")
            cam.update("")
            info.update("Highlight a cell to see it large with its Grad-CAM heat map.")
            return
        c = self.cells[self.selected]
        side = self._view_side()
        img.update(HalfBlockImage(load_rgb(c.path, side, side, keep_aspect=True)))
        verdict = f"P(parasitized) {c.prob:.4f} -> {c.label}"
        info.update(f"{verdict}  {Path(c.path).name}" if self.narrow else f"{c.path}\n{verdict}")
        if self.model_kind != "keras":
            self.cam_note = (
                f"Grad-CAM needs a Keras model (a run directory or a .keras file); "
                f"this one is {self.model_kind or 'not loaded'}."
            )
            cam.update(Text(self.cam_note, style="dim"))
            return
        key = (c.path, self.model_source)
        hit = self._cams.get(key)
        if isinstance(hit, str):
            cam.update(Text(hit, style="dim"))
        elif hit is not None:
            cam.update(HalfBlockImage(fit_array(hit, side, side)))
        else:
            cam.update(Text("Grad-CAM…", style="dim"))
            self._cam_worker(c.path, self.model_source, self.image_size, self.gray)

    @work(thread=True, exclusive=True, exit_on_error=False, group="predict-cam", name="gradcam")
    def _cam_worker(self, path: str, source: str, size: int, gray: bool) -> None:
        from malaria_tui.engine.explain import gradcam, overlay
        from malaria_tui.engine.inference.diagnose import load_images

        worker = get_current_worker()
        try:
            predictor = self.mapp.load_predictor(source)
            x, ok, bad = load_images([Path(path)], size, gray)
            if not ok:
                result: object = f"cannot read the image ({bad[0][1]})"
            else:
                result = overlay(x[0], gradcam(predictor.model, x[:1])[0])
        except Exception as e:  # noqa: BLE001 - shown where the heat map would be
            result = f"no Grad-CAM: {first_line(e)}"
        if not worker.is_cancelled:
            self.app.call_from_thread(self._cam_done, (path, source), result)

    def _cam_done(self, key: tuple, result: object) -> None:
        self._cams[key] = result
        while len(self._cams) > CAM_CACHE:
            self._cams.popitem(last=False)
        sel = self.selected
        if (
            sel is not None
            and sel < len(self.cells)
            and (self.cells[sel].path, self.model_source) == key
        ):
            self._show_cell()

    @property
    def cam_ready(self) -> bool:
        """The highlighted cell's heat map (or the reason there is none) is on screen."""
        if self.selected is None or self.selected >= len(self.cells):
            return False
        if self.model_kind != "keras":
            return True
        return (self.cells[self.selected].path, self.model_source) in self._cams

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
