"""One training run end to end: data, model, loop, checkpoints, events, final evaluation.

Front ends call :func:`train` (in a worker thread for the TUI); it writes the run directory
and hands every event to ``on_event`` as well. Setting the ``stop`` event makes it save a
resumable checkpoint at the current step and return.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malaria_tui.engine import rundir as rd
from malaria_tui.engine.config import Config, run_name
from malaria_tui.engine.errors import ConfigError, RunDirError, TrainingFailed
from malaria_tui.engine.events import (
    BatchEnd,
    CheckpointSaved,
    EpochEnd,
    EvaluationDone,
    Event,
    LogMessage,
    Phase,
    RunFailed,
    RunFinished,
    RunInterrupted,
    RunStarted,
)
from malaria_tui.engine.faults import explain_fault
from malaria_tui.engine.tfenv import KerasModel, Strategy
from malaria_tui.engine.tfenv import tf as _tf
from malaria_tui.engine.training import checkpoints as ck
from malaria_tui.engine.training import strategy as st
from malaria_tui.engine.training.monitor import Monitor
from malaria_tui.engine.training.throttle import Throttle

if TYPE_CHECKING:
    from malaria_tui.engine.data.pipeline import Prepared
    from malaria_tui.engine.training.custom_loop import CustomLoop
    from malaria_tui.engine.training.fit_loop import FitLoop
    from malaria_tui.engine.training.tensorboard_log import TensorBoardLog


class _Emitter:
    def __init__(self, writer: rd.EventWriter, on_event: Callable[[Event], None] | None):
        self.writer, self.on_event = writer, on_event

    def __call__(self, event: Event) -> None:
        self.writer.write(event)
        if self.on_event is not None:
            self.on_event(event)

    def failed(self, event: RunFailed) -> None:
        """Report a failure even when the log cannot take it (the fault may be a full disk)."""
        with contextlib.suppress(OSError):
            self.writer.write(event)
        if self.on_event is not None:
            self.on_event(event)


def _split_text(counts: dict[str, dict[str, int]]) -> str:
    """``train 1193 (602 P / 591 U, 134 patients), val ...`` for the log."""
    parts = []
    for name, c in counts.items():
        who = f", {c['groups']} patients" if "groups" in c else ""
        parts.append(f"{name} {c['total']} ({c['Parasitized']} P / {c['Uninfected']} U{who})")
    return ", ".join(parts)


def train(
    config: Config | None = None,
    *,
    runs_dir: str | Path = "runs",
    run: rd.RunDir | None = None,
    resume: bool = False,
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
    score_test: bool = True,
) -> rd.RunDir:
    """Train (or with ``resume=True`` continue) a run; returns its directory.

    ``run`` without ``resume`` trains a fresh run into that new directory (made with
    :func:`rundir.create` by a front end that follows it from the start, the TUI's trainer
    process); its config is rewritten with what "auto" resolved to.

    ``score_test=False`` keeps the test split unseen: the end-of-run evaluation scores the
    validation split only (hyper-parameter search trials; the grid tests its best trial once).

    Raises ``UserError`` subclasses for bad input (before a run directory is created where
    possible), ``TrainingFailed`` for NaN/Inf losses and ``KeyboardInterrupt`` untouched.
    """
    from malaria_tui.engine.data import pipeline

    if resume and run is None:
        raise RunDirError("resume needs a run directory")
    resumed = run if resume else None
    if resumed is not None:
        config = resumed.load_config()
    elif config is None:
        raise ConfigError("train needs a config, or a run directory to resume")
    # First, before TensorFlow runs any op: multi-worker collectives are set up at start-up.
    strategy = st.make_strategy(config.train)
    st.resolve_jit(config.train, strategy)  # refuse an impossible XLA setting before any output
    chief = st.is_chief(strategy)
    pos = None
    if resumed is not None:
        pos, score_test = _resume_point(resumed, chief, score_test)
    name = run_name(config)  # from what was asked, before "auto" settings are resolved below
    prepared = pipeline.prepare(config)
    if resumed is not None:
        _same_overlay(resumed, prepared)
    # data.batch_size is per replica; every step takes one global batch of batch_size x replicas.
    prepared.batch_size = config.data.batch_size * strategy.num_replicas_in_sync
    # Save what "auto" resolved to, so evaluate/predict/export treat new images the same way.
    data = config.data.model_copy(update={"color": prepared.color, "split": prepared.split_mode})
    config = config.model_copy(update={"data": data})
    scratch = None
    if not chief:  # a non-chief worker writes (events, checkpoints) only to a scratch folder
        scratch = Path(tempfile.mkdtemp(prefix="malaria-tui-worker-"))
        run = rd.create(scratch, config.name, config.to_toml())
    elif run is None:
        run = rd.create(runs_dir, name, config.to_toml())
    elif resumed is None:  # a fresh directory made by a front end that had to know it first
        rd.write_config(run, config.to_toml())
    rd.acquire_lock(run)
    pipeline.use_disk_cache(prepared, run.path / "cache")
    writer = rd.EventWriter(run.events_path)
    emit = _Emitter(writer, on_event)
    try:
        with st.precision(config.train) as policy:
            return _train(
                config,
                run,
                prepared,
                pos,
                emit,
                stop or threading.Event(),
                score_test,
                strategy=strategy,
                policy=policy,
                restore_from=(resumed or run).checkpoints,
            )
    except TrainingFailed as e:
        emit.failed(RunFailed(reason=str(e)))
        raise
    except Exception as e:
        emit.failed(RunFailed(reason=explain_fault(e)))  # one line: what to change
        raise
    finally:
        with contextlib.suppress(OSError):  # every line was flushed; only a failed write remains
            writer.close()
        rd.release_lock(run)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _recorded(config: Config, prepared: Prepared) -> dict[str, Any]:
    """The config as ``run_started`` records it: with the label overlay's SHA-256 beside its
    path (``data.label_overrides_sha256``), so the labels a run learned from are on record."""
    out = config.to_dict()
    if prepared.overlay is not None:
        out["data"]["label_overrides_sha256"] = prepared.overlay.sha256
    return out


def _same_overlay(run: rd.RunDir, prepared: Prepared) -> None:
    """Refuse to resume on other labels: the overlay's hash must be the one the run started with."""
    first = next((e for e in run.events() if isinstance(e, RunStarted)), None)
    if first is None:
        return
    before = first.config.get("data", {}).get("label_overrides_sha256", "")
    now = prepared.overlay.sha256 if prepared.overlay is not None else ""
    if before != now:
        raise ConfigError(
            f"{run.path}: its label overlay changed since it started (sha256 {before[:12] or 'none'}"
            f" then, {now[:12] or 'none'} now); resuming would train on other labels, start a "
            "new run instead"
        )


