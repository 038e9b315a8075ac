"""HParams: start, stop and resume a hyper-parameter grid; its ``grid.csv`` as a sortable table,
best trial highlighted.

The field at the top takes a grid config (a TOML file with ``[grid]``, e.g.
``configs/grid.toml``), or lists of values for a few keys over the app's current config
(``model.dropout=0.2,0.4 optimizer.learning_rate=0.001,0.003``; a single value is a plain
override, ``grid.sample=4`` a ``[grid]`` setting), or a grid folder to resume. The grid trains
the way the app trains a grid (the training controller, in a worker thread of the app; its
trials also show on the Train screen); stopping saves a resumable checkpoint and ``u`` resumes
the grid shown. ``malaria-tui grid`` opens the app here on a grid it trains; a grid trained
elsewhere, headless or by another window, shows the same way. This screen re-reads
``grid.csv`` while it is shown, so trials appear as they progress and finish.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label, Static

from malaria_tui.engine import rundir
from malaria_tui.engine.errors import ConfigError, one_line
from malaria_tui.tui.screens.base import BaseScreen, PaletteCommand
from malaria_tui.tui.widgets.export_table import ExportTable

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


GRID_TOML, GRID_LOCK = "grid.toml", "grid.lock"  # engine.grid.search's, without importing it
PLACEHOLDER = "configs/grid.toml | model.dropout=0.2,0.4 optimizer.learning_rate=0.001,0.003"


def _literal(text: str) -> str:
    """``text`` as a TOML literal: itself when it is one (0.2, true, "x"), else quoted."""
    import tomllib

    try:
        tomllib.loads(f"v = {text}")
        return text
    except tomllib.TOMLDecodeError:
        return json.dumps(text)


def grid_request(text: str, base: Any) -> tuple[Path | None, Any]:
    """What the grid field asks for: ``(grid folder, None)`` to resume one, or ``(None, spec)``
    for a new grid, validated (every trial's config built); a ConfigError says what is wrong,
    in one line.

    Words: one grid config file (TOML with [grid]) or one grid folder; ``KEY=V1,V2`` (or
    ``KEY=[V1, V2]``) the values a key takes; ``KEY=V`` a plain override of the base config;
    ``grid.KEY=V`` a [grid] setting (sample, metric, mode, seed, max_trials). Without a file the
    base config is ``base`` (the app's)."""
    from malaria_tui.engine.grid import spec as gspec

    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ConfigError(f"grid: {e}") from None
    if not words:
        raise ConfigError(
            "grid: type a grid config (configs/grid.toml), values such as "
            "model.dropout=0.2,0.4, or a grid folder to resume"
        )
    paths = [w for w in words if "=" not in w]
    if len(paths) > 1:
        raise ConfigError(f"grid: one config file or grid folder, not {len(paths)}: {paths}")
    overrides: list[str] = []
    for word in words:
        if "=" not in word:
            continue
        key, raw = (part.strip() for part in word.split("=", 1))
        if not key or not raw:
            raise ConfigError(f"grid: {word!r}: expected KEY=VALUE or KEY=V1,V2")
        if key.startswith("grid."):
            overrides.append(f"{key}={raw}")
        elif raw.startswith("[") or "," in raw:
            items = (
                raw
                if raw.startswith("[")
                else f"[{', '.join(_literal(v.strip()) for v in raw.split(',') if v.strip())}]"
            )
            overrides.append(f"grid.values.{key}={items}")
        else:
            overrides.append(f"{key}={raw}")
    if paths:
        path = Path(paths[0]).expanduser()
        if path.is_dir():
            if not (path / GRID_TOML).is_file():
                raise ConfigError(f"{path}: not a grid folder (it has no {GRID_TOML})")
            if overrides:
                raise ConfigError(
                    f"{path}: a grid folder resumes as it was; values apply to a new grid only"
                )
            gspec.read(path / GRID_TOML)  # a damaged grid.toml says so now
            return path.resolve(), None
        if not path.exists():
            raise ConfigError(f"{path}: no such grid config or grid folder")
        return None, gspec.load(path, overrides)
    if not any(o.startswith("grid.values.") for o in overrides):
        raise ConfigError(
            "grid: list two or more values for a key, e.g. model.dropout=0.2,0.4 "
            "(a single value is a plain override)"
        )
    return None, gspec.from_tree(base.to_dict(), overrides, where="grid")


class HParamsScreen(BaseScreen):
    MODE = "hparams"
    CSS_PATH = "hparams.tcss"
    AUTO_FOCUS = "#grid"
    BINDINGS = [
        Binding(
            "n",
            "new_grid",
            "New grid",
            id="hparams.new",
            tooltip="Type a grid config, KEY=V1,V2 values or a grid folder; enter starts it",
        ),
        Binding(
            "ctrl+x",
            "stop_grid",
            "Stop",
            id="hparams.stop",
            tooltip="Stop the grid at the next step with a resumable checkpoint",
        ),
        Binding(
            "u",
            "resume_grid",
            "Resume",
            id="hparams.resume",
            tooltip="Resume the grid shown: finished trials are kept, an interrupted one goes on",
        ),
        Binding(
            "s",
            "sort_next",
            "Sort",
            id="hparams.sort",
            tooltip="Sort the trials by the next column",
        ),
        Binding(
            "v",
            "reverse",
            "Reverse",
            id="hparams.reverse",
            tooltip="Reverse the sort order",
            show=False,
        ),
        Binding(
            "r",
            "reload",
            "Reload",
            id="hparams.reload",
            tooltip="Read the grid's results again",
            show=False,
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
        self.launched: Path | None = None  # the grid this screen started or resumed
        self.message = ""

    def compose_body(self) -> ComposeResult:
        with Vertical(id="body"):
            with Horizontal(id="grid-form"):
                yield Label("grid", classes="field-label")
                yield Input(placeholder=PLACEHOLDER, id="grid-spec", compact=True)
            yield Static("", id="grid-message", markup=False)
            yield Static("", id="grid-title")
            yield ExportTable(id="grid", zebra_stripes=True, cursor_type="row")

    def on_mount(self) -> None:
        self.action_reload()
        self.set_interval(POLL_SECONDS, self._poll)
        self._say(self._state_text())

    def on_screen_resume(self) -> None:
        self.action_reload()
        self.update_status()
        self._settle()

    def on_run_done(self) -> None:
        self.action_reload()
        self._settle()
        self.refresh_bindings()

    def on_tf_ready(self) -> None:
        self._say(self._state_text())
        self.refresh_bindings()

    def _poll(self) -> None:
        if self.is_current:
            self.action_reload(only_if_changed=True)

    # --- starting, stopping and resuming a grid ------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_grid":
            return True if self.mapp.training and self.mapp.session.status != "stopping" else None
        if action == "resume_grid":
            return None if self.mapp.training or self.path is None else True
        return super().check_action(action, parameters)

    def _say(self, text: str, error: bool = False) -> None:
        self.message = text
        w = self.query_one("#grid-message", Static)
        w.update(text)
        w.tooltip = text or None  # the whole message, when one line cuts it
        w.set_class(error, "-error")

    def _state_text(self) -> str:
        if self.mapp.training:
            return "a grid or run is training in this window; ctrl+x stops it at a checkpoint"
        if self.mapp.tf_state == "loading":
            return "TensorFlow is loading; a grid can start once it is ready"
        return "n: new grid (a config, KEY=V1,V2 values or a grid folder), enter starts it"

    def _settle(self) -> None:
        """Say how the grid this screen launched ended, once it has."""
        ctl = self.mapp.controller
        if self.launched is None or self.mapp.training:
            return
        launched, self.launched = self.launched, None
        if ctl.grid_error is not None:
            self._say(f"grid stopped: {one_line(ctl.grid_error)}", error=True)
            return
        result = ctl.grid_result
        if result is not None and Path(result.path) == launched:
            if result.status == "interrupted":
                self._say(f"grid interrupted at a checkpoint; u resumes it ({launched.name})")
            else:
                best = (result.best or {}).get("trial")
                self._say(f"grid completed{f', best trial {best}' if best else ''}")

    def action_new_grid(self) -> None:
        self.query_one("#grid-spec", Input).focus()

    @on(Input.Submitted, "#grid-spec")
    def _submitted(self, event: Input.Submitted) -> None:
        self.start_grid(event.value)

    def start_grid(self, text: str) -> bool:
        """Validate the grid field's ``text`` and start (or resume) that grid; False, with the
        reason in one line under the field, when it cannot."""
        try:
            folder, spec = grid_request(text, self.mapp.config)
        except ConfigError as e:
            self._say(one_line(e), error=True)
            return False
        except Exception as e:  # a damaged grid.toml, an unreadable file
            self._say(one_line(e), error=True)
            return False
        why = self._why_not()
        if why is None and folder is not None:
            why = self._busy(folder)
        if why:
            self._say(f"cannot start the grid: {why}", error=True)
            return False
        self.action_leave_field()
        if folder is not None:
            self._say(f"resuming {folder}…")
            self._launch(folder, None)
        else:
            self._say(f"creating the grid: {len(spec.trials)} trials…")
            self._launch(None, spec)
        return True

    def _why_not(self) -> str | None:
        return self.mapp.controller.why_not_start()

    @staticmethod
    def _busy(folder: Path) -> str | None:
        holder = rundir.lock_holder(folder, GRID_LOCK)
        if holder and holder != os.getpid():
            return f"{folder.name} is being run by process {holder}"
        return None

    @work(thread=True, exclusive=True, group="hparams-launch", exit_on_error=False)
    def _launch(self, folder: Path | None, spec: Any) -> None:
        """Make the grid folder (TensorBoard's experiment file needs TensorFlow, kept off the
        UI thread) or read the one to resume, then hand it to the training controller."""
        from malaria_tui.engine.grid import search

        try:
            if folder is None:
                path, resumed = search.create_grid_dir(self.mapp.runs_dir, spec), False
            else:
                path, spec = search.open_grid(folder)
                resumed = True
        except Exception as e:
            self.app.call_from_thread(self._say, f"cannot start the grid: {one_line(e)}", True)
            return
        self.app.call_from_thread(self._launched, path, spec, resumed)

    def _launched(self, path: Path, spec: Any, resumed: bool) -> None:
        ctl = self.mapp.controller
        why = self._why_not()
        if why is None:
            ctl.queue_grid(spec, path, resumed)
            ctl.start_queued_grid()
            if not ctl.training:
                why = "this window's trainer is already in use; restart the app or use malaria-tui grid"
        if why:
            self._say(f"cannot start the grid: {why}", error=True)
            return
        self.launched = path
        self.mapp.grid_dir = path
        self._stamp = None
        self.action_reload()
        what = "resumed" if resumed else "started"
        self._say(f"grid {what}: {path.name}, {len(spec.trials)} trials; ctrl+x stops it")
        self.refresh_bindings()

    def action_stop_grid(self) -> None:
        if self.mapp.controller.stop():
            self._say("stopping: the trial in progress saves a resumable checkpoint…")
        self.refresh_bindings()

    def action_resume_grid(self) -> None:
        if self.path is None:
            self._say("no grid to resume: n starts one", error=True)
            return
        folder = self.path.parent
        unfinished = [
            r for r in self.rows if r.get("status") not in ("completed", "early_stopped", "failed")
        ]
        if not unfinished and any((r.get("test_auc") or "").strip() for r in self.rows):
            self._say(f"{folder.name} is complete: every trial finished, the best one tested")
            return
        self.start_grid(shlex.quote(str(folder)))

    # --- the table ---------------------------------------------------------------------------

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
        self.refresh_bindings()

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
        table = self.query_one("#grid", ExportTable)
        title = self.query_one("#grid-title", Static)
        table.clear(columns=True)
        if self.path is None:
            title.update(
                Text.assemble(
                    ("No hyper-parameter grid yet.\n\n", "bold"),
                    "Press n and type a grid config (",
                    ("configs/grid.toml", "bold"),
                    "), or values for a few keys over the current config (",
                    ("model.dropout=0.2,0.4 optimizer.learning_rate=0.001,0.003", "bold"),
                    "), then enter. Or, in another terminal:\n\n    ",
                    ("malaria-tui grid --config configs/grid.toml", "bold"),
                    "\n\nA grid writes grid.csv (one row per trial: status, the varied keys and "
                    "the metrics); this screen shows it live.",
                )
            )
            table.display = False
            return
        table.display = True
        table.export_dir = self.path.parent
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
        out: list[PaletteCommand] = [
            ("New grid", "A grid config, KEY=V1,V2 values or a grid folder", self.action_new_grid)
        ]
        if self.check_action("stop_grid", ()):
            out.append(("Stop the grid", "At a resumable checkpoint", self.action_stop_grid))
        if self.check_action("resume_grid", ()):
            out.append(
                ("Resume the grid shown", "Finished trials are kept", self.action_resume_grid)
            )
        out += [
            (f"Sort grid by {c}", "Sort the trials table", lambda c=c: self.sort_by(c))
            for c in self.columns
        ]
        return out + [("Reload grid.csv", "Re-read the grid results", self.action_reload)]
