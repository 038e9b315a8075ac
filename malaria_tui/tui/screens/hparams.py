"""HParams: the hyper-parameter grid's ``grid.csv`` as a sortable table, best trial highlighted.

``malaria-tui grid`` opens the app here and trains the grid in a worker thread of the app
(its trials also show on the Train screen); a grid trained elsewhere, headless or by another
window, shows the same way. This screen re-reads the file while it is shown, so trials appear
as they progress and finish.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand

POLL_SECONDS = 2.0


def find_grid_csv(runs_dir: Path, grid_dir: Path | None) -> Path | None:
    """``<grid_dir>/grid.csv``, else the newest ``grid.csv`` near the runs folder."""
    if grid_dir is not None:
        p = grid_dir / "grid.csv" if grid_dir.suffix != ".csv" else grid_dir
        return p if p.is_file() else None
    candidates: list[Path] = []
    for pattern in ("grid.csv", "*/grid.csv", "grids/*/grid.csv"):
        candidates += [p for p in runs_dir.glob(pattern) if p.is_file()]
    candidates += [p for p in Path("grids").glob("*/grid.csv") if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def grid_metric(csv_path: Path) -> tuple[str | None, str | None]:
    """``[grid] metric`` and ``mode`` from the grid's own ``grid.toml``, when it has one."""
    import tomllib

    try:
        text = (csv_path.parent / "grid.toml").read_text(encoding="utf-8")
        grid = tomllib.loads(text).get("grid", {})
    except (OSError, ValueError):
        return None, None
    metric = grid.get("metric") if isinstance(grid.get("metric"), str) else None
    mode = grid.get("mode") if grid.get("mode") in ("max", "min") else None
    if metric and mode is None:
        mode = "min" if "loss" in metric else "max"
    return metric, mode


def pick_metric(columns: list[str], monitor: str) -> tuple[str | None, str]:
    """The column that decides the best trial and whether higher is better.

    ``grid.csv`` puts the ranking metric first after ``trial, status, rank`` and the varied
    (dotted) keys; without a ``rank`` column, the monitor or an AUC column is used.
    """
    skip = ("trial", "status", "rank", "run", "run_dir", "best_epoch", "epochs", "seconds")
    metrics = [c for c in columns if c not in skip and "." not in c and not c.startswith("test_")]
    if "rank" in columns and metrics:
        return metrics[0], "min" if "loss" in metrics[0] else "max"
    for cand in (monitor, f"val_{monitor}", "val_auc", "auc"):
        if cand in metrics:
            return cand, "min" if "loss" in cand else "max"
    for c in metrics:
        if "auc" in c or "acc" in c:
            return c, "max"
    return (metrics[-1], "min" if "loss" in metrics[-1] else "max") if metrics else (None, "max")