def _overlay_text(effect: Any) -> str:
    """One log line on what the label overlay changed, split by split."""
    parts = []
    for split, c in effect.changes.items():
        if not c.reviewed:
            continue
        if split in effect.applied:
            parts.append(f"{split} {c.relabelled} relabelled, {c.excluded} excluded")
        else:
            parts.append(f"{split} {c.reviewed} reviewed (scored on both labels, original first)")
    what = "; ".join(parts) or "no decision about this run's images"
    return f"label overlay {effect.path} (sha256 {effect.sha256[:12]}): {what}"


def _resume_point(run: rd.RunDir, chief: bool, score_test: bool) -> tuple[ck.Position | None, bool]:
    """Where ``run`` resumes, and whether it may score the test split; refuses a run that
    finished or that another process is training."""
    status = run.status()
    if status in ("completed", "early_stopped"):
        raise RunDirError(
            f"{run.path}: already {status.replace('_', ' ')}; nothing to resume (evaluate it instead)"
        )
    if status == "running" and chief:  # the chief may already hold a shared run's lock
        raise RunDirError(f"{run.path}: still being trained by process {rd.lock_holder(run.path)}")
    # a search trial keeps the test split unseen when resumed by hand, too
    events = run.events()
    first = next((e for e in events if isinstance(e, RunStarted)), None)
    pos = ck.resume_position(run.checkpoints)
    if pos is not None and pos.note:  # the pointer was damaged: best and patience from the log
        best = [
            e
            for e in events
            if isinstance(e, CheckpointSaved) and e.role == "best" and e.epoch < pos.epoch
        ]
        if best:
            pos = replace(pos, best=best[-1].value, bad_epochs=pos.epoch - best[-1].epoch - 1)
    return pos, score_test and (first is None or first.score_test)


