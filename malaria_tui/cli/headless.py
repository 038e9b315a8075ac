"""Headless rendering of engine events: Rich progress on a terminal, plain lines elsewhere.

Plain mode (pipes, ``tee``, ``nohup``) prints one line per epoch with no control characters,
so logs stay greppable.
"""

from __future__ import annotations

import sys
import time

from malaria_tui.engine.events import Event

SHOW = ("loss", "accuracy", "auc")


def _fmt(logs: dict, prefix: str = "") -> str:
    return " ".join(f"{prefix}{k}={logs[prefix + k]:.4f}" for k in SHOW if prefix + k in logs)


class PlainReporter:
    def __init__(self, stream=None):
        self.out = stream or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, ev: Event) -> None:
        k = ev.kind
        if k == "run_started":
            what = "resumed" if ev.resumed else "started"
            self._print(
                f"run {what}: {ev.run_dir} | train {ev.n_train}, val {ev.n_val}, test {ev.n_test} images | "
                f"{ev.epochs} epochs x {ev.steps_per_epoch} steps"
            )
        elif k == "epoch_end":
            self._print(
                f"epoch {ev.epoch + 1}/{ev.epochs} {ev.seconds:.1f}s {ev.images_per_sec:.0f} img/s "
                f"{_fmt(ev.train)} {_fmt(ev.val, 'val_')}"
            )
        elif k == "log" and ev.level != "debug":
            self._print(f"{ev.level}: {ev.message}")
        elif k == "evaluation_done":
            m = ev.metrics
            th = m.get("thresholds", {})
            self._print(
                f"{ev.split}: accuracy={m['accuracy']:.4f} auc={m['auc']:.4f} sensitivity={m['sensitivity']:.4f} "
                f"specificity={m['specificity']:.4f} (threshold {m['threshold']:.2f}; "
                f"sensitivity-target threshold {th.get('sensitivity_target', float('nan')):.3f})"
            )
        elif k == "run_interrupted":
            self._print(
                f"interrupted at epoch {ev.epoch + 1}, step {ev.step}; resumable checkpoint: {ev.checkpoint}"
            )
        elif k == "run_failed":
            self._print(f"run failed: {ev.reason}")
        elif k == "run_finished":
            self._print(
                f"run {ev.status} after {ev.epochs_done} epochs; best {ev.best['monitor']}={ev.best['value']}"
            )

    def close(self) -> None:
        pass


class RichReporter(PlainReporter):
    """Epoch and batch bars with ETA, images/s and live loss/accuracy."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=False)
        super().__init__(self.console.file)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self.epochs_task = None
        self.batch_task = None
        self._started = time.monotonic()

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
            info = f"{ev.images_per_sec:,.0f} img/s  {_fmt(ev.metrics)}"
            self.progress.update(
                self.batch_task,
                completed=ev.step,
                total=ev.steps,
                info=info,
                description=f"epoch {ev.epoch + 1}",
            )
        elif k == "epoch_end" and self.epochs_task is not None:
            self.progress.update(
                self.epochs_task, completed=ev.epoch + 1, info=_fmt(ev.val, "val_")
            )
            self.progress.reset(self.batch_task, total=self.progress.tasks[1].total, info="")
            super().__call__(ev)
        else:
            if k in ("run_finished", "run_failed", "run_interrupted", "evaluation_done"):
                self.close()
            super().__call__(ev)

    def close(self) -> None:
        if self.progress.live.is_started:
            self.progress.stop()


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
