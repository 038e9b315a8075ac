"""Shared set-up for the benchmarks: real data, the engine's own loops, wall-clock timing."""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from malaria_tui.engine import config, tfenv

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "malaria" / "cell_images"


def data_source(default_limit: int) -> tuple[str, int]:
    """The shared NIH folder when present (CI and dev machines), else the bundled sample."""
    if SHARED.is_dir():
        return f"folder:{SHARED}", default_limit
    return "sample", 0


def build_loop(cfg, prepared, kind: str):
    from malaria_tui.engine import optim
    from malaria_tui.engine.models.registry import build_model
    from malaria_tui.engine.training.custom_loop import CustomLoop
    from malaria_tui.engine.training.fit_loop import FitLoop

    model = build_model(cfg)
    opt = optim.build_optimizer(cfg.optimizer, prepared.steps_per_epoch, cfg.train.epochs)
    cls = CustomLoop if kind == "custom" else FitLoop
    k = cfg.train.steps_per_execution
    return cls(model, opt, optim.build_loss(cfg.loss), 0.5, steps_per_execution=k)


def time_epoch(loop, dataset, n_images: int) -> float:
    """Images per second of one training epoch."""
    t = time.perf_counter()
    loop.train_epoch(dataset, 0, lambda step, logs: False)
    return n_images / (time.perf_counter() - t)


def predictions(run: Path, split: str) -> list[dict]:
    """A finished run's ``eval/predictions.csv`` rows of one split (path, group, label, prob)."""
    path = Path(run) / "eval" / "predictions.csv"
    if not path.is_file():
        raise SystemExit(f"{Path(sys.argv[0]).stem}: {path} not found (not a finished run?)")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    if not rows:
        raise SystemExit(f"{Path(sys.argv[0]).stem}: {path} has no {split!r} rows")
    return rows


def paired_bootstrap(groups, y, probs: list, boot: int = 1000, seed: int = 0):
    """AUC and accuracy at 0.5 of every model in ``probs`` on resamples of whole patients
    (cells of one patient are not independent); every resample scores all models on the same
    cells, so differences are paired. Returns an array (resamples, models, 2)."""
    import numpy as np

    from malaria_tui.engine.evaluation.measures import auc

    groups, y = np.asarray(groups), np.asarray(y)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        scores = [(auc(y[idx], p[idx]), np.mean((p[idx] >= 0.5) == y[idx])) for p in probs]
        if not np.isnan(scores[0][0]):  # a resample with one class has no AUC
            out.append(scores)
    return np.array(out)


__all__ = [
    "config",
    "tfenv",
    "data_source",
    "build_loop",
    "time_epoch",
    "predictions",
    "paired_bootstrap",
    "REPO",
]
