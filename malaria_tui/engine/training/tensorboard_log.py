"""TensorBoard summaries: per-epoch scalars, a grid of sample predictions, a confusion matrix.

The notebook's image logging was broken (a figure written outside a summary writer's default
context); here every image is a uint8 tensor written with ``tf.summary.image`` under its writer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from malaria_tui.engine.tfenv import KerasModel, Tensor
from malaria_tui.engine.tfenv import tf as _tf


class TensorBoardLog:
    def __init__(self, log_dir: Path, images: bool):
        tf = _tf()
        self.train = tf.summary.create_file_writer(str(log_dir / "train"))
        self.val = tf.summary.create_file_writer(str(log_dir / "val"))
        self.images = images

    def scalars(self, epoch: int, train: dict, val: dict) -> None:
        tf = _tf()
        for writer, logs in ((self.train, train), (self.val, val)):
            with writer.as_default(step=epoch):
                for k, v in logs.items():
                    tf.summary.scalar(k.removeprefix("val_"), float(v))
            writer.flush()

    def predictions(self, epoch: int, model: KerasModel, batch: tuple[Tensor, Tensor]) -> None:
        """A 4x4 grid of validation cells, framed green when right and red when wrong."""
        if not self.images:
            return
        tf = _tf()
        x, y = batch
        x, y = x[:16], np.asarray(y[:16]).ravel()
        p = np.asarray(model(x, training=False)).ravel()
        grid = _prediction_grid(np.asarray(x), y, p)
        cm = _confusion_image(y, p)
        with self.val.as_default(step=epoch):
            tf.summary.image("sample_predictions", grid[None], step=epoch)
            tf.summary.image("confusion_matrix", cm[None], step=epoch)
        self.val.flush()

    def confusion(self, epoch: int, y: np.ndarray, p: np.ndarray) -> None:
        if not self.images:
            return
        tf = _tf()
        with self.val.as_default(step=epoch):
            tf.summary.image("confusion_matrix", _confusion_image(y, p)[None], step=epoch)
        self.val.flush()

    def close(self) -> None:
        self.train.close()
        self.val.close()


def _prediction_grid(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    n, h, w, _ = x.shape
    cols = 4
    rows = -(-n // cols)
    pad = 3
    out = np.zeros((rows * (h + 2 * pad), cols * (w + 2 * pad), 3), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        ok = (p[i] >= 0.5) == (y[i] >= 0.5)
        frame = np.array([40, 200, 60] if ok else [220, 40, 40], np.uint8)
        y0, x0 = r * (h + 2 * pad), c * (w + 2 * pad)
        out[y0 : y0 + h + 2 * pad, x0 : x0 + w + 2 * pad] = frame
        out[y0 + pad : y0 + pad + h, x0 + pad : x0 + pad + w] = (
            (x[i] * 255).clip(0, 255).astype(np.uint8)
        )
    return out


def _confusion_image(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """A 2x2 heat map with the counts written in, rows actual, columns predicted (P, U)."""
    from PIL import Image, ImageDraw

    y = np.asarray(y).ravel() >= 0.5
    pred = np.asarray(p).ravel() >= threshold
    counts = np.array(
        [[(y & pred).sum(), (y & ~pred).sum()], [(~y & pred).sum(), (~y & ~pred).sum()]]
    )
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    cell = 96
    img = Image.new("RGB", (cell * 2 + 80, cell * 2 + 30), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.text((80, 5), "pred P      pred U", fill=(0, 0, 0))
    for i, name in enumerate(("true P", "true U")):
        d.text((5, 30 + i * cell + cell // 2), name, fill=(0, 0, 0))
        for j in range(2):
            shade = int(255 - 200 * rates[i, j])
            x0, y0 = 80 + j * cell, 25 + i * cell
            d.rectangle([x0, y0, x0 + cell - 2, y0 + cell - 2], fill=(shade, shade, 255))
            d.text(
                (x0 + 30, y0 + 40),
                str(int(counts[i, j])),
                fill=(0, 0, 0) if shade > 128 else (255, 255, 255),
            )
    return np.asarray(img)
