"""Test figures of one setting over several patient splits: how much is the split, not the model.

    for s in 42 1 2 3; do python bench/accuracy.py --set seed=$s --set name=\\"seed$s\\"; done
    python bench/across_splits.py runs/bench/*-seed*

The seed draws which patients land in the test split (16 to 23 of the shared folder's 170), and
patients differ a lot, so one split's figure can sit far from the setting's typical one. This
reads each run's ``eval/metrics.json`` (no training) and prints one line per run, then the mean
and the range; the last two columns are the test split at the threshold chosen on validation for
the target sensitivity (does the operating point carry over to new patients?). Compare settings
on validation (``val_compare.py``); use this to report a chosen one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tomllib
from pathlib import Path

COLUMNS = ("accuracy", "auc", "sensitivity", "specificity")


def row(run: Path) -> dict:
    path = run / "eval" / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"across_splits: {path} not found (not a finished run?)")
    m = json.loads(path.read_text())
    if "test" not in m:
        raise SystemExit(f"across_splits: {run} has no test figures (trained with --val-only?)")
    seed = tomllib.loads((run / "config.toml").read_text()).get("seed")
    counts = m.get("data", {}).get("counts", {}).get("test", {})
    pl = m.get("patients", {})
    return {
        "run": run.name,
        "seed": seed,
        "n": m["test"]["n"],
        "patients": counts.get("groups", pl.get("patients", 0)),
        **{k: m["test"][k] for k in COLUMNS},
        "worst patient": pl.get("worst_accuracy", float("nan")),
        "sens@val-thr": m["test_at_target"]["sensitivity"],
        "spec@val-thr": m["test_at_target"]["specificity"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    a = ap.parse_args()
    rows = [row(r) for r in a.runs]
    keys = (*COLUMNS, "worst patient", "sens@val-thr", "spec@val-thr")
    print(f"{'run':34s} {'seed':>4s} {'n':>5s} {'pts':>3s} " + " ".join(f"{k:>13s}" for k in keys))
    for r in rows:
        cells = " ".join(f"{r[k]:13.4f}" for k in keys)
        print(f"{r['run']:34s} {r['seed']!s:>4s} {r['n']:5d} {r['patients']:3d} {cells}")
    if len(rows) > 1:
        for name, fn in (("mean", statistics.fmean), ("min", min), ("max", max)):
            cells = " ".join(f"{fn(r[k] for r in rows):13.4f}" for k in keys)
            print(f"{name:34s} {'':>4s} {'':>5s} {'':>3s} {cells}")
        sd = statistics.stdev(r["auc"] for r in rows)
        print(f"AUC standard deviation across {len(rows)} splits: {sd:.4f}")


if __name__ == "__main__":
    main()
