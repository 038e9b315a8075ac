"""``malaria-tui grid``: hyper-parameter search from a TOML file with a ``[grid]`` section.

Headless (``--no-ui``): per trial a header line, then the usual training progress; at the end
a table sorted by the ranking metric and the best trial's test figures. Without ``--no-ui`` the
app opens on its HParams screen while the grid trains; quitting the app stops the grid at a
resumable checkpoint. Exit codes as for training: 0 done, 1 no trial finished (e.g. every loss
became NaN), 2 bad input (one line, before anything trains), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from malaria_tui.cli import options
from malaria_tui.cli.exitcodes import ExitCode

NAME = "grid"
SUMMARY = (
    "hyper-parameter grid or random search: one run per trial, ranked on validation, "
    "the best one tested"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--config", metavar="FILE", help="TOML run config with a [grid] section (configs/grid.toml)"
    )
    what.add_argument(
        "--resume",
        metavar="GRID_DIR",
        help="continue an interrupted grid: finished trials are skipped, an unfinished one resumes",
    )
    options.set_(p, "train.epochs=3 (a base key) or grid.values.model.dropout=[0.2,0.4]")
    options.data(p)
    options.runs_dir(p, "where the grid directory goes")
    options.name(p, "grid")
    options.parallel(p)
    options.no_ui(p, "search")
    options.plain(p)


def load_spec(args: argparse.Namespace):
    """The validated grid of ``--config`` with ``--set``/``--data``/``--name`` applied."""
    from malaria_tui.engine.grid import spec

    return spec.load(args.config, options.overrides(args))


def run(args: argparse.Namespace) -> int:
    from malaria_tui.engine.errors import ConfigError
    from malaria_tui.engine.grid import placement as placing
    from malaria_tui.engine.grid import search

    devices = placing.parse_devices(args.devices) if args.devices else None
    if args.resume:
        if args.set or args.data or args.name:
            raise ConfigError(
                "--resume: the grid's own grid.toml is used; --set, --data and --name apply "
                "to a new grid (--config) only"
            )
        path, spec = search.open_grid(args.resume)
        resumed = True
    else:
        spec = load_spec(args)  # every trial validated: bad input stops here, nothing created
        path, resumed = None, False
    from malaria_tui.engine import tfenv

    tfenv.divert_native_stderr()  # counting GPUs or a shared folder's HParams file import TF
    place = placing.plan(args.parallel, devices)  # a GPU that is not there stops here too
    if args.shard and path is None:  # every worker of a job array joins one folder
        path = search.shared_grid_dir(args.runs_dir, spec)
    if not args.no_ui:
        return _with_app(spec, path, args.runs_dir, resumed, place, args.shard)

    def job(stop, on_event):
        grid_dir = path if path is not None else search.create_grid_dir(args.runs_dir, spec)
        return search.run_in_dir(
            grid_dir,
            spec,
            on_event=on_event,
            stop=stop,
            resumed=resumed,
            placement=place,
            shard=args.shard,
        )

    return _headless(job, args.plain)


def _headless(job, plain: bool) -> int:
    """Run the grid with progress on stdout; Ctrl+C or SIGTERM stops it at a checkpoint."""
    from malaria_tui.cli.grid_report import GridPrinter
    from malaria_tui.cli.stopping import run_headless

    def hint(printer: GridPrinter) -> str | None:
        if printer.grid_dir:  # a runtime fault in a trial: the grid is resumable
            return f"resume with: malaria-tui grid --resume {printer.grid_dir}"
        return None

    result, _ = run_headless(job, lambda: GridPrinter(plain=plain), "grid stopped", hint)
    if result is None:
        return ExitCode.FAILED
    return _finish(result, plain)


def _finish(result, plain: bool) -> int:
    from malaria_tui.cli.grid_report import print_table

    print_table(result, plain=plain)
    if result.status == "partial":
        left = sum(
            r["status"] not in ("completed", "early_stopped", "failed")
            for r in result.summary.rows.values()
        )
        print(
            f"this worker's share is done; {left} trial(s) of other workers are not finished yet: "
            f"the last worker to finish tests the best trial (see {result.path}/grid.csv)",
            file=sys.stderr,
        )
        return ExitCode.OK
    if result.status == "interrupted":
        print(f"resume with: malaria-tui grid --resume {result.path}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    if result.failed:
        print(
            f"malaria-tui: {len(result.failed)} trial(s) failed: {', '.join(result.failed)}",
            file=sys.stderr,
        )
    if result.best is None:
        print("malaria-tui: no trial finished with a usable metric", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


def _with_app(spec, path, runs_dir: str, resumed: bool, place, shard) -> int:
    """The app on its HParams screen, the grid trained by its training controller."""
    from malaria_tui.tui.grid_app import run_grid_app

    result = run_grid_app(spec, path, runs_dir, resumed, placement=place, shard=shard)
    return _finish(result, plain=False)