class HParamsScreen(BaseScreen):
    MODE = "hparams"
    CSS_PATH = "hparams.tcss"
    AUTO_FOCUS = "#grid"
    BINDINGS = [
        Binding(
            "s",
            "sort_next",
            "Sort",
            id="hparams.sort",
            tooltip="Sort the trials by the next column",
        ),
        Binding("v", "reverse", "Reverse", id="hparams.reverse", tooltip="Reverse the sort order"),
        Binding(
            "r", "reload", "Reload", id="hparams.reload", tooltip="Read the grid's results again"
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        self.sort_column: str | None = None
        self.sort_reverse = True
        self.best_metric: str | None = None
        self.best_mode = "max"
        self._stamp: tuple | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="body"):
            yield Static("", id="grid-title")
            yield DataTable(id="grid", zebra_stripes=True, cursor_type="row")

    def on_mount(self) -> None:
        self.action_reload()
        self.set_interval(POLL_SECONDS, self._poll)

    def on_screen_resume(self) -> None:
        self.action_reload()
        self.update_status()

    def _poll(self) -> None:
        if self.is_current:
            self.action_reload(only_if_changed=True)

    def action_reload(self, only_if_changed: bool = False) -> None:
        path = find_grid_csv(self.mapp.runs_dir, self.mapp.grid_dir)
        stamp = None
        if path is not None:
            st = path.stat()
            stamp = (str(path), st.st_mtime_ns, st.st_size)
        if only_if_changed and stamp == self._stamp:
            return
        self._stamp = stamp
        self.path = path
        if path is None:
            self.columns, self.rows = [], []
        else:
            try:
                with open(path, newline="", encoding="utf-8") as f:
                    reader = csv.DictReader(f)
                    self.columns = list(reader.fieldnames or [])
                    self.rows = [r for r in reader if any(r.values())]
            except OSError as e:
                self.columns, self.rows = [], []
                self.notify(f"cannot read {path}: {e}", severity="error")
        self.best_metric, self.best_mode = pick_metric(self.columns, self.mapp.config.train.monitor)
        if path is not None:
            metric, mode = grid_metric(path)
            if metric in self.columns:
                self.best_metric, self.best_mode = metric, mode or self.best_mode
        if self.sort_column not in self.columns:
            self.sort_column = self.best_metric
            self.sort_reverse = self.best_mode == "max"
        self._draw()

    @property
    def best_row(self) -> dict[str, str] | None:
        ranked = [r for r in self.rows if (r.get("rank") or "").strip() == "1"]
        if ranked:
            return ranked[0]
        m = self.best_metric
        if m is None:
            return None
        scored = [(v, r) for r in self.rows if (v := _number(r.get(m, ""))) is not None]
        if not scored:
            return None
        pick = max if self.best_mode == "max" else min
        return pick(scored, key=lambda t: t[0])[1]

    def sorted_rows(self) -> list[dict[str, str]]:
        col = self.sort_column
        if col is None:
            return list(self.rows)

        def key(r: dict[str, str]):
            v = _number(r.get(col, ""))
            return (0, v, "") if v is not None else (1, 0.0, r.get(col, ""))

        numbered = [r for r in self.rows if _number(r.get(col, "")) is not None]
        other = [r for r in self.rows if _number(r.get(col, "")) is None]
        numbered.sort(key=key, reverse=self.sort_reverse)
        other.sort(key=lambda r: r.get(col, ""))
        return numbered + other

    def _draw(self) -> None:
        table = self.query_one("#grid", DataTable)
        title = self.query_one("#grid-title", Static)
        table.clear(columns=True)
        if self.path is None:
            title.update(
                Text.assemble(
                    ("No hyper-parameter grid yet.\n\n", "bold"),
                    "Start one in another terminal with\n\n    ",
                    ("malaria-tui grid --config configs/grid.toml", "bold"),
                    "\n\nIt writes grid.csv (one row per trial: status, the varied keys and "
                    "the metrics); this screen shows it live.",
                )
            )
            table.display = False
            return
        table.display = True
        best = self.best_row
        done = sum(1 for r in self.rows if r.get("status", "") in ("completed", "early_stopped"))
        running = sum(1 for r in self.rows if r.get("status", "") == "running")
        head = Text()
        head.append(f"{self.path}", style="bold")
        head.append(
            f"   {len(self.rows)} trials, {done} finished"
            + (f", {running} running" if running else "")
        )
        if best is not None and self.best_metric:
            head.append(
                f"   best {self.best_metric} {best.get(self.best_metric)} (trial {best.get('trial', '?')})",
                style="bold green",
            )
        head.append("\n")
        head.append(
            f"sorted by {self.sort_column} {'desc' if self.sort_reverse else 'asc'}  "
            "(s: next column, v: reverse, click a header)",
            style="dim",
        )
        title.update(head)
        table.add_column("", key="__best", width=1)
        rows = self.sorted_rows()
        for c in self.columns:
            label = c + (
                " ▼"
                if c == self.sort_column and self.sort_reverse
                else " ▲"
                if c == self.sort_column
                else ""
            )
            width = max([len(label)] + [len(self._shown(c, r.get(c, "") or "")) for r in rows])
            table.add_column(label, key=c, width=width)
        for r in rows:
            is_best = r is best
            style = "bold green" if is_best else ""
            cells = [Text("★" if is_best else "", style="bold green")]
            for c in self.columns:
                v = r.get(c, "") or ""
                num = _number(v)
                shown = self._shown(c, v)
                if c == "status":
                    st = {
                        "failed": "red",
                        "error": "red",
                        "running": "yellow",
                        "pending": "dim",
                        "interrupted": "yellow",
                    }.get(v, style)
                    cells.append(Text(shown, style=st))
                else:
                    cells.append(
                        Text(shown, style=style, justify="right" if num is not None else "left")
                    )
            table.add_row(*cells)
        if best is not None:
            table.move_cursor(row=rows.index(best))

    @staticmethod
    def _shown(column: str, value: str) -> str:
        num = _number(value)
        return f"{num:.4g}" if num is not None and "." in value and column != "trial" else value

    def action_sort_next(self) -> None:
        if not self.columns:
            return
        i = self.columns.index(self.sort_column) if self.sort_column in self.columns else -1
        self.sort_column = self.columns[(i + 1) % len(self.columns)]
        self._draw()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._draw()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column in self.columns:
            if reverse is None:
                reverse = not self.sort_reverse if column == self.sort_column else True
            self.sort_column, self.sort_reverse = column, reverse
            self._draw()

    @on(DataTable.HeaderSelected, "#grid")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key and key != "__best":
            self.sort_by(key)

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            (f"Sort grid by {c}", "Sort the trials table", lambda c=c: self.sort_by(c))
            for c in self.columns
        ] + [("Reload grid.csv", "Re-read the grid results", self.action_reload)]
