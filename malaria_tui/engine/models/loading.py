"""The one way a saved ``.keras`` model is loaded: best models, exports and files given by hand.

Always ``safe_mode=True`` (a Lambda layer could run any code, so it is refused) and
``compile=False`` (the loss and optimizer are the config's business, not the file's), with
malaria-tui's own layers and metrics registered first. Every way a file can be unusable ends
as one :class:`ModelFileError` line.
"""

from __future__ import annotations

import importlib
import os
import zipfile
from pathlib import Path
from typing import Any

from malaria_tui.engine.errors import ModelFileError, one_line
from malaria_tui.engine.tfenv import tf as _tf

# Importing these registers their classes with Keras, which a saved model refers to by name.
CUSTOM_OBJECT_MODULES = (
    "malaria_tui.engine.models.layers",
    "malaria_tui.engine.models.lenet",
    "malaria_tui.engine.training.keras_metrics",
)
ZIP_MAGIC = b"PK\x03\x04"


def register_custom_objects() -> None:
    for name in CUSTOM_OBJECT_MODULES:
        importlib.import_module(name)


def load_keras(path: str | os.PathLike[str]) -> Any:
    """The Keras model in ``path``; :class:`ModelFileError` when it cannot be (safely) loaded."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            zip_start = f.read(len(ZIP_MAGIC)) == ZIP_MAGIC
        if zip_start:  # a zip's directory is at its end: the copy or save was cut short
            raise ModelFileError(
                f"{path}: truncated or damaged Keras model file; save or copy it again"
            )
        raise ModelFileError(f"{path}: not a Keras model file (.keras files are zip archives)")
    _tf()
    import keras

    register_custom_objects()
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except ValueError as e:
        if "safe_mode" in str(e) or "Lambda" in str(e):
            raise ModelFileError(
                f"{path}: refused: the model contains arbitrary Python code (a Lambda layer), which "
                "safe_mode does not load because it could run anything; re-save it without Lambda layers"
            ) from None
        raise ModelFileError(f"{path}: cannot load this Keras model ({one_line(e)})") from None
    except Exception as e:  # Keras raises many types for a damaged archive
        raise ModelFileError(f"{path}: cannot load this Keras model ({one_line(e)})") from None
