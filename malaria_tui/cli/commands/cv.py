"""``malaria-tui cv``: patient-level K-fold cross-validation, the fold ensemble, out-of-fold
probabilities for the label review.

Headless (``--no-ui``): the folds' progress as a grid's, then the per-fold table, the mean
with its 95% interval, and the ensemble beside every fold model on the outer test split.
Without ``--no-ui`` the app opens on its HParams screen while the folds train, and the scoring
runs after it closes. Exit codes as for a grid: 0 done, 1 no fold finished, 2 bad input,
130 interrupted (resume with ``cv --resume CV_DIR``).
"""

from __future__ import annotations

import argparse
import sys

from malaria_tui.cli import options
from malaria_tui.cli.exitcodes import ExitCode

NAME = "cv"
SUMMARY = (
    "patient-level K-fold cross-validation: out-of-fold probabilities, the fold ensemble "
    "scored on the outer test split"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--folds", type=int, default=5, metavar="K", help="number of folds, by patient (default 5)"
    )
    p.add_argument(
        "--resume",
        metavar="CV_DIR",
        help="continue a cross-validation: finished folds are skipped, an unfinished one resumes",
    )
    options.config(p)
    options.set_(p)
    options.data(p)
    options.runs_dir(p, "where the CV directory goes")
    options.name(p, "cv")
    options.parallel(p, "folds")
    options.no_ui(p, "cross-validate")
    options.plain(p)


def run(args: argparse.Namespace) -> int:
    from malaria_tui.engine import cvdir, tfenv
    from malaria_tui.engine.config import DEFAULT_NAME, run_name
    from malaria_tui.engine.cv import runner
    from malaria_tui.engine.errors import ConfigError
    from malaria_tui.engine.grid import placement as placing
    from malaria_tui.engine.grid import search

    tfenv.divert_native_stderr()
    devices = placing.parse_devices(args.devices) if args.devices else None
    if args.resume:
        if args.set or args.data or args.name or args.config:
            raise ConfigError(
                "--resume: the CV directory's own grid.toml is used; --config, --set, --data "
                "and --name apply to a new cross-validation"
            )
        cvd = cvdir.open_cv(args.resume)
        path, spec = search.open_grid(cvd.path)
        resumed = True
    else:
        base = options.load_config(args)
        if base.name == DEFAULT_NAME:
            base = base.model_copy(update={"name": run_name(base)})
        spec = runner.make_spec(base, args.folds)  # --folds 1: one line, nothing made
        mode = runner.check_data(spec.base, args.folds)  # more folds than patients: the same
        if mode == "image":
            print(
                "malaria-tui: no patient keys in the file names: folds are stratified by image, "
                "so one patient's cells can be in several folds",
                file=sys.stderr,
            )
        path, resumed = None, False
    place = placing.plan(args.parallel, devices)
    if path is None:
        make = runner.shared_cv_dir if args.shard else runner.create_cv_dir
        path = make(args.runs_dir, spec, mode)
    if not args.no_ui:
        return _with_app(spec, path, args, place)

    def job(stop, on_event):
        return runner.run_cv(
            path, on_event=on_event, stop=stop, resumed=resumed, placement=place, shard=args.shard
        )

    from malaria_tui.cli.grid_report import GridPrinter
    from malaria_tui.cli.stopping import run_headless

    def hint(printer: GridPrinter) -> str:
        return f"resume with: malaria-tui cv --resume {path}"

    result, _ = run_headless(
        job, lambda: GridPrinter(plain=args.plain, noun="fold"), "cv stopped", hint
    )
    if result is None:
        return ExitCode.FAILED
    return _finish(result)


def _finish(result) -> int:
    from malaria_tui.cli.cv_report import print_summary

    if result.summary is not None:
        print_summary(result.path, result.summary)
    if result.status == "interrupted":
        print(f"resume with: malaria-tui cv --resume {result.path}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    if result.failed:
        print(
            f"malaria-tui: {len(result.failed)} fold(s) failed: {', '.join(result.failed)}; "
            "no out-of-fold table without every fold",
            file=sys.stderr,
        )
        return ExitCode.FAILED
    if result.status == "partial":
        print(
            "this worker's folds are done; the last worker to finish scores the folds "
            f"(see {result.path}/grid.csv)",
            file=sys.stderr,
        )
    return ExitCode.OK


def _with_app(spec, path, args, place) -> int:
    """The app on its HParams screen while the folds train; scoring once it closes."""
    from malaria_tui.engine import cvdir
    from malaria_tui.engine.cv import runner
    from malaria_tui.tui.grid_app import run_grid_app

    grid = run_grid_app(
        spec, path, args.runs_dir, bool(args.resume), placement=place, shard=args.shard,
        test_best=False,
    )  # fmt: skip
    summary = None
    if grid.status == "completed" and not grid.failed:
        print("scoring every fold out of fold and on the outer test split ...", flush=True)
        summary = runner.finish(cvdir.open_cv(path))
    return _finish(runner.CVResult(grid.path, grid.status, summary, grid.failed))
