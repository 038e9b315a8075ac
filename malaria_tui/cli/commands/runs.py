"""``malaria-tui runs [RUNS_DIR]``: the Runs screen's table, headless.

One line per run (:mod:`malaria_tui.engine.run_summary`, shared with the app): name, start,
model, status, epochs, the best value of the monitored validation metric and its epoch, the
test figures when the run was scored, and what its config changes from the defaults. On a
terminal a Rich table that fits its width (the less useful columns go first); through a pipe
plain aligned columns; ``--json`` a list of objects, ``--csv`` one row per run.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from malaria_tui.cli import options
from malaria_tui.cli.exitcodes import ExitCode

NAME = "runs"
SUMMARY = (
    "list and compare runs: best validation metric and its epoch, test figures, config changes"
)

# The Rich table drops columns in this order until it fits the terminal.
DROP_ORDER = (
    "changes",
    "monitor",
    "date",
    "best_epoch",
    "model",
    "epochs",
    "test_acc",
    "status",
)
CSV_FIELDS = (
    "name",
    "path",
    "date",
    "model",
    "status",
    "epochs_done",
    "epochs_total",
    "monitor",
    "mode",
    "best",
    "best_epoch",
    "test_accuracy",
    "test_auc",
    "changes",
)


def _sort_key(text: str) -> str:
    from malaria_tui.engine.run_summary import COLUMNS, sort_key_name

    key = sort_key_name(text.strip().lower())
    if key is None:
        raise argparse.ArgumentTypeError(f"unknown sort key {text!r}; one of {', '.join(COLUMNS)}")
    return key


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "runs_dir",
        metavar="RUNS_DIR",
        nargs="?",
        default="runs",
        help="a runs folder, a grid folder (its trials) or one run (default: ./runs)",
    )
    p.add_argument(
        "--sort",
        metavar="KEY",
        type=_sort_key,
        default="date",
        help="sort by a column: name, date, model, status, epochs, monitor, best, best_epoch, "
        "test_acc, test_auc, changes (default: date). Metrics sort best first (best follows "
        "each run's monitor mode, so lower first for a loss), date newest first, epochs most "
        "first, text A-Z; runs without a value go last",
    )
    p.add_argument(
        "--reverse", action="store_true", help="reverse the --sort order (missing values stay last)"
    )
    fmt = p.add_mutually_exclusive_group()
    options.json_(fmt, "print a JSON list, one object per run")
    fmt.add_argument("--csv", action="store_true", help="print one CSV row per run")


def run(args: argparse.Namespace) -> int:
    from malaria_tui.engine.errors import RunDirError
    from malaria_tui.engine.run_summary import runs_under, sort_runs, summarize_all
    from malaria_tui.engine.rundir import CONFIG, RunDir

    where = Path(args.runs_dir).expanduser()
    if not where.exists():
        raise RunDirError(f"{where}: no such runs directory")
    if not where.is_dir():
        raise RunDirError(f"{where}: not a directory; pass a runs folder such as ./runs")
    runs = [RunDir(where.resolve())] if (where / CONFIG).is_file() else runs_under(where)
    summaries = sort_runs(summarize_all(runs), args.sort, args.reverse)
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries], indent=2))
    elif args.csv:
        _print_csv(summaries)
    elif not summaries:
        print(f"malaria-tui: no runs in {where} yet", file=sys.stderr)
    else:
        from rich.console import Console

        console = Console()
        if console.is_terminal:
            _print_rich(console, summaries, args.sort, args.reverse)
        else:
            _print_plain(summaries)
    return ExitCode.OK


# --- output ------------------------------------------------------------------------------------


def _num(v: float | None, digits: int = 4) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _cells(s, short_changes: bool = False) -> dict[str, str]:
    from malaria_tui.engine.run_summary import format_changes

    return {
        "name": s.name,
        "date": s.date,
        "model": s.model,
        "status": s.status,
        "epochs": f"{s.epochs_done}/{s.epochs_total}" if s.epochs_total else "",
        "monitor": s.monitor,
        "best": _num(s.best),
        "best_epoch": "" if s.best_epoch is None else str(s.best_epoch),
        "test_acc": _num(s.test_accuracy),
        "test_auc": _num(s.test_auc),
        "changes": format_changes(s.changes, short=short_changes),
    }


def _print_csv(summaries) -> None:
    from malaria_tui.engine.run_summary import format_changes

    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for s in summaries:
        d = s.to_dict() | {"changes": format_changes(s.changes)}
        w.writerow(["" if d[k] is None else d[k] for k in CSV_FIELDS])


def _print_plain(summaries) -> None:
    """Aligned columns, no colour and no box: for grep, awk and less."""
    from malaria_tui.engine.run_summary import COLUMNS

    rows = [_cells(s) for s in summaries]
    cols = [c for c in COLUMNS if c == "name" or any(r[c] for r in rows)]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    numeric = {"best", "best_epoch", "test_acc", "test_auc"}

    def line(values: dict[str, str]) -> str:
        parts = [
            values[c].rjust(widths[c]) if c in numeric else values[c].ljust(widths[c]) for c in cols
        ]
        return "  ".join(parts).rstrip()

    print(line({c: c for c in cols}))
    for r in rows:
        print(line(r))


def _middle(text: str, width: int) -> str:
    """``text`` cut in its middle to ``width``: a run's name keeps its time stamp and its end."""
    if len(text) <= width:
        return text
    head = min(15, width // 2)
    return text[:head] + "…" + text[len(text) - (width - head - 1) :]


def _print_rich(console, summaries, sort: str, reverse: bool) -> None:
    """A table that fits the terminal: columns are dropped (DROP_ORDER) until it does, then
    names are cut in their middle."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from malaria_tui.engine.run_summary import COLUMNS, DESCENDING

    rows = [_cells(s, short_changes=True) for s in summaries]
    monitors = {s.monitor for s in summaries}
    headers = {c: c for c in COLUMNS}
    if len(monitors) == 1:  # one monitor for all: say it once, in the header
        headers["best"] = f"best {next(iter(monitors))}"
    headers[sort] += " ▼" if (sort in DESCENDING) != reverse else " ▲"
    cols = [c for c in COLUMNS if c == "name" or any(r[c] for r in rows)]
    if len(monitors) == 1 and "monitor" in cols:
        cols.remove("monitor")
    if all(s.date and s.name.startswith(s.date[:4]) for s in summaries) and "date" in cols:
        cols.remove("date")  # every name starts with its own time stamp

    def width(c: str) -> int:
        return max(len(headers[c]), *(len(r[c]) for r in rows))

    def total(cs: list[str]) -> int:
        return sum(width(c) + 3 for c in cs) - 1  # one space each side, a rule between

    for c in DROP_ORDER:
        if total(cols) <= console.width:
            break
        if c in cols and c != sort:
            cols.remove(c)
    name_width = max(20, width("name") - max(0, total(cols) - console.width))
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    numeric = {"best", "best_epoch", "test_acc", "test_auc"}
    for c in cols:
        table.add_column(
            headers[c],
            justify="right" if c in numeric else "left",
            no_wrap=c != "changes",
            overflow="fold",
        )
    styles = {"completed": "green", "early_stopped": "green", "failed": "red"}
    for s, r in zip(summaries, rows, strict=True):
        cells = []
        for c in cols:
            text = _middle(r[c], name_width) if c == "name" else r[c]
            cells.append(Text(text, style=styles.get(s.status, "yellow") if c == "status" else ""))
        table.add_row(*cells)
    console.print(table, highlight=False)