def _train(
    config: Config,
    run: rd.RunDir,
    prepared: Prepared,
    pos: ck.Position | None,
    emit: Callable[[Event], None],
    stop: threading.Event,
    score_test: bool = True,
    *,
    strategy: Strategy,
    policy: str | None,
    restore_from: Path,
) -> rd.RunDir:
    """Build the model, announce the run, train epoch by epoch (keeping the best model and
    stopping early per ``train.monitor``), then score the best model."""
    _tf()
    tc = config.train
    jit = st.resolve_jit(tc, strategy)
    start = pos or ck.Position(epoch=0, step=0, best=None)
    monitor = Monitor(tc.monitor, tc.monitor_mode, tc.early_stopping, start.best, start.bad_epochs)
    session = _Session.build(config, run, prepared, emit, stop, strategy, policy, jit, monitor)
    if pos is not None:
        session.restore(restore_from, pos)
    session.announce(start, resumed=pos is not None, score_test=score_test)
    if pos is not None and pos.note:
        emit(LogMessage(level="warning", message=pos.note))

    status, epoch = "completed", start.epoch
    try:
        session.open_tensorboard()
        if epoch < tc.epochs:
            emit(Phase(what="compiling the training step"))
        while epoch < tc.epochs:
            t0 = time.monotonic()
            step0 = start.step if epoch == start.epoch else 0
            train_logs, step, stopped = session.train_epoch(epoch, step0, t0)
            if stopped:
                session.interrupted(epoch, step)
                return run
            train_seconds = time.monotonic() - t0
            val_logs, value, improved = session.validate(epoch, train_logs)
            train_logs = {k: v for k, v in train_logs.items() if not k.startswith("val_")}
            session.epoch_end(epoch, train_logs, val_logs, t0, train_seconds, step - step0)
            if value is None:
                raise TrainingFailed(
                    f"train.monitor = {tc.monitor!r} is not a metric; use e.g. val_auc or val_loss"
                )
            if improved:
                emit(
                    CheckpointSaved(
                        epoch=epoch,
                        step=step,
                        path=str(run.best_model),
                        role="best",
                        monitor=tc.monitor,
                        value=value,
                    )
                )
            epoch += 1
            path = session.save_state(epoch, 0)
            emit(CheckpointSaved(epoch=epoch, step=0, path=str(path), role="last"))
            if monitor.should_stop:
                status = "early_stopped"
                emit(
                    LogMessage(
                        level="info",
                        message=f"early stopping: {tc.monitor} did not improve for {monitor.bad_epochs} epochs",
                    )
                )
                break
    finally:
        session.close()
    if not st.is_chief(strategy):  # the chief evaluates and reports; this worker's folder goes
        return run
    session.finish(status, epoch, score_test)
    return run


