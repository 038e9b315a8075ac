"""The cross-validation's headless summary: per fold, across folds, the ensemble, the worst
patients; every figure also in the CV directory's cv.csv and cv_summary.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

METRICS = ("accuracy", "auc", "sensitivity", "specificity")


def _f(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else "nan"


def print_summary(path: Path, s: dict[str, Any], out=None) -> None:
    import sys

    w = out or sys.stdout

    def line(text: str = "") -> None:
        print(text, file=w, flush=True)

    op = s["operating_point"]
    line(f"{path}: {s['folds']}-fold cross-validation by {s['split']}")
    line("held-out fold of each model (at 0.5 | at its validation-chosen threshold):")
    line(
        f"  {'fold':>4} {'images':>6} {'acc':>7} {'auc':>7} {'sens':>7} {'spec':>7} | {'thr':>6} {'acc':>7} {'sens':>7} {'spec':>7}"
    )
    for f in s["per_fold"]:
        h, t = f["held_out"]["at_0.5"], f["held_out"]["at_threshold"]
        line(
            f"  {f['fold']:>4} {f['images']:>6} "
            + " ".join(f"{_f(h[m]):>7}" for m in METRICS)
            + f" | {f['threshold']:>6.3f} "
            + " ".join(f"{_f(t[m]):>7}" for m in ("accuracy", "sensitivity", "specificity"))
        )
    a = s["across_folds"]["held_out"]
    for m in METRICS:
        x = a[m]
        line(
            f"  mean {m:<11} {_f(x['mean'])} +- {_f(x['sd'])} (95% CI {_f(x['low'])}-{_f(x['high'])})"
        )
    e = s["ensemble"]
    line(
        f"outer test split ({s['test_images']} images, {s['test_patients']} patients), "
        f"at 0.5 | at the {op} threshold:"
    )
    line(
        f"  {'model':<9} {'acc':>7} {'auc':>7} {'sens':>7} {'spec':>7} | {'acc':>7} {'sens':>7} {'spec':>7}"
    )
    rows = [(f"fold {f['fold']}", f["test"]) for f in s["per_fold"]] + [("ensemble", e["test"])]
    for name, sc in rows:
        h, t = sc["at_0.5"], sc["at_threshold"]
        line(
            f"  {name:<9} "
            + " ".join(f"{_f(h[m]):>7}" for m in METRICS)
            + " | "
            + " ".join(f"{_f(t[m]):>7}" for m in ("accuracy", "sensitivity", "specificity"))
        )
    worst = s["out_of_fold"]["patients"]["rows"][:5]
    if worst:
        text = ", ".join(f"{r['group']} {r['accuracy']:.3f} ({r['n']})" for r in worst)
        line(f"worst patients out of fold (accuracy, cells): {text}")
    line(f"tables: {path}/cv.csv, {path}/oof.csv, {path}/test_predictions.csv")
    line(
        f"next: malaria-tui review {path} | malaria-tui evaluate {path} | malaria-tui export {path}"
    )
