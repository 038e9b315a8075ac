"""``malaria-tui grid``: hyper-parameter search from a TOML file with a ``[grid]`` section.

    malaria-tui grid --config configs/grid.toml [--no-ui] [--set KEY=VALUE ...]
    malaria-tui grid --resume GRID_DIR [--no-ui]

Headless (``--no-ui``): per trial a header line, then the usual training progress; at the end
a table sorted by the ranking metric and the best trial's test figures. Without ``--no-ui`` the
TUI opens on its HParams screen while the grid trains in the background; quitting the TUI stops
the grid at a resumable checkpoint. Exit codes as for training: 0 done, 1 no trial finished
(e.g. every loss became NaN), 2 bad input (one line, before anything trains), 130 interrupted.

:func:`build_parser` and :func:`run` are what ``malaria_tui.cli`` dispatches to; :func:`main`
runs the command on its own (``python -m malaria_tui.grid_cli``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading

from malaria_tui.cli.main import ExitCode, _Parser

DESCRIPTION = (
    "Hyper-parameter search: every combination of the values in the config's [grid.values] "
    "(or grid.sample random ones), one run directory per trial, ranked on the validation split; "
    "only the best trial is scored on the test split. See configs/grid.toml."
)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``grid`` options (all but ``--verbose``, which ``cli._common`` adds)."""
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--config", metavar="FILE", help="TOML run config with a [grid] section (configs/grid.toml)"
    )
    what.add_argument(
        "--resume",
        metavar="GRID_DIR",
        help="continue an interrupted grid: finished trials are skipped, an unfinished one resumes",
    )
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a base key (train.epochs=3) or a grid key (grid.sample=4, "
        "grid.values.model.dropout=[0.2,0.4])",
    )
    p.add_argument("--data", metavar="SPEC", help="data source (same as --set data.source=SPEC)")
    p.add_argument(
        "--runs-dir",
        metavar="DIR",
        default="runs",
        help="where the grid directory goes (default: ./runs)",
    )
    p.add_argument("--name", help="grid name (part of the grid directory name)")
    p.add_argument("--no-ui", action="store_true", help="headless: progress and a table on stdout")
    p.add_argument(
        "--plain", action="store_true", help="plain one-line-per-epoch output even on a terminal"
    )
    return p


def build_parser(parser_class: type[argparse.ArgumentParser] = _Parser) -> argparse.ArgumentParser:
    """The whole ``malaria-tui grid`` parser, ``--verbose`` included (for :func:`main`)."""
    p = add_arguments(parser_class(prog="malaria-tui grid", description=DESCRIPTION))
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log output")
    return p


def load_spec(args):
    """The validated grid of ``--config`` with ``--set``/``--data``/``--name`` applied."""
    from malaria_tui.engine.grid import spec

    overrides = list(args.set)
    if args.data:
        overrides.append(f"data.source={json.dumps(args.data)}")
    if args.name:
        overrides.append(f"name={json.dumps(args.name)}")
    return spec.load(args.config, overrides)


def run(args) -> int:
    """Run the parsed ``grid`` command; a ``UserError`` propagates (the caller prints one line)."""
    from malaria_tui.engine.errors import ConfigError
    from malaria_tui.engine.grid import search

    if args.resume:
        if args.set or args.data or args.name:
            raise ConfigError(
                "--resume: the grid's own grid.toml is used; --set, --data and --name apply "
                "to a new grid (--config) only"
            )
        path, spec = search.open_grid(args.resume)
        resumed = True
    else:
        spec = load_spec(args)  # every trial validated: bad input stops here, nothing created
        path, resumed = None, False
    if not args.no_ui:
        return _with_tui(spec, path, args.runs_dir, resumed)

    def job(stop, on_event):
        if resumed:
            return search.run_in_dir(path, spec, on_event=on_event, stop=stop, resumed=True)
        return search.run_grid(spec, runs_dir=args.runs_dir, on_event=on_event, stop=stop)

    return _headless(job, args.plain)


