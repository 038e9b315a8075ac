"""``malaria-tui data SPEC``: what a data source holds, before anything trains on it."""

from __future__ import annotations

import argparse
import json

from malaria_tui.cli import options
from malaria_tui.cli.exitcodes import ExitCode

NAME = "data"
SUMMARY = "describe a data source: counts per class and split, patient groups, image sizes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "spec",
        metavar="SPEC",
        nargs="?",
        default="sample",
        help=f"the source (default: sample): {options.DATA_SPECS}",
    )
    options.config(p, "TOML run config whose [data] split settings apply")
    options.set_(p, "data.split_by='\"image\"'")
    options.json_(p)


def run(args: argparse.Namespace) -> int:
    from malaria_tui.engine import config, tfenv
    from malaria_tui.engine.data.describe import describe

    tfenv.divert_native_stderr()  # tfds imports TensorFlow, whose C++ logs would come first
    cfg = config.load(args.config, [*args.set, f"data.source={json.dumps(args.spec)}"])
    info = describe(cfg)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        from malaria_tui.cli.report import print_data

        print_data(info)
    return ExitCode.OK
