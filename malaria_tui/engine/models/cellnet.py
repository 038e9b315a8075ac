"""CellNet, the default: a compact VGG-style CNN sized for 50-64 px cells on a CPU.

Four Conv-BN-ReLU stages (the last with two convolutions), global average pooling so any input
size >= 32 works, and a :class:`CustomDense` head.
"""

from __future__ import annotations

from typing import Any

import keras

from malaria_tui.engine.config import ModelConfig
from malaria_tui.engine.models.layers import BN_MOMENTUM, CustomDense
from malaria_tui.engine.tfenv import Shape, Tensor


def _conv(x: Tensor, filters: int, reg: Any, name: str) -> Tensor:
    x = keras.layers.Conv2D(
        filters, 3, padding="same", use_bias=False, kernel_regularizer=reg, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def cellnet(mc: ModelConfig, input_shape: Shape) -> keras.Model:
    reg = keras.regularizers.L2(mc.l2) if mc.l2 else None
    w = mc.width
    inputs = keras.Input(input_shape, name="image")
    x = _conv(inputs, w, reg, "s1")
    x = keras.layers.MaxPooling2D(2, name="s1_pool")(x)
    x = _conv(x, 2 * w, reg, "s2")
    x = keras.layers.MaxPooling2D(2, name="s2_pool")(x)
    x = _conv(x, 4 * w, reg, "s3a")
    x = _conv(x, 4 * w, reg, "s3b")
    x = keras.layers.MaxPooling2D(2, name="s3_pool")(x)
    x = _conv(x, 8 * w, reg, "s4")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(mc.dropout, name="drop")(x)
    x = CustomDense(mc.dense_units, activation="relu", l2=mc.l2, name="head")(x)
    x = keras.layers.Dropout(mc.dropout / 2, name="head_drop")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="parasitized")(x)
    return keras.Model(inputs, outputs, name="cellnet")
