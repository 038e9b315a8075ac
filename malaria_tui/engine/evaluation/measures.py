"""Scores from labels and probabilities: metrics at a threshold, ROC and AUC, operating points
chosen on validation, per-patient accuracy.

NumPy only (neither TensorFlow nor scikit-learn), so the TUI scores a moving threshold with the
very functions that wrote ``metrics.json`` and that ``malaria-tui evaluate`` prints.

Parasitized (label 1) is positive and ``prob >= threshold`` calls it. A rate whose denominator
is zero (sensitivity without Parasitized cells, PPV without a positive call, anything on zero
cells, AUC with one class) is undefined: it is NaN everywhere, never a 0.0 that would read as a
measured failure. Thresholds are chosen on the validation split only (target sensitivity,
Youden's J) and then applied to the test split.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
RocPoints = list[tuple[float, float, float]]  # (fpr, tpr, threshold) along the curve


def _rate(num: float, den: float) -> float:
    return float(num / den) if den else math.nan


def _labels(y: ArrayLike) -> np.ndarray:
    return np.asarray(y).astype(int).ravel()


def _probs(p: ArrayLike) -> np.ndarray:
    return np.asarray(p, dtype=float).ravel()


@dataclass(frozen=True)
class Confusion:
    """The confusion counts at one threshold and every rate derived from them."""

    threshold: float
    tp: int
    tn: int
    fp: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.tn + self.fp + self.fn

    @property
    def sensitivity(self) -> float:
        return _rate(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return _rate(self.tn, self.tn + self.fp)

    @property
    def ppv(self) -> float:
        return _rate(self.tp, self.tp + self.fp)

    @property
    def npv(self) -> float:
        return _rate(self.tn, self.tn + self.fn)

    @property
    def accuracy(self) -> float:
        return _rate(self.tp + self.tn, self.n)

    @property
    def fpr(self) -> float:
        return _rate(self.fp, self.fp + self.tn)

    @property
    def f1(self) -> float:
        # 2PR/(P+R) written on counts: defined whenever there is a Parasitized cell or call
        return _rate(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def positive_rate(self) -> float:
        return _rate(self.tp + self.fp, self.n)

    recall = sensitivity
    precision = ppv

    def as_dict(self) -> dict[str, Any]:
        """The keys of ``metrics.json`` and ``evaluate --json`` (all but ``auc``)."""
        return {
            "n": self.n,
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "ppv": self.ppv,
            "npv": self.npv,
            "f1": self.f1,
            "tp": self.tp,
            "tn": self.tn,
            "fp": self.fp,
            "fn": self.fn,
        }


def confusion(y: ArrayLike, p: ArrayLike, threshold: float) -> Confusion:
    y, p = _labels(y), _probs(p)
    pred = p >= threshold
    pos = y == 1
    return Confusion(
        float(threshold),
        tp=int(np.sum(pred & pos)),
        tn=int(np.sum(~pred & ~pos)),
        fp=int(np.sum(pred & ~pos)),
        fn=int(np.sum(~pred & pos)),
    )


def binary_metrics(y: ArrayLike, p: ArrayLike, threshold: float) -> dict[str, Any]:
    """Counts and rates at ``threshold``, plus the threshold-free AUC."""
    return confusion(y, p, threshold).as_dict() | {"auc": auc(y, p)}


def roc_points(y: ArrayLike, p: ArrayLike) -> RocPoints:
    """``(fpr, tpr, threshold)`` from (0, 0) to (1, 1), as scikit-learn's ``roc_curve`` draws it.

    One point per distinct probability, less the points collinear with their neighbours (they
    never change the curve or its area); the first threshold is 1.0 (nothing called
    Parasitized). Without negatives every fpr is NaN, without positives every tpr; no cells,
    no points.
    """
    y, p = _labels(y), _probs(p)
    if not len(y):
        return []
    order = np.argsort(-p, kind="stable")
    y, p = y[order], p[order]
    last = np.r_[np.nonzero(np.diff(p))[0], len(y) - 1]  # last cell of each distinct probability
    tps = np.cumsum(y == 1, dtype=float)[last]
    fps = 1.0 + last - tps
    thresholds = p[last]
    if len(fps) > 2:
        corner = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        tps, fps, thresholds = tps[corner], fps[corner], thresholds[corner]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thresholds = np.minimum(np.r_[np.inf, thresholds], 1.0)
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(len(fps), math.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(len(tps), math.nan)
    return [(float(a), float(b), float(t)) for a, b, t in zip(fpr, tpr, thresholds, strict=True)]


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve (ties count half); NaN unless both classes are present."""
    y = _labels(y)
    if len(np.unique(y)) < 2:
        return math.nan
    pts = np.array(roc_points(y, p))
    return float(np.trapezoid(pts[:, 1], pts[:, 0]))


