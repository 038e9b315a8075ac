"""``malaria-tui export RUN``: the best model as Keras, SavedModel or TFLite, checked."""

from __future__ import annotations

import argparse
import json

from malaria_tui.cli import options
from malaria_tui.cli.exitcodes import ExitCode

NAME = "export"
SUMMARY = (
    "export the best model (a CV directory: one model averaging its folds), checked against "
    "the original on the test images"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dir",
        metavar="RUN",
        help="a run directory with a best model, or a CV directory (its folds averaged)",
    )
    p.add_argument(
        "--format",
        choices=("keras", "savedmodel", "tflite"),
        default="keras",
        help="what to write (default: keras)",
    )
    p.add_argument(
        "--quantize", choices=("int8",), help="int8 post-training quantization (tflite only)"
    )
    p.add_argument("--out", metavar="PATH", help="where to write (default: RUN/export/...)")
    options.json_(p, "print the check's figures as one JSON object")


def run(args: argparse.Namespace) -> int:
    from malaria_tui.engine import tfenv
    from malaria_tui.engine.export import export_run

    tfenv.divert_native_stderr()
    report = export_run(args.run_dir, args.format, args.out, args.quantize)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return ExitCode.OK
    if "members" in report:
        print(f"one model averaging the {report['members']} fold models of {args.run_dir}")
    change = (
        f"accuracy {report['accuracy_original']:.4f} -> {report['accuracy_export']:.4f} "
        f"({report['accuracy_change']:+.4f})"
    )
    print(
        f"exported {report['path']} ({report['bytes'] / 1e6:.2f} MB); checked on "
        f"{report['checked_on']} test images: max |p - p_original| = "
        f"{report['max_abs_diff']:.2e}, {change}"
    )
    return ExitCode.OK
