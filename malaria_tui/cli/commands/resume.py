"""``malaria-tui resume RUN_DIR``: continue an interrupted run where it stopped."""

from __future__ import annotations

import argparse

from malaria_tui.cli import options

NAME = "resume"
SUMMARY = "continue an interrupted run where it stopped (epoch, step, optimizer, RNG)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run directory to continue")
    options.no_ui(p, "resume")
    options.plain(p)
    options.train_in(p)


def run(args: argparse.Namespace) -> int:
    from malaria_tui.engine import rundir

    run_dir = rundir.open_run(args.run_dir)
    if not args.no_ui:
        from malaria_tui.cli.app_runner import run_app
        from malaria_tui.tui.app import create_app

        return run_app(
            create_app(
                runs_dir=str(run_dir.path.parent), resume_run=run_dir, train_in=args.train_in
            )
        )
    from malaria_tui.cli.commands.train import train_job
    from malaria_tui.cli.headless import run_training

    return run_training(
        lambda stop, report: train_job(None, None, run_dir, stop, report), args.plain
    )
