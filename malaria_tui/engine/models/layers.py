"""Custom Keras layers: serializable, so saved models load back with ``safe_mode=True``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from malaria_tui.engine.tfenv import Shape, Tensor

# Keras's default 0.99 leaves the moving statistics far from the data after a few hundred
# steps (a quick run on the bundled sample has ~40 steps an epoch), so evaluation-mode outputs
# all fall on one side of 0.5 while AUC looks fine. 0.9 tracks the weights closely enough.
BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="malaria_tui")
class CustomDense(keras.layers.Layer):
    """A Dense layer written out by hand (own kernel and bias via ``add_weight``), with L2."""

    def __init__(self, units: int, activation: Any = None, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.l2 = float(l2)

    def build(self, input_shape: Shape) -> None:
        reg = keras.regularizers.L2(self.l2) if self.l2 else None
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_shape[-1], self.units),
            initializer="glorot_uniform",
            regularizer=reg,
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs: Tensor) -> Tensor:
        return self.activation(keras.ops.matmul(inputs, self.kernel) + self.bias)

    def compute_output_shape(self, input_shape: Shape) -> tuple[Any, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "l2": self.l2,
        }


@keras.saving.register_keras_serializable(package="malaria_tui")
class FeatureExtractor(keras.layers.Layer):
    """LeNet's convolution stack as one reusable layer: (Conv -> BN -> MaxPool -> Dropout) x n."""

    def __init__(
        self,
        filters: Sequence[int] = (6, 16),
        kernel_size: int = 3,
        dropout: float = 0.0,
        l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.kernel_size = int(kernel_size)
        self.dropout = float(dropout)
        self.l2 = float(l2)
        reg = keras.regularizers.L2(self.l2) if self.l2 else None
        n = len(self.filters)
        # Flat lists of layers (not nested lists) so Keras saving tracks every weight.
        self.convs = [
            keras.layers.Conv2D(
                f, self.kernel_size, activation="relu", kernel_regularizer=reg, name=f"conv{i}"
            )
            for i, f in enumerate(self.filters)
        ]
        self.norms = [
            keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}") for i in range(n)
        ]
        self.pool = keras.layers.MaxPooling2D(2, name="pool")
        self.drop = keras.layers.Dropout(self.dropout, name="drop")

    def build(self, input_shape: Shape) -> None:
        shape = tuple(input_shape)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm.build(shape)
            shape = self.pool.compute_output_shape(shape)

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = self.pool(norm(conv(x), training=training))
            if i < len(self.convs) - 1:
                x = self.drop(x, training=training)
        return x

    def compute_output_shape(self, input_shape: Shape) -> tuple[Any, ...]:
        h, w = input_shape[1], input_shape[2]
        for _ in self.filters:
            h, w = (h - self.kernel_size + 1) // 2, (w - self.kernel_size + 1) // 2
        return (input_shape[0], h, w, self.filters[-1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": list(self.filters),
            "kernel_size": self.kernel_size,
            "dropout": self.dropout,
            "l2": self.l2,
        }
