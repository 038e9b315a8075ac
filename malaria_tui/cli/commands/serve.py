"""``malaria-tui serve``: the app in a web browser (textual-serve), localhost by default."""

from __future__ import annotations

import argparse

from malaria_tui.cli import options
from malaria_tui.cli.exitcodes import ExitCode

NAME = "serve"
SUMMARY = "serve the app to a browser (textual-serve; localhost unless told otherwise)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, this machine only)",
    )
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    options.runs_dir(p, "where the served app keeps its runs")
    options.config(p, "TOML run config the served app starts with")


def run(args: argparse.Namespace) -> int:
    from malaria_tui.tui.serve import serve

    serve(host=args.host, port=args.port, runs_dir=args.runs_dir, config_path=args.config)
    return ExitCode.OK
