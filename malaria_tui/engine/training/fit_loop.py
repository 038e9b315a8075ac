"""Keras ``Model.fit``, one call per epoch, reporting through the same events as the custom loop.

One call per epoch lets each epoch use its own seeded dataset (so order and augmentation are
reproducible and resumable mid-epoch); the compiled train function is reused across calls.
"""

from __future__ import annotations

import math

import keras

from malaria_tui.engine.errors import TrainingFailed
from malaria_tui.engine.metrics import build_metrics


class _Bridge(keras.callbacks.Callback):
    def __init__(self, start_step: int, on_batch):
        super().__init__()
        self.step = start_step
        self.on_batch = on_batch
        self.stopped = False
        self.failed: str | None = None

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.step += 1
        loss = float(logs.get("loss", 0.0))
        if not math.isfinite(loss):
            self.failed = f"loss became {loss} at step {self.step}; lower optimizer.learning_rate or check the data"
            self.model.stop_training = True
            return
        if self.on_batch(self.step, lambda: {k: float(v) for k, v in logs.items()}):
            self.stopped = True
            self.model.stop_training = True


class FitLoop:
    def __init__(self, model, optimizer, loss_fn, threshold: float):
        self.model = model
        model.compile(optimizer=optimizer, loss=loss_fn, metrics=build_metrics(threshold))

    def train_epoch(self, dataset, start_step: int, on_batch) -> tuple[dict, int, bool]:
        bridge = _Bridge(start_step, on_batch)
        history = self.model.fit(dataset, epochs=1, verbose=0, callbacks=[bridge], shuffle=False)
        if bridge.failed:
            raise TrainingFailed(bridge.failed)
        logs = {k: float(v[-1]) for k, v in history.history.items()} if history.history else {}
        return logs, bridge.step, bridge.stopped

    def evaluate(self, dataset) -> dict[str, float]:
        out = self.model.evaluate(dataset, verbose=0, return_dict=True)
        return {k: float(v) for k, v in out.items()}