@dataclass
class _Session:
    """What one run's epochs share: the model and its loop, the data, where events go."""

    config: Config
    run: rd.RunDir
    prepared: Prepared
    emit: Callable[[Event], None]
    stop: threading.Event
    strategy: Strategy
    policy: str | None
    jit: bool
    monitor: Monitor
    model: KerasModel
    optimizer: Any
    loop: CustomLoop | FitLoop
    throttle: Throttle  # one for the whole run: batch events keep their rate across epochs
    tb: TensorBoardLog | None = None

    @classmethod
    def build(
        cls,
        config: Config,
        run: rd.RunDir,
        prepared: Prepared,
        emit: Callable[[Event], None],
        stop: threading.Event,
        strategy: Strategy,
        policy: str | None,
        jit: bool,
        monitor: Monitor,
    ) -> _Session:
        """The model, its optimizer and the training loop, their variables mirrored across the
        strategy's replicas."""
        from malaria_tui.engine import optim
        from malaria_tui.engine.models.registry import build_model
        from malaria_tui.engine.training.custom_loop import CustomLoop
        from malaria_tui.engine.training.fit_loop import FitLoop

        tc = config.train
        with strategy.scope():
            model = build_model(config)
            optimizer = st.wrap_optimizer(
                optim.build_optimizer(config.optimizer, prepared.steps_per_epoch, tc.epochs), policy
            )
            loop_cls = CustomLoop if tc.loop == "custom" else FitLoop
            loop = loop_cls(
                model,
                optimizer,
                optim.build_loss(config.loss),
                config.eval.threshold,
                strategy=strategy,
                jit_compile=jit,
                steps_per_execution=tc.steps_per_execution,
            )
        throttle = Throttle(tc.batch_events_per_second)
        return cls(
            config,
            run,
            prepared,
            emit,
            stop,
            strategy,
            policy,
            jit,
            monitor,
            model,
            optimizer,
            loop,
            throttle,
        )

    def restore(self, ckpt_dir: Path, pos: ck.Position) -> None:
        with self.strategy.scope():  # the optimizer's slots are created here when not yet built
            ck.restore_state(ckpt_dir, self.model, self.optimizer, pos)

    def announce(self, start: ck.Position, resumed: bool, score_test: bool) -> None:
        """Skipped files, ``run_started``, and the log lines on the split and the computation."""
        config, prepared, emit, tc = self.config, self.prepared, self.emit, self.config.train
        for path, why in prepared.skipped[:20]:
            emit(LogMessage(level="warning", message=f"skipped {path}: {why}"))
        if prepared.skipped:
            emit(
                LogMessage(
                    level="warning",
                    message=f"skipped {len(prepared.skipped)} unreadable file(s) in total",
                )
            )
        emit(
            RunStarted(
                run_dir=str(self.run.path),
                config=_recorded(config, prepared),
                n_train=prepared.counts["train"]["total"],
                n_val=prepared.counts["val"]["total"],
                n_test=prepared.counts["test"]["total"],
                steps_per_epoch=prepared.steps_per_epoch,
                epochs=tc.epochs,
                start_epoch=start.epoch,
                start_step=start.step,
                resumed=resumed,
                score_test=score_test,
            )
        )
        emit(
            LogMessage(
                level="info",
                message=f"split by {prepared.split_mode}: {_split_text(prepared.counts)}",
            )
        )
        if prepared.overlay is not None:
            emit(LogMessage(level="info", message=_overlay_text(prepared.overlay)))
        emit(
            LogMessage(
                level="info",
                message=f"strategy {st.describe(self.strategy)}; global batch {prepared.batch_size}"
                f" ({config.data.batch_size} per replica); precision {self.policy or 'float32'};"
                f" XLA {'on' if self.jit else 'off'}",
            )
        )

    def open_tensorboard(self) -> None:
        from malaria_tui.engine.training.tensorboard_log import TensorBoardLog

        tc = self.config.train
        if tc.tensorboard and st.is_chief(self.strategy):
            self.tb = TensorBoardLog(self.run.tensorboard, tc.tensorboard_images)

    def train_epoch(self, epoch: int, step0: int, t0: float) -> tuple[dict[str, float], int, bool]:
        """One epoch from batch ``step0`` with ``batch`` events; (logs, last step, stopped)."""
        prepared, strategy = self.prepared, self.strategy
        steps, batch = prepared.steps_per_epoch, prepared.batch_size
        last_batch = prepared.counts["train"]["total"] - (steps - 1) * batch
        sync_every = st.sync_interval(strategy, steps)
        throttle = self.throttle
        synced = step0

        def on_batch(step: int, logs_fn: Callable[[], dict[str, float]]) -> bool:
            nonlocal synced
            if sync_every:  # multi-worker: every worker reads metrics at the same steps
                if step - synced < sync_every and step != steps:
                    return False
                synced = step
                due = True
            else:
                due = throttle.due(force=step == steps)
            if due:
                rate = (step - step0) * batch / max(time.monotonic() - t0, 1e-9)
                self.emit(
                    BatchEnd(
                        epoch=epoch,
                        step=step,
                        steps=steps,
                        metrics=logs_fn(),
                        images_per_sec=rate,
                        global_step=epoch * steps + step,
                    )
                )
            if sync_every:
                return st.any_worker(strategy, self.stop.is_set())
            return self.stop.is_set()

        ds = st.prepare_dataset(
            prepared.train_epoch(epoch, skip_batches=step0), strategy, last_batch
        )
        return self.loop.train_epoch(ds, step0, on_batch)

    def validate(
        self, epoch: int, train_logs: dict[str, float]
    ) -> tuple[dict[str, float], float | None, bool]:
        """Validation logs, the monitored value and whether it is the best so far (the model
        is then saved as the best one). With ``optimizer.ema`` the moving average is what is
        validated and saved."""
        from malaria_tui.engine.training.ema import averaged_weights

        val_ds = st.prepare_dataset(self.prepared.eval_dataset("val"), self.strategy)
        with averaged_weights(self.optimizer):
            val_logs = {f"val_{k}": v for k, v in self.loop.evaluate(val_ds).items()}
            if self.tb:
                batch = next(iter(self.prepared.eval_dataset("val")))
                self.tb.predictions(epoch, self.model, batch)
            value = self.monitor.value(val_logs, train_logs)
            improved = value is not None and self.monitor.update(value)
            if improved:
                ck.save_model(self.model, self.run.best_model)
        return val_logs, value, improved

    def epoch_end(
        self,
        epoch: int,
        train_logs: dict[str, float],
        val_logs: dict[str, float],
        t0: float,
        train_seconds: float,
        batches: int,
    ) -> None:
        self.emit(
            EpochEnd(
                epoch=epoch,
                epochs=self.config.train.epochs,
                train=train_logs,
                val=val_logs,
                seconds=time.monotonic() - t0,
                images_per_sec=batches * self.prepared.batch_size / max(train_seconds, 1e-9),
            )
        )
        if self.tb:
            self.tb.scalars(epoch, train_logs, val_logs)

    def save_state(self, epoch: int, step: int) -> Path:
        pos = ck.Position(epoch, step, self.monitor.best, self.monitor.bad_epochs)
        return ck.save_state(
            self.run.checkpoints,
            self.model,
            self.optimizer,
            pos,
            self.config.train.keep_checkpoints,
        )

    def interrupted(self, epoch: int, step: int) -> None:
        path = self.save_state(epoch, step)
        self.emit(CheckpointSaved(epoch=epoch, step=step, path=str(path), role="interrupt"))
        self.emit(RunInterrupted(epoch=epoch, step=step, checkpoint=str(path)))

    def close(self) -> None:
        if self.tb:
            self.tb.close()

    def finish(self, status: str, epochs_done: int, score_test: bool) -> None:
        """Score the best model (thresholds from val; test unless it must stay unseen), write
        ``eval/`` and report the end of the run."""
        from malaria_tui.engine.evaluation.eval_dir import write_eval
        from malaria_tui.engine.evaluation.score_run import evaluate_prepared, split_summary
        from malaria_tui.engine.models.loading import load_keras

        run, prepared = self.run, self.prepared
        best = load_keras(run.best_model) if run.best_model.exists() else self.model
        split = "test" if score_test else "validation"
        self.emit(Phase(what=f"evaluating the best model on the {split} split"))
        result, roc, preds = evaluate_prepared(best, prepared, self.config.eval, test=score_test)
        result["data"] = {
            "source": prepared.source,
            "split": prepared.split_mode,
            "counts": prepared.counts,
        }
        write_eval(run.eval_dir, result, roc, preds)
        split = result["split"]
        self.emit(EvaluationDone(split=split, metrics=split_summary(result, split)))
        best_so_far = {"monitor": self.monitor.metric, "value": self.monitor.best}
        self.emit(RunFinished(status=status, epochs_done=epochs_done, best=best_so_far))
        shutil.rmtree(run.path / "cache", ignore_errors=True)  # only needed to resume
