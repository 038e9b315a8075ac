"""Issue 17's accuracy targets from a finished cross-validation, side by side with single runs.

    python bench/cv_targets.py CV_DIR [--single RUN] [--reviewed RUN] [--boot 1000]

Prints the mean over folds of each fold model's held-out AUC and accuracy (target: the
published patient-level 5-fold result, AUC >= 0.991 and accuracy >= 0.96), then, on the outer
test split (the one a normal run with the same seed sets aside), the ensemble beside every
fold model and beside ``--single`` (a default run), and ``--reviewed`` (a run trained with
suspect labels excluded) beside ``--single``; differences with a paired bootstrap over whole
test patients ("P(>0)": the share of resamples in which the second model is better).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
from _common import paired_bootstrap, predictions

from malaria_tui.engine import cvdir
from malaria_tui.engine.evaluation.measures import auc


def _line(name: str, y, p) -> str:
    return f"  {name:<22} AUC {auc(y, p):.4f}  accuracy@0.5 {np.mean((p >= 0.5) == y):.4f}"


def _compare(label: str, groups, y, base, other, boot: int) -> None:
    b = paired_bootstrap(groups, y, [base, other], boot)
    for k, what in ((0, "AUC"), (1, "accuracy")):
        d = b[:, 1, k] - b[:, 0, k]
        lo, hi = np.percentile(d, [5, 95])
        print(
            f"  {label} {what}: {np.mean(d):+.4f} (90% {lo:+.4f}..{hi:+.4f}, P(>0) {np.mean(d > 0):.2f})"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cv_dir")
    ap.add_argument("--single", type=Path, help="a default run on the same data and seed")
    ap.add_argument("--reviewed", type=Path, help="a run trained on reviewed labels")
    ap.add_argument("--boot", type=int, default=1000)
    a = ap.parse_args()
    cvd = cvdir.open_cv(a.cv_dir)
    s = cvd.summary()
    held = s["across_folds"]["held_out"]
    auc_m, acc_m = held["auc"], held["accuracy"]
    print(f"{cvd.folds}-fold CV by {cvd.split}: {s['out_of_fold']['images']} images out of fold")
    print(
        f"mean held-out AUC {auc_m['mean']:.4f} (95% CI {auc_m['low']:.4f}-{auc_m['high']:.4f}) "
        f"target >= 0.991: {'met' if auc_m['mean'] >= 0.991 else 'NOT met'}"
    )
    print(
        f"mean held-out accuracy {acc_m['mean']:.4f} (95% CI {acc_m['low']:.4f}-{acc_m['high']:.4f}) "
        f"target >= 0.96: {'met' if acc_m['mean'] >= 0.96 else 'NOT met'}"
    )
    by_model: dict[str, dict[str, float]] = defaultdict(dict)
    info: dict[str, tuple[str, int]] = {}
    with open(cvd.test_predictions, newline="") as f:
        for r in csv.DictReader(f):
            by_model[r["model"]][Path(r["path"]).name] = float(r["prob"])
            info[Path(r["path"]).name] = (r["patient"], int(r["label"]))
    names = sorted(info)
    groups = np.array([info[n][0] for n in names])
    y = np.array([info[n][1] for n in names])
    probs = {m: np.array([v[n] for n in names]) for m, v in by_model.items()}
    print(f"outer test split: {len(names)} cells, {len(set(groups))} patients")
    for m, p in probs.items():
        print(_line(m, y, p))
    ens = probs[cvdir.ENSEMBLE]
    runs = {}
    for flag, run in (("single", a.single), ("reviewed", a.reviewed)):
        if run is not None:
            rows = {Path(r["path"]).name: float(r["prob"]) for r in predictions(run, "test")}
            if sorted(rows) != names:
                raise SystemExit(f"cv_targets: {run} was not scored on the CV's outer test split")
            runs[flag] = np.array([rows[n] for n in names])
            print(_line(f"{flag} ({run.name})", y, runs[flag]))
    if "single" in runs:
        _compare("ensemble - single", groups, y, runs["single"], ens, a.boot)
        hit = auc(y, ens) >= 0.997 and np.mean((ens >= 0.5) == y) >= 0.975
        print(
            f"  ensemble goal (accuracy >= 0.975 and AUC >= 0.997): {'met' if hit else 'NOT met'}"
        )
    if "single" in runs and "reviewed" in runs:
        _compare("reviewed - single", groups, y, runs["single"], runs["reviewed"], a.boot)


if __name__ == "__main__":
    main()
