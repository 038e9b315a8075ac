"""One summary per run directory, for every front end: the Runs screen and ``malaria-tui runs``.

A summary is read in one pass over the run's ``events.jsonl``, plus its ``config.toml`` and, when
the run was scored, ``eval/metrics.json``; nothing here needs TensorFlow. The monitored metric is
always the validation kind (``train.monitor`` ``auc`` is read as ``val_auc``) and its best value
is the best over the epochs, not the last one, with the epoch that reached it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from malaria_tui.engine.config import Config, diff
from malaria_tui.engine.events import TERMINAL_KINDS, EpochEnd, RunFinished, RunStarted
from malaria_tui.engine.rundir import RunDir, list_runs, lock_holder

Curve = tuple[list[float], list[float]]  # (epochs from 1, values)

# Columns of the runs table, in display order; every one is a sort key.
COLUMNS: tuple[str, ...] = (
    "name",
    "date",
    "model",
    "status",
    "epochs",
    "monitor",
    "best",
    "best_epoch",
    "test_acc",
    "test_auc",
    "changes",
)
# The order each column sorts in by default: best first for metrics, newest first for dates,
# most epochs first, A-Z for text (``reverse`` flips it). Missing values always go last.
DESCENDING = frozenset({"date", "epochs", "best", "test_acc", "test_auc"})
STATUS_ORDER = ("running", "completed", "early_stopped", "interrupted", "failed", "stale")
SORT_ALIASES = {"test_accuracy": "test_acc", "run": "name", "started": "date", "at": "best_epoch"}


def default_mode(metric: str) -> str:
    """Which way is better when a config does not say: lower for losses and error counts."""
    return "min" if metric.endswith(("loss", "fp", "fn")) else "max"


@dataclass
class RunSummary:
    """What the runs table shows about one run (see :func:`summarize`)."""

    run: RunDir
    date: str = ""  # "YYYY-mm-dd HH:MM" (local time), "" when unknown
    model: str = "?"
    status: str = "stale"  # one of STATUS_ORDER
    epochs_done: int = 0
    epochs_total: int = 0
    monitor: str = "val_auc"  # the monitored metric, always a val_* one
    mode: str = "max"  # "max" | "min": which way is better
    best: float | None = None  # the best monitored value over the epochs
    best_epoch: int | None = None  # the epoch (from 1) that reached it
    test_accuracy: float | None = None  # eval/metrics.json "test", when the run was scored
    test_auc: float | None = None
    changes: dict[str, Any] = field(default_factory=dict)  # keys that differ from the defaults
    config_error: str = ""
    val_curves: dict[str, Curve] = field(default_factory=dict)  # "auc" -> per-epoch values
    train_curves: dict[str, Curve] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def metric(self) -> str:
        """The monitored metric's key in :attr:`val_curves` (``val_auc`` -> ``auc``)."""
        return self.monitor.removeprefix("val_")

    @property
    def short_name(self) -> str:
        """The name without its ``YYYYmmdd-HHMMSS-`` stamp (shown beside the date)."""
        return (
            self.name[16:] if _stamp(self.name) is not None and len(self.name) > 16 else self.name
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the table's values (the curves are left out)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "date": self.date,
            "model": self.model,
            "status": self.status,
            "epochs_done": self.epochs_done,
            "epochs_total": self.epochs_total,
            "monitor": self.monitor,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "test_accuracy": self.test_accuracy,
            "test_auc": self.test_auc,
            "changes": dict(self.changes),
            "config_error": self.config_error,
        }


