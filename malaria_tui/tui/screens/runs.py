"""Runs: every run under runs/, open one in Evaluate, mark two to overlay curves and diff configs."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from malaria_tui.engine.config import diff
from malaria_tui.engine.rundir import RunDir, list_runs
from malaria_tui.tui.run_list import RunSummary, summarize
from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand
from malaria_tui.tui.widgets.charts import Line, LineChart

COLORS = ("cyan", "orange")  # plotext names
RICH_COLORS = ("cyan", "dark_orange")


class RunsScreen(BaseScreen):
    MODE = "runs"
    CSS_PATH = "runs.tcss"
    AUTO_FOCUS = "#runs"
    BINDINGS = [
        Binding(
            "space",
            "mark",
            "Mark/compare",
            id="runs.mark",
            tooltip="Mark the run; two marked runs overlay their curves and diff their configs",
        ),
        Binding(
            "e",
            "evaluate",
            "Evaluate",
            id="runs.evaluate",
            tooltip="Open the run in the Evaluate screen",
        ),
        Binding("m", "cycle_metric", "Metric", id="runs.metric", tooltip="Overlay the next metric"),
        Binding(
            "u",
            "resume",
            "Resume",
            id="runs.resume",
            tooltip="Continue an interrupted run from its last checkpoint",
        ),
        Binding(
            "w",
            "watch",
            "Watch",
            id="runs.watch",
            tooltip="Follow this run on the Train screen: live while it trains, else its record",
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
        self.order: list[str] = []
        self.marked: list[str] = []
        self.metric = "loss"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="body"):
            yield Static("", id="runs-title", markup=False)
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="compare"):
                yield LineChart("validation", xlabel="epoch", id="overlay")
                with VerticalScroll(id="diff-box"):
                    yield Static("", id="diff")

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_column("", key="mark", width=2)
        table.add_column("run", key="name")
        table.add_column("started", key="date")
        table.add_column("model", key="model")
        table.add_column("epochs", key="epochs")
        table.add_column("best", key="best")
        table.add_column("status", key="status")
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()
        self.update_status()

    def on_run_done(self) -> None:
        self.action_reload()

    # --- loading ----------------------------------------------------------------------------

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def _load(self) -> None:
        runs = list_runs(self.mapp.runs_dir)
        summaries = [summarize(r) for r in runs]
        self.app.call_from_thread(self._loaded, summaries)

    def _loaded(self, summaries: list[RunSummary]) -> None:
        table = self.query_one("#runs", DataTable)
        keep = table.cursor_row
        self.summaries = {s.name: s for s in summaries}
        self.order = [s.name for s in reversed(summaries)]  # newest first
        self.marked = [m for m in self.marked if m in self.summaries]
        table.clear()
        for name in self.order:
            s = self.summaries[name]
            table.add_row(*self._cells(s), key=name)
        if self.order:
            table.move_cursor(row=min(max(keep, 0), len(self.order) - 1))
        self.query_one("#runs-title", Static).update(
            f"{len(self.order)} run{'s' if len(self.order) != 1 else ''} in {self.mapp.runs_dir}   "
            "(space marks two to compare, e opens one in Evaluate, w watches it)"
            if self.order
            else f"No runs in {self.mapp.runs_dir} yet: start one on screen 4, or `malaria-tui --no-ui`."
        )
        self._draw_compare()

    def _cells(self, s: RunSummary) -> list:
        status_style = {
            "completed": "green",
            "early stopped": "green",
            "failed": "red",
            "interrupted": "yellow",
            "running": "bold yellow",
        }.get(s.status, "dim")
        mark = ""
        if s.name in self.marked:
            mark = Text("●", style=RICH_COLORS[self.marked.index(s.name)])
        short = s.name[16:] if s.date and len(s.name) > 16 else s.name
        date = s.date[5:] if self.app.size.width < 110 else s.date  # 80 columns: no year
        return [mark, short, date, s.model, s.epochs, s.best, Text(s.status, style=status_style)]

    # --- selection ----------------------------------------------------------------------------

    @property
    def highlighted(self) -> RunSummary | None:
        table = self.query_one("#runs", DataTable)
        if not self.order or table.cursor_row < 0 or table.cursor_row >= len(self.order):
            return None
        return self.summaries.get(self.order[table.cursor_row])

    def action_mark(self) -> None:
        s = self.highlighted
        if s is None:
            return
        if s.name in self.marked:
            self.marked.remove(s.name)
        else:
            self.marked.append(s.name)
            self.marked = self.marked[-2:]
        self._refresh_marks()

    def mark(self, *names: str) -> None:
        """Compare these runs (by directory name); at most the last two count."""
        self.marked = [n for n in names if n in self.summaries][-2:]
        self._refresh_marks()

    def _refresh_marks(self) -> None:
        table = self.query_one("#runs", DataTable)
        for name in self.order:
            table.update_cell(name, "mark", self._cells(self.summaries[name])[0])
        self._draw_compare()

    def action_cycle_metric(self) -> None:
        names = sorted({k for n in self.marked for k in self.summaries[n].val_curves} or {"loss"})
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
                f"{s.name} is {s.status}; only interrupted runs can be resumed", severity="warning"
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

    def _draw_compare(self) -> None:
        chart = self.query_one("#overlay", LineChart)
        diff_w = self.query_one("#diff", Static)
        runs = [self.summaries[n] for n in self.marked]
        lines = []
        for color, s in zip(COLORS, runs, strict=False):
            xs, ys = s.val_curves.get(self.metric, ([], []))
            lines.append(Line(s.name[-18:], xs, ys, color=color))
        chart.set_lines(lines, title=f"val {self.metric} (m: next metric)")
        if len(runs) < 2:
            diff_w.update(
                Text(
                    "Mark two runs with space to overlay their validation curves and diff their configs.",
                    style="dim",
                )
            )
            return
        a, b = runs
        try:
            changes = diff(a.run.load_config(), b.run.load_config())
        except Exception as e:  # a broken config.toml is reported in place
            diff_w.update(Text(f"cannot diff the configs: {e}", style="red"))
            return
        t = Table(
            box=None, padding=(0, 1), pad_edge=False, title="config diff", title_justify="left"
        )
        t.add_column("key", style="bold")
        t.add_column("●", style=RICH_COLORS[0])
        t.add_column("●", style=RICH_COLORS[1])
        for key, (va, vb) in changes.items():
            if key == "name":
                continue
            t.add_row(key, str(va), str(vb))
        if not t.row_count:
            diff_w.update(Text("the two configs are identical (apart from the name)", style="dim"))
        else:
            diff_w.update(t)

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            (
                "Open highlighted run in Evaluate",
                "Show its metrics, ROC and mistakes",
                self.action_evaluate,
            ),
            (
                "Mark run for comparison",
                "Overlay curves and diff configs of two runs",
                self.action_mark,
            ),
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
