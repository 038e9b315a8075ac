"""The custom training loop: a ``tf.GradientTape`` step compiled with ``tf.function``.

Metrics are updated inside the compiled step; the Python side only reads the loss (for NaN
checks), the stop flag between steps, and metric results when an event is due.

Under a ``tf.distribute`` strategy each step runs on every replica through ``strategy.run``
over ``strategy.experimental_distribute_dataset``: a replica's loss is the *sum* of its
per-example losses divided by the global batch (``tf.nn.compute_average_loss``) plus its
share of the regularization (``tf.nn.scale_regularization_loss``), so the all-reduced (summed)
gradients are those of the global-batch mean loss, exactly as on one device. Metric variables
are sync-on-read (summed over replicas when read). On the default strategy the same code runs
on one device with no distribution overhead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras

from malaria_tui.engine.errors import TrainingFailed
from malaria_tui.engine.tfenv import Dataset, KerasModel, Strategy, Tensor
from malaria_tui.engine.tfenv import tf as _tf
from malaria_tui.engine.training.keras_metrics import build_metrics


def _results(metrics: list[Any]) -> dict[str, float]:
    return {m.name: float(m.result()) for m in metrics}


def per_example(loss_fn: Any) -> Any:
    """The same Keras loss returning one value per example (``reduction=None``)."""
    return type(loss_fn).from_config({**loss_fn.get_config(), "reduction": None})


class CustomLoop:
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
        tf = _tf()
        from malaria_tui.engine.training import strategy as st

        self.strategy = strategy or tf.distribute.get_strategy()
        self.distributed = not st.is_default(self.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        self.model, self.optimizer = model, optimizer
        self.loss_fn = per_example(loss_fn)
        with self.strategy.scope():
            self.train_metrics = [keras.metrics.Mean(name="loss"), *build_metrics(threshold)]
            self.val_metrics = [keras.metrics.Mean(name="loss"), *build_metrics(threshold)]
            # Slots now, in the scope, not on the first step inside a replica context.
            optimizer.build(model.trainable_variables)
        self.steps_per_execution = max(1, int(steps_per_execution))
        opts = dict(reduce_retracing=True, jit_compile=jit_compile)
        self.train_step = tf.function(self._train_step, **opts)
        self.val_step = tf.function(self._val_step, **opts)
        self.train_chunk = tf.function(self._train_chunk, reduce_retracing=True)

    # -- compiled steps ---------------------------------------------------------------------

    def _global_count(self, y: Tensor) -> Tensor:
        """Examples in this step over all replicas (they can differ on a last, partial batch)."""
        tf = _tf()
        n = tf.shape(y)[0]
        if self.replicas == 1:
            return n
        ctx = tf.distribute.get_replica_context()
        total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(n, tf.float32))
        return tf.cast(total, tf.int32)

    def _mean_loss(self, y: Tensor, p: Tensor, n: Tensor) -> Tensor:
        tf = _tf()
        return tf.nn.compute_average_loss(self.loss_fn(y, p), global_batch_size=n)

    def _update(self, metrics: list[Any], loss: Tensor, y: Tensor, p: Tensor) -> None:
        # ``loss`` is this replica's share; scaled so the sum over replicas is one update
        # with the step's global loss (the Mean averages steps, as on one device).
        if self.replicas == 1:
            metrics[0].update_state(loss)
        else:
            metrics[0].update_state(loss * self.replicas, sample_weight=1.0 / self.replicas)
        for m in metrics[1:]:
            m.update_state(y, p)

    def _replica_train_step(self, x: Tensor, y: Tensor) -> Tensor:
        tf = _tf()
        n = self._global_count(y)
        with tf.GradientTape() as tape:
            p = self.model(x, training=True)
            loss = self._mean_loss(y, p, n)
            if self.model.losses:
                loss = loss + tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
            scaled = self.optimizer.scale_loss(loss)  # loss scaling for float16, else as is
        variables = self.model.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        self._update(self.train_metrics, loss, y, p)
        return loss

    def _replica_val_step(self, x: Tensor, y: Tensor) -> None:
        n = self._global_count(y)
        p = self.model(x, training=False)
        self._update(self.val_metrics, self._mean_loss(y, p, n), y, p)

    def _train_step(self, x: Tensor, y: Tensor) -> Tensor:
        tf = _tf()
        losses = self.strategy.run(self._replica_train_step, args=(x, y))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    def _val_step(self, x: Tensor, y: Tensor) -> None:
        self.strategy.run(self._replica_val_step, args=(x, y))

    def _train_chunk(self, iterator: Any, k: Tensor) -> tuple[Tensor, Tensor]:
        """Up to ``k`` steps on batches taken from ``iterator`` inside the graph (as Keras
        ``fit`` does), stopping early at the end of the data or at a non-finite loss.
        Returns (steps done, last loss)."""
        tf = _tf()
        done = tf.constant(0)
        last = tf.constant(0.0)
        for _ in tf.range(k):
            batch = iterator.get_next_as_optional()
            if not batch.has_value():
                break
            x, y = batch.get_value()
            last = tf.cast(self._train_step(x, y), tf.float32)
            done += 1
            if not tf.math.is_finite(last):
                break
        return done, last

    # -- Python side ------------------------------------------------------------------------

    def _distribute(self, dataset: Dataset) -> Any:
        if not self.distributed:
            return dataset
        return self.strategy.experimental_distribute_dataset(dataset)

    def train_epoch(
        self,
        dataset: Dataset,
        start_step: int,
        on_batch: Callable[[int, Callable[[], dict[str, float]]], bool],
    ) -> tuple[dict[str, float], int, bool]:
        """Run one epoch; ``on_batch(step, logs_fn) -> stop?``. Returns (logs, steps done, stopped)."""
        for m in self.train_metrics:
            m.reset_state()
        tf = _tf()
        step = start_step
        k = tf.constant(self.steps_per_execution)
        iterator = iter(self._distribute(dataset))
        while True:
            done, loss = self.train_chunk(iterator, k)
            done, loss = int(done), float(loss)
            if not done:
                break
            step += done
            if not math.isfinite(loss):
                raise TrainingFailed(
                    f"loss became {loss} at step {step}; lower optimizer.learning_rate or check the data"
                )
            if on_batch(step, lambda: _results(self.train_metrics)):
                return _results(self.train_metrics), step, True
            if done < self.steps_per_execution:
                break
        return _results(self.train_metrics), step, False

    def evaluate(self, dataset: Dataset) -> dict[str, float]:
        for m in self.val_metrics:
            m.reset_state()
        for x, y in self._distribute(dataset):
            self.val_step(x, y)
        return _results(self.val_metrics)
