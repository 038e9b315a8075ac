"""``malaria-tui predict MODEL_OR_RUN PATH...``: diagnose new cell images."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from malaria_tui.cli import options
from malaria_tui.cli.exitcodes import ExitCode

NAME = "predict"
SUMMARY = "diagnose new images: P(Parasitized) per cell, parasitemia per folder with a 95% CI"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        metavar="MODEL_OR_RUN",
        help="a run directory, a CV directory (its folds averaged), a .keras or .tflite file, "
        "or a SavedModel folder",
    )
    p.add_argument(
        "paths", metavar="PATH", nargs="+", help="images or folders (searched recursively)"
    )
    p.add_argument(
        "--threshold",
        type=options.probability,
        metavar="X",
        help="decision threshold in [0, 1] (default: the run's chosen operating point)",
    )
    p.add_argument(
        "--operating-point",
        choices=("sensitivity_target", "youden", "default"),
        help="which of the run's thresholds to use (default: the run's eval.operating_point)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--csv", action="store_true", help="print one CSV row per cell")
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        help="average the 8 flips/90-degree rotations of each cell (default: off; on for a CV "
        "directory or an ensemble export when its eval.tta is)",
    )
    p.add_argument(
        "--explain", metavar="DIR", help="write a Grad-CAM overlay PNG per image into DIR"
    )


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """Cells done, rate and ETA on stderr while a terminal watches; nothing through a pipe.
    The bar vanishes when done, so the table (or the JSON) is all that stays."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("predicting"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(compact=True),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("cells", total=None, rate="")
        t0 = time.monotonic()

        def update(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - t0, 1e-9)
            bar.update(
                task, completed=done, total=total, rate=f"{rate:,.0f} cells/s" if done else ""
            )

        yield update


def run(args: argparse.Namespace) -> int:
    from malaria_tui.engine import tfenv
    from malaria_tui.engine.errors import UserError
    from malaria_tui.engine.inference import predictor
    from malaria_tui.engine.inference.diagnose import run_predict

    tfenv.divert_native_stderr()
    model = predictor.load(args.model, args.operating_point)
    if args.explain and model.kind != "keras":
        raise UserError("--explain needs a Keras model (a run directory or a .keras file)")
    if args.explain and model.members:
        raise UserError(
            f"--explain explains one model, not the mean of {len(model.members)}: "
            "give one fold's run directory"
        )
    tta = model.tta if args.tta is None else args.tta
    with _progress() as on_progress:
        cells, folders, bad, th, x = run_predict(
            model, args.paths, args.threshold, tta, on_progress, keep_inputs=bool(args.explain)
        )
    if args.explain:
        from malaria_tui.engine.explain import write_overlays

        write_overlays(model.model, x, [c.path for c in cells], Path(args.explain))
    from malaria_tui.cli.report import print_predictions

    print_predictions(
        cells,
        folders,
        bad,
        th,
        model,
        fmt="json" if args.json else "csv" if args.csv else "table",
        tta=tta,
    )
    return ExitCode.OK
