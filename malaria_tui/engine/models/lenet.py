"""The original malaria notebook's LeNet, by the Functional API and by Model subclassing."""

from __future__ import annotations

from typing import Any

import keras

from malaria_tui.engine.config import ModelConfig
from malaria_tui.engine.models.layers import BN_MOMENTUM, CustomDense, FeatureExtractor
from malaria_tui.engine.tfenv import Shape, Tensor


def lenet(mc: ModelConfig, input_shape: Shape) -> keras.Model:
    """Conv6-BN-pool-drop, Conv16-BN-pool, flatten, Dense100-BN-drop, Dense10-BN, Dense1 sigmoid."""
    reg = keras.regularizers.L2(mc.l2) if mc.l2 else None
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(6, 3, activation="relu", kernel_regularizer=reg)(inputs)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dropout(mc.dropout)(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(100, activation="relu", kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = keras.layers.Dropout(mc.dropout)(x)
    x = keras.layers.Dense(10, activation="relu", kernel_regularizer=reg)(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="parasitized")(x)
    return keras.Model(inputs, outputs, name="lenet")


@keras.saving.register_keras_serializable(package="malaria_tui")
class LeNetSubclassed(keras.Model):
    """The same network by subclassing, around :class:`FeatureExtractor` and :class:`CustomDense`."""

    def __init__(self, dropout: float = 0.3, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dropout_rate = float(dropout)
        self.l2 = float(l2)
        self.features = FeatureExtractor((6, 16), 3, dropout=dropout, l2=l2, name="features")
        self.flatten = keras.layers.Flatten()
        self.dense1 = CustomDense(100, activation="relu", l2=l2, name="dense1")
        self.bn1 = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)
        self.drop = keras.layers.Dropout(dropout)
        self.dense2 = CustomDense(10, activation="relu", l2=l2, name="dense2")
        self.bn2 = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)
        self.out = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="parasitized")

    def build(self, input_shape: Shape) -> None:
        self.features.build(input_shape)
        shape = self.features.compute_output_shape(tuple(input_shape))
        flat = (None, int(shape[1] * shape[2] * shape[3]))
        self.dense1.build(flat)
        self.bn1.build((None, 100))
        self.dense2.build((None, 100))
        self.bn2.build((None, 10))
        self.out.build((None, 10))

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        x = self.flatten(self.features(x, training=training))
        x = self.drop(self.bn1(self.dense1(x), training=training), training=training)
        return self.out(self.bn2(self.dense2(x), training=training))

    def get_config(self) -> dict[str, Any]:
        return {"dropout": self.dropout_rate, "l2": self.l2, "name": self.name}


def lenet_subclassed(mc: ModelConfig, input_shape: Shape) -> keras.Model:
    model = LeNetSubclassed(dropout=mc.dropout, l2=mc.l2, name="lenet_subclassed")
    model.build((None, *input_shape))
    return model
