"""``malaria-tui watch [RUN_DIR]``: the app attached to a run started elsewhere."""

from __future__ import annotations

import argparse
from pathlib import Path

from malaria_tui.cli import options

NAME = "watch"
SUMMARY = "open the app on a run, live or finished (the newest under --runs-dir by default)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dir", metavar="RUN_DIR", nargs="?", help="the run to follow (default: the newest)"
    )
    options.runs_dir(p, "where to look for the newest run")


def run(args: argparse.Namespace) -> int:
    from malaria_tui.cli.app_runner import run_app
    from malaria_tui.engine import rundir
    from malaria_tui.tui.app import create_app

    run_dir = rundir.open_run(args.run_dir) if args.run_dir else rundir.newest(args.runs_dir)
    return run_app(create_app(runs_dir=str(Path(run_dir.path).parent), watch_run=run_dir))
