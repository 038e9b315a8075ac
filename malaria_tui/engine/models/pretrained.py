"""ImageNet backbones from ``keras.applications`` with a small binary head.

Inputs stay in [0,1]; each backbone gets the rescaling it expects. ``weights = "imagenet"``
downloads once (Keras caches it under ~/.keras); offline it fails with a clear message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from malaria_tui.engine.config import ModelConfig
from malaria_tui.engine.errors import ConfigError
from malaria_tui.engine.models.layers import CustomDense
from malaria_tui.engine.tfenv import Shape

BACKBONES = {
    # name: (constructor, rescale scale, rescale offset): maps [0,1] to what the backbone expects
    "mobilenetv2": ("MobileNetV2", 2.0, -1.0),
    "efficientnetb0": ("EfficientNetB0", 255.0, 0.0),
}


def _backbone(name: str, input_shape: Shape, weights: str) -> Any:
    ctor = getattr(keras.applications, BACKBONES[name][0])
    try:
        return ctor(
            include_top=False,
            weights=None if weights == "none" else weights,
            input_shape=input_shape,
            pooling="avg",
        )
    except ValueError as e:
        raise ConfigError(f"model.name = {name!r}: {e}") from None
    except Exception as e:  # download failures come as many exception types
        raise ConfigError(
            f"model.weights = 'imagenet': could not download {BACKBONES[name][0]} weights ({type(e).__name__}); "
            "set model.weights = 'none' to train from scratch, or run once where the network allows"
        ) from None


def pretrained(name: str) -> Callable[[ModelConfig, Shape], keras.Model]:
    def build(mc: ModelConfig, input_shape: Shape) -> keras.Model:
        _, scale, offset = BACKBONES[name]
        inputs = keras.Input(input_shape, name="image")
        x = keras.layers.Rescaling(scale, offset, name="to_backbone_range")(inputs)
        x = _backbone(name, input_shape, mc.weights)(x)
        x = keras.layers.Dropout(mc.dropout)(x)
        x = CustomDense(mc.dense_units, activation="relu", l2=mc.l2, name="head")(x)
        outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="parasitized")(
            x
        )
        return keras.Model(inputs, outputs, name=name)

    return build
