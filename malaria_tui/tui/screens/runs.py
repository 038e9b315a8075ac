"""Runs: every run under runs/, sortable and filterable, the highlighted run's curves at once,
any number of marked runs overlaid with a diff of their configs; open, resume or watch one.

One line per run is the engine's :class:`~malaria_tui.engine.run_summary.RunSummary`, the same
that ``malaria-tui runs`` prints.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from malaria_tui.engine.config import flatten
from malaria_tui.engine.run_summary import (
    DESCENDING,
    RunSummary,
    format_value,
    matches,
    runs_under,
    sort_runs,
    summarize_all,
)
from malaria_tui.engine.rundir import RunDir
from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand
from malaria_tui.tui.widgets.charts import PALETTE, ChartKeys, Line, LineChart, rich_color
from malaria_tui.tui.widgets.export_table import ExportTable

WIDE = 110  # terminal columns from which every column shows
POLL_SECONDS = 5.0  # while a listed run trains, the list is read again this often
STATUS_STYLE = {
    "completed": "green",
    "early_stopped": "green",
    "failed": "red",
    "interrupted": "yellow",
    "running": "bold yellow",
}
# (key, header, shown when narrow): the keys are the engine's sort columns
COLUMNS = (
    ("name", "run", True),
    ("date", "started", True),
    ("model", "model", True),
    ("epochs", "ep", True),
    ("best", "best", True),
    ("best_epoch", "@", False),
    ("test_acc", "test acc", False),
    ("test_auc", "test auc", True),
    ("status", "status", True),
)


def _stamp(run: RunDir) -> tuple:
    """What changes when a run's summary can: its config, event log and test metrics."""
    out = []
    for p in (run.config_path, run.events_path, run.eval_dir / "metrics.json"):
        try:
            st = p.stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def _num(v: float | None, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


class RunsScreen(ChartKeys, BaseScreen):
    MODE = "runs"
    CSS_PATH = "runs.tcss"
    AUTO_FOCUS = "#runs"
    BINDINGS = [
        Binding(
            "space",
            "mark",
            "Mark",
            id="runs.mark",
            tooltip="Mark the run: marked runs overlay their curves and diff their configs",
        ),
        Binding(
            "e",
            "evaluate",
            "Evaluate",
            id="runs.evaluate",
            tooltip="Open the run in the Evaluate screen (enter does too)",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            id="runs.filter",
            key_display="/",
            tooltip="Filter the runs by name, model or status (enter or escape leaves the field)",
        ),
        Binding(
            "s",
            "sort_next",
            "Sort",
            id="runs.sort",
            tooltip="Sort by the next column (or click a header)",
        ),
        Binding(
            "v",
            "reverse",
            "Reverse",
            id="runs.reverse",
            tooltip="Reverse the sort order",
            show=False,
        ),
        Binding(
            "m",
            "cycle_metric",
            "Metric",
            id="runs.metric",
            tooltip="Chart the next metric",
            show=False,
        ),
        Binding(
            "u",
            "resume",
            "Resume",
            id="runs.resume",
            tooltip="Continue an interrupted run from its last checkpoint",
            show=False,
        ),
        Binding(
            "w",
            "watch",
            "Watch",
            id="runs.watch",
            tooltip="Follow this run on the Train screen: live while it trains, else its record",
            show=False,
        ),
        Binding(
            "c",
            "clear_marks",
            "Clear marks",
            id="runs.clear_marks",
            tooltip="Unmark every run",
            show=False,
        ),
        Binding(
            "r",
            "reload",
            "Refresh",
            id="runs.reload",
            tooltip="Read the runs folder again",
            show=False,
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.summaries: dict[str, RunSummary] = {}
        self.order: list[str] = []  # the names shown, in table order (sorted, filtered)
        self.marked: list[str] = []
        self.metric = "loss"
        self.sort_key = "date"
        self.sort_reverse = False  # False: the column's natural order (engine DESCENDING)
        self.filter_text = ""
        self._columns: tuple = ()
        self._cache: dict[str, tuple[tuple, RunSummary]] = {}  # name -> (files' stamp, summary)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="body"):
            with Horizontal(id="runs-head"):
                yield Static("", id="runs-title", markup=False)
                yield Input(placeholder="/ filter", id="filter", compact=True)
            yield ExportTable(id="runs", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="compare"):
                yield LineChart("validation", xlabel="epoch", id="overlay")
                with VerticalScroll(id="diff-box"):
                    yield Static("", id="diff")

    def on_mount(self) -> None:
        self.action_reload()
        self.set_interval(POLL_SECONDS, self._poll)

    def on_screen_resume(self) -> None:
        self.action_reload()
        self.update_status()

    def on_run_done(self) -> None:
        self.action_reload()

    def on_resize(self) -> None:
        if self.summaries and self._layout() != self._columns:
            self._fill()

    def _poll(self) -> None:
        if self.is_current and any(s.status == "running" for s in self.summaries.values()):
            self.action_reload()

    # --- loading ----------------------------------------------------------------------------

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def _load(self) -> None:
        """Summaries of the runs folder; a run whose files did not change since the last read
        (and that was not training) keeps its summary: event logs can be long."""
        runs = runs_under(self.mapp.runs_dir)
        stamps = {r.name: _stamp(r) for r in runs}
        todo = [
            r
            for r in runs
            if (old := self._cache.get(r.name)) is None
            or old[0] != stamps[r.name]
            or old[1].status == "running"
        ]
        fresh = {s.name: s for s in summarize_all(todo)}
        summaries = [fresh.get(r.name) or self._cache[r.name][1] for r in runs]
        self._cache = {s.name: (stamps[s.name], s) for s in summaries}
        self.app.call_from_thread(self._loaded, summaries)

    def _loaded(self, summaries: list[RunSummary]) -> None:
        self.summaries = {s.name: s for s in summaries}
        self.marked = [m for m in self.marked if m in self.summaries]
        self.query_one("#runs", ExportTable).export_dir = self.mapp.runs_dir
        self._fill()

    # --- the table ------------------------------------------------------------------------------

    @property
    def wide(self) -> bool:
        return self.app.size.width >= WIDE

    def _layout(self) -> tuple:
        return tuple((k, h) for k, h, narrow in COLUMNS if narrow or self.wide)

    def visible(self) -> list[RunSummary]:
        """The runs shown: filtered, then sorted."""
        shown = [s for s in self.summaries.values() if matches(s, self.filter_text)]
        return sort_runs(shown, self.sort_key, self.sort_reverse)

    def _fill(self) -> None:
        """Rebuild the table (columns when the width class changed), keeping the cursor's run."""
        table = self.query_one("#runs", ExportTable)
        keep = self.highlighted_name
        layout = self._layout()
        if layout != self._columns:
            table.clear(columns=True)
            table.add_column("", key="mark", width=1)
            for key, header in layout:
                table.add_column(header, key=key)
            self._columns = layout
        else:
            table.clear()
        self._label_columns()
        runs = self.visible()
        self.order = [s.name for s in runs]
        monitors = self._monitors
        for s in runs:
            table.add_row(*self._cells(s, monitors), key=s.name)
        if self.order:
            row = self.order.index(keep) if keep in self.order else 0
            table.move_cursor(row=row)
        self._title()
        self._draw_compare()

    @property
    def _monitors(self) -> set[str]:
        return {s.monitor for s in self.summaries.values()}

    def _label_columns(self) -> None:
        table = self.query_one("#runs", ExportTable)
        monitors = self._monitors
        descending = (self.sort_key in DESCENDING) != self.sort_reverse
        for key, header in self._columns:
            label = header
            if key == "best" and len(monitors) == 1:
                label = f"best {next(iter(monitors)).removeprefix('val_')}"
            if key == self.sort_key:
                label += " ▼" if descending else " ▲"
            column = table.columns.get(key)
            if column is not None:
                column.label = Text(label)
        table.refresh()

    def _cells(self, s: RunSummary, monitors: set[str] | None = None) -> list:
        mark: Text | str = ""
        if s.name in self.marked:
            mark = Text("●", style=rich_color(self._color(s.name)))
        best = _num(s.best)
        if best and len(self._monitors if monitors is None else monitors) > 1:
            best = f"{s.metric} {best}"
        values = {
            "name": s.short_name if s.date else s.name,
            "date": s.date if self.wide else s.date[5:],
            "model": s.model,
            "epochs": f"{s.epochs_done}/{s.epochs_total}" if s.epochs_total else "",
            "best": Text(best, justify="right"),
            "best_epoch": "" if s.best_epoch is None else str(s.best_epoch),
            "test_acc": Text(_num(s.test_accuracy), justify="right"),
            "test_auc": Text(_num(s.test_auc), justify="right"),
            "status": Text(
                s.status.replace("_", " ").replace("early stopped", "early stop"),
                style=STATUS_STYLE.get(s.status, "dim"),
            ),
        }
        return [mark, *(values[k] for k, _ in self._columns)]

    def _title(self) -> None:
        n, total = len(self.order), len(self.summaries)
        where = self.mapp.runs_dir
        if not total:
            text = f"No runs in {where} yet: start one on screen 4, or `malaria-tui --no-ui`."
        elif self.filter_text:
            text = f"{n} of {total} runs match {self.filter_text!r} in {where}"
        else:
            text = f"{total} run{'s' if total != 1 else ''} in {where}"
        self.query_one("#runs-title", Static).update(text)

    # --- sorting and filtering --------------------------------------------------------------------

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        """Sort by column ``key`` in its natural order; again on the same column flips it."""
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else False
        self.sort_key, self.sort_reverse = key, reverse
        self._fill()

    def action_sort_next(self) -> None:
        keys = [k for k, _ in self._columns] or ["date"]
        i = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_by(keys[(i + 1) % len(keys)], reverse=False)

    def action_reverse(self) -> None:
        self.sort_by(self.sort_key, reverse=not self.sort_reverse)

    @on(DataTable.HeaderSelected, "#runs")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key and key != "mark":
            self.sort_by(key)

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._fill()

    # --- selection ----------------------------------------------------------------------------

    @property
    def highlighted_name(self) -> str | None:
        table = self.query_one("#runs", ExportTable)
        row = table.cursor_row
        return self.order[row] if self.order and 0 <= row < len(self.order) else None

    @property
    def highlighted(self) -> RunSummary | None:
        name = self.highlighted_name
        return self.summaries.get(name) if name else None

    @on(DataTable.RowHighlighted, "#runs")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._draw_compare()

    def _color(self, name: str) -> str:
        shown = self.compared()
        i = [s.name for s in shown].index(name) if name in [s.name for s in shown] else 0
        return PALETTE[i % len(PALETTE)]

    def compared(self) -> list[RunSummary]:
        """The runs overlaid: the marked ones, then the highlighted one when it is not marked."""
        runs = [self.summaries[n] for n in self.marked if n in self.summaries]
        h = self.highlighted
        if h is not None and h.name not in self.marked:
            runs.append(h)
        return runs

    def action_mark(self) -> None:
        s = self.highlighted
        if s is None:
            return
        if s.name in self.marked:
            self.marked.remove(s.name)
        else:
            self.marked.append(s.name)
        self._refresh_marks()

    def action_clear_marks(self) -> None:
        self.marked = []
        self._refresh_marks()

    def mark(self, *names: str) -> None:
        """Compare these runs (by directory name)."""
        self.marked = [n for n in names if n in self.summaries]
        self._refresh_marks()

    def _refresh_marks(self) -> None:
        table = self.query_one("#runs", ExportTable)
        for name in self.order:
            table.update_cell(name, "mark", self._cells(self.summaries[name])[0])
        self._draw_compare()

    def action_cycle_metric(self) -> None:
        names = sorted({k for s in self.compared() for k in s.val_curves} or {"loss"})
        if "loss" in names:
            names.remove("loss")
            names.insert(0, "loss")
        i = names.index(self.metric) if self.metric in names else -1
        self.metric = names[(i + 1) % len(names)]
        self._draw_compare()

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_evaluate()

    def action_evaluate(self) -> None:
        s = self.highlighted
        if s is None:
            return
        self.mapp.current_run = s.run
        self.app.action_show("evaluate")

    def action_resume(self) -> None:
        s = self.highlighted
        if s is None:
            return
        if s.status != "interrupted":
            self.notify(
                f"{s.name} is {s.status.replace('_', ' ')}; only interrupted runs can be resumed",
                severity="warning",
            )
            return
        why = self.mapp.controller.start(resume=s.run)
        if why:
            self.notify(f"Cannot resume: {why}", severity="warning")
        else:
            self.app.action_show("train")

    def action_watch(self) -> None:
        s = self.highlighted
        if s is None:
            return
        why = self.mapp.controller.follow(s.run)
        if why:
            self.notify(f"Cannot watch: {why}", severity="warning")
        else:
            self.app.action_show("train")

    # --- comparison -----------------------------------------------------------------------------

    def _labels(self, runs: list[RunSummary]) -> list[str]:
        """Legend names: the name without its stamp, with the start time when two are alike."""
        shorts = [s.short_name for s in runs]
        return [
            f"{short} {s.date[5:]}" if shorts.count(short) > 1 and s.date else short
            for short, s in zip(shorts, runs, strict=True)
        ]

    def _draw_compare(self) -> None:
        chart = self.query_one("#overlay", LineChart)
        runs = self.compared()
        hint = "m: metric, space: mark"
        if not self.marked and runs:
            s = runs[0]
            lines = []
            for label, curves, color in (
                ("val", s.val_curves, "orange"),
                ("train", s.train_curves, "blue"),
            ):
                xs, ys = curves.get(self.metric, ([], []))
                lines.append(Line(label, xs, ys, color=color))
            chart.set_lines(lines, title=f"{self.metric}  ({hint})")
        else:
            lines = []
            for i, (s, label) in enumerate(zip(runs, self._labels(runs), strict=True)):
                xs, ys = s.val_curves.get(self.metric, ([], []))
                lines.append(Line(label, xs, ys, color=PALETTE[i % len(PALETTE)]))
            chart.set_lines(lines, title=f"val {self.metric}  ({hint})")
        self._draw_side(runs)

    def _draw_side(self, runs: list[RunSummary]) -> None:
        box = self.query_one("#diff", Static)
        if not runs:
            box.update(Text("No run highlighted.", style="dim"))
        elif len(runs) == 1:
            box.update(self._details(runs[0]))
        else:
            box.update(self._diff(runs))

    def _details(self, s: RunSummary) -> Text:
        t = Text()
        t.append(s.name + "\n", style="bold")
        t.append(s.status.replace("_", " "), style=STATUS_STYLE.get(s.status, "dim"))
        if s.epochs_total:
            t.append(f", {s.epochs_done}/{s.epochs_total} epochs")
        t.append(f"\n{s.model}\n")
        if s.best is not None:
            at = f" at epoch {s.best_epoch}" if s.best_epoch else ""
            t.append(f"best {s.monitor} {s.best:.4f}{at}\n")
        if s.test_auc is not None or s.test_accuracy is not None:
            t.append(f"test acc {_num(s.test_accuracy) or '-'}, auc {_num(s.test_auc) or '-'}\n")
        if s.config_error:
            t.append(f"config: {s.config_error}\n", style="red")
        elif s.changes:
            t.append("\nchanged from the defaults\n", style="bold")
            for k, v in s.changes.items():
                t.append(f"{k} = {format_value(v)}\n")
        else:
            t.append("\nthe default config\n", style="dim")
        t.append("\nspace marks runs to overlay and diff them", style="dim")
        return t

    def _diff(self, runs: list[RunSummary]) -> Text:
        """Each key whose value differs between the runs, then each run's value after its
        colour's dot (a block per key: it reads the same for two runs or ten)."""
        flats = []
        for s in runs:
            try:
                flats.append(flatten(s.run.load_config().to_dict()))
            except Exception as e:  # a broken config.toml is reported in place
                return Text(f"cannot diff {s.name}: {e}", style="red")
        every = sorted(set().union(*flats) - {"name"})
        keys = [k for k in every if len({format_value(f.get(k)) for f in flats}) > 1]
        if not keys:
            return Text(f"the {len(runs)} configs are identical (apart from the name)", style="dim")
        t = Text()
        t.append("config diff\n", style="bold")
        for key in keys:
            t.append(f"{key}\n", style="bold")
            t.append(" ")
            for i, f in enumerate(flats):
                color = rich_color(PALETTE[i % len(PALETTE)])
                t.append(" ●", style=color)
                t.append(f" {format_value(f.get(key))}", style=color)
            t.append("\n")
        return t

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            (
                "Open highlighted run in Evaluate",
                "Show its metrics, ROC and mistakes",
                self.action_evaluate,
            ),
            (
                "Mark run for comparison",
                "Overlay curves and diff configs of the marked runs",
                self.action_mark,
            ),
            ("Clear marks", "Unmark every run", self.action_clear_marks),
            ("Filter runs", "By name, model or status", self.action_filter),
            ("Sort runs by the next column", "Or click a header", self.action_sort_next),
            ("Reverse the sort order", "Of the runs table", self.action_reverse),
            (
                "Resume highlighted run",
                "Continue an interrupted run from its checkpoint",
                self.action_resume,
            ),
            (
                "Watch highlighted run",
                "Follow it on the Train screen, live while another process trains it",
                self.action_watch,
            ),
            ("Refresh runs", "Re-read the runs folder", self.action_reload),
        ]

    def run_by_name(self, name: str) -> RunDir | None:
        s = self.summaries.get(name)
        return s.run if s else None