def main(argv: list[str] | None = None) -> int:
    """``malaria-tui grid ...`` on its own, with the CLI's one-line errors and exit codes."""
    from malaria_tui.engine.errors import UserError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        from malaria_tui.engine import tfenv

        tfenv.set_verbose(args.verbose)
        return int(run(args))
    except SystemExit as e:
        return int(e.code or 0)
    except UserError as e:
        print(f"malaria-tui: {e}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("malaria-tui: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


# --- headless ----------------------------------------------------------------------------------


def _headless(job, plain: bool) -> int:
    """Run the grid with progress on stdout; Ctrl+C or SIGTERM stops it at a checkpoint."""
    from malaria_tui.cli.stopping import run_headless

    def hint(printer: GridPrinter) -> str | None:
        if printer.grid_dir:  # a runtime fault in a trial: the grid is resumable
            return f"resume with: malaria-tui grid --resume {printer.grid_dir}"
        return None

    result, _ = run_headless(job, lambda: GridPrinter(plain=plain), "grid stopped", hint)
    if result is None:
        return ExitCode.FAILED
    return _finish(result, plain)


def _finish(result, plain: bool) -> int:
    print_table(result, plain=plain)
    if result.status == "interrupted":
        print(f"resume with: malaria-tui grid --resume {result.path}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    if result.failed:
        print(
            f"malaria-tui: {len(result.failed)} trial(s) failed: {', '.join(result.failed)}",
            file=sys.stderr,
        )
    if result.best is None:
        print("malaria-tui: no trial finished with a usable metric", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


def _fmt(v) -> str:
    """A metric for the table: 4 decimals, or empty when there is none."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4f}" if math.isfinite(v) else "nan"
    return "" if v is None else str(v)


def _param(v) -> str:
    """A hyper-parameter value as written in the grid (0.001, not 0.0010)."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return v if isinstance(v, str) else json.dumps(v)


class GridPrinter:
    """Grid events as lines; each trial's own events go to a fresh headless reporter."""

    def __init__(self, plain: bool = False, stream=None):
        self.plain = plain
        self.out = stream or sys.stdout
        self.report = None
        self.grid_dir = ""

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self.report is not None:
            self.report.close()
            self.report = None

    def __call__(self, ev) -> None:
        from malaria_tui.cli.headless import PlainReporter, reporter

        k = ev.kind
        if k == "grid_started":
            self.grid_dir = ev.grid_dir
            what = "resumed" if ev.resumed else "started"
            self._print(f"grid {what}: {ev.grid_dir} | {ev.trials} trials, {ev.todo} to run")
        elif k == "trial_started":
            self.close()
            params = " ".join(f"{key}={_param(v)}" for key, v in ev.params.items())
            how = " (resuming)" if ev.resumed else ""
            self._print(f"trial {ev.index}/{ev.trials} {ev.name}{how}: {params}")
            self.report = (
                PlainReporter(self.out) if self.plain or self.out is not sys.stdout else reporter()
            )
        elif k == "trial_ended":
            self.close()
            row = ev.row
            figures = " ".join(
                f"{m}={_fmt(row['metrics'][m])}"
                for m in ("val_auc", "val_accuracy", "val_loss")
                if m in row["metrics"]
            )
            why = f" ({row['error']})" if row.get("error") else ""
            sep = ": " if figures else ""
            self._print(f"trial {ev.index}/{ev.trials} {ev.name} {ev.status}{why}{sep}{figures}")
        elif k == "best_tested":
            t = ev.test
            self._print(
                f"best trial {ev.name} ({ev.metric}={_fmt(ev.value)}), scored once on the test split: "
                f"accuracy={t['accuracy']:.4f} auc={_fmt(t['auc'])} "
                f"sensitivity={t['sensitivity']:.4f} specificity={t['specificity']:.4f}"
            )
        elif k == "grid_ended":
            pass
        elif k == "evaluation_done":
            if ev.split != "test" and self.report is not None:
                self.report.close()  # a live progress display ends before the line below
                m = ev.metrics
                self._print(
                    f"{ev.split}: accuracy={m['accuracy']:.4f} auc={_fmt(m['auc'])} "
                    f"(the test split is kept for the best trial)"
                )
        elif self.report is not None:
            self.report(ev)


def table_rows(result) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the final table, best first."""
    spec, summary = result.spec, result.summary
    metrics = [spec.metric, *(m for m in ("val_loss", "val_accuracy") if m != spec.metric)]
    head = ["rank", "trial", "status", *spec.keys, *metrics, "epochs", "test_auc", "test_accuracy"]
    rows = []
    for r in summary.ranked():
        rows.append(
            [
                "" if r["rank"] is None else str(r["rank"]),
                r["trial"],
                r["status"],
                *(_param(r["params"][k]) for k in spec.keys),
                *(_fmt(r["metrics"].get(m)) for m in metrics),
                str(r["epochs"]),
                _fmt(r["test"].get("test_auc")),
                _fmt(r["test"].get("test_accuracy")),
            ]
        )
    return head, rows


def _fit(head: list[str], rows: list[list[str]], spec, width: int) -> list[int]:
    """Indices of the columns to show in ``width`` characters, most useful first (the trial
    name already spells out the varied values, so those columns go first on a narrow screen)."""
    size = [
        max(len(head[i].rsplit(".", 1)[-1]), *(len(r[i]) for r in rows)) + 3
        for i in range(len(head))
    ]
    order = ["rank", "trial", spec.metric, "test_auc", "status", "val_loss", "val_accuracy"]
    order += [h for h in head if h not in order and h in spec.keys] + [
        h for h in head if h not in order
    ]
    keep, used = [], 0
    for name in order:
        i = head.index(name)
        if used + size[i] < width or len(keep) < 2:
            keep.append(i)
            used += size[i]
    return sorted(keep)


def print_table(result, plain: bool = False, stream=None) -> None:
    out = stream or sys.stdout
    head, rows = table_rows(result)
    title = (
        f"{result.path}: {len(rows)} trials by {result.spec.metric} "
        f"({'higher' if result.spec.mode == 'max' else 'lower'} is better); "
        f"tensorboard --logdir {result.path}"
    )
    if not plain and out is sys.stdout and sys.stdout.isatty():
        from rich import box
        from rich.console import Console
        from rich.table import Table

        console = Console()
        console.print(title, highlight=False, markup=False)
        keep = _fit(head, rows, result.spec, console.width)
        t = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
        for i in keep:  # dotted keys by their last part
            t.add_column(head[i].rsplit(".", 1)[-1], no_wrap=True)
        for row in rows:
            t.add_row(*(row[i] for i in keep), style="bold green" if row[0] == "1" else None)
        console.print(t)
        return
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    print(title, file=out)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(), file=out)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
    out.flush()


# --- with the TUI ------------------------------------------------------------------------------


def _with_tui(spec, path, runs_dir: str, resumed: bool) -> int:
    """The grid in a background thread, the TUI on its HParams screen reading ``grid.csv``."""
    from malaria_tui.engine.grid import search

    if path is None:
        path = search.create_grid_dir(runs_dir, spec)
    stop = threading.Event()
    box: dict = {}

    def work():
        try:
            box["result"] = search.run_in_dir(path, spec, stop=stop, resumed=resumed)
        except BaseException as e:  # noqa: BLE001 - reported after the TUI closes
            box["error"] = e

    worker = threading.Thread(target=work, name="grid", daemon=True)
    worker.start()
    from malaria_tui.tui.app import create_app

    try:
        create_app(
            config=spec.base, runs_dir=str(path.parent), grid_dir=path, initial="hparams"
        ).run()
    finally:
        if worker.is_alive():
            stop.set()
            print("stopping the grid: saving a resumable checkpoint ...", file=sys.stderr)
        worker.join()
    if "error" in box:
        raise box["error"]
    return _finish(box["result"], plain=False)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
