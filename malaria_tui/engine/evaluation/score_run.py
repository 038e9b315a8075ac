"""Scoring a finished (or interrupted) run's best model: on its own test split or on new data."""

from __future__ import annotations

import json

import numpy as np

from malaria_tui.engine import rundir
from malaria_tui.engine.errors import RunDirError
from malaria_tui.engine.evaluation import measures


def load_best(run: rundir.RunDir):
    import keras

    from malaria_tui.engine.tfenv import tf

    tf()
    import malaria_tui.engine.models.layers  # noqa: F401
    import malaria_tui.engine.models.lenet  # noqa: F401
    import malaria_tui.engine.training.keras_metrics  # noqa: F401 - registers custom objects

    if not run.best_model.exists():
        raise RunDirError(
            f"{run.path}: has no best model yet (no epoch finished); resume it or wait"
        )
    return keras.saving.load_model(run.best_model, safe_mode=True, compile=False)


def run_thresholds(run: rundir.RunDir) -> dict:
    try:
        return json.loads((run.eval_dir / "metrics.json").read_text())["thresholds"]
    except (OSError, ValueError, KeyError):
        return {}


def evaluate_run(path, data: str | None = None, threshold: float | None = None) -> dict:
    """Metrics of the run's best model at ``threshold`` (default 0.5) and at the run's chosen ones."""
    from malaria_tui.engine.data import pipeline

    run = rundir.open_run(path)
    cfg = run.load_config()
    model = load_best(run)
    if data:
        cfg = cfg.model_copy(
            update={"data": cfg.data.model_copy(update={"source": data, "limit": 0})}
        )
        prepared = pipeline.prepare_all(cfg)
        split = "all"
    else:
        prepared = pipeline.prepare(cfg)
        split = "test"
    y, p = measures.predict(model, prepared.eval_dataset(split), cfg.eval.tta)
    chosen = run_thresholds(run)
    th = cfg.eval.threshold if threshold is None else threshold
    out = measures.binary_metrics(y, p, th)
    out["run"] = str(run.path)
    out["data"] = data or f"{cfg.data.source} (test split)"
    out["at"] = {
        name: measures.binary_metrics(y, p, chosen[name])
        for name in ("sensitivity_target", "youden")
        if name in chosen
    }
    out["thresholds"] = chosen
    if prepared.split_records:
        groups = [r.group for r in prepared.split_records[split]]
        out["patients"] = measures.patient_level(groups, y, p, th)
    out["positive_rate"] = float(np.mean(p >= th)) if len(p) else 0.0
    return out
