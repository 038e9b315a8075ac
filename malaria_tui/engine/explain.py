"""Grad-CAM: where in the cell the model looked, as a heat map over the image.

Uses the last 4-D (convolutional) activation of a Functional model, including one nested in a
pretrained backbone, and the gradient of P(Parasitized) with respect to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from malaria_tui.engine.errors import UserError
from malaria_tui.engine.tfenv import KerasModel
from malaria_tui.engine.tfenv import tf as _tf


def _last_conv(model: KerasModel) -> Any:
    for layer in reversed(model.layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            return layer
    return None


def _cam_model(model: KerasModel) -> KerasModel:
    import keras

    if not getattr(model, "inputs", None):
        raise UserError(
            "explain: Grad-CAM needs a Functional Keras model (cellnet, lenet or a pretrained one), not a subclassed one"
        )
    layer = _last_conv(model)
    if layer is not None:
        return keras.Model(model.inputs, [layer.output, model.outputs[0]])
    raise UserError("explain: the model has no convolutional layer to explain")


def gradcam(model: KerasModel, x: np.ndarray) -> np.ndarray:
    """Heat maps in [0,1], shape (N, H, W), for float images (N, H, W, 3)."""
    tf = _tf()
    cam_model = _cam_model(model)
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        conv, prob = cam_model(x, training=False)
        score = prob[:, 0]
    grads = tape.gradient(score, conv)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1))[..., None]
    cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0]
    cam = cam / (tf.reduce_max(cam, axis=(1, 2), keepdims=True) + 1e-8)
    return np.asarray(cam)


def colormap(cam: np.ndarray) -> np.ndarray:
    """A compact 'jet'-like map: blue (0) -> green -> yellow -> red (1), uint8 RGB."""
    c = np.clip(cam, 0, 1)[..., None]
    r = np.clip(1.5 - np.abs(4 * c - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * c - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * c - 1), 0, 1)
    return (np.concatenate([r, g, b], axis=-1) * 255).astype(np.uint8)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The cell (float [0,1] HxWx3) with its heat map blended over it, uint8."""
    base = (np.clip(image, 0, 1) * 255).astype(np.float32)
    return (base * (1 - alpha) + colormap(cam).astype(np.float32) * alpha).astype(np.uint8)


def write_overlays(
    model: KerasModel, x: np.ndarray, paths: list[Path], out_dir: Path, scale: int = 4
) -> list[Path]:
    """One PNG per image: the cell and its Grad-CAM overlay side by side, enlarged ``scale`` x."""
    from PIL import Image

    from malaria_tui.engine import atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(0, len(x), 64):
        cams = gradcam(model, x[i : i + 64])
        for j, cam in enumerate(cams):
            img = x[i + j]
            pair = np.concatenate([(img * 255).astype(np.uint8), overlay(img, cam)], axis=1)
            pil = Image.fromarray(pair).resize(
                (pair.shape[1] * scale, pair.shape[0] * scale), Image.Resampling.NEAREST
            )
            dest = out_dir / f"{Path(paths[i + j]).stem}.gradcam.png"
            import io

            buf = io.BytesIO()
            pil.save(buf, format="PNG")
            atomic.write_bytes(dest, buf.getvalue())
            written.append(dest)
    return written
