"""Evaluate: test metrics, confusion matrix, ROC with AUC, a movable threshold, mistakes."""

from __future__ import annotations

import math
from pathlib import Path

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from malaria_tui.engine.data.records import CLASS_NAMES, sample_root
from malaria_tui.engine.evaluation import eval_dir, measures
from malaria_tui.engine.rundir import RunDir
from malaria_tui.tui.run_list import newest_with_eval
from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand, threshold_bindings
from malaria_tui.tui.screens.dialogs import CellDialog
from malaria_tui.tui.training_session import fmt_metric
from malaria_tui.tui.widgets.cells import CellGrid, CellItem
from malaria_tui.tui.widgets.charts import ChartKeys, Line, LineChart

METRIC_ROWS = [
    ("accuracy", "accuracy"),
    ("auc", "AUC"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("specificity", "specif."),
    ("f1", "F1"),
    ("loss", "loss"),
    ("n", "images"),
    ("threshold", "thresh."),
]


def _pct(x: float) -> str:
    return "  -  " if math.isnan(x) else f"{100 * x:5.1f}%"


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3f}"


def resolve_image(path: str, run: RunDir | None) -> str:
    """An image path from predictions.csv as a file on this machine, if it can be found."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return str(p)
    roots: list[Path] = []
    if run is not None:
        try:
            src = run.load_config().data.source
            if src.startswith("folder:"):
                roots.append(Path(src.split(":", 1)[1]).expanduser())
        except Exception:  # a broken config only means no folder hint
            pass
    roots.append(sample_root())
    for root in roots:
        if (root / p).exists():
            return str(root / p)
    return str(p)


class EvaluateScreen(ChartKeys, BaseScreen):
    MODE = "evaluate"
    CSS_PATH = "evaluate.tcss"
    AUTO_FOCUS = "#errors"
    BINDINGS = [
        *threshold_bindings("evaluate"),
        Binding(
            "d",
            "preset('default')",
            "0.5",
            id="evaluate.preset_default",
            tooltip="Threshold 0.5",
            show=False,
        ),
        Binding(
            "y",
            "preset('youden')",
            "Youden",
            id="evaluate.preset_youden",
            tooltip="The threshold that maximises sensitivity + specificity on validation",
        ),
        Binding(
            "t",
            "preset('sensitivity_target')",
            "Sens. target",
            id="evaluate.preset_sensitivity",
            tooltip="The threshold chosen on validation for the target sensitivity",
            show=False,
        ),
        Binding(
            "g",
            "toggle_gallery",
            "ROC/errors",
            id="evaluate.toggle_gallery",
            tooltip="Show the ROC curve or the gallery of misclassified cells",
        ),
        Binding(
            "r",
            "reload",
            "Reload",
            id="evaluate.reload",
            tooltip="Read the run's evaluation files again",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data: eval_dir.EvalData | None = None
        self.run: RunDir | None = None
        self.threshold = 0.5
        self.dialog: CellDialog | None = None  # the last cell opened (tests)

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="body"):
            with VerticalScroll(id="left"):
                yield Static("", id="run-name", markup=False)
                yield Static("", id="at-threshold")
                yield Static("", id="metrics")
            with Vertical(id="right"):
                yield LineChart("ROC", xlabel="false positive rate", id="roc")
                with Vertical(id="gallery-box"):
                    yield Static("", id="gallery-title", markup=False)
                    yield CellGrid(
                        thumb_width=10,
                        thumb_height=5,
                        id="errors",
                        empty_text="no misclassified cells",
                    )

    def on_mount(self) -> None:
        self.action_reload()

    def on_screen_resume(self) -> None:
        if self._wanted_run() != self.run or (self.data is not None and not self.data.has_any):
            self.action_reload()
        self.update_status()

    def on_run_done(self) -> None:
        if self.is_current:
            self.action_reload()

    def _wanted_run(self) -> RunDir | None:
        return self.mapp.current_run or newest_with_eval(self.mapp.runs_dir)

    # --- loading ----------------------------------------------------------------------------

    def action_reload(self) -> None:
        self.run = self._wanted_run()
        if self.run is None:
            self.data = None
            self._show_nothing(
                "No evaluated run yet.\n\nTrain one on screen 4 (it is evaluated on the test split "
                "when it finishes), or pick a finished run on screen 8, or run\n"
                "`malaria-tui evaluate RUN_DIR`."
            )
            return
        self._load(self.run)

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False)
    def _load(self, run: RunDir) -> None:
        data = eval_dir.load(run.path)
        self.app.call_from_thread(self._loaded, run, data)

    def _loaded(self, run: RunDir, data: eval_dir.EvalData) -> None:
        if run != self.run:
            return
        self.data = data
        self.query_one("#run-name", Static).update(f"Run {run.name}")
        if not data.has_any:
            self._show_nothing(
                f"Run {run.name} has no evaluation yet ({'; '.join(data.problems)}).\n\n"
                f"Evaluate it with `malaria-tui evaluate {run.path}`."
            )
            return
        default = data.thresholds.get("default", data.test.get("threshold", 0.5))
        self.threshold = float(default) if isinstance(default, int | float) else 0.5
        self._show_metrics()
        self._update_threshold()

    def _show_nothing(self, text: str) -> None:
        self.query_one("#run-name", Static).update("")
        self.query_one("#metrics", Static).update(Text(text))
        self.query_one("#at-threshold", Static).update("")
        self.query_one("#roc", LineChart).set_lines([])
        self.query_one("#errors", CellGrid).set_items([])
        self.query_one("#gallery-title", Static).update("")

    def _show_metrics(self) -> None:
        data = self.data
        assert data is not None
        t = Table(box=None, padding=(0, 1), pad_edge=False, show_header=False)
        t.add_column("metric", style="dim")
        t.add_column("value", justify="right")
        t.add_column("metric", style="dim")
        t.add_column("value", justify="right")
        cells = [
            (label, fmt_metric(data.test[key])) for key, label in METRIC_ROWS if key in data.test
        ]
        for i in range(0, len(cells), 2):
            row = [*cells[i], *(cells[i + 1] if i + 1 < len(cells) else ("", ""))]
            t.add_row(*row)
        title = Text(f"saved {data.split} metrics (eval/metrics.json)", style="bold")
        presets = Text("presets: ", style="dim")
        for key, name in (("default", "d"), ("youden", "y"), ("sensitivity_target", "t")):
            value = data.thresholds.get(key)
            if isinstance(value, int | float):
                presets.append(f"{name} {value:.3f}  ", style="dim")
        parts = [title, t, presets]
        patients = data.metrics.get("patients")
        if isinstance(patients, dict) and isinstance(patients.get("mean_accuracy"), int | float):
            worst = patients.get("worst_accuracy")
            n = patients.get("patients")
            line = f"per patient: mean accuracy {patients['mean_accuracy']:.3f}"
            if isinstance(worst, int | float):
                line += f", worst {worst:.3f}"
            if isinstance(n, int):
                line += f" ({n} patients)"
            parts.append(Text(line, style="dim"))
        self.query_one("#metrics", Static).update(Group(*parts))

    # --- threshold --------------------------------------------------------------------------

    def _update_threshold(self) -> None:
        data = self.data
        if data is None or not len(data.probs):
            if data is not None:
                self.query_one("#at-threshold", Static).update(
                    Text("no eval/predictions.csv: the threshold cannot be moved", style="dim")
                )
                self._draw_roc(None)
            return
        at = measures.confusion(data.labels, data.probs, self.threshold)
        self.at = at
        cm = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        cm.add_column("true \\ pred")
        cm.add_column("Parasit.", justify="right")
        cm.add_column("Uninf.", justify="right")
        pos, neg = at.tp + at.fn, at.tn + at.fp
        cm.add_row(
            CLASS_NAMES[1],
            f"{at.tp} {_pct(at.tp / pos if pos else math.nan)}",
            f"{at.fn} {_pct(at.fn / pos if pos else math.nan)}",
        )
        cm.add_row(
            CLASS_NAMES[0],
            f"{at.fp} {_pct(at.fp / neg if neg else math.nan)}",
            f"{at.tn} {_pct(at.tn / neg if neg else math.nan)}",
        )
        head = Text()
        head.append(f" threshold {self.threshold:.2f} ", style="bold reverse")
        head.append("  +/- to move it", style="dim")
        stats = Text()
        stats.append(f"sensitivity {_num(at.sensitivity)}  specificity {_num(at.specificity)}\n")
        stats.append(f"PPV         {_num(at.ppv)}  NPV         {_num(at.npv)}\n")
        stats.append(f"accuracy    {_num(at.accuracy)}  of {at.n} {data.split} images\n")
        self.query_one("#at-threshold", Static).update(Group(head, cm, stats))
        self._draw_roc(at)
        wrong = eval_dir.misclassified(data, self.threshold)
        items = [
            CellItem(
                resolve_image(p.path, self.run),
                f"{'P' if p.label else 'U'} p={p.prob:.2f}",
                positive=bool(p.label),
                info={
                    "label": CLASS_NAMES[p.label],
                    "predicted": CLASS_NAMES[int(p.prob >= self.threshold)],
                    "probability": f"{p.prob:.4f} (Parasitized)",
                    "patient": p.group or "unknown",
                },
            )
            for p in wrong
        ]
        self.query_one("#errors", CellGrid).set_items(items, keep_selection=True)
        title = self.query_one("#gallery-title", Static)
        counts = f"at {self.threshold:.2f} (FN {at.fn}, FP {at.fp})"
        width = title.content_size.width or self.app.size.width - 44
        forms = [
            f"{len(wrong)} misclassified {counts}; enter: cell + heat map",
            f"{len(wrong)} misclassified {counts}",
            f"{len(wrong)} wrong {counts}",
        ]
        title.update(next((f for f in forms if len(f) <= width), forms[-1]))

    def _draw_roc(self, at: measures.Confusion | None) -> None:
        data = self.data
        assert data is not None
        fpr, tpr = data.roc
        auc = data.auc
        title = f"ROC  AUC {auc:.4f}" if auc is not None else "ROC"
        marks = []
        if at is not None and not math.isnan(at.fpr) and not math.isnan(at.sensitivity):
            marks.append((at.fpr, at.sensitivity, f"t={self.threshold:.2f}"))
        self.query_one("#roc", LineChart).set_lines(
            [
                Line("ROC", list(fpr), list(tpr), color="cyan"),
                Line("chance", [0.0, 1.0], [0.0, 1.0], color="gray"),
            ],
            title=title,
            xlim=(0.0, 1.0),
            ylim=(0.0, 1.0),
            marks=marks,
        )

    def action_threshold(self, delta: float) -> None:
        self.set_threshold(self.threshold + delta)

    def set_threshold(self, value: float) -> None:
        self.threshold = round(min(1.0, max(0.0, value)), 4)
        self._update_threshold()

    def action_preset(self, name: str) -> None:
        if self.data is None:
            return
        value = self.data.thresholds.get(name)
        if name == "default" and value is None:
            value = 0.5
        if isinstance(value, int | float):
            self.set_threshold(float(value))
            self.notify(f"threshold: {name.replace('_', ' ')} = {value:.3f}", timeout=2)
        else:
            self.notify(f"this run has no {name.replace('_', ' ')} threshold", severity="warning")

    def action_toggle_gallery(self) -> None:
        self.toggle_class("show-gallery")
        if self.has_class("show-gallery"):
            self.query_one("#errors", CellGrid).focus()

    @on(CellGrid.Opened)
    def _open(self, event: CellGrid.Opened) -> None:
        why = self._no_heat_reason()
        model = "" if why or self.run is None else str(self.run.path)
        self.dialog = CellDialog(event.item, heat=True, model=model, note=why)
        self.app.push_screen(self.dialog)

    def _no_heat_reason(self) -> str:
        app = self.mapp
        if self.run is None:
            return "no run: no model to explain"
        if not self.run.best_model.is_file():
            return f"no Grad-CAM: {self.run.name} has no best model (checkpoints/best.keras)"
        if app.tf_state == "loading":
            return "Grad-CAM: TensorFlow is still loading; reopen the cell in a moment"
        if not app.tf_ready:
            return "no Grad-CAM: TensorFlow is off or unavailable in this session"
        return ""

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            (
                "Threshold: default (0.5)",
                "Move the decision threshold",
                lambda: self.action_preset("default"),
            ),
            (
                "Threshold: Youden J",
                "Best sensitivity+specificity on the validation split",
                lambda: self.action_preset("youden"),
            ),
            (
                "Threshold: sensitivity target",
                "Threshold meeting eval.target_sensitivity",
                lambda: self.action_preset("sensitivity_target"),
            ),
            (
                "Show misclassified cells",
                "Toggle the ROC curve / mistakes gallery",
                self.action_toggle_gallery,
            ),
            ("Reload evaluation", "Re-read eval/ of the run", self.action_reload),
        ]
