"""The runs other screens open by default (Evaluate: the newest scored run, Predict: the newest
with a model). The per-run summary the Runs screen shows is the engine's
(:mod:`malaria_tui.engine.run_summary`), shared with ``malaria-tui runs``."""

from __future__ import annotations

from pathlib import Path

from malaria_tui.engine.rundir import RunDir, list_runs


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
