"""Augmentation: seeded, on real cells, any input size; previews for the TUI."""

import numpy as np
import pytest
from PIL import Image

from malaria_tui.engine import config
from malaria_tui.engine.data import augment
from malaria_tui.engine.tfenv import tf
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def cell():
    path = sorted((SAMPLE / "Parasitized").glob("*.png"))[0]
    return np.asarray(Image.open(path))  # 50x50 grayscale


def test_preview_is_seeded_and_varied(cell):
    cfg = config.Config().augment
    a = augment.preview(cell, cfg, 6, seed=1, image_size=48)
    b = augment.preview(cell, cfg, 6, seed=1, image_size=48)
    c = augment.preview(cell, cfg, 6, seed=2, image_size=48)
    assert len(a) == 6 and all(x.shape == (48, 48, 3) and x.dtype == np.uint8 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert len({x.tobytes() for x in a}) > 3


def test_all_off_is_identity_and_forced_flip_flips(cell):
    off = config.load(
        None,
        [
            f"augment.{k}.enabled=false"
            for k in ("rotation", "flip_horizontal", "flip_vertical", "contrast", "brightness")
        ],
    ).augment
    base = augment.preview(cell, off, 1, seed=0, image_size=48)[0]
    again = augment.preview(cell, off, 3, seed=5, image_size=48)
    assert all(np.array_equal(base, x) for x in again)
    flip = off.model_copy(
        update={
            "flip_horizontal": off.flip_horizontal.model_copy(
                update={"enabled": True, "probability": 1.0}
            )
        }
    )
    flipped = augment.preview(cell, flip, 1, seed=0, image_size=48)[0]
    assert np.array_equal(flipped, base[:, ::-1])


def test_rgb_crop_of_any_size(rgb_dir):
    path = sorted((rgb_dir / "Parasitized").glob("*.png"))[0]
    im = np.asarray(Image.open(path))
    assert im.shape[0] != im.shape[1]
    out = augment.preview(im, config.Config().augment, 2, seed=0, image_size=64)
    assert out[0].shape == (64, 64, 3) and out[0][..., 0].std() > 0


def test_mixup_and_cutmix_make_soft_labels(cell):
    cfg = config.load(
        None,
        [
            "augment.mixup.enabled=true",
            "augment.mixup.probability=1.0",
            "augment.cutmix.enabled=false",
        ],
    ).augment
    x = tf().random.uniform((4, 32, 32, 3), seed=1)
    y = tf().constant([[1.0], [1.0], [0.0], [0.0]])
    _, ym = augment.mix_batch(x, y, tf().constant([3, 4], tf().int64), cfg)
    assert np.all((np.asarray(ym) >= 0) & (np.asarray(ym) <= 1)) and not np.array_equal(
        np.asarray(ym), np.asarray(y)
    )
    cut = config.load(
        None, ["augment.cutmix.enabled=true", "augment.cutmix.probability=1.0"]
    ).augment
    xc, yc = augment.mix_batch(x, y, tf().constant([3, 5], tf().int64), cut)
    changed = np.mean(np.asarray(xc) != np.asarray(x))
    assert 0 < changed < 1
    assert np.all(np.abs(np.asarray(yc)[:, 0] + np.asarray(yc)[::-1, 0] - 1) < 1e-5)
