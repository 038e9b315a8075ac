"""Headless rendering of engine events: Rich progress on a terminal, plain lines elsewhere.

Plain mode (pipes, ``tee``, ``nohup``) prints one line per epoch with no control characters,
so logs stay greppable.
"""

from __future__ import annotations

import sys
import time

from malaria_tui.engine.events import Event

SHOW = ("loss", "accuracy", "auc")
POINTS = {"sensitivity_target": "sensitivity target", "youden": "Youden"}


def _fmt(logs: dict, prefix: str = "") -> str:
    return " ".join(f"{prefix}{k}={logs[prefix + k]:.4f}" for k in SHOW if prefix + k in logs)


def _num(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None or v != v else f"{v:.{digits}f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class PlainReporter:
    """One line per event that matters; at the end, what a person needs next: where the run
    is, its figures rounded, and the commands that use it."""

    def __init__(self, stream=None):
        self.out = stream or sys.stdout
        self.run_dir = ""
        self.started = time.monotonic()
        self.best_epoch: int | None = None

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, ev: Event) -> None:
        k = ev.kind
        if k == "run_started":
            self.run_dir, self.started = ev.run_dir, time.monotonic()
            what = "resumed" if ev.resumed else "started"
            self._print(
                f"run {what}: {ev.run_dir} | train {ev.n_train}, val {ev.n_val}, test {ev.n_test} images | "
                f"{ev.epochs} epochs x {ev.steps_per_epoch} steps"
            )
        elif k == "phase":
            self._print(f"{ev.what} ...")
        elif k == "checkpoint_saved" and ev.role == "best":
            self.best_epoch = ev.epoch + 1
        elif k == "epoch_end":
            self._print(
                f"epoch {ev.epoch + 1}/{ev.epochs} {ev.seconds:.1f}s {ev.images_per_sec:.0f} img/s "
                f"{_fmt(ev.train)} {_fmt(ev.val, 'val_')}"
            )
        elif k == "log" and ev.level != "debug":
            self._print(f"{ev.level}: {ev.message}")
        elif k == "evaluation_done":
            self._evaluation(ev.split, ev.metrics)
        elif k == "run_interrupted":
            self._print(
                f"interrupted at epoch {ev.epoch + 1}, step {ev.step}; resumable checkpoint: {ev.checkpoint}"
            )
        elif k == "run_failed":
            self._print(f"run failed: {ev.reason}")
        elif k == "run_finished":
            self._finished(ev)

    def _evaluation(self, split: str, m: dict) -> None:
        """The split's figures at 0.5 and at every threshold chosen on validation."""
        self._print(
            f"{split}: accuracy={_num(m['accuracy'])} auc={_num(m['auc'])} ({m['n']} cells)"
        )
        rows = [(f"{m['threshold']:.3f}", "", m)]
        for name, at in m.get("at", {}).items():
            rows.append(
                (f"{at['threshold']:.3f}", f" ({POINTS.get(name, name)}, chosen on val)", at)
            )
        for th, why, at in rows:
            self._print(
                f"  at {th}{why}: sensitivity={_num(at['sensitivity'])} "
                f"specificity={_num(at['specificity'])} accuracy={_num(at['accuracy'])}"
            )
        if rv := m.get("reviewed"):  # the honesty rule: beside the original labels, named
            self._print(
                f"{split} on the reviewed labels ({rv['relabelled']} relabelled, "
                f"{rv['excluded']} excluded of {rv['reviewed']} reviewed): "
                f"accuracy={_num(rv['accuracy'])} auc={_num(rv['auc'])} ({rv['n']} cells)"
            )

    def _finished(self, ev: Event) -> None:
        best = ev.best
        at = f" at epoch {self.best_epoch}" if self.best_epoch else ""
        self._print(
            f"run {ev.status} after {ev.epochs_done} epochs "
            f"({_duration(time.monotonic() - self.started)}); "
            f"best {best['monitor']}={_num(best['value'])}{at}"
        )
        if self.run_dir:
            self._print(f"run directory: {self.run_dir}")
            self._print(
                f"next: malaria-tui evaluate {self.run_dir} | malaria-tui watch {self.run_dir} | "
                f"malaria-tui export {self.run_dir} --format tflite"
            )

    def close(self) -> None:
        pass


class RichReporter(PlainReporter):
    """Epoch and batch bars with ETA, images/s and live loss/accuracy, narrow enough for 80
    columns; they vanish when the run ends, leaving the epoch lines and the summary."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=False)
        super().__init__(self.console.file)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TimeRemainingColumn(compact=True),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=True,
        )
        self.epochs_task = None
        self.batch_task = None

    def _print(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def __call__(self, ev: Event) -> None:
        k = ev.kind
        if k == "run_started":
            super().__call__(ev)
            self.progress.start()
            self.epochs_task = self.progress.add_task(
                "epochs", total=ev.epochs, completed=ev.start_epoch, info=""
            )
            self.batch_task = self.progress.add_task(
                "batches", total=ev.steps_per_epoch, completed=ev.start_step, info=""
            )
        elif k == "batch" and self.batch_task is not None:
            info = f"{ev.images_per_sec:,.0f} img/s " + _short(ev.metrics)
            self.progress.update(
                self.batch_task,
                completed=ev.step,
                total=ev.steps,
                info=info,
                description=f"epoch {ev.epoch + 1}",
            )
        elif k == "epoch_end" and self.epochs_task is not None:
            self.progress.update(
                self.epochs_task, completed=ev.epoch + 1, info=_short(ev.val, "val_")
            )
            self.progress.reset(self.batch_task, total=self.progress.tasks[1].total, info="")
            super().__call__(ev)
        else:
            if k in ("run_finished", "run_failed", "run_interrupted", "evaluation_done") or (
                k == "phase" and ev.what.startswith("evaluating")
            ):
                self.close()
            super().__call__(ev)

    def close(self) -> None:
        if self.progress.live.is_started:
            self.progress.stop()


def _short(logs: dict, prefix: str = "") -> str:
    """Live figures for a progress bar: 3 decimals, short names, so the bar fits 80 columns."""
    names = {"loss": "loss", "accuracy": "acc", "auc": "auc"}
    return " ".join(f"{names[k]} {logs[prefix + k]:.3f}" for k in SHOW if prefix + k in logs)


def reporter(force_plain: bool = False) -> PlainReporter:
    if not force_plain and sys.stdout.isatty():
        return RichReporter()
    return PlainReporter()


def run_training(job, plain: bool, stop=None) -> int:
    """Run a training job with headless output; Ctrl+C or SIGTERM (or setting ``stop``) stops
    it at a checkpoint. Returns the exit code; ``UserError`` passes through."""
    from malaria_tui.cli.exitcodes import ExitCode
    from malaria_tui.cli.stopping import run_headless

    run, stopped = run_headless(
        job, lambda: reporter(force_plain=plain), "training failed", stop=stop
    )
    if run is None:
        return ExitCode.FAILED
    if stopped or run.status() == "interrupted":
        print(f"resume with: malaria-tui resume {run.path}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return ExitCode.OK
