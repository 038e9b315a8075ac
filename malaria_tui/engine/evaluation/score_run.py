"""A model scored on a run's data: the end-of-run evaluation, and ``malaria-tui evaluate`` of a
run's best model on its own test split or on new data.

The model runs here (with test-time augmentation when ``eval.tta`` asks for it); the numbers
come from :mod:`~malaria_tui.engine.evaluation.measures` only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from malaria_tui.engine import rundir
from malaria_tui.engine.config import EvalConfig
from malaria_tui.engine.errors import RunDirError
from malaria_tui.engine.evaluation import measures
from malaria_tui.engine.evaluation.eval_dir import METRICS, PredictionRow
from malaria_tui.engine.models.loading import load_keras
from malaria_tui.engine.models.tta import dihedral_mean
from malaria_tui.engine.tfenv import KerasModel

if TYPE_CHECKING:
    from malaria_tui.engine.data.pipeline import Prepared


def load_best(run: rundir.RunDir) -> KerasModel:
    if not run.best_model.exists():
        raise RunDirError(
            f"{run.path}: has no best model yet (no epoch finished); resume it or wait"
        )
    return load_keras(run.best_model)


def run_thresholds(run: rundir.RunDir) -> dict[str, float]:
    try:
        return json.loads((run.eval_dir / METRICS).read_text())["thresholds"]
    except (OSError, ValueError, KeyError):
        return {}


def predict(
    model: KerasModel, dataset: Iterable[Any], tta: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities for an unshuffled evaluation dataset (optionally with TTA)."""

    def probabilities(x: Any) -> Any:
        return model(x, training=False)

    ys, ps = [], []
    for x, y in dataset:
        ps.append(dihedral_mean(probabilities, x) if tta else np.asarray(probabilities(x)).ravel())
        ys.append(np.asarray(y).ravel())
    if not ys:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(ys).round().astype(int), np.concatenate(ps)


def evaluate_prepared(
    model: KerasModel, prepared: Prepared, eval_cfg: EvalConfig, test: bool = True
) -> tuple[dict[str, Any], measures.RocPoints, list[PredictionRow]]:
    """The full end-of-run evaluation: thresholds from val, scores on test at each of them.

    ``test=False`` never reads the test split: val metrics, thresholds, val ROC and predictions.
    """
    y_val, p_val = predict(model, prepared.eval_dataset("val"), eval_cfg.tta)
    th = measures.choose_thresholds(y_val, p_val, eval_cfg.target_sensitivity, eval_cfg.threshold)
    result: dict[str, Any] = {
        "split": "test" if test else "val",
        "tta": eval_cfg.tta,
        "thresholds": th,
        "val": measures.binary_metrics(y_val, p_val, th["default"]),
    }
    scored = [("val", y_val, p_val)]
    if prepared.overlay is not None:
        result["label_overrides"] = prepared.overlay.to_dict()  # the labels it learned from
    if test:
        y_test, p_test = predict(model, prepared.eval_dataset("test"), eval_cfg.tta)
        scored.append(("test", y_test, p_test))
        result |= {
            "test": measures.binary_metrics(y_test, p_test, th["default"]),
            "test_at_target": measures.binary_metrics(y_test, p_test, th["sensitivity_target"]),
            "test_at_youden": measures.binary_metrics(y_test, p_test, th["youden"]),
        }
        if reviewed := on_reviewed_labels(prepared, "test", p_test, th["default"], th):
            result["test_reviewed"] = reviewed  # beside "test", which keeps the original labels
    preds: list[PredictionRow] = []
    for split, ys, ps in scored:
        recs = prepared.split_records[split] if prepared.split_records else None
        for i, (yi, pi) in enumerate(zip(ys, ps, strict=True)):
            path, group = (recs[i].path, recs[i].group) if recs else (f"tfds:{split}:{i}", "")
            preds.append((split, path, group, int(yi), float(pi)))
    if test and prepared.split_records:
        groups = [r.group for r in prepared.split_records["test"]]
        result["patients"] = measures.patient_level(groups, y_test, p_test, th["default"])
    return result, measures.roc_points(*scored[-1][1:]), preds


def split_summary(result: dict[str, Any], split: str) -> dict[str, Any]:
    """What the ``evaluation_done`` event carries for ``split``: its metrics at the default
    threshold, the thresholds chosen on val, and (for test) the metrics at each of them."""
    out = result[split] | {"thresholds": result["thresholds"]}
    if split == "test":
        at = {"sensitivity_target": "test_at_target", "youden": "test_at_youden"}
        out["at"] = {name: result[key] for name, key in at.items() if key in result}
        if "test_reviewed" in result:
            out["reviewed"] = result["test_reviewed"]
    return out


def on_reviewed_labels(
    prepared: Prepared, split: str, p: np.ndarray, threshold: float, chosen: dict[str, float]
) -> dict[str, Any] | None:
    """The honesty rule: ``split`` (test) is always scored on its original labels; where the
    label overlay holds decisions about its cells, this scores it on the reviewed labels too
    (relabelled cells flipped, excluded ones left out), to be shown beside, never instead.
    ``None`` when no cell of the split was reviewed."""
    from malaria_tui.engine.data import label_overlay

    effect = prepared.overlay
    decisions = effect.reviewed.get(split) if effect is not None else None
    if effect is None or not decisions or not prepared.split_records:
        return None
    kept, labels, ch = label_overlay.reviewed_labels(prepared.split_records[split], decisions)
    keep = np.asarray(kept, dtype=bool)
    y, q = np.asarray(labels, dtype=int)[keep], np.asarray(p)[keep]
    out = measures.binary_metrics(y, q, threshold)
    out["at"] = {
        name: measures.binary_metrics(y, q, chosen[name])
        for name in ("sensitivity_target", "youden")
        if name in chosen
    }
    return out | {
        "labels": "reviewed",
        "overlay": effect.path,
        "overlay_sha256": effect.sha256,
        "n_changed": ch.changed,
        **ch.to_dict(),
    }


def report(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    chosen: dict[str, float],
    groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    """What ``malaria-tui evaluate`` reports: metrics at ``threshold``, at the run's chosen
    thresholds (``at``), per patient when the cells' patients are known, and the share of cells
    called Parasitized."""
    out = measures.binary_metrics(y, p, threshold)
    out["at"] = {
        name: measures.binary_metrics(y, p, chosen[name])
        for name in ("sensitivity_target", "youden")
        if name in chosen
    }
    out["thresholds"] = chosen
    if groups is not None:
        out["patients"] = measures.patient_level(groups, y, p, threshold)
    out["positive_rate"] = measures.confusion(y, p, threshold).positive_rate
    return out


def evaluate_run(
    path: str | os.PathLike[str], data: str | None = None, threshold: float | None = None
) -> dict[str, Any]:
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
    y, p = predict(model, prepared.eval_dataset(split), cfg.eval.tta)
    groups = [r.group for r in prepared.split_records[split]] if prepared.split_records else None
    th = cfg.eval.threshold if threshold is None else threshold
    chosen = run_thresholds(run)
    out = report(y, p, th, chosen, groups)
    if split == "test" and (reviewed := on_reviewed_labels(prepared, split, p, th, chosen)):
        out["test_reviewed"] = reviewed  # beside the figures above, on the original labels
    if prepared.overlay is not None:
        out["label_overrides"] = prepared.overlay.to_dict()
    out["run"] = str(run.path)
    out["data"] = data or f"{cfg.data.source} (test split)"
    return out
