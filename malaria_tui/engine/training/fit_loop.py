"""Keras ``Model.fit``, one call per epoch, reporting through the same events as the custom loop.

One call per epoch lets each epoch use its own seeded dataset (so order and augmentation are
reproducible and resumable mid-epoch); the compiled train function is reused across calls.
Under a ``tf.distribute`` strategy the model was built in its scope and Keras distributes the
(global-batch) datasets itself; ``compile`` runs in the same scope.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import keras

from malaria_tui.engine.errors import TrainingFailed
from malaria_tui.engine.tfenv import Dataset, KerasModel, Strategy
from malaria_tui.engine.training import ema
from malaria_tui.engine.training.keras_metrics import build_metrics


class _Bridge(keras.callbacks.Callback):
    def __init__(
        self,
        start_step: int,
        on_batch: Callable[[int, Callable[[], dict[str, float]]], bool],
        batches: int,
    ) -> None:
        super().__init__()
        self.start = self.step = start_step
        self.end = start_step + batches if batches >= 0 else None
        self.on_batch = on_batch
        self.stopped = False
        self.failed: str | None = None
        self.raw: list[Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # ``fit`` copies the optimizer's weight average (``optimizer.ema``) into the model when
        # it returns; keep the raw weights to put back, so training continues on them
        self.raw = ema.snapshot(self.model.optimizer)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        # ``batch`` is the index of the last step of the call (Keras calls once per execution
        # and counts a partial last call as whole, so the epoch's length caps it)
        self.step = self.start + batch + 1
        if self.end is not None:
            self.step = min(self.step, self.end)
        loss = float(logs.get("loss", 0.0))
        if not math.isfinite(loss):
            self.failed = f"loss became {loss} at step {self.step}; lower optimizer.learning_rate or check the data"
            self.model.stop_training = True
            return
        if self.on_batch(self.step, lambda: {k: float(v) for k, v in logs.items()}):
            self.stopped = True
            self.model.stop_training = True


class FitLoop:
    def __init__(
        self,
        model: KerasModel,
        optimizer: Any,
        loss_fn: Any,
        threshold: float,
        *,
        strategy: Strategy = None,
        jit_compile: bool = False,
        steps_per_execution: int = 1,
    ) -> None:
        from malaria_tui.engine.tfenv import tf as _tf

        self.model = model
        self.strategy = strategy or _tf().distribute.get_strategy()
        with self.strategy.scope():
            model.compile(
                optimizer=optimizer,
                loss=loss_fn,
                metrics=build_metrics(threshold),
                jit_compile=jit_compile,
                steps_per_execution=steps_per_execution,
            )

    def _scoped(self, dataset: Dataset) -> AbstractContextManager[Any]:
        """The strategy's scope for a ``fit``/``evaluate`` call on ``dataset``.

        Keras 3.15 (``backend/tensorflow/trainer.py``, ``_maybe_symbolic_build``) learns batch
        shapes at every call by *summing* the first batch's per-replica slices, which fails when
        that batch splits unevenly over the replicas (a validation split smaller than the
        global batch; a resumed epoch that starts at its partial last batch). So with several
        replicas the model is built once from the dataset's element spec, and Keras is left to
        skip that step (it does when the model holds no strategy of its own); running the calls
        inside the scope, Keras still distributes them with it.
        """
        if self.strategy.num_replicas_in_sync > 1 and self.model._distribute_strategy is not None:
            with self.strategy.scope():
                self.model._symbolic_build(data_batch=dataset.element_spec)
            self.model._distribute_strategy = None
        return self.strategy.scope()

    def train_epoch(
        self,
        dataset: Dataset,
        start_step: int,
        on_batch: Callable[[int, Callable[[], dict[str, float]]], bool],
    ) -> tuple[dict[str, float], int, bool]:
        bridge = _Bridge(start_step, on_batch, int(dataset.cardinality()))
        with self._scoped(dataset):
            history = self.model.fit(
                dataset, epochs=1, verbose=0, callbacks=[bridge], shuffle=False
            )
        ema.restore(self.model.optimizer, bridge.raw)
        if bridge.failed:
            raise TrainingFailed(bridge.failed)
        logs = {k: float(v[-1]) for k, v in history.history.items()} if history.history else {}
        return logs, bridge.step, bridge.stopped

    def evaluate(self, dataset: Dataset) -> dict[str, float]:
        with self._scoped(dataset):
            out = self.model.evaluate(dataset, verbose=0, return_dict=True)
        return {k: float(v) for k, v in out.items()}
