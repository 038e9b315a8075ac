"""What the TUI knows about one training run, built only from engine events.

Live training (relayed from the trainer process, or called back from a trainer thread) and
watch mode (tailing ``events.jsonl``) feed the very same :meth:`TrainingSession.apply`, so all
look identical. Pure Python: no Textual, no TensorFlow, so it is unit-testable and cheap.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from malaria_tui.engine import events as ev
from malaria_tui.tui.history import BoundedSeries

LOG_LINES = 500
COUNT_METRICS = frozenset({"tp", "tn", "fp", "fn", "n"})  # not worth a chart
LOG_METRICS = ("loss", "auc", "accuracy", "sensitivity", "specificity")
BATCH_POINTS = 2048
EPOCH_POINTS = 1024


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def fmt_metric(value) -> str:
    if isinstance(value, bool) or value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"


def describe_best(best: dict) -> str:
    """``{"monitor": "val_auc", "value": 0.93}`` (or ``{"val_auc": 0.93}``) as ``val_auc 0.9300``."""
    if "monitor" in best and "value" in best:
        return f"best {best['monitor']} {fmt_metric(best['value'])}"
    return "  ".join(f"{k} {fmt_metric(v)}" for k, v in best.items())


def _strip_val(key: str) -> str:
    return key[4:] if key.startswith("val_") else key


@dataclass
class LogLine:
    time: float
    level: str
    text: str


@dataclass
class TrainingSession:
    """State of the run being trained or watched (bounded whatever the run's length)."""

    status: str = "idle"  # idle | starting | running | stopping | completed | early_stopped | interrupted | failed
    run_dir: str = ""
    config: dict = field(default_factory=dict)
    epochs: int = 0
    steps_per_epoch: int = 0
    epoch: int = 0  # 0-based epoch of the last batch seen
    step: int = 0
    global_step: int = 0
    start_global_step: int = 0
    images_per_sec: float = 0.0
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    epochs_done: int = 0
    best: dict = field(default_factory=dict)
    last_train: dict = field(default_factory=dict)
    last_val: dict = field(default_factory=dict)
    test_metrics: dict = field(default_factory=dict)
    failure: str = ""
    checkpoint: str = ""
    phase: str = ""  # what the run does while no batch is counted (engine Phase events)
    started_at: float | None = None
    last_event_time: float | None = None
    # (event time, global step) samples used for the rate/ETA
    _rate_window: deque = field(default_factory=lambda: deque(maxlen=32))
    batch: dict[str, BoundedSeries] = field(default_factory=dict)
    epoch_train: dict[str, BoundedSeries] = field(default_factory=dict)
    epoch_val: dict[str, BoundedSeries] = field(default_factory=dict)
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    version: int = 0  # bumps on every change; the UI redraws when it moved
    log_total: int = 0  # lines ever logged (the deque keeps the last LOG_LINES)

    # --- derived --------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "stopping")

    @property
    def activity(self) -> str:
        """What the run is doing while no batch is counted ("compiling the training step",
        "evaluating the best model on the test split"), for a status line; "" otherwise.
        Before ``run_started`` arrives it is preparing the data."""
        if self.status == "starting":
            return self.phase or "preparing data"
        return self.phase if self.active else ""

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def metric_names(self) -> list[str]:
        names = (set(self.batch) | set(self.epoch_train) | set(self.epoch_val)) - COUNT_METRICS
        names.discard("loss")
        return ["loss", *sorted(names)] if names or self.batch or self.epoch_val else []

    @property
    def steps_per_second(self) -> float | None:
        if len(self._rate_window) < 2:
            return None
        (t0, s0), (t1, s1) = self._rate_window[0], self._rate_window[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    @property
    def eta_seconds(self) -> float | None:
        if not self.active:
            return 0.0 if self.status in ("completed", "early_stopped") else None
        rate = self.steps_per_second
        if not rate or not self.total_steps:
            return None
        return max(0.0, (self.total_steps - self.global_step) / rate)

    @property
    def elapsed_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = (
            self.last_event_time if not self.active else max(time.time(), self.last_event_time or 0)
        )
        return max(0.0, (end or self.started_at) - self.started_at)

    # --- updates ----------------------------------------------------------------------------

    def reset(self) -> None:
        fresh = TrainingSession()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def note(self, level: str, text: str, when: float | None = None) -> None:
        self.log.append(LogLine(when or time.time(), level, text))
        self.log_total += 1
        self.version += 1

    def apply(self, event: ev.Event) -> None:
        """Fold one engine event into the state."""
        self.version += 1
        self.last_event_time = event.time
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_run_started(self, e: ev.RunStarted) -> None:
        if not e.resumed:
            for series in (self.batch, self.epoch_train, self.epoch_val):
                series.clear()
        self.status = "running"
        self.phase = ""
        self.run_dir, self.config = e.run_dir, dict(e.config)
        self.epochs, self.steps_per_epoch = e.epochs, max(1, e.steps_per_epoch)
        self.n_train, self.n_val, self.n_test = e.n_train, e.n_val, e.n_test
        self.epoch, self.step = e.start_epoch, e.start_step
        self.global_step = self.start_global_step = (
            e.start_epoch * self.steps_per_epoch + e.start_step
        )
        self.started_at = e.time
        self.failure = ""
        self._rate_window.clear()
        self._rate_window.append((e.time, self.global_step))
        what = "resumed" if e.resumed else "started"
        self.note(
            "info",
            f"run {what}: {e.n_train} train / {e.n_val} val / {e.n_test} test images, "
            f"{e.epochs} epochs x {e.steps_per_epoch} steps",
            e.time,
        )

    def _on_phase(self, e: ev.Phase) -> None:
        self.phase = e.what
        if self.phase:
            self.note("info", f"{self.phase}…", e.time)

    def _on_batch(self, e: ev.BatchEnd) -> None:
        self.phase = ""  # the first batch: compiling is over
        if self.status in ("idle", "starting"):
            self.status = "running"
        if e.steps:
            self.steps_per_epoch = e.steps
        self.epoch, self.step = e.epoch, e.step
        gs = e.global_step or (e.epoch * max(1, self.steps_per_epoch) + e.step)
        self.global_step = gs
        self.images_per_sec = e.images_per_sec
        self._rate_window.append((e.time, gs))
        x = gs / max(1, self.steps_per_epoch)
        for k, v in e.metrics.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                self.batch.setdefault(k, BoundedSeries(BATCH_POINTS)).append(x, float(v))

    def _on_epoch_end(self, e: ev.EpochEnd) -> None:
        self.epochs_done = e.epoch + 1
        self.epochs = e.epochs or self.epochs
        self.last_train, self.last_val = dict(e.train), dict(e.val)
        x = float(e.epoch + 1)
        for k, v in e.train.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                self.epoch_train.setdefault(k, BoundedSeries(EPOCH_POINTS)).append(x, float(v))
        for k, v in e.val.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                self.epoch_val.setdefault(_strip_val(k), BoundedSeries(EPOCH_POINTS)).append(
                    x, float(v)
                )
        val = {_strip_val(k): v for k, v in e.val.items()}
        vals = "  ".join(f"{k} {fmt_metric(val[k])}" for k in LOG_METRICS if k in val)
        self.note(
            "info",
            f"epoch {e.epoch + 1}/{e.epochs} done in {fmt_duration(e.seconds)} "
            f"({e.images_per_sec:.0f} img/s)  val: {vals}",
            e.time,
        )

    def _on_checkpoint_saved(self, e: ev.CheckpointSaved) -> None:
        extra = f" ({e.monitor} {fmt_metric(e.value)})" if e.monitor and e.value is not None else ""
        self.checkpoint = e.path
        # "last" is written after the epoch counter moved on: its epoch is the number done
        done = e.epoch if e.role == "last" else e.epoch + 1
        self.note("info", f"checkpoint [{e.role}] after epoch {done}{extra}", e.time)

    def _on_evaluation_done(self, e: ev.EvaluationDone) -> None:
        self.phase = ""
        if e.split == "test":
            self.test_metrics = dict(e.metrics)
        shown = "  ".join(f"{k} {fmt_metric(e.metrics[k])}" for k in LOG_METRICS if k in e.metrics)
        self.note("info", f"evaluation on {e.split}: {shown}", e.time)

    def _on_log(self, e: ev.LogMessage) -> None:
        self.note(e.level, e.message, e.time)

    def _on_run_finished(self, e: ev.RunFinished) -> None:
        self.phase = ""
        self.status = e.status
        self.epochs_done = e.epochs_done
        self.best = dict(e.best)
        best = describe_best(e.best)
        self.note(
            "info", f"run {e.status.replace('_', ' ')} after {e.epochs_done} epochs  {best}", e.time
        )

    def _on_run_interrupted(self, e: ev.RunInterrupted) -> None:
        self.phase = ""
        self.status = "interrupted"
        self.checkpoint = e.checkpoint
        self.note(
            "warning",
            f"stopped at epoch {e.epoch + 1} step {e.step}; resumable checkpoint saved",
            e.time,
        )

    def _on_run_failed(self, e: ev.RunFailed) -> None:
        self.phase = ""
        self.status = "failed"
        self.failure = e.reason
        self.note("error", f"run failed: {e.reason}", e.time)

    # a grid's own events (engine.grid.search); its trials' runs come as the events above

    def _on_trial_started(self, e) -> None:
        how = " (resuming)" if e.resumed else ""
        self.note("info", f"grid trial {e.index}/{e.trials} {e.name}{how}", e.time)

    def _on_trial_progress(self, e) -> None:
        """A trial training in its own process (several at once): a line per epoch, since
        the charts follow one run and these trials run side by side."""
        auc = e.val.get("val_auc")
        figure = f" val_auc={auc:.4f}" if isinstance(auc, int | float) else ""
        self.note(
            "info",
            f"grid trial {e.index}/{e.trials} {e.name}: epoch {e.epoch + 1}/{e.epochs}{figure}",
            e.time,
        )

    def _on_trial_ended(self, e) -> None:
        self.note("info", f"grid trial {e.index}/{e.trials} {e.name}: {e.status}", e.time)

    def _on_grid_ended(self, e) -> None:
        best = f", best trial {e.best}" if e.best else ""
        self.note("info", f"grid {e.status}{best}", e.time)
