"""A fold ensemble as one Keras model: one image batch in, the mean P(Parasitized) of its members out.

Built from the fold models of a cross-validation (``malaria-tui cv``): each member is nested
as it is (renamed ``fold1``..``foldK`` so the names are unique) and their outputs go through
``keras.layers.Average``. No Lambda layer, so the model saves as ``.keras`` and loads back with
``safe_mode=True``, and exports as a SavedModel or TFLite like a single model.
"""

from __future__ import annotations

from collections.abc import Sequence

from malaria_tui.engine.errors import ModelFileError
from malaria_tui.engine.tfenv import KerasModel
from malaria_tui.engine.tfenv import tf as _tf

NAME = "fold_ensemble"


def member_name(i: int) -> str:
    """The name of member ``i`` (0-based) inside the ensemble, as ``test_predictions.csv`` names it."""
    return f"fold{i + 1}"


def average(members: Sequence[KerasModel], image_size: int, name: str = NAME) -> KerasModel:
    """A Functional model whose output is the element-wise mean of the members' outputs.

    The members are used as they are (their weights are shared, not copied) and renamed
    ``fold1``..``foldK``; each must take (N, image_size, image_size, 3) and give (N, 1).
    """
    _tf()
    import keras

    if not members:
        raise ModelFileError("a fold ensemble needs at least one member model")
    image = keras.Input((image_size, image_size, 3), name="image")
    outputs = []
    for i, model in enumerate(members):
        shape = tuple(model.outputs[0].shape) if getattr(model, "outputs", None) else None
        if shape is not None and shape[1:] != (1,):
            raise ModelFileError(
                f"{member_name(i)}: gives shape {shape}, not one probability per image; "
                "only cell classifiers can be averaged"
            )
        model.name = member_name(i)
        outputs.append(model(image))
    out = keras.layers.Average(name="mean")(outputs) if len(outputs) > 1 else outputs[0]
    return keras.Model(image, out, name=name)


def members(model: KerasModel) -> list[KerasModel]:
    """The member models of an ensemble made by :func:`average` (after a save and load, too)."""
    return [
        layer
        for layer in model.layers
        if layer.name.startswith("fold") and hasattr(layer, "layers")
    ]
