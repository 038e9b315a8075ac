"""A run's evaluation folder (``<run>/eval/``): written at the end of training, read back by the
TUI's Evaluate screen and the exports.

The writer and the reader live together so the file formats have one definition. NumPy only:
the TUI reads these files before (or without) TensorFlow.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from malaria_tui.engine import atomic
from malaria_tui.engine.evaluation.measures import ArrayLike, RocPoints, roc_points

METRICS = "metrics.json"
CONFUSION = "confusion.csv"
ROC = "roc.csv"
PREDICTIONS = "predictions.csv"

# split, path, patient group, label, P(Parasitized)
PredictionRow = tuple[str, str, str, int, float]


def confusion_csv(m: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["actual\\predicted", "Parasitized", "Uninfected"])
    w.writerow(["Parasitized", m["tp"], m["fn"]])
    w.writerow(["Uninfected", m["fp"], m["tn"]])
    return buf.getvalue()


def write_eval(
    eval_dir: Path,
    result: dict[str, Any],
    roc: RocPoints,
    predictions: Sequence[PredictionRow],
) -> None:
    """``metrics.json``, ``confusion.csv``, ``roc.csv`` and ``predictions.csv``, each atomically."""
    atomic.write_json(eval_dir / METRICS, result)
    atomic.write_text(eval_dir / CONFUSION, confusion_csv(result[result.get("split", "test")]))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["fpr", "tpr", "threshold"])
    w.writerows((f"{a:.6f}", f"{b:.6f}", f"{t:.6f}") for a, b, t in roc)
    atomic.write_text(eval_dir / ROC, buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["split", "path", "group", "label", "prob"])
    w.writerows((s, path, g, int(lab), f"{prob:.6f}") for s, path, g, lab, prob in predictions)
    atomic.write_text(eval_dir / PREDICTIONS, buf.getvalue())


def roc_curve(labels: ArrayLike, probs: ArrayLike) -> tuple[list[float], list[float]]:
    """The ROC of :func:`measures.roc_points` as the (fpr, tpr) lists a chart draws."""
    pts = roc_points(labels, probs)
    return [a for a, _, _ in pts], [b for _, b, _ in pts]


@dataclass(frozen=True)
class Prediction:
    path: str
    label: int
    prob: float
    group: str


@dataclass
class EvalData:
    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    roc: tuple[Sequence[float], Sequence[float]] = ((), ())
    predictions: list[Prediction] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    probs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    problems: list[str] = field(default_factory=list)
    split: str = "test"

    @property
    def test(self) -> dict[str, Any]:
        t = self.metrics.get("test")
        return t if isinstance(t, dict) else {}

    @property
    def thresholds(self) -> dict[str, Any]:
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
    """What a run's ``eval/`` holds; a missing or unreadable file is listed in ``problems``."""
    run_dir = Path(run_dir)
    d = run_dir / "eval"
    out = EvalData(run_dir)
    try:
        out.metrics = json.loads((d / METRICS).read_text(encoding="utf-8"))
    except FileNotFoundError:
        out.problems.append(f"no eval/{METRICS} yet")
    except (OSError, ValueError) as e:
        out.problems.append(f"eval/{METRICS} unreadable: {e}")
    try:
        with open(d / ROC, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        pts = sorted((float(r["fpr"]), float(r["tpr"])) for r in rows)
        out.roc = ([p[0] for p in pts], [p[1] for p in pts])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError) as e:
        out.problems.append(f"eval/{ROC} unreadable: {e}")
    try:
        with open(d / PREDICTIONS, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        # predictions.csv may hold several splits (val and test): the threshold works on one
        split = out.metrics.get("split")
        split = split if isinstance(split, str) else "test"
        if rows and "split" in rows[0]:
            rows = [r for r in rows if r.get("split") == split] or rows
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
            fpr, tpr = roc_curve(out.labels, out.probs)
            if not any(math.isnan(v) for v in fpr + tpr):  # one class: no curve to draw
                out.roc = (fpr, tpr)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError) as e:
        out.problems.append(f"eval/{PREDICTIONS} unreadable: {e}")
    return out


def misclassified(data: EvalData, threshold: float) -> list[Prediction]:
    """Wrong calls at ``threshold``, the most confident mistakes first."""
    wrong = [p for p in data.predictions if (p.prob >= threshold) != (p.label == 1)]
    return sorted(wrong, key=lambda p: -abs(p.prob - threshold))
