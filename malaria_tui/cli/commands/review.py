"""``malaria-tui review CV_DIR``: the cells whose out-of-fold probability contradicts their
label, surest first (confident learning: ``engine/review/suspects.py``).

The table fits 80 columns (cells by their shortest distinguishing path); ``--json`` and
``--csv`` hold every field and full paths. Decisions are made on the Review screen and go to a
label overlay (``CV_DIR/label_overrides.csv`` by default); ``data.label_overrides`` makes a run
train on them. No TensorFlow: it reads the CV directory's ``oof.csv``.
"""

from __future__ import annotations

import argparse

from malaria_tui.cli import options
from malaria_tui.cli.exitcodes import ExitCode

NAME = "review"
SUMMARY = (
    "suspect labels of a cross-validation (confident learning on its out-of-fold "
    "probabilities), surest first"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cv_dir", metavar="CV_DIR", help="a cross-validation made by `malaria-tui cv`")
    p.add_argument(
        "--top",
        type=options.positive,
        metavar="N",
        help="show the first N suspects (default: 20 in the table, all with --json/--csv); "
        "ranked by score, the out-of-fold P(given label): the lower, the surer it is wrong",
    )
    p.add_argument(
        "--test",
        action="store_true",
        help="also flag cells of the outer test split (from the fold ensemble's probabilities); "
        "decisions about them never change training, test is then scored on both labels",
    )
    p.add_argument(
        "--overlay",
        metavar="FILE",
        help="the label overlay whose decisions are shown (default: CV_DIR/label_overrides.csv)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--csv", action="store_true", help="print one CSV row per suspect")
    fmt.add_argument(
        "--app",
        action="store_true",
        help="open the app's Review screen on CV_DIR: each suspect large, one key to keep, "
        "relabel or exclude it",
    )


def run(args: argparse.Namespace) -> int:
    from malaria_tui.engine.review import suspects as sus

    if args.app:
        from malaria_tui.cli.app_runner import run_app
        from malaria_tui.engine import cvdir
        from malaria_tui.tui.app import create_app

        cv = cvdir.open_cv(args.cv_dir)  # a folder that is not one: one line, before the app
        return run_app(create_app(runs_dir=cv.path.parent, cv_dir=cv.path, initial="review"))

    top = args.top if (args.top or args.json or args.csv) else 20
    found = sus.for_cv(args.cv_dir, top=top, overlay=args.overlay, include_test=args.test)
    overlay = found.overlay
    if args.json:
        import json

        print(json.dumps(found.to_dict(), indent=2))
    elif args.csv:
        _csv(found)
    else:
        _table(found, overlay)
    return ExitCode.OK


def _csv(found) -> None:
    import csv
    import sys

    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["rank", "path", "split", "label", "prob", "patient", "fold", "score", "decision"])
    for s in found.suspects:
        w.writerow(
            [s.rank, s.path, s.split, s.label, f"{s.prob:.6f}", s.patient, s.fold,
             f"{s.score:.6f}", s.decision]
        )  # fmt: skip


def _table(found, overlay: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from malaria_tui.engine.inference.diagnose import short_paths

    c = Console()
    per = ", ".join(f"{n} {split}" for split, n in found.flagged_by_split.items())
    c.print(
        f"cleanlab flags {found.n_flagged} of {found.n_images} cells ({per}), surest first",
        highlight=False,
        soft_wrap=True,
    )
    if found.suspects:
        decided = any(s.decision for s in found.suspects)
        # what the other columns take (content + 2 spaces between columns), so names fit
        patient = max(len(s.patient) for s in found.suspects)
        others = [3, 11, 7, max(7, patient), 5] + ([7] if decided else [])
        room = c.width - sum(w + 2 for w in others) - 1
        names = short_paths([s.path for s in found.suspects], width=max(16, room))
        t = Table(box=None, pad_edge=False, header_style="bold underline")
        for name in ("#", "cell", "label", "P(par.)", "patient", "score"):
            t.add_column(name, justify="right" if name in ("#", "P(par.)", "score") else "left")
        if decided:
            t.add_column("decided")
        for s in found.suspects:
            label = "Parasitized" if s.label == 1 else "Uninfected"
            cell = ("test: " if s.split == "test" else "") + names[s.path]
            row = [str(s.rank), cell, label, f"{s.prob:.3f}", s.patient, f"{s.score:.3f}"]
            t.add_row(*row, *([s.decision or "-"] if decided else []))
        c.print(t)
        more = found.n_flagged - len(found.suspects)
        if more > 0:
            c.print(f"{more} more: --top N, or all of them with --json or --csv", highlight=False)
    c.print(f"decisions: {overlay}", highlight=False, markup=False, soft_wrap=True)
    c.print(
        f"a run on them: --set data.label_overrides='\"{overlay}\"'",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
