"""Batched, pipelined ``predict`` (issue 18): the NumPy preprocessing equals the training's
TensorFlow one, and the batched reader gives what the old per-image loop gave.

What was found: the NumPy twin (``images.preprocess_batch``) is bit-exact, not merely close.
It replays TensorFlow's float32 arithmetic step by step (luminance summed left to right, the
ScaleAndTranslate spans and their left-to-right accumulation), so rounding ties come out the
same; the tests below therefore demand equality, with no 1/255 allowance.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from malaria_tui.engine.data import images
from malaria_tui.engine.inference import diagnose
from malaria_tui.engine.inference.predictor import Predictor
from tests.conftest import REPO, RGB, SHARED, copy_cells

NIH = SHARED / "malaria" / "cell_images"
SIZES = (50, 64, 96, 128)


def _synthetic(folder: Path) -> list[Path]:
    """RGBA, 16-bit gray, palette, 8-bit gray and gray+alpha PNGs of odd sizes (up and down)."""
    rng = np.random.default_rng(18)
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "rgba.png": Image.fromarray(rng.integers(0, 256, (73, 41, 4), np.uint8), "RGBA"),
        "gray16.png": Image.fromarray(rng.integers(0, 65536, (37, 90), np.uint16)),
        "palette.png": Image.fromarray(rng.integers(0, 256, (120, 66, 3), np.uint8)).convert(
            "P", palette=Image.Palette.ADAPTIVE, colors=50
        ),
        "gray8.png": Image.fromarray(rng.integers(0, 256, (200, 19), np.uint8), "L"),
        "gray_alpha.png": Image.fromarray(rng.integers(0, 256, (31, 31, 2), np.uint8), "LA"),
        "tiny.png": Image.fromarray(rng.integers(0, 256, (1, 3, 3), np.uint8), "RGB"),
    }
    for name, im in made.items():
        im.save(folder / name)
    assert Image.open(folder / "gray16.png").mode.startswith("I")  # really 16-bit on disk
    return sorted(folder.iterdir())


def _tf_reference(arrays: list[np.ndarray], size: int, gray: bool) -> np.ndarray:
    """The training pipeline's preprocessing: ``resize_uint8`` (graph mode, as in tf.data)
    then float32 / 255, image by image."""
    from malaria_tui.engine.tfenv import tf as _tf

    tf = _tf()
    fn = tf.function(lambda im: images.resize_uint8(im, size, gray), reduce_retracing=True)
    return np.stack([np.asarray(tf.cast(fn(a), tf.float32) / 255.0) for a in arrays])


def _numpy_paths(paths: list[Path], size: int, gray: bool) -> np.ndarray:
    """Both NumPy routes: the diagnosis reader (1-channel decode, batched) and the one-image
    ``to_model_input`` on Pillow's RGB; they must agree with each other too."""
    x, ok, bad = diagnose.load_images(paths, size, gray)
    assert not bad and ok == list(paths)
    one = np.stack([images.to_model_input(images.load_pil(str(p)), size, gray) for p in paths])
    assert x.dtype == one.dtype == np.float32
    np.testing.assert_array_equal(x, one)
    return x


# --- (a) NumPy preprocessing == TensorFlow preprocessing -------------------------------------


