"""The custom training loop: a ``tf.GradientTape`` step compiled with ``tf.function``.

Metrics are updated inside the compiled step; the Python side only reads the loss (for NaN
checks), the stop flag between steps, and metric results when an event is due.
"""

from __future__ import annotations

import math

import keras

from malaria_tui.engine.errors import TrainingFailed
from malaria_tui.engine.metrics import build_metrics
from malaria_tui.engine.tfenv import tf as _tf


def _results(metrics) -> dict[str, float]:
    return {m.name: float(m.result()) for m in metrics}


class CustomLoop:
    def __init__(self, model, optimizer, loss_fn, threshold: float):
        tf = _tf()
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.train_metrics = [keras.metrics.Mean(name="loss"), *build_metrics(threshold)]
        self.val_metrics = [keras.metrics.Mean(name="loss"), *build_metrics(threshold)]
        self.train_step = tf.function(self._train_step, reduce_retracing=True)
        self.val_step = tf.function(self._val_step, reduce_retracing=True)

    def _train_step(self, x, y):
        tf = _tf()
        with tf.GradientTape() as tape:
            p = self.model(x, training=True)
            loss = self.loss_fn(y, p)
            if self.model.losses:
                loss = loss + tf.add_n(self.model.losses)
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        self.train_metrics[0].update_state(loss)
        for m in self.train_metrics[1:]:
            m.update_state(y, p)
        return loss

    def _val_step(self, x, y):
        p = self.model(x, training=False)
        self.val_metrics[0].update_state(self.loss_fn(y, p))
        for m in self.val_metrics[1:]:
            m.update_state(y, p)

    def train_epoch(self, dataset, start_step: int, on_batch) -> tuple[dict, int, bool]:
        """Run one epoch; ``on_batch(step, logs_fn) -> stop?``. Returns (logs, steps done, stopped)."""
        for m in self.train_metrics:
            m.reset_state()
        step = start_step
        for x, y in dataset:
            loss = float(self.train_step(x, y))
            step += 1
            if not math.isfinite(loss):
                raise TrainingFailed(
                    f"loss became {loss} at step {step}; lower optimizer.learning_rate or check the data"
                )
            if on_batch(step, lambda: _results(self.train_metrics)):
                return _results(self.train_metrics), step, True
        return _results(self.train_metrics), step, False

    def evaluate(self, dataset) -> dict[str, float]:
        for m in self.val_metrics:
            m.reset_state()
        for x, y in dataset:
            self.val_step(x, y)
        return _results(self.val_metrics)
