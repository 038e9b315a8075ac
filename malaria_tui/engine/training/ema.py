"""Validate and save with the optimizer's moving average of the weights, then train on.

Keras keeps the average in the optimizer (``use_ema``) and copies it into the model whenever a
``fit`` call returns (``finalize_variable_values``). Swapping it in around each validation lets
the best checkpoint be the averaged model while the raw weights (and the optimizer state, average
included) keep training and resume; the fit loop, one ``fit`` call per epoch, puts the raw
weights back after each call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _pairs(optimizer: Any) -> tuple[list[Any], list[Any]] | None:
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer wraps Adam
    if not getattr(inner, "use_ema", False) or not inner.built:
        return None
    return inner._trainable_variables, inner._model_variables_moving_average


def snapshot(optimizer: Any) -> list[Any] | None:
    """The raw trainable weights' values when the optimizer averages them, else None."""
    pairs = _pairs(optimizer)
    return None if pairs is None else [v.numpy() for v in pairs[0]]


def restore(optimizer: Any, values: list[Any] | None) -> None:
    pairs = _pairs(optimizer)
    if pairs is not None and values is not None:
        for v, r in zip(pairs[0], values, strict=True):
            v.assign(r)


@contextmanager
def averaged_weights(optimizer: Any) -> Iterator[None]:
    """Inside the block the model's trainable weights are their moving averages (if enabled)."""
    pairs = _pairs(optimizer)
    if pairs is None:
        yield
        return
    raw = snapshot(optimizer)
    for v, a in zip(*pairs, strict=True):
        v.assign(a)
    try:
        yield
    finally:
        restore(optimizer, raw)
