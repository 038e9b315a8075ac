"""Model registry: ``[model] name = ...`` picks a builder ``(ModelConfig, input_shape) -> Model``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from malaria_tui.engine.config import Config, ModelConfig
from malaria_tui.engine.errors import ConfigError
from malaria_tui.engine.tfenv import KerasModel, Shape

# (model config, input shape) -> an uncompiled Keras model
Builder = Callable[[ModelConfig, Shape], KerasModel]

MODEL_NAMES = ["cellnet", "lenet", "lenet_subclassed", "mobilenetv2", "efficientnetb0"]

DESCRIPTIONS = {
    "cellnet": "Compact VGG-style CNN, the default (custom Dense head)",
    "lenet": "The original notebook's LeNet, Functional API",
    "lenet_subclassed": "LeNet by Model subclassing (FeatureExtractor + CustomDense)",
    "mobilenetv2": "MobileNetV2 backbone (keras.applications)",
    "efficientnetb0": "EfficientNetB0 backbone (keras.applications)",
}


def _builder(name: str) -> Builder:
    if name == "cellnet":
        from malaria_tui.engine.models.cellnet import cellnet

        return cellnet
    if name == "lenet":
        from malaria_tui.engine.models.lenet import lenet

        return lenet
    if name == "lenet_subclassed":
        from malaria_tui.engine.models.lenet import lenet_subclassed

        return lenet_subclassed
    if name in ("mobilenetv2", "efficientnetb0"):
        from malaria_tui.engine.models.pretrained import pretrained

        return pretrained(name)
    raise ConfigError(
        f"model.name = {name!r}: unknown model; choose one of {', '.join(MODEL_NAMES)}"
    )


def build_model(config: Config) -> KerasModel:
    """The configured, uncompiled Keras model for ``config.data.image_size`` RGB inputs."""
    from malaria_tui.engine.tfenv import tf

    tf()
    import keras

    keras.utils.set_random_seed(config.seed)
    size = config.data.image_size
    return _builder(config.model.name)(config.model, (size, size, 3))


def describe(config: Config) -> dict[str, Any]:
    """A summary for the TUI's Model screen: parameters, input shape and the layer table."""
    model = build_model(config)
    layers = []
    for layer in model.layers:
        try:
            shape = str(tuple(layer.output.shape))
        except (AttributeError, ValueError):
            shape = "?"
        layers.append((layer.name, type(layer).__name__, shape, int(layer.count_params())))
    trainable = int(sum(int(w.numpy().size) for w in model.trainable_weights))
    return {
        "name": config.model.name,
        "description": DESCRIPTIONS[config.model.name],
        "params": int(model.count_params()),
        "trainable_params": trainable,
        "input_shape": (config.data.image_size, config.data.image_size, 3),
        "layers": layers,
    }
