"""Loss and optimizer from the config: binary cross-entropy or focal loss, Adam with optional decay."""

from __future__ import annotations

from typing import Any

import keras

from malaria_tui.engine.config import LossConfig, OptimizerConfig


def build_loss(lc: LossConfig) -> Any:
    if lc.name == "focal":
        return keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True,
            alpha=lc.alpha,
            gamma=lc.gamma,
            label_smoothing=lc.label_smoothing,
        )
    return keras.losses.BinaryCrossentropy(label_smoothing=lc.label_smoothing)


def build_schedule(oc: OptimizerConfig, steps_per_epoch: int, epochs: int) -> Any:
    """The learning rate: a number, or a Keras schedule of the step."""
    lr = oc.learning_rate
    if oc.schedule == "constant":
        return lr
    if oc.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=steps_per_epoch, decay_rate=oc.decay_rate
        )
    warmup = min(oc.warmup_epochs, max(epochs - 1, 0)) * steps_per_epoch
    total = max(epochs * steps_per_epoch - warmup, 1)
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            lr / 10, total, warmup_target=lr, warmup_steps=warmup
        )
    return keras.optimizers.schedules.CosineDecay(lr, total)


def build_optimizer(oc: OptimizerConfig, steps_per_epoch: int, epochs: int) -> Any:
    return keras.optimizers.Adam(
        learning_rate=build_schedule(oc, steps_per_epoch, epochs),
        use_ema=oc.ema > 0,
        ema_momentum=oc.ema or 0.99,
        ema_overwrite_frequency=None,  # the trainer swaps the average in for validation only
    )
