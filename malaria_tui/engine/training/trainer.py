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
from pathlib import Path

from malaria_tui.engine import rundir as rd
from malaria_tui.engine.errors import RunDirError, TrainingFailed
from malaria_tui.engine.events import (
    BatchEnd,
    CheckpointSaved,
    EpochEnd,
    EvaluationDone,
    Event,
    LogMessage,
    RunFailed,
    RunFinished,
    RunInterrupted,
    RunStarted,
)
from malaria_tui.engine.faults import explain_fault
from malaria_tui.engine.tfenv import tf as _tf
from malaria_tui.engine.training import checkpoints as ck
from malaria_tui.engine.training import strategy as st
from malaria_tui.engine.training.throttle import Throttle


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


def _split_text(counts: dict) -> str:
    """``train 1193 (602 P / 591 U, 134 patients), val ...`` for the log."""
    parts = []
    for name, c in counts.items():
        who = f", {c['groups']} patients" if "groups" in c else ""
        parts.append(f"{name} {c['total']} ({c['Parasitized']} P / {c['Uninfected']} U{who})")
    return ", ".join(parts)


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def train(
    config=None,
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

    if resume:
        if run is None:
            raise RunDirError("resume needs a run directory")
        config = run.load_config()
    # First, before TensorFlow runs any op: multi-worker collectives are set up at start-up.
    strategy = st.make_strategy(config.train)
    st.resolve_jit(config.train, strategy)  # refuse an impossible XLA setting before any output
    chief = st.is_chief(strategy)
    if resume:
        status = run.status()
        if status in ("completed", "early_stopped"):
            raise RunDirError(
                f"{run.path}: already {status.replace('_', ' ')}; nothing to resume (evaluate it instead)"
            )
        if status == "running" and chief:  # the chief may already hold a shared run's lock
            raise RunDirError(
                f"{run.path}: still being trained by process {rd.lock_holder(run.path)}"
            )
        pos = ck.latest(run.checkpoints)
        # a search trial keeps the test split unseen when resumed by hand, too
        first = next((e for e in run.events() if e.kind == "run_started"), None)
        score_test = score_test and (first is None or first.score_test)
    prepared = pipeline.prepare(config)
    # data.batch_size is per replica; every step takes one global batch of batch_size x replicas.
    prepared.batch_size = config.data.batch_size * strategy.num_replicas_in_sync
    # Save what "auto" resolved to, so evaluate/predict/export treat new images the same way.
    data = config.data.model_copy(update={"color": prepared.color, "split": prepared.split_mode})
    config = config.model_copy(update={"data": data})
    restore_from = run.checkpoints if resume else None
    scratch = None
    if not chief:  # a non-chief worker writes (events, checkpoints) only to a scratch folder
        scratch = Path(tempfile.mkdtemp(prefix="malaria-tui-worker-"))
        run = rd.create(scratch, config.name, config.to_toml())
    elif not resume and run is None:
        run = rd.create(runs_dir, config.name, config.to_toml())
    elif not resume:  # a fresh directory made by a front end that had to know it first
        rd.write_config(run, config.to_toml())
    if not resume:
        pos = None
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
                restore_from=restore_from or run.checkpoints,
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


def _train(
    config, run, prepared, pos, emit, stop, score_test=True, *, strategy, policy, restore_from
) -> rd.RunDir:
    _tf()
    from malaria_tui.engine import optim
    from malaria_tui.engine.evaluation import measures
    from malaria_tui.engine.models.registry import build_model
    from malaria_tui.engine.training.custom_loop import CustomLoop
    from malaria_tui.engine.training.ema import averaged_weights
    from malaria_tui.engine.training.fit_loop import FitLoop
    from malaria_tui.engine.training.tensorboard_log import TensorBoardLog

    tc = config.train
    epochs = tc.epochs
    steps = prepared.steps_per_epoch
    chief = st.is_chief(strategy)
    jit = st.resolve_jit(tc, strategy)
    with strategy.scope():  # variables (model, optimizer, metrics) mirrored across replicas
        model = build_model(config)
        optimizer = st.wrap_optimizer(
            optim.build_optimizer(config.optimizer, steps, epochs), policy
        )
        loss_fn = optim.build_loss(config.loss)
        loop_cls = CustomLoop if tc.loop == "custom" else FitLoop
        loop = loop_cls(
            model,
            optimizer,
            loss_fn,
            config.eval.threshold,
            strategy=strategy,
            jit_compile=jit,
            steps_per_execution=tc.steps_per_execution,
        )
        start_epoch, start_step, best, bad_epochs = 0, 0, None, 0
        if pos is not None:
            ck.restore_state(restore_from, model, optimizer, pos)
            start_epoch, start_step = pos.epoch, pos.step
            best, bad_epochs = pos.best, pos.bad_epochs
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
            run_dir=str(run.path),
            config=config.to_dict(),
            n_train=prepared.counts["train"]["total"],
            n_val=prepared.counts["val"]["total"],
            n_test=prepared.counts["test"]["total"],
            steps_per_epoch=steps,
            epochs=epochs,
            start_epoch=start_epoch,
            start_step=start_step,
            resumed=pos is not None,
            score_test=score_test,
        )
    )
    emit(
        LogMessage(
            level="info", message=f"split by {prepared.split_mode}: {_split_text(prepared.counts)}"
        )
    )
    emit(
        LogMessage(
            level="info",
            message=f"strategy {st.describe(strategy)}; global batch {prepared.batch_size}"
            f" ({config.data.batch_size} per replica); precision {policy or 'float32'};"
            f" XLA {'on' if jit else 'off'}",
        )
    )
    tb = (
        TensorBoardLog(run.tensorboard, tc.tensorboard_images) if tc.tensorboard and chief else None
    )
    throttle = Throttle(tc.batch_events_per_second)
    sync_every = st.sync_interval(strategy, steps)
    last_batch = prepared.counts["train"]["total"] - (steps - 1) * prepared.batch_size
    monitor = tc.monitor
    status = "completed"
    epoch = start_epoch
    try:
        while epoch < epochs:
            t0 = time.monotonic()
            step0 = start_step if epoch == start_epoch else 0
            ds = st.prepare_dataset(
                prepared.train_epoch(epoch, skip_batches=step0), strategy, last_batch
            )
            ep = epoch

            synced = [step0]

            def on_batch(step, logs_fn, ep=ep, step0=step0, t0=t0, synced=synced):
                if sync_every:  # multi-worker: every worker reads metrics at the same steps
                    if step - synced[0] < sync_every and step != steps:
                        return False
                    synced[0] = step
                    due = True
                else:
                    due = throttle.due(force=step == steps)
                if due:
                    rate = (step - step0) * prepared.batch_size / max(time.monotonic() - t0, 1e-9)
                    emit(
                        BatchEnd(
                            epoch=ep,
                            step=step,
                            steps=steps,
                            metrics=logs_fn(),
                            images_per_sec=rate,
                            global_step=ep * steps + step,
                        )
                    )
                return st.any_worker(strategy, stop.is_set()) if sync_every else stop.is_set()

            train_logs, step, stopped = loop.train_epoch(ds, step0, on_batch)
            if stopped:
                path = ck.save_state(
                    run.checkpoints,
                    model,
                    optimizer,
                    ck.Position(epoch, step, best, bad_epochs),
                    tc.keep_checkpoints,
                )
                emit(CheckpointSaved(epoch=epoch, step=step, path=str(path), role="interrupt"))
                emit(RunInterrupted(epoch=epoch, step=step, checkpoint=str(path)))
                return run
            train_seconds = time.monotonic() - t0
            val_ds = st.prepare_dataset(prepared.eval_dataset("val"), strategy)
            with averaged_weights(optimizer):
                val_logs = {f"val_{k}": v for k, v in loop.evaluate(val_ds).items()}
                if tb:
                    tb.predictions(epoch, model, next(iter(prepared.eval_dataset("val"))))
                value = val_logs.get(monitor, train_logs.get(monitor))
                improved = value is not None and _improved(value, best, tc.monitor_mode)
                if improved:
                    ck.save_model(model, run.best_model)
            seconds = time.monotonic() - t0
            train_logs = {k: v for k, v in train_logs.items() if not k.startswith("val_")}
            emit(
                EpochEnd(
                    epoch=epoch,
                    epochs=epochs,
                    train=train_logs,
                    val=val_logs,
                    seconds=seconds,
                    images_per_sec=(step - step0) * prepared.batch_size / max(train_seconds, 1e-9),
                )
            )
            if tb:
                tb.scalars(epoch, train_logs, val_logs)
            if value is None:
                raise TrainingFailed(
                    f"train.monitor = {monitor!r} is not a metric; use e.g. val_auc or val_loss"
                )
            if improved:
                best, bad_epochs = value, 0
                emit(
                    CheckpointSaved(
                        epoch=epoch,
                        step=step,
                        path=str(run.best_model),
                        role="best",
                        monitor=monitor,
                        value=value,
                    )
                )
            else:
                bad_epochs += 1
            epoch += 1
            path = ck.save_state(
                run.checkpoints,
                model,
                optimizer,
                ck.Position(epoch, 0, best, bad_epochs),
                tc.keep_checkpoints,
            )
            emit(CheckpointSaved(epoch=epoch, step=0, path=str(path), role="last"))
            if tc.early_stopping and bad_epochs >= tc.early_stopping:
                status = "early_stopped"
                emit(
                    LogMessage(
                        level="info",
                        message=f"early stopping: {monitor} did not improve for {bad_epochs} epochs",
                    )
                )
                break
    finally:
        if tb:
            tb.close()
    if not chief:  # the chief evaluates and reports; this worker's scratch folder is deleted
        return run
    import keras

    best_model = (
        keras.saving.load_model(run.best_model, safe_mode=True, compile=False)
        if run.best_model.exists()
        else model
    )
    result, roc, preds = measures.evaluate_prepared(
        best_model, prepared, config.eval, test=score_test
    )
    result["data"] = {
        "source": prepared.source,
        "split": prepared.split_mode,
        "counts": prepared.counts,
    }
    measures.write_eval(run.eval_dir, result, roc, preds)
    split = result["split"]
    emit(EvaluationDone(split=split, metrics=result[split] | {"thresholds": result["thresholds"]}))
    emit(RunFinished(status=status, epochs_done=epoch, best={"monitor": monitor, "value": best}))
    shutil.rmtree(run.path / "cache", ignore_errors=True)  # a disk cache is only needed to resume
    return run
