"""The grid's headless output: a line per trial and the final table, best first."""

from __future__ import annotations

import json
import math
import sys


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

    def __init__(self, plain: bool = False, stream=None, noun: str = "trial"):
        self.plain = plain
        self.noun = noun  # "fold" for a cross-validation's folds
        self.out = stream or sys.stdout
        self.report = None
        self.grid_dir = ""
        self.side_by_side = False  # trials train in their own processes: one line per epoch

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
            self.side_by_side = ev.parallel > 1
            how = f", {ev.parallel} at once" if ev.parallel > 1 else ""
            share = f" (shard {ev.shard})" if ev.shard else ""
            kind = "cv" if self.noun == "fold" else "grid"
            self._print(
                f"{kind} {what}: {ev.grid_dir} | {ev.trials} {self.noun}s, {ev.todo} to run"
                f"{share}{how}"
            )
        elif k == "trial_started":
            self.close()
            params = " ".join(f"{key}={_param(v)}" for key, v in ev.params.items())
            how = " (resuming)" if ev.resumed else ""
            self._print(f"{self.noun} {ev.index}/{ev.trials} {ev.name}{how}: {params}")
            if not self.side_by_side:
                self.report = (
                    PlainReporter(self.out)
                    if self.plain or self.out is not sys.stdout
                    else reporter()
                )
        elif k == "trial_progress":
            figures = " ".join(
                f"{m}={_fmt(ev.val[m])}" for m in ("val_auc", "val_accuracy") if m in ev.val
            )
            self._print(
                f"{self.noun} {ev.index}/{ev.trials} {ev.name} epoch {ev.epoch + 1}/{ev.epochs} "
                f"{figures} ({ev.seconds:.1f}s)"
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
            self._print(
                f"{self.noun} {ev.index}/{ev.trials} {ev.name} {ev.status}{why}{sep}{figures}"
            )
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
                    + (
                        "(the test split is scored once every fold has finished)"
                        if self.noun == "fold"
                        else "(the test split is kept for the best trial)"
                    )
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