def auc_shares(y: ArrayLike, p: ArrayLike) -> np.ndarray:
    """Each cell's share of ``1 - AUC``: its wrongly ranked (positive, negative) pairs / all pairs.

    Ties count half, as in AUC. Positives' shares sum to ``1 - AUC``, and so do negatives', so a
    few large shares show that a handful of cells (often mislabelled ones) set the AUC.
    """
    y, p = _labels(y), _probs(p)
    pos, neg = np.sort(p[y == 1]), np.sort(p[y == 0])
    pairs = len(pos) * len(neg)
    if not pairs:
        return np.zeros(len(p))
    # For a positive: negatives scored above it (+ half the ties); for a negative: positives below.
    neg_upto = np.searchsorted(neg, p, side="right")
    neg_above = len(neg) - neg_upto
    neg_tied = neg_upto - np.searchsorted(neg, p, side="left")
    pos_below = np.searchsorted(pos, p, side="left")
    pos_tied = np.searchsorted(pos, p, side="right") - pos_below
    wrong = np.where(y == 1, neg_above + 0.5 * neg_tied, pos_below + 0.5 * pos_tied)
    return wrong / pairs


def threshold_for_sensitivity(y: ArrayLike, p: ArrayLike, target: float) -> float:
    """The highest threshold whose sensitivity is >= ``target`` (most specific such point)."""
    y, p = _labels(y), _probs(p)
    pos = np.sort(p[y == 1])[::-1]
    if len(pos) == 0:
        return 0.5
    k = int(np.ceil(target * len(pos)))
    k = min(max(k, 1), len(pos))
    return float(pos[k - 1])


def threshold_youden(y: ArrayLike, p: ArrayLike) -> float:
    pts = roc_points(y, p)
    best = max(pts, key=lambda t: t[1] - t[0])
    return float(min(max(best[2], 0.0), 1.0))


def choose_thresholds(
    y_val: ArrayLike, p_val: ArrayLike, target_sensitivity: float, default: float = 0.5
) -> dict[str, float]:
    return {
        "default": float(default),
        "target_sensitivity": float(target_sensitivity),
        "sensitivity_target": threshold_for_sensitivity(y_val, p_val, target_sensitivity),
        "youden": threshold_youden(y_val, p_val),
    }


def patient_level(
    groups: Sequence[str], y: ArrayLike, p: ArrayLike, threshold: float
) -> dict[str, Any]:
    """Per-patient accuracy, and the worst patients first, so a bad slide cannot hide in a mean."""
    by: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for g, yi, pi in zip(groups, _labels(y), _probs(p), strict=True):
        by[g].append((int(yi), float(pi)))
    rows: list[dict[str, Any]] = []
    for g, items in by.items():
        c = confusion([a for a, _ in items], [b for _, b in items], threshold)
        rows.append(
            {
                "group": g,
                "n": c.n,
                "parasitized": c.tp + c.fn,
                "predicted_parasitized": c.tp + c.fp,
                "accuracy": c.accuracy,
            }
        )
    rows.sort(key=lambda r: r["accuracy"])
    accs = [r["accuracy"] for r in rows]
    return {
        "patients": len(rows),
        "mean_accuracy": float(np.mean(accs)) if accs else math.nan,
        "worst_accuracy": float(min(accs)) if accs else math.nan,
        "rows": rows,
    }