def _stamp(name: str) -> time.struct_time | None:
    try:
        return time.strptime(name[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return None


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _curve(points: dict[int, float]) -> Curve:
    epochs = sorted(points)
    return [float(e + 1) for e in epochs], [points[e] for e in epochs]


def summarize(run: RunDir, defaults: Config | None = None) -> RunSummary:
    """Everything the runs table shows about ``run``; a broken config or event log is reported
    in the summary (``config_error``, status ``stale``), never raised."""
    out = RunSummary(run)
    stamp = _stamp(run.name)
    if stamp is not None:
        out.date = time.strftime("%Y-%m-%d %H:%M", stamp)
    try:
        cfg = run.load_config()
    except Exception as err:  # a broken config is shown, not fatal
        out.config_error = str(err)
        cfg = None
    if cfg is not None:
        out.model = cfg.model.name
        out.monitor = cfg.train.monitor
        out.mode = cfg.train.monitor_mode
        changes = diff(defaults or Config(), cfg)
        # "auto" settings are saved as what they resolved to: that is no choice of the user's
        out.changes = {k: b for k, (a, b) in changes.items() if k != "name" and a != "auto"}
    else:
        out.mode = default_mode(out.monitor)
    if not out.monitor.startswith("val_"):
        out.monitor = f"val_{out.monitor}"

    val: dict[str, dict[int, float]] = {}
    train: dict[str, dict[int, float]] = {}
    last_terminal: str | None = None
    finished_best: float | None = None
    first_time: float | None = None
    for ev in run.events():
        if first_time is None:
            first_time = ev.time
        if isinstance(ev, RunStarted):
            last_terminal = None
            out.epochs_total = ev.epochs
            if isinstance(ev.config.get("model"), dict) and out.model == "?":
                out.model = str(ev.config["model"].get("name", "?"))
            for curves in (val, train):  # a resume redoes the epochs from its start on
                for points in curves.values():
                    for epoch in [k for k in points if k >= ev.start_epoch]:
                        del points[epoch]
        elif ev.kind in TERMINAL_KINDS:
            last_terminal = ev.status if isinstance(ev, RunFinished) else ev.kind
            if isinstance(ev, RunFinished):
                finished_best = _number(ev.best.get("value")) if ev.best else None
        elif isinstance(ev, EpochEnd):
            for k, v in ev.val.items():
                if (f := _number(v)) is not None:
                    val.setdefault(k.removeprefix("val_"), {})[ev.epoch] = f
            for k, v in ev.train.items():
                if (f := _number(v)) is not None:
                    train.setdefault(k, {})[ev.epoch] = f
    out.val_curves = {k: _curve(p) for k, p in val.items()}
    out.train_curves = {k: _curve(p) for k, p in train.items()}
    done = [k for curves in (val, train) for points in curves.values() for k in points]
    out.epochs_done = max(done) + 1 if done else 0
    if not out.date and first_time is not None:
        out.date = time.strftime("%Y-%m-%d %H:%M", time.localtime(first_time))

    if last_terminal is None:
        out.status = "running" if lock_holder(run.path) else "stale"
    elif last_terminal in ("run_failed", "run_interrupted"):
        out.status = "failed" if last_terminal == "run_failed" else "interrupted"
    else:
        out.status = last_terminal

    points = val.get(out.metric, {})
    if points:
        pick = max if out.mode == "max" else min
        epoch = pick(sorted(points), key=lambda k: points[k])
        out.best, out.best_epoch = points[epoch], epoch + 1
    elif finished_best is not None:
        out.best = finished_best

    try:
        metrics = json.loads((run.eval_dir / "metrics.json").read_text(encoding="utf-8"))
        test = metrics.get("test", {}) if isinstance(metrics, dict) else {}
        if isinstance(test, dict):
            out.test_accuracy = _number(test.get("accuracy"))
            out.test_auc = _number(test.get("auc"))
    except (OSError, ValueError):
        pass
    return out


def runs_under(runs_dir: str | os.PathLike[str]) -> list[RunDir]:
    """The run directories of ``runs_dir``, oldest first; a grid directory's trials when it is
    one (``GRID_DIR/trials/*``)."""
    runs = list_runs(runs_dir)
    trials = Path(runs_dir).expanduser() / "trials"
    if not runs and trials.is_dir():
        runs = list_runs(trials)
    return runs


def summarize_all(runs: Iterable[RunDir]) -> list[RunSummary]:
    defaults = Config()
    return [summarize(r, defaults) for r in runs]


# --- sorting -------------------------------------------------------------------------------------


def sort_key_name(key: str) -> str | None:
    """The column ``key`` names (aliases such as ``test_accuracy`` included), or None."""
    key = SORT_ALIASES.get(key, key)
    return key if key in COLUMNS else None


def _value(s: RunSummary, key: str) -> Any:
    """What column ``key`` sorts on, oriented so that ascending is its natural order reversed
    for DESCENDING columns; None when the run has no value."""
    if key == "name":  # by the name given to the run; its stamp orders the same names
        return (s.short_name.lower(), s.name)
    if key == "date":  # the name's stamp has the seconds the date leaves out
        return (s.date, s.name) if s.date else None
    if key == "model":
        return s.model
    if key == "status":
        return STATUS_ORDER.index(s.status) if s.status in STATUS_ORDER else len(STATUS_ORDER)
    if key == "epochs":
        return s.epochs_done if s.epochs_total or s.epochs_done else None
    if key == "monitor":
        return s.monitor
    if key == "best":
        if s.best is None:
            return None
        return s.best if s.mode == "max" else -s.best  # "better" is larger either way
    if key == "best_epoch":
        return s.best_epoch
    if key == "test_acc":
        return s.test_accuracy
    if key == "test_auc":
        return s.test_auc
    if key == "changes":
        return format_changes(s.changes) or None
    raise KeyError(key)


def sort_runs(summaries: Sequence[RunSummary], key: str, reverse: bool = False) -> list[RunSummary]:
    """``summaries`` by column ``key`` in its natural order (:data:`DESCENDING`), flipped by
    ``reverse``; runs without a value go last either way, ties keep name order."""
    column = sort_key_name(key)
    if column is None:
        raise KeyError(key)
    ordered = sorted(summaries, key=lambda s: s.name)
    present = [s for s in ordered if _value(s, column) is not None]
    missing = [s for s in ordered if _value(s, column) is None]
    descending = (column in DESCENDING) != reverse
    present.sort(key=lambda s: _value(s, column), reverse=descending)
    return present + missing


# --- shown values --------------------------------------------------------------------------------


def format_value(v: Any) -> str:
    """A config value as written with ``--set`` (0.001, not 0.0010)."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return v if isinstance(v, str) else json.dumps(v)


def format_changes(changes: dict[str, Any], short: bool = False) -> str:
    """``key=value`` pairs, space separated; ``short`` keeps each key's last part only."""
    return " ".join(
        f"{k.rsplit('.', 1)[-1] if short else k}={format_value(v)}" for k, v in changes.items()
    )


def matches(s: RunSummary, words: str) -> bool:
    """Every word of ``words`` (case-insensitive) is in the run's name, model or status."""
    hay = f"{s.name} {s.model} {s.status.replace('_', ' ')} {s.status}".lower()
    return all(w in hay for w in words.lower().split())
