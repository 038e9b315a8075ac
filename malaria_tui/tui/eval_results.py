"""A finished run's evaluation files (``<run>/eval/``), read without TensorFlow.

The threshold maths is here (not in a widget) so it can be tested and reused.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Prediction:
    path: str
    label: int
    prob: float
    group: str


@dataclass
class EvalData:
    run_dir: Path
    metrics: dict = field(default_factory=dict)
    roc: tuple[list[float], list[float]] = ((), ())
    predictions: list[Prediction] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    probs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    problems: list[str] = field(default_factory=list)
    split: str = "test"

    @property
    def test(self) -> dict:
        return self.metrics.get("test", {}) if isinstance(self.metrics.get("test"), dict) else {}

    @property
    def thresholds(self) -> dict:
        t = self.metrics.get("thresholds", {})
        return t if isinstance(t, dict) else {}

    @property
    def auc(self) -> float | None:
        v = self.test.get("auc")
        if isinstance(v, int | float):
            return float(v)
        if len(self.roc[0]) > 1:
            return float(np.trapezoid(self.roc[1], self.roc[0]))
        return None

    @property
    def has_any(self) -> bool:
        return bool(self.metrics or self.predictions)


def load(run_dir: str | Path) -> EvalData:
    run_dir = Path(run_dir)
    d = run_dir / "eval"
    out = EvalData(run_dir)
    try:
        out.metrics = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        out.problems.append("no eval/metrics.json yet")
    except (OSError, ValueError) as e:
        out.problems.append(f"eval/metrics.json unreadable: {e}")
    try:
        with open(d / "roc.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        pts = sorted((float(r["fpr"]), float(r["tpr"])) for r in rows)
        out.roc = ([p[0] for p in pts], [p[1] for p in pts])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError) as e:
        out.problems.append(f"eval/roc.csv unreadable: {e}")
    try:
        with open(d / "predictions.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        # predictions.csv may hold several splits (val and test): the threshold works on one
        split = (
            out.metrics.get("split", "test")
            if isinstance(out.metrics.get("split"), str)
            else "test"
        )
        if rows and "split" in rows[0]:
            chosen = [r for r in rows if r.get("split") == split]
            rows = chosen or rows
        out.split = split
        preds = [
            Prediction(
                r["path"], int(float(r["label"])), float(r["prob"]), r.get("group", "") or ""
            )
            for r in rows
        ]
        out.predictions = preds
        out.labels = np.array([p.label for p in preds], dtype=np.int8)
        out.probs = np.array([p.prob for p in preds], dtype=np.float64)
        if not len(out.roc[0]) and len(preds) > 1:
            out.roc = roc_curve(out.labels, out.probs)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError) as e:
        out.problems.append(f"eval/predictions.csv unreadable: {e}")
    return out


def roc_curve(labels: np.ndarray, probs: np.ndarray) -> tuple[list[float], list[float]]:
    order = np.argsort(-probs, kind="stable")
    y = labels[order]
    tps = np.concatenate([[0], np.cumsum(y == 1)])
    fps = np.concatenate([[0], np.cumsum(y == 0)])
    p, n = max(1, tps[-1]), max(1, fps[-1])
    return (fps / n).tolist(), (tps / p).tolist()


@dataclass(frozen=True)
class AtThreshold:
    threshold: float
    tp: int
    tn: int
    fp: int
    fn: int

    @staticmethod
    def _ratio(a: int, b: int) -> float:
        return a / b if b else math.nan

    @property
    def n(self) -> int:
        return self.tp + self.tn + self.fp + self.fn

    @property
    def sensitivity(self) -> float:
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return self._ratio(self.tn, self.tn + self.fp)

    @property
    def ppv(self) -> float:
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def npv(self) -> float:
        return self._ratio(self.tn, self.tn + self.fn)

    @property
    def accuracy(self) -> float:
        return self._ratio(self.tp + self.tn, self.n)

    @property
    def fpr(self) -> float:
        return self._ratio(self.fp, self.fp + self.tn)


def at_threshold(labels: np.ndarray, probs: np.ndarray, threshold: float) -> AtThreshold:
    """Confusion counts when ``prob >= threshold`` means Parasitized (label 1)."""
    pred = probs >= threshold
    pos = labels == 1
    return AtThreshold(
        threshold,
        tp=int(np.sum(pred & pos)),
        tn=int(np.sum(~pred & ~pos)),
        fp=int(np.sum(pred & ~pos)),
        fn=int(np.sum(~pred & pos)),
    )


def misclassified(data: EvalData, threshold: float) -> list[Prediction]:
    """Wrong calls at ``threshold``, the most confident mistakes first."""
    wrong = [p for p in data.predictions if (p.prob >= threshold) != (p.label == 1)]
    return sorted(wrong, key=lambda p: -abs(p.prob - threshold))
