"""Does test-time augmentation help? Decided on the VALIDATION split of a finished run only.

    python bench/tta_val.py RUN_DIR

Scores the run's best model on its validation split with and without averaging the eight
flips/90-degree rotations (what ``eval.tta`` does); the test split is not touched.
"""

from __future__ import annotations

import sys

from _common import tfenv


def main() -> None:
    tfenv.divert_native_stderr()
    from malaria_tui.engine import rundir
    from malaria_tui.engine.data import pipeline
    from malaria_tui.engine.evaluation import measures
    from malaria_tui.engine.evaluation.score_run import load_best, predict

    run = rundir.open_run(sys.argv[1])
    cfg = run.load_config()
    model = load_best(run)
    prepared = pipeline.prepare(cfg)
    for tta in (False, True):
        y, p = predict(model, prepared.eval_dataset("val"), tta=tta)
        m = measures.binary_metrics(y, p, 0.5)
        print(
            f"val {'TTA x8' if tta else 'plain '}: AUC {m['auc']:.4f}  accuracy {m['accuracy']:.4f}  (n {m['n']})"
        )


if __name__ == "__main__":
    main()
