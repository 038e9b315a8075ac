"""Compare runs on their shared validation split: AUC, and how sure the difference is.

    python bench/val_compare.py BASE_RUN OTHER_RUN [OTHER_RUN ...] [--boot 1000]

Reads each run's ``eval/predictions.csv`` (runs trained with ``bench/accuracy.py --val-only``
leave the test split unseen). The runs must share the split (same data and seed). Cells of one
patient are not independent, so the bootstrap resamples whole patients, and every resample
scores all runs on the same cells (a paired comparison): "P(>0)" is the share of resamples in
which OTHER beats BASE. Tune on this; score the test split once, for the setting chosen.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import paired_bootstrap, predictions

from malaria_tui.engine.evaluation.measures import auc


def val_predictions(run: Path) -> dict[str, tuple[str, int, float]]:
    """File name -> (patient group, label, probability) of the run's validation cells."""
    return {
        Path(r["path"]).name: (r["group"], int(r["label"]), float(r["prob"]))
        for r in predictions(run, "val")
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--boot", type=int, default=1000)
    a = ap.parse_args()
    preds = [val_predictions(r) for r in a.runs]
    names = sorted(preds[0])
    if any(sorted(p) != names for p in preds[1:]):
        raise SystemExit(
            "val_compare: the runs do not share one validation split (data or seed differ)"
        )
    groups = np.array([preds[0][n][0] for n in names])
    y = np.array([preds[0][n][1] for n in names])
    probs = [np.array([p[n][2] for n in names]) for p in preds]
    boots = paired_bootstrap(groups, y, probs, a.boot)[:, :, 0]  # AUC
    base = auc(y, probs[0])
    patients = len(np.unique(groups))
    print(f"{len(names)} validation cells from {patients} patients; {len(boots)} resamples")
    for i, (run, p) in enumerate(zip(a.runs, probs, strict=True)):
        score = auc(y, p)
        line = f"{run.name:40s} AUC {score:.4f}  accuracy@0.5 {np.mean((p >= 0.5) == y):.4f}"
        if i:
            d = boots[:, i] - boots[:, 0]
            lo, hi = np.percentile(d, [5, 95])
            line += f"  vs base {score - base:+.4f} (90% {lo:+.4f}..{hi:+.4f}, P(>0) {np.mean(d > 0):.2f})"
        print(line)


if __name__ == "__main__":
    main()
