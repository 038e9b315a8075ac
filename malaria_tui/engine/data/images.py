"""One image, from a file or an array, to what a model takes: size x size x 3, gray or colour.

Training, diagnosis and the augmentation preview all go through these functions, so a cell is
resized the same way wherever it comes from. A leaf: the pipeline and the augmentations both
build on it, so it imports neither.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from malaria_tui.engine.tfenv import tf as _tf


def resize_uint8(image: Any, size: int, gray: bool = False) -> Any:
    """Any HxWxC uint8 image to size x size x 3 uint8 (gray expanded, alpha dropped).

    ``gray`` turns colour input into luminance first (ITU-R 601, as Pillow's ``convert("L")``),
    so a model trained on grayscale cells sees colour crops the way it was trained.
    """
    tf = _tf()
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 2:
        image = image[..., None]
    c = tf.shape(image)[-1]
    image = tf.cond(
        c == 1, lambda: tf.image.grayscale_to_rgb(image[..., :1]), lambda: image[..., :3]
    )
    image.set_shape([None, None, 3])
    if gray:
        image = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
    out = tf.image.resize(
        tf.cast(image, tf.float32), [size, size], method="bilinear", antialias=True
    )
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def to_model_input(image: np.ndarray, size: int, gray: bool = False) -> Any:
    """One in-memory image (any size; gray, RGB or RGBA; uint8 or uint16) as a float model input."""
    tf = _tf()
    arr = np.asarray(image)
    if arr.dtype == np.uint16:
        arr = (arr / 257).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return tf.cast(resize_uint8(arr, size, gray), tf.float32) / 255.0


def load_pil(path: str) -> np.ndarray:
    """Decode any Pillow-readable file (TIFF, 16-bit PNG, palette, CMYK...) to uint8 RGB."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit: scale 0..65535 to 0..255
            arr = (
                (np.clip(np.asarray(im, dtype=np.float64), 0, 65535) / 257).round().astype(np.uint8)
            )
            return np.stack([arr] * 3, axis=-1)
        return np.asarray(im.convert("RGB"))
