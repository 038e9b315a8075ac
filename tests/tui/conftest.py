"""Fixtures for the TUI tests: run directories written through the engine's own writers."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from malaria_tui.engine import events as ev
from malaria_tui.engine import rundir
from malaria_tui.engine.config import Config
from malaria_tui.engine.data.records import sample_root


def sample_paths(n: int, seed: int = 0) -> list[tuple[str, int, str]]:
    """(path relative to the sample root, label, group) of ``n`` real bundled cells."""
    with open(sample_root() / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rng = random.Random(seed)
    rng.shuffle(rows)
    return [(r["path"], int(r["label"] == "Parasitized"), r["group"]) for r in rows[:n]]


def write_run(
    runs_dir: Path,
    name: str = "demo",
    *,
    epochs: int = 3,
    steps: int = 5,
    finished: bool = True,
    with_eval: bool = True,
    model: str = "lenet",
    lr: float = 2e-3,
    seed: int = 0,
    dir_name: str | None = None,
) -> rundir.RunDir:
    """A run directory as the trainer leaves it: config, events.jsonl and eval/ files.

    ``dir_name`` fixes the directory name (snapshot tests need stable names).
    """
    cfg = Config.model_validate(
        {
            "name": name,
            "model": {"name": model},
            "optimizer": {"learning_rate": lr},
            "train": {"epochs": epochs},
        }
    )
    if dir_name:
        path = runs_dir / dir_name
        path.mkdir(parents=True)
        (path / rundir.CONFIG).write_text(cfg.to_toml())
        run = rundir.RunDir(path.resolve())
    else:
        run = rundir.create(runs_dir, name, cfg.to_toml())
    w = rundir.EventWriter(run.events_path)
    t = 1_700_000_000.0 + seed * 1000
    w.write(
        ev.RunStarted(
            run_dir=str(run.path),
            config=cfg.to_dict(),
            n_train=96,
            n_val=16,
            n_test=16,
            steps_per_epoch=steps,
            epochs=epochs,
            time=t,
        )
    )
    rng = random.Random(seed)
    gs = 0
    for e in range(epochs):
        for s in range(1, steps + 1):
            gs += 1
            t += 0.5
            loss = 0.7 / (1 + 0.3 * gs) + rng.random() * 0.02
            w.write(
                ev.BatchEnd(
                    epoch=e,
                    step=s,
                    steps=steps,
                    metrics={"loss": loss, "accuracy": 1 - loss},
                    images_per_sec=128.0,
                    global_step=gs,
                    time=t,
                )
            )
        val = {
            "val_loss": 0.6 / (1 + e),
            "val_accuracy": 0.7 + 0.08 * e,
            "val_auc": 0.75 + 0.07 * e,
        }
        w.write(
            ev.EpochEnd(
                epoch=e,
                epochs=epochs,
                train={"loss": 0.65 / (1 + e), "accuracy": 0.68 + 0.08 * e, "auc": 0.74 + 0.07 * e},
                val=val,
                seconds=2.5,
                images_per_sec=128.0,
                time=t,
            )
        )
        w.write(
            ev.CheckpointSaved(
                epoch=e,
                step=steps,
                path=str(run.checkpoints / "best.keras"),
                role="best",
                monitor="val_auc",
                value=val["val_auc"],
                time=t,
            )
        )
    if finished:
        w.write(
            ev.EvaluationDone(split="test", metrics={"accuracy": 0.875, "auc": 0.93}, time=t + 1)
        )
        w.write(
            ev.RunFinished(
                status="completed",
                epochs_done=epochs,
                best={"monitor": "val_auc", "value": 0.75 + 0.07 * (epochs - 1)},
                time=t + 2,
            )
        )
    w.close()
    if with_eval:
        write_eval(run, seed=seed)
    return run


def write_eval(run: rundir.RunDir, n: int = 40, seed: int = 0) -> None:
    d = run.eval_dir
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    preds = []
    for path, label, group in sample_paths(n, seed):
        p = min(0.99, max(0.01, rng.gauss(0.75 if label else 0.25, 0.2)))
        preds.append((str(sample_root() / path), label, round(p, 4), group))
    with open(d / "predictions.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["path", "label", "prob", "group"])
        wr.writerows(preds)
    import numpy as np

    from malaria_tui.engine.evaluation.eval_dir import roc_curve
    from malaria_tui.engine.evaluation.measures import confusion as at_threshold

    labels = np.array([p[1] for p in preds])
    probs = np.array([p[2] for p in preds])
    fpr, tpr = roc_curve(labels, probs)
    with open(d / "roc.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["fpr", "tpr", "threshold"])
        for a, b in zip(fpr, tpr, strict=True):
            wr.writerow([a, b, 0.5])
    at = at_threshold(labels, probs, 0.5)
    metrics = {
        "test": {
            "accuracy": at.accuracy,
            "precision": at.ppv,
            "recall": at.sensitivity,
            "specificity": at.specificity,
            "auc": float(np.trapezoid(tpr, fpr)),
            "tp": at.tp,
            "tn": at.tn,
            "fp": at.fp,
            "fn": at.fn,
            "n": at.n,
            "threshold": 0.5,
        },
        "thresholds": {"default": 0.5, "sensitivity_target": 0.31, "youden": 0.47},
    }
    (d / "metrics.json").write_text(json.dumps(metrics))
    with open(d / "confusion.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["", "pred_Uninfected", "pred_Parasitized"])
        wr.writerow(["Uninfected", at.tn, at.fp])
        wr.writerow(["Parasitized", at.fn, at.tp])


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d


@pytest.fixture
def finished_run(runs_dir: Path) -> rundir.RunDir:
    return write_run(runs_dir, "demo")