@pytest.mark.slow
def test_numpy_resize_equals_tf_on_real_cells_and_synthetic_images(rgb_dir, tmp_path):
    paths = sorted(rgb_dir.rglob("*.png"))  # 34 colour crops of varied sizes
    assert len(paths) == 34
    shapes = {images.load_pil(str(p)).shape[:2] for p in paths}
    # 76 to 169 px: shrunk at every size here, and enlarged along some axes at 96 and 128
    assert min(min(s) for s in shapes) < 96 and max(max(s) for s in shapes) > 128
    if NIH.is_dir():  # a few hundred real 50x50 gray cells, from many patients
        nih = sorted(NIH.rglob("*.png"))
        paths += nih[:: max(1, len(nih) // 300)][:300]
    paths += _synthetic(tmp_path / "synthetic")
    pil = [images.load_pil(str(p)) for p in paths]
    for size in SIZES:
        for gray in (False, True):
            want = _tf_reference(pil, size, gray)
            got = _numpy_paths(paths, size, gray)
            assert got.shape == want.shape == (len(paths), size, size, 3)
            diff = np.abs(got - want)
            assert diff.max() == 0.0, (
                f"size {size} gray {gray}: {np.count_nonzero(diff)} of {diff.size} values differ"
                f" (max {diff.max() * 255:.2f}/255)"
            )


@pytest.mark.slow
def test_in_memory_arrays_equal_tf_rgba_uint16_float_and_2d():
    rng = np.random.default_rng(7)
    cases = [
        rng.integers(0, 256, (45, 61, 4), np.uint8),  # RGBA: alpha dropped
        rng.integers(0, 65536, (52, 47, 3), np.uint16),  # 16-bit colour: / 257, truncated
        rng.integers(0, 256, (130, 141), np.uint8),  # 2-D gray
        rng.integers(0, 256, (40, 40, 1), np.uint8),  # HxWx1 gray
        rng.uniform(-20, 300, (33, 29, 3)),  # float: clipped to 0..255
    ]
    for arr in cases:
        as8 = (
            (arr / 257).astype(np.uint8)
            if arr.dtype == np.uint16
            else np.clip(arr, 0, 255).astype(np.uint8)
        )
        for size in (32, 50, 64, 128):
            for gray in (False, True):
                want = _tf_reference([as8], size, gray)[0]
                np.testing.assert_array_equal(images.to_model_input(arr, size, gray), want)
                np.testing.assert_array_equal(
                    images.resize_uint8_np(arr, size, gray),
                    np.asarray(images.resize_uint8(as8, size, gray)),
                )


@pytest.mark.slow
def test_luminance_equals_tf_rgb_to_grayscale_on_every_colour():
    from malaria_tui.engine.tfenv import tf as _tf

    v = np.arange(256, dtype=np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    every = np.stack([r, g, b], -1).reshape(4096, 4096, 3)
    want = np.asarray(_tf().image.rgb_to_grayscale(every))[..., 0]
    np.testing.assert_array_equal(images._luminance(every), want)
    np.testing.assert_array_equal(images._luminance(np.stack([v, v, v], -1)), v)  # gray stays


def test_resize_spans_are_normalised_and_identity_at_the_same_size():
    for n_in, n_out in ((50, 32), (50, 128), (131, 64), (7, 1), (1, 9)):
        starts, w = images._spans(n_in, n_out)
        assert starts.min() >= 0 and starts.max() < n_in
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    img = np.random.default_rng(0).integers(0, 256, (1, 50, 50, 3), np.uint8)
    np.testing.assert_array_equal(images.preprocess_batch(img, 50)[0] * 255, img[0])


# --- (b) the batched run_predict == the old per-image path ------------------------------------


def _folder(tmp_path: Path, rgb_dir: Path | None) -> Path:
    """Real cells (colour crops, gray NIH cells), synthetic odd images and two broken files."""
    folder = tmp_path / "slide"
    if rgb_dir is not None:
        shutil.copytree(rgb_dir, folder)

    copy_cells(folder / "gray", 20, step=5)
    _synthetic(folder / "odd")
    (folder / "odd" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (folder / "gray" / "Uninfected" / "notes.jpg").write_text("not an image")
    return folder


def _old_run_predict(model: Predictor, folder: Path, tta: bool = False):
    """What ``run_predict`` did before issue 18: one file at a time, Pillow then TensorFlow."""
    from malaria_tui.engine.models.tta import dihedral_mean

    files, _ = diagnose.collect([str(folder)])
    ok, bad, arrays = [], [], []
    for p in files:
        try:
            arrays.append(images.load_pil(str(p)))
        except Exception as e:
            bad.append((str(p), f"not a readable image ({type(e).__name__})"))
            continue
        ok.append(p)
    x = _tf_reference(arrays, model.image_size, model.color == "gray")
    probs = dihedral_mean(model.probabilities, x) if tta else model.probabilities(x)
    return ok, probs, bad, x


@pytest.fixture(scope="module")
def keras_model(tiny_run):
    from malaria_tui.engine.inference import predictor

    return predictor.load(tiny_run.path)


@pytest.mark.slow
@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_batched_predict_equals_the_old_per_image_path(keras_model, rgb_dir, tmp_path, color):
    model = dataclasses.replace(keras_model, color=color)
    folder = _folder(tmp_path, rgb_dir)
    ok, want, want_bad, want_x = _old_run_predict(model, folder)
    assert len(ok) == 34 + 40 + 6 and len(want_bad) == 2
    for chunk in (diagnose.CHUNK, 7):  # one chunk; many chunks, each read ahead by the pool
        seen: list[tuple[int, int]] = []
        cells, folders, bad, th, x = diagnose.run_predict(
            model,
            [str(folder)],
            chunk=chunk,
            keep_inputs=True,
            on_progress=lambda *a, seen=seen: seen.append(a),
        )
        assert [c.path for c in cells] == [str(p) for p in ok]
        assert bad == want_bad
        np.testing.assert_array_equal(x, want_x)  # the very same model inputs
        np.testing.assert_allclose([c.prob for c in cells], want, atol=1e-5)
        assert [c.label for c in cells] == [
            "Parasitized" if p >= th else "Uninfected" for p in [c.prob for c in cells]
        ]
        assert sum(f.cells for f in folders) == len(cells)
        total = len(ok) + len(bad)
        assert seen[0] == (0, total) and seen[-1] == (total, total)
        assert len(seen) == 1 + -(-total // chunk)
    _, want_tta, _, _ = _old_run_predict(model, folder, tta=True)
    cells, *_ = diagnose.run_predict(model, [str(folder)], tta=True, chunk=16)
    np.testing.assert_allclose([c.prob for c in cells], want_tta, atol=1e-5)


# --- without TensorFlow: order, unreadables, progress, cancelling ------------------------------


def _mean_predictor(size: int = 32, color: str = "gray") -> Predictor:
    """A model-free predictor (the mean brightness), so reading is tested on its own."""
    return Predictor(
        "numpy",
        "mean",
        size,
        lambda x: x.mean(axis=(1, 2, 3)),
        None,
        {"default": 0.5},
        color=color,
    )


def test_order_unreadables_and_progress_without_a_model(tmp_path):
    folder = _folder(tmp_path, RGB if RGB.is_dir() else None)
    files, _ = diagnose.collect([str(folder)])
    for color in ("gray", "rgb"):
        model = _mean_predictor(color=color)
        x_all, ok, bad_all = diagnose.load_images(files, 32, color == "gray")
        for chunk in (1, 5, 33, 10_000):
            seen: list[tuple[int, int]] = []
            cells, _, bad, _, x = diagnose.run_predict(
                model,
                [str(folder)],
                chunk=chunk,
                keep_inputs=True,
                on_progress=lambda *a, seen=seen: seen.append(a),
            )
            assert [c.path for c in cells] == [str(p) for p in ok]
            assert bad == bad_all and [Path(b).name for b, _ in bad] == ["notes.jpg", "broken.png"]
            np.testing.assert_array_equal(x, x_all)
            np.testing.assert_allclose([c.prob for c in cells], x_all.mean(axis=(1, 2, 3)))
            assert seen == [(0, len(files))] + [
                (min(s + chunk, len(files)), len(files)) for s in range(0, len(files), chunk)
            ]
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"nope")
    cells, folders, bad, _, x = diagnose.run_predict(_mean_predictor(), [str(only_bad)])
    assert cells == [] and folders == [] and len(bad) == 1 and x.shape == (0, 32, 32, 3)


def test_cancelling_from_on_progress_stops_reading(tmp_path):
    folder = _folder(tmp_path, None)

    class Stop(Exception):
        pass

    calls = []

    def progress(done, total):
        calls.append(done)
        if done:
            raise Stop

    with pytest.raises(Stop):
        diagnose.run_predict(_mean_predictor(), [str(folder)], chunk=3, on_progress=progress)
    assert calls == [0, 3]


def test_prediction_path_never_imports_tensorflow(tmp_path):
    """A ``.tflite`` model must predict with no TensorFlow installed: reading, resizing and
    scoring bookkeeping import none of it."""
    folder = _folder(tmp_path, None)
    code = f"""
import json, sys
from malaria_tui.engine.inference import diagnose
from malaria_tui.engine.inference.predictor import Predictor
p = Predictor("numpy", "mean", 32, lambda x: x.mean(axis=(1, 2, 3)), None, color="gray")
cells, _, bad, _, _ = diagnose.run_predict(p, [{str(folder)!r}], tta=True, chunk=8)
print(json.dumps([len(cells), len(bad), sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [46, 2, []]


def test_short_paths_is_linear_and_unchanged():
    """``short_paths`` counts tails instead of comparing every pair of paths (the table of
    the 23,597 NIH cells spent ~40 s there); the names it gives are those of the old loop.
    Its speed is not timed here (bench/predict_speed.py measures predict end to end)."""

    def old(paths, width=None):
        parts = {p: Path(p).parts for p in paths}
        out = {}
        for p, mine in parts.items():
            tail = ()
            for n in range(1, len(mine) + 1):
                tail = mine[-n:]
                if not any(q != p and other[-n:] == tail for q, other in parts.items()):
                    break
            text = str(Path(*tail)) if tail else p
            if width is not None and len(text) > width:
                keep = max(width - 1, 2)
                text = text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2) :]
            out[p] = text
        return out

    rng = np.random.default_rng(3)
    names = ["a", "b", "cell_1.png", "cell_2.png", "P", "U"]
    paths = ["/".join(rng.choice(names, rng.integers(1, 5))) for _ in range(300)]
    paths += ["/x/a/b", "x/a/b", "a/b", "/x//a/b", "/d/P/cell_1.png", "/d/U/cell_1.png"]
    for width in (None, 5, 12, 40):
        assert diagnose.short_paths(paths, width) == old(paths, width)
    many = [f"/slide/{'PU'[i % 2]}/C{i // 50}_cell_{i % 50}.png" for i in range(30_000)]
    got = diagnose.short_paths(many, 40)
    assert got[many[7]] == "C0_cell_7.png" and got[many[57]] == "C1_cell_7.png"
