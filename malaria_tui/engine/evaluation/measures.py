"""Scoring: metrics at a threshold, ROC, operating points chosen on validation, patient level.

Thresholds are chosen on the validation split only (target sensitivity, Youden's J) and then
applied to the test split, which is scored once at the end of a run.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

import numpy as np

from malaria_tui.engine import atomic


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Counts and rates with Parasitized (1) positive; AUC is threshold-free."""
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=float).ravel()
    pred = (p >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    n = len(y)

    def ratio(a, b):
        return float(a / b) if b else 0.0

    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    return {
        "n": n,
        "threshold": float(threshold),
        "accuracy": ratio(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "sensitivity": recall,
        "specificity": ratio(tn, tn + fp),
        "ppv": precision,
        "npv": ratio(tn, tn + fn),
        "f1": ratio(2 * precision * recall, precision + recall),
        "auc": auc(y, p),
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
    }


def auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(int).ravel()
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, np.asarray(p).ravel()))


def auc_shares(y, p) -> np.ndarray:
    """Each cell's share of ``1 - AUC``: its wrongly ranked (positive, negative) pairs / all pairs.

    Ties count half, as in AUC. Positives' shares sum to ``1 - AUC``, and so do negatives', so a
    few large shares show that a handful of cells (often mislabelled ones) set the AUC.
    """
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=float).ravel()
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


def roc_points(y, p) -> list[tuple[float, float, float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(np.asarray(y).astype(int).ravel(), np.asarray(p).ravel())
    thr = np.minimum(thr, 1.0)  # sklearn puts inf first
    return [(float(a), float(b), float(t)) for a, b, t in zip(fpr, tpr, thr, strict=True)]


def threshold_for_sensitivity(y, p, target: float) -> float:
    """The highest threshold whose sensitivity is >= ``target`` (most specific such point)."""
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=float).ravel()
    pos = np.sort(p[y == 1])[::-1]
    if len(pos) == 0:
        return 0.5
    k = int(np.ceil(target * len(pos)))
    k = min(max(k, 1), len(pos))
    return float(pos[k - 1])


def threshold_youden(y, p) -> float:
    pts = roc_points(y, p)
    best = max(pts, key=lambda t: t[1] - t[0])
    return float(min(max(best[2], 0.0), 1.0))


def choose_thresholds(y_val, p_val, target_sensitivity: float, default: float = 0.5) -> dict:
    return {
        "default": float(default),
        "target_sensitivity": float(target_sensitivity),
        "sensitivity_target": threshold_for_sensitivity(y_val, p_val, target_sensitivity),
        "youden": threshold_youden(y_val, p_val),
    }


def patient_level(groups: list[str], y, p, threshold: float) -> dict:
    """Per-patient accuracy, and the worst patients first, so a bad slide cannot hide in a mean."""
    by = defaultdict(list)
    for g, yi, pi in zip(groups, np.asarray(y).ravel(), np.asarray(p).ravel(), strict=True):
        by[g].append((int(yi), float(pi)))
    rows = []
    for g, items in by.items():
        ys = np.array([a for a, _ in items])
        ps = np.array([b for _, b in items])
        pred = ps >= threshold
        rows.append(
            {
                "group": g,
                "n": len(items),
                "parasitized": int(ys.sum()),
                "predicted_parasitized": int(pred.sum()),
                "accuracy": float((pred == ys).mean()),
            }
        )
    rows.sort(key=lambda r: r["accuracy"])
    accs = [r["accuracy"] for r in rows]
    return {
        "patients": len(rows),
        "mean_accuracy": float(np.mean(accs)) if accs else 0.0,
        "worst_accuracy": float(min(accs)) if accs else 0.0,
        "rows": rows,
    }


def confusion_csv(m: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["actual\\predicted", "Parasitized", "Uninfected"])
    w.writerow(["Parasitized", m["tp"], m["fn"]])
    w.writerow(["Uninfected", m["fp"], m["tn"]])
    return buf.getvalue()


def write_eval(eval_dir, result: dict, roc, predictions: list[tuple]) -> None:
    """``metrics.json``, ``confusion.csv``, ``roc.csv`` and ``predictions.csv``, each atomically."""
    atomic.write_json(eval_dir / "metrics.json", result)
    atomic.write_text(
        eval_dir / "confusion.csv", confusion_csv(result[result.get("split", "test")])
    )
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["fpr", "tpr", "threshold"])
    w.writerows((f"{a:.6f}", f"{b:.6f}", f"{t:.6f}") for a, b, t in roc)
    atomic.write_text(eval_dir / "roc.csv", buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["split", "path", "group", "label", "prob"])
    w.writerows((s, path, g, int(lab), f"{prob:.6f}") for s, path, g, lab, prob in predictions)
    atomic.write_text(eval_dir / "predictions.csv", buf.getvalue())


def _dihedral_mean(model, x):
    """P averaged over the eight flips and 90-degree rotations (cells have no orientation)."""
    from malaria_tui.engine.inference.diagnose import dihedral

    views = dihedral(np.asarray(x))
    return np.mean(
        [np.asarray(model(np.ascontiguousarray(v), training=False)).ravel() for v in views], axis=0
    )


def predict(model, dataset, tta: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities for an unshuffled evaluation dataset (optionally with TTA)."""
    ys, ps = [], []
    for x, y in dataset:
        ps.append(_dihedral_mean(model, x) if tta else np.asarray(model(x, training=False)).ravel())
        ys.append(np.asarray(y).ravel())
    if not ys:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(ys).round().astype(int), np.concatenate(ps)


def evaluate_prepared(model, prepared, eval_cfg, test: bool = True) -> tuple[dict, list, list]:
    """The full end-of-run evaluation: thresholds from val, scores on test at each of them.

    ``test=False`` never reads the test split: val metrics, thresholds, val ROC and predictions.
    """
    y_val, p_val = predict(model, prepared.eval_dataset("val"), eval_cfg.tta)
    th = choose_thresholds(y_val, p_val, eval_cfg.target_sensitivity, eval_cfg.threshold)
    result = {
        "split": "test" if test else "val",
        "tta": eval_cfg.tta,
        "thresholds": th,
        "val": binary_metrics(y_val, p_val, th["default"]),
    }
    scored = [("val", y_val, p_val)]
    if test:
        y_test, p_test = predict(model, prepared.eval_dataset("test"), eval_cfg.tta)
        scored.append(("test", y_test, p_test))
        result |= {
            "test": binary_metrics(y_test, p_test, th["default"]),
            "test_at_target": binary_metrics(y_test, p_test, th["sensitivity_target"]),
            "test_at_youden": binary_metrics(y_test, p_test, th["youden"]),
        }
    preds = []
    for split, ys, ps in scored:
        recs = prepared.split_records[split] if prepared.split_records else None
        for i, (yi, pi) in enumerate(zip(ys, ps, strict=True)):
            path, group = (recs[i].path, recs[i].group) if recs else (f"tfds:{split}:{i}", "")
            preds.append((split, path, group, yi, float(pi)))
    if test and prepared.split_records:
        groups = [r.group for r in prepared.split_records["test"]]
        result["patients"] = patient_level(groups, y_test, p_test, th["default"])
    return result, roc_points(*scored[-1][1:]), preds
