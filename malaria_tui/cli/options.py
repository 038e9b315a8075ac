"""Options that several commands share, each defined once with its help text.

A command's ``add_arguments`` picks the ones it takes; :func:`overrides` is the one place that
turns ``--set``/``--data``/``--name`` into config overrides.
"""

from __future__ import annotations

import argparse
import json

DATA_SPECS = (
    "sample (the bundled 1,500 cells) | tfds (TensorFlow Datasets 'malaria') | "
    "tfds:DATA_DIR (its files already in DATA_DIR, offline) | folder:PATH (subfolders "
    "Parasitized/ and Uninfected/, any image format and size)"
)


def config(p: argparse.ArgumentParser, what: str = "TOML run config") -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        help=f"{what} (default: the built-in defaults, as in configs/default.toml)",
    )


def set_(p: argparse.ArgumentParser, example: str = "train.epochs=3") -> None:
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help=f"override a config key (repeatable), e.g. {example}; values are TOML literals",
    )


def data(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        metavar="SPEC",
        help=f"data source, same as --set data.source=SPEC: {DATA_SPECS}",
    )


def runs_dir(p: argparse.ArgumentParser, what: str = "where run directories go") -> None:
    p.add_argument("--runs-dir", metavar="DIR", default="runs", help=f"{what} (default: ./runs)")


def name(p: argparse.ArgumentParser, what: str = "run") -> None:
    p.add_argument("--name", help=f"{what} name (part of the {what} directory's name)")


def no_ui(p: argparse.ArgumentParser, what: str = "train") -> None:
    p.add_argument(
        "--no-ui",
        action="store_true",
        help=f"{what} headless, progress on stdout, instead of in the app",
    )


def plain(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plain",
        action="store_true",
        help="one plain line per epoch even on a terminal (no progress bars)",
    )


def train_in(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--train-in",
        choices=("process", "thread"),
        default="process",
        help="app only: train in a child process the window follows, which can go on after "
        "the window quits (default), or in a thread of the window's process",
    )


def json_(p: argparse.ArgumentParser, what: str = "print one JSON object instead of a table"):
    p.add_argument("--json", action="store_true", help=what)


def verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log output")


def probability(text: str) -> float:
    """An argparse type for thresholds: a number in [0, 1], refused with one line otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1, refused with one line otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give 1 or more")
    return value


def _shard(text: str) -> tuple[int, int]:
    """``I/N``: this worker's share, the trials at positions I, I+N, I+2N... (0 <= I < N)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: write I/N, e.g. 0/4 for the first of 4 workers"
        ) from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(
            f"{text}: I must be 0 to N-1 (the workers of --shard 0/2 and 1/2 split a grid in two)"
        )
    return i, n


def parallel(p: argparse.ArgumentParser, what: str = "trials") -> None:
    """``--parallel``, ``--devices`` and ``--shard``: several runs at once, here or on many
    machines (docs/gpu.md)."""
    p.add_argument(
        "--parallel",
        type=positive,
        default=1,
        metavar="N",
        help=f"train up to N {what} at once, each in its own process: one GPU each, round-robin "
        "(default 1)",
    )
    p.add_argument(
        "--devices",
        metavar="IDS",
        help="the GPUs for --parallel, as CUDA numbers them, e.g. 0,1,2,3 (default: every visible "
        "GPU; none: the CPU cores are split between the processes)",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help=f"run only this worker's share of the {what} (positions I, I+N, ...), so N workers "
        "on machines sharing the folder split the work, e.g. a Slurm array",
    )


def overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` values, then ``--data`` and ``--name`` as the config keys they stand for."""
    out = list(getattr(args, "set", None) or [])
    if getattr(args, "data", None):
        out.append(f"data.source={json.dumps(args.data)}")
    if getattr(args, "name", None):
        out.append(f"name={json.dumps(args.name)}")
    return out


def load_config(args: argparse.Namespace):
    """The validated run config of ``--config`` with :func:`overrides` applied."""
    from malaria_tui.engine import config as engine_config

    return engine_config.load(getattr(args, "config", None), overrides(args))
