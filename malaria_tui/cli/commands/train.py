"""``malaria-tui [--no-ui]``: train a model, in the app or headless (the default command)."""

from __future__ import annotations

import argparse

from malaria_tui.cli import options

NAME = "train"
SUMMARY = (
    "train and evaluate a model: in the app (by default) or headless with --no-ui; "
    "the app trains in its own process unless --train-in thread"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.no_ui(p)
    options.config(p)
    options.set_(p)
    options.data(p)
    options.runs_dir(p)
    options.name(p)
    options.plain(p)
    options.train_in(p)


def run(args: argparse.Namespace) -> int:
    cfg = options.load_config(args)
    if not args.no_ui:
        from malaria_tui.cli.app_runner import run_app
        from malaria_tui.tui.app import create_app

        return run_app(create_app(config=cfg, runs_dir=args.runs_dir, train_in=args.train_in))
    from malaria_tui.cli.headless import run_training

    return run_training(
        lambda stop, report: train_job(cfg, args.runs_dir, None, stop, report), args.plain
    )


def train_job(cfg, runs_dir, run, stop, report):
    """One run trained with headless progress: a new one from ``cfg``, or ``run`` resumed."""
    from malaria_tui.engine.training.trainer import train

    return train(
        cfg, runs_dir=runs_dir, run=run, resume=run is not None, on_event=report, stop=stop
    )
