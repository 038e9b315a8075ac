"""One image, from a file or an array, to what a model takes: size x size x 3, gray or colour.

Training, diagnosis and the augmentation preview all go through these functions, so a cell is
resized the same way wherever it comes from. A leaf: the pipeline and the augmentations both
build on it, so it imports neither.

The resize exists twice, on purpose:

* :func:`resize_uint8` is TensorFlow graph code, for the ``tf.data`` training pipeline (it runs
  inside ``Dataset.map``, in TensorFlow's own threads).
* :func:`to_model_input` / :func:`preprocess_batch` are NumPy only, for diagnosis and previews:
  an eager TensorFlow call per image costs milliseconds, which held ``predict`` to a few
  hundred images/s while the model scores thousands; and a ``.tflite`` model must be usable
  with no TensorFlow installed at all. This module never imports TensorFlow unless :func:`resize_uint8` is called.

The NumPy version replays TensorFlow's float32 arithmetic step by step (the luminance of
``tf.image.rgb_to_grayscale`` on uint8 and the ``ScaleAndTranslate`` kernel behind
``tf.image.resize(method="bilinear", antialias=True)``), so both give the same bytes:
``tests/test_predict_batched.py`` holds them equal on real cells, up- and down-scaling.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from malaria_tui.engine.tfenv import tf as _tf

_F32 = np.float32
# ITU-R 601 luma weights exactly as tf.image.rgb_to_grayscale writes them (float32).
_LUMA = np.array([0.2989, 0.5870, 0.1140], _F32)


def resize_uint8(image: Any, size: int, gray: bool = False) -> Any:
    """Any HxWxC uint8 image to size x size x 3 uint8 (gray expanded, alpha dropped).

    ``gray`` turns colour input into luminance first (ITU-R 601, as Pillow's ``convert("L")``),
    so a model trained on grayscale cells sees colour crops the way it was trained.
    TensorFlow graph code for the training pipeline; :func:`resize_uint8_np` is its twin.
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


# --- NumPy twin -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _spans(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, weights) of a 1-D antialiased triangle resize from ``n_in`` to ``n_out``.

    Output pixel ``i`` is ``sum_j weights[i, j] * x[starts[i] + j]``. A float32 replay of
    TensorFlow's ``ComputeSpansCore`` (scale_and_translate_op.cc) with the triangle kernel and
    no translation: half-pixel centres, the kernel widened by in/out when downscaling, weights
    renormalised to sum to one where the kernel falls off the edge. Indices past the edge are
    clamped and carry weight 0.
    """
    scale = _F32(n_out) / _F32(n_in)  # TF: cast(size, f32) / cast(shape, f32)
    inv_scale = _F32(1.0 / float(scale))  # C++: float = 1.0 (double) / scale
    kernel_scale = max(inv_scale, _F32(1.0))
    one_over_kernel_scale = _F32(1.0) / kernel_scale
    span = min(2 * math.ceil(float(kernel_scale)) + 1, n_in)
    sample = (np.arange(n_out, dtype=_F32) + _F32(0.5)) * inv_scale
    start = np.ceil(sample - kernel_scale - _F32(0.5)).astype(np.int64)
    end = np.floor(sample + kernel_scale - _F32(0.5)).astype(np.int64)
    start = np.clip(start, 0, n_in - 1)
    end = np.clip(end, 0, n_in - 1) + 1
    source = start[:, None] + np.arange(span)[None, :]
    pos = (source.astype(_F32) + _F32(0.5)) - sample[:, None]
    x = np.abs(pos * one_over_kernel_scale)
    w = np.where(x < _F32(1.0), _F32(1.0) - x, _F32(0.0)).astype(_F32)
    w[source >= end[:, None]] = 0.0
    total = np.zeros(n_out, _F32)
    for j in range(span):  # the C++ sums left to right, in float32
        total += w[:, j]
    ok = np.abs(total) >= _F32(1000.0) * np.finfo(_F32).tiny
    inv_total = np.where(ok, _F32(1.0) / np.where(ok, total, _F32(1.0)), _F32(0.0))
    weights = (w * inv_total[:, None]).astype(_F32)
    starts = np.minimum(source, n_in - 1)  # clamped; their weights are 0
    return starts, weights


def _resize_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """Resize float32 ``x`` along ``axis`` as TensorFlow's GatherRows/GatherColumns do: for
    each output pixel, 0 plus weight x input, one term after another, in float32."""
    n_in = x.shape[axis]
    if n_in == n_out:  # TF's spans are then the identity (weights 1 and 0): exact either way
        return x
    starts, weights = _spans(n_in, n_out)
    shape = [1] * x.ndim
    shape[axis] = n_out
    acc = np.zeros(x.shape[:axis] + (n_out,) + x.shape[axis + 1 :], _F32)
    for j in range(weights.shape[1]):
        acc += weights[:, j].reshape(shape) * np.take(x, starts[:, j], axis=axis)
    return acc


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) -> uint8 (...): ``tf.image.rgb_to_grayscale`` on uint8, bit for bit
    (checked on all 2^24 colours): to float32 by * (1/255), the weighted sum left to right,
    back to uint8 by * 255.5 and truncation (``convert_image_dtype``). Gray stays gray:
    luminance(v, v, v) == v for every v."""
    f = rgb.astype(_F32) * _F32(1.0 / 255.0)
    g = (f[..., 0] * _LUMA[0] + f[..., 1] * _LUMA[1]) + f[..., 2] * _LUMA[2]
    return (g * _F32(255.5)).astype(np.uint8)


def _as_uint8(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == np.uint16:
        return (arr / 257).astype(np.uint8)
    if arr.dtype != np.uint8:
        return np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def _channels(images: np.ndarray, gray: bool) -> np.ndarray:
    """(N, H, W[, C]) uint8 to (N, H, W, 1) when one channel suffices (gray input, or the
    luminance of colour input for a gray model), else (N, H, W, 3) with alpha dropped. Each
    channel is resized on its own, so resizing one and repeating it equals TF's resize of
    three equal channels."""
    if images.ndim == 3:
        images = images[..., None]
    c = images.shape[-1]
    if c <= 2:  # gray (plus alpha): TF takes the gray channel (2 channels cannot go to TF)
        return images[..., :1]
    rgb = images[..., :3]
    if gray:
        return _luminance(rgb)[..., None]
    return rgb


def _resized(images: np.ndarray, size: int, gray: bool) -> np.ndarray:
    """(N, size, size, 1 or 3) float32 in [0, 1]: one channel when one suffices (see
    :func:`_channels`); the caller repeats it."""
    x = _channels(_as_uint8(images), gray).astype(_F32)
    x = _resize_axis(x, 1, size)  # rows first, then columns, as TF does
    x = _resize_axis(x, 2, size)
    # round half to even (tf.round), clip, then / 255 as float32: integral floats 0..255 are
    # exactly TF's cast(uint8 -> float32), so the uint8 round trip can be skipped.
    np.rint(x, out=x)
    np.clip(x, 0, 255, out=x)
    x /= _F32(255.0)
    return x


def preprocess_batch(images: np.ndarray, size: int, gray: bool = False) -> np.ndarray:
    """Same-sized uint8 images (N, H, W[, C]) to float32 model inputs (N, size, size, 3) in
    [0, 1]: exactly ``resize_uint8(image, size, gray) / 255`` for each, without TensorFlow."""
    x = _resized(images, size, gray)
    out = np.empty((*x.shape[:3], 3), _F32)
    out[...] = x  # broadcasts one channel to three
    return out


def resize_uint8_np(image: Any, size: int, gray: bool = False) -> np.ndarray:
    """:func:`resize_uint8` without TensorFlow: uint8 size x size x 3."""
    x = _channels(_as_uint8(image)[None], gray).astype(_F32)
    x = _resize_axis(_resize_axis(x, 1, size), 2, size)
    out = np.clip(np.round(x), 0, 255).astype(np.uint8)[0]
    return np.repeat(out, 3, axis=-1) if out.shape[-1] == 1 else out


def to_model_input(image: Any, size: int, gray: bool = False) -> np.ndarray:
    """One in-memory image (any size; gray, RGB or RGBA; uint8 or uint16) as a float32 model
    input (size x size x 3 in [0, 1]), NumPy only: equal to the training pipeline's
    ``resize_uint8(image) / 255``."""
    return preprocess_batch(np.asarray(image)[None], size, gray)[0]


# Same-sized images resized together per NumPy pass: ~4x faster than one by one for 50 px
# cells, while the intermediates of a batch of 32 still fit in the CPU caches (256 and more
# were measured slower than 32 on 50 px cells).
BATCH = 32


def preprocess_many(images: Sequence[np.ndarray], size: int, gray: bool = False) -> np.ndarray:
    """Images of any sizes to (N, size, size, 3) float32, in order; same-sized images are
    resized together, :data:`BATCH` at a time."""
    out = np.empty((len(images), size, size, 3), _F32)
    groups: dict[tuple[tuple[int, ...], str], list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault((im.shape, im.dtype.str), []).append(i)
    for idx in groups.values():
        for s in range(0, len(idx), BATCH):
            part = idx[s : s + BATCH]
            x = _resized(np.stack([images[i] for i in part]), size, gray)
            if part == list(range(part[0], part[0] + len(part))):  # the usual case: a run
                out[part[0] : part[0] + len(part)] = x
            else:
                out[part] = np.broadcast_to(x, (len(part), size, size, 3))
    return out


def decode(path: str) -> np.ndarray:
    """Like :func:`load_pil`, but an 8-bit or 16-bit grayscale file stays one channel (H, W):
    a third of the work to resize, and the same model input (gray is gray in RGB)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return _from_16bit(im)
        if im.mode == "L":
            return np.asarray(im)
        return np.asarray(im.convert("RGB"))


def _from_16bit(im: Any) -> np.ndarray:
    """16-bit: scale 0..65535 to 0..255 (rounded)."""
    return (np.clip(np.asarray(im, dtype=np.float64), 0, 65535) / 257).round().astype(np.uint8)


def load_pil(path: str) -> np.ndarray:
    """Decode any Pillow-readable file (TIFF, 16-bit PNG, palette, CMYK...) to uint8 RGB."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.stack([_from_16bit(im)] * 3, axis=-1)
        return np.asarray(im.convert("RGB"))
