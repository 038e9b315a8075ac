"""``malaria-tui evaluate RUN_DIR``: a run's best model scored on its test split or new data."""

from __future__ import annotations

import argparse
import json

from malaria_tui.cli import options
from malaria_tui.cli.exitcodes import ExitCode

NAME = "evaluate"
SUMMARY = (
    "score the run's best model on its own test split, or on every image of --data SPEC; "
    "a CV directory: its fold ensemble and every fold side by side"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run directory with a best model, or a CV directory (made by `malaria-tui cv`)",
    )
    p.add_argument(
        "--data",
        metavar="SPEC",
        help=f"score every image of this source instead of the test split: {options.DATA_SPECS}",
    )
    p.add_argument(
        "--threshold",
        type=options.probability,
        metavar="X",
        help="decision threshold in [0, 1] (default 0.5; the run's chosen ones are shown too)",
    )
    p.add_argument(
        "--rescore",
        action="store_true",
        help="CV directory: run the fold models again instead of reading test_predictions.csv",
    )
    options.json_(p)


def run(args: argparse.Namespace) -> int:
    from malaria_tui.engine import tfenv
    from malaria_tui.engine.evaluation.score_run import evaluate_run
    from malaria_tui.engine.inference import fold_ensemble

    tfenv.divert_native_stderr()
    if fold_ensemble.is_cv(args.run_dir):
        result = fold_ensemble.evaluate_cv(
            args.run_dir, data=args.data, threshold=args.threshold, rescore_models=args.rescore
        )
        if args.json:
            print(json.dumps(result, indent=2, sort_keys=True))
        else:
            from malaria_tui.cli.report import print_cv_evaluation

            print_cv_evaluation(result)
        return ExitCode.OK
    result = evaluate_run(args.run_dir, data=args.data, threshold=args.threshold)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        from malaria_tui.cli.report import print_evaluation

        print_evaluation(result)
    return ExitCode.OK
