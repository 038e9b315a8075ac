"""On-the-fly augmentation for the training split, as a pure function of (seed, epoch, index).

Every random draw is a stateless op keyed by a seed derived from the run seed, the epoch and
the example's position, so an epoch's augmentations are identical after a resume and in every
rerun: there is no hidden RNG state to save or lose.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from malaria_tui.engine.config import AugmentConfig
from malaria_tui.engine.data.images import to_model_input
from malaria_tui.engine.tfenv import Tensor
from malaria_tui.engine.tfenv import tf as _tf


def _uniform(seed: Tensor, lo: Tensor = 0.0, hi: Tensor = 1.0) -> Tensor:
    tf = _tf()
    return tf.random.stateless_uniform([], seed=seed, minval=lo, maxval=hi)


def _maybe(seed: Tensor, p: float, fn: Callable[[Tensor], Tensor], image: Tensor) -> Tensor:
    """``fn(image)`` with probability ``p``."""
    tf = _tf()
    return tf.cond(_uniform(seed) < p, lambda: fn(image), lambda: image)


def _rotate(image: Tensor, degrees: Tensor) -> Tensor:
    """Rotate about the centre, filling with black like the crops' own background."""
    tf = _tf()
    h = tf.cast(tf.shape(image)[0], tf.float32)
    w = tf.cast(tf.shape(image)[1], tf.float32)
    a = degrees * math.pi / 180.0
    cos, sin = tf.cos(a), tf.sin(a)
    x_off = ((w - 1) - (cos * (w - 1) - sin * (h - 1))) / 2.0
    y_off = ((h - 1) - (sin * (w - 1) + cos * (h - 1))) / 2.0
    transform = tf.stack([cos, -sin, x_off, sin, cos, y_off, 0.0, 0.0])[None, :]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out[0]


def augment_image(image: Tensor, seed: Tensor, cfg: AugmentConfig) -> Tensor:
    """One float image in [0,1] (HxWx3) augmented by ``cfg`` (an ``AugmentConfig``)."""
    tf = _tf()
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=10)
    if cfg.flip_horizontal.enabled:
        image = _maybe(seeds[0], cfg.flip_horizontal.probability, tf.image.flip_left_right, image)
    if cfg.flip_vertical.enabled:
        image = _maybe(seeds[1], cfg.flip_vertical.probability, tf.image.flip_up_down, image)
    if cfg.rotation.enabled and cfg.rotation.max_degrees > 0:
        m = cfg.rotation.max_degrees
        angle = _uniform(seeds[2], -m, m)
        image = _maybe(seeds[3], cfg.rotation.probability, lambda x: _rotate(x, angle), image)
    if cfg.contrast.enabled and cfg.contrast.strength > 0:
        s = cfg.contrast.strength
        factor = _uniform(seeds[4], 1.0 - s, 1.0 + s)
        image = _maybe(
            seeds[5], cfg.contrast.probability, lambda x: tf.image.adjust_contrast(x, factor), image
        )
    if cfg.brightness.enabled and cfg.brightness.strength > 0:
        s = cfg.brightness.strength
        delta = _uniform(seeds[6], -s, s)
        image = _maybe(seeds[7], cfg.brightness.probability, lambda x: x + delta, image)
    return tf.clip_by_value(image, 0.0, 1.0)


def _beta(seed: Tensor, alpha: float) -> Tensor:
    tf = _tf()
    s1, s2 = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    g1 = tf.random.stateless_gamma([], seed=s1, alpha=alpha)
    g2 = tf.random.stateless_gamma([], seed=s2, alpha=alpha)
    return g1 / (g1 + g2 + 1e-12)


def mix_batch(
    images: Tensor, labels: Tensor, seed: Tensor, cfg: AugmentConfig
) -> tuple[Tensor, Tensor]:
    """Mix-Up and CutMix on a batch, each partner being the batch reversed; labels become soft."""
    tf = _tf()
    labels = tf.cast(labels, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=6)
    if cfg.mixup.enabled:
        images, labels = _maybe_pair(
            seeds[0],
            cfg.mixup.probability,
            images,
            labels,
            lambda x, y: _mixup(x, y, seeds[1], cfg.mixup.alpha),
        )
    if cfg.cutmix.enabled:
        images, labels = _maybe_pair(
            seeds[2],
            cfg.cutmix.probability,
            images,
            labels,
            lambda x, y: _cutmix(x, y, seeds[3], cfg.cutmix.alpha),
        )
    return images, labels


def _maybe_pair(
    seed: Tensor,
    p: float,
    x: Tensor,
    y: Tensor,
    fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
) -> tuple[Tensor, Tensor]:
    tf = _tf()
    return tf.cond(_uniform(seed) < p, lambda: fn(x, y), lambda: (x, y))


def _mixup(x: Tensor, y: Tensor, seed: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    tf = _tf()
    lam = _beta(seed, alpha)
    return lam * x + (1 - lam) * tf.reverse(x, [0]), lam * y + (1 - lam) * tf.reverse(y, [0])


def _cutmix(x: Tensor, y: Tensor, seed: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    tf = _tf()
    s = tf.random.experimental.stateless_split(seed, num=3)
    lam = _beta(s[0], alpha)
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    cut = tf.sqrt(1.0 - lam)
    ch, cw = tf.cast(hf * cut, tf.int32), tf.cast(wf * cut, tf.int32)
    cy = tf.cast(_uniform(s[1], 0.0, hf), tf.int32)
    cx = tf.cast(_uniform(s[2], 0.0, wf), tf.int32)
    y0, y1 = tf.clip_by_value(cy - ch // 2, 0, h), tf.clip_by_value(cy + ch // 2, 0, h)
    x0, x1 = tf.clip_by_value(cx - cw // 2, 0, w), tf.clip_by_value(cx + cw // 2, 0, w)
    rows = tf.range(h)[:, None]
    cols = tf.range(w)[None, :]
    box = tf.cast((rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1), x.dtype)[
        None, :, :, None
    ]
    mixed = x * (1 - box) + tf.reverse(x, [0]) * box
    kept = 1.0 - tf.cast((y1 - y0) * (x1 - x0), tf.float32) / (hf * wf)
    return mixed, kept * y + (1 - kept) * tf.reverse(y, [0])


def preview(
    image: np.ndarray, cfg: AugmentConfig, n: int, seed: int, image_size: int
) -> list[np.ndarray]:
    """``n`` augmented variants of one uint8 image (any size, gray/RGB/RGBA) as uint8 HxWx3.

    Mix-Up and CutMix need a partner image: here it is the same cell rotated by 180 degrees,
    so their effect is visible on a single cell.
    """
    tf = _tf()
    x = to_model_input(np.asarray(image), image_size)
    partner = tf.image.rot90(x, 2)
    out = []
    for i in range(n):
        a = augment_image(x, tf.constant([seed, i], tf.int64), cfg)
        if cfg.mixup.enabled or cfg.cutmix.enabled:
            b = augment_image(partner, tf.constant([seed + 1, i], tf.int64), cfg)
            batch, _ = mix_batch(
                tf.stack([a, b]),
                tf.constant([1.0, 0.0]),
                tf.constant([seed, 10_000 + i], tf.int64),
                cfg,
            )
            a = batch[0]
        out.append(np.asarray(tf.cast(tf.round(a * 255.0), tf.uint8)))
    return out
