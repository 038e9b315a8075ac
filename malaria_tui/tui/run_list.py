"""One line per run for the Runs screen, the validation curves used to compare two runs, and
the runs other screens open by default."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from malaria_tui.engine.events import TERMINAL_KINDS
from malaria_tui.engine.rundir import RunDir, list_runs, lock_holder


@dataclass
class RunSummary:
    run: RunDir
    date: str = ""
    model: str = "?"
    status: str = "?"
    best: str = ""
    epochs: str = ""
    config_error: str = ""
    val_curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    train_curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run.name


def _date(name: str) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.strptime(name[:15], "%Y%m%d-%H%M%S"))
    except ValueError:
        return ""


def summarize(run: RunDir) -> RunSummary:
    """Everything the Runs screen shows about ``run``, read in one pass over its event log."""
    out = RunSummary(run, date=_date(run.name))
    try:
        cfg = run.load_config()
        out.model = cfg.model.name
        monitor = cfg.train.monitor
    except Exception as e:  # a broken config is shown, not fatal
        out.config_error = str(e)
        monitor = "val_auc"
    last_terminal = None
    epochs_total = 0
    epochs_done = 0
    best = None
    for e in run.events():
        if e.kind == "run_started":
            last_terminal = None
            epochs_total = e.epochs
        elif e.kind in TERMINAL_KINDS:
            last_terminal = e
        elif e.kind == "epoch_end":
            epochs_done = e.epoch + 1
            for k, v in e.val.items():
                if isinstance(v, int | float):
                    key = k.removeprefix("val_")
                    xs, ys = out.val_curves.setdefault(key, ([], []))
                    xs.append(float(e.epoch + 1))
                    ys.append(float(v))
            for k, v in e.train.items():
                if isinstance(v, int | float):
                    xs, ys = out.train_curves.setdefault(k, ([], []))
                    xs.append(float(e.epoch + 1))
                    ys.append(float(v))
        elif e.kind == "run_finished" and e.best:
            best = e.best
    if last_terminal is None:
        out.status = "running" if lock_holder(run.path) else "stale"
    elif last_terminal.kind == "run_finished":
        out.status = last_terminal.status.replace("_", " ")
    else:
        out.status = "failed" if last_terminal.kind == "run_failed" else "interrupted"
    out.epochs = f"{epochs_done}/{epochs_total}" if epochs_total else ""
    try:
        metrics = json.loads((run.eval_dir / "metrics.json").read_text())
        auc = metrics.get("test", {}).get("auc")
        if isinstance(auc, int | float):
            out.best = f"test auc {auc:.3f}"
    except (OSError, ValueError, AttributeError):
        pass
    if not out.best:
        if best and isinstance(best.get("value"), int | float):
            out.best = f"{best.get('monitor', 'best')} {best['value']:.3f}"
        elif best:
            k, v = next(iter(best.items()))
            if isinstance(v, int | float):
                out.best = f"{k} {v:.3f}"
        else:
            key = monitor.removeprefix("val_")
            if key in out.val_curves and out.val_curves[key][1]:
                ys = out.val_curves[key][1]
                out.best = f"{monitor} {max(ys) if 'loss' not in key else min(ys):.3f}"
    return out


def newest_with_model(runs_dir: Path, current: RunDir | None = None) -> RunDir | None:
    """``current`` when it has a best model, else the newest run under ``runs_dir`` with one."""
    runs = list_runs(runs_dir)
    if current is not None:
        runs.append(current)
    for run in reversed(runs):
        if run.best_model.is_file():
            return run
    return None


def newest_with_eval(runs_dir: Path) -> RunDir | None:
    for run in reversed(list_runs(runs_dir)):
        if (run.eval_dir / "metrics.json").is_file() or (
            run.eval_dir / "predictions.csv"
        ).is_file():
            return run
    return None
