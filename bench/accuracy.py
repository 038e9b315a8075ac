"""Accuracy target: the default config on the shared NIH folder, patient split, timed.

    python bench/accuracy.py [--set KEY=VALUE ...] [--runs-dir runs/bench]

Trains exactly as `malaria-tui --no-ui --data folder:../shared/data/malaria/cell_images` would,
then prints the test-split figures (scored once, at the end) against the targets.
With ``--val-only`` the test split stays unseen and the validation figures are printed: use that
to compare settings, and score the test split once, for the setting chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from _common import SHARED, config, tfenv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--runs-dir", default="runs/bench")
    ap.add_argument("--val-only", action="store_true", help="leave the test split unseen")
    a = ap.parse_args()
    tfenv.divert_native_stderr()
    from malaria_tui.cli.headless import PlainReporter
    from malaria_tui.engine.training.trainer import train

    cfg = config.load(None, [f'data.source="folder:{SHARED}"', 'name="bench-accuracy"', *a.set])
    t = time.perf_counter()
    run = train(cfg, runs_dir=a.runs_dir, on_event=PlainReporter(), score_test=not a.val_only)
    minutes = (time.perf_counter() - t) / 60
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_minutes = (usage.ru_utime + usage.ru_stime) / 60
    m = json.loads((run.eval_dir / "metrics.json").read_text())
    if a.val_only:
        v = m["val"]
        print(f"\nrun: {run.path}\nwall time: {minutes:.1f} min; CPU time {cpu_minutes:.1f} min")
        print(
            f"val @0.5: accuracy {v['accuracy']:.4f}, AUC {v['auc']:.4f}, n {v['n']} (test unseen)"
        )
        return
    test, tgt, pl = m["test"], m["test_at_target"], m.get("patients", {})
    print(f"\nrun: {run.path}")
    print(
        f"wall time: {minutes:.1f} min (target <= 15); CPU time {cpu_minutes:.1f} min on {os.cpu_count()} cores"
    )
    print(
        f"test @0.5: accuracy {test['accuracy']:.4f} (target >= 0.97), AUC {test['auc']:.4f} (target >= 0.995)"
    )
    print(
        f"  sensitivity {test['sensitivity']:.4f}, specificity {test['specificity']:.4f}, n {test['n']}"
    )
    print(
        f"test @{tgt['threshold']:.3f} (chosen on val for sensitivity >= {m['thresholds']['target_sensitivity']}): "
        f"sensitivity {tgt['sensitivity']:.4f}, specificity {tgt['specificity']:.4f}"
    )
    if pl:
        print(
            f"patients in test: {pl['patients']}, mean per-patient accuracy {pl['mean_accuracy']:.4f}, worst {pl['worst_accuracy']:.4f}"
        )


if __name__ == "__main__":
    main()
