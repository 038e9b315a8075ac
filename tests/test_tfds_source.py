"""TFDS ``malaria`` prepared offline from a small real ``cell_images.zip`` in TFDS's manual_dir.

TensorFlow and TFDS run for real; the archive's checksum is registered the TFDS way (see
tests/tfds_archive.py) because the small zip cannot match the 337 MB original's.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import zipfile
from collections import Counter

import numpy as np
import pytest
from tfds_archive import make_cell_images_zip, malaria_builder_for, png_counts

from malaria_tui.engine.data import tfds_source
from malaria_tui.engine.errors import DataError

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_datasets")


@pytest.fixture
def prepared(tmp_path):
    """(data_dir, zip path, dataset, n): prepared through the default manual_dir."""
    data_dir = tmp_path / "tfds"
    zip_path = make_cell_images_zip(data_dir / "downloads" / "manual")
    ds, n = tfds_source.load_tfds(str(data_dir), builder_cls=malaria_builder_for(zip_path))
    return data_dir, zip_path, ds, n


def _key(image: np.ndarray) -> tuple:
    return image.shape, hashlib.sha256(image.tobytes()).hexdigest()


def test_prepares_from_manual_zip_with_mapped_labels(prepared):
    data_dir, zip_path, ds, n = prepared
    counts = png_counts(zip_path)
    assert (data_dir / "malaria" / "1.0.0" / "dataset_info.json").is_file()
    assert n == sum(counts.values())  # the Thumbs.db entries are not examples
    examples = list(ds.as_numpy_iterator())
    assert len(examples) == n
    assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[-1] == 3 for im, _ in examples)
    assert sum(int(y) for _, y in examples) == counts["Parasitized"]
    # Every image carries its own folder's label (1 = Parasitized), not just the right totals.
    with zipfile.ZipFile(zip_path) as zf:
        expected = Counter(
            (_key(tf.io.decode_png(zf.read(m), channels=3).numpy()), int("/Parasitized/" in m))
            for m in zf.namelist()
            if m.endswith(".png")
        )
    assert Counter((_key(im), int(y)) for im, y in examples) == expected


def test_second_load_reads_prepared_data_without_the_zip(prepared):
    data_dir, zip_path, _, n = prepared
    info = data_dir / "malaria" / "1.0.0" / "dataset_info.json"
    before = info.stat().st_mtime_ns
    zip_path.unlink()
    shutil.rmtree(data_dir / "downloads" / "extracted")
    ds, n2 = tfds_source.load_tfds(str(data_dir))  # TFDS's registered builder, as in production
    assert n2 == n
    assert sum(1 for _ in ds) == n
    assert info.stat().st_mtime_ns == before


def test_real_checksum_rejects_a_foreign_zip(tmp_path):
    data_dir = tmp_path / "tfds"
    make_cell_images_zip(data_dir / "downloads" / "manual", n_per_class=2)
    with pytest.raises(DataError) as err:
        tfds_source.load_tfds(str(data_dir))
    msg = str(err.value)
    assert "\n" not in msg and "cell_images.zip is not NIH's" in msg


def test_no_data_no_network_is_a_one_line_data_error(tmp_path, monkeypatch):
    # Offline here already; pinned so a CI runner with network does not start a 337 MB download.
    monkeypatch.setattr(tfds_source, "_reachable", lambda url: False)
    data_dir = tmp_path / "empty"
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        tfds_source.load_tfds(str(data_dir))
    assert time.monotonic() - start < 10
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"tfds: malaria is not prepared in {data_dir} and cannot be downloaded")
    assert str(data_dir / "downloads" / "manual") in msg and "folder:PATH" in msg


def test_reachability_probe_answers_quickly():
    start = time.monotonic()
    assert tfds_source._reachable("https://host.invalid/x.zip", timeout=1.0) is False
    assert time.monotonic() - start < 3


def _ids(part) -> list[int]:
    return [int(x) for x, _ in part.as_numpy_iterator()]


def test_split_is_seeded_disjoint_and_complete():
    n = 600
    ds = tf.data.Dataset.range(n).map(lambda i: (i, tf.cast(i % 2, tf.int32)))
    fractions = [0.7, 0.15, 0.15]
    parts = tfds_source.split_tfds(ds, fractions, seed=7)
    ids = {name: _ids(part) for name, part in parts.items()}
    assert set(ids) == {"train", "val", "test"}
    everything = [i for name in ids for i in ids[name]]
    assert sorted(everything) == list(range(n))  # disjoint and covering
    for name, frac in zip(("train", "val", "test"), fractions, strict=True):
        assert abs(len(ids[name]) / n - frac) < 0.07
    again = tfds_source.split_tfds(ds, fractions, seed=7)
    assert {name: _ids(part) for name, part in again.items()} == ids  # same across runs
    assert _ids(parts["val"]) == ids["val"]  # and across epochs
    other = tfds_source.split_tfds(ds, fractions, seed=8)
    assert _ids(other["train"]) != ids["train"]
    counts = tfds_source.count_splits(parts)
    for name in ids:
        odd = sum(i % 2 for i in ids[name])
        assert counts[name] == {
            "Parasitized": odd,
            "Uninfected": len(ids[name]) - odd,
            "total": len(ids[name]),
        }


def test_count_splits_of_prepared_data(prepared):
    _, zip_path, ds, n = prepared
    counts = tfds_source.count_splits(tfds_source.split_tfds(ds, [0.6, 0.2, 0.2], seed=3))
    assert sum(c["total"] for c in counts.values()) == n
    assert sum(c["Parasitized"] for c in counts.values()) == png_counts(zip_path)["Parasitized"]


def test_empty_split_is_a_data_error():
    ds = tf.data.Dataset.range(5).map(lambda i: (i, tf.cast(i % 2, tf.int32)))
    with pytest.raises(DataError, match="split is empty"):
        tfds_source.count_splits(tfds_source.split_tfds(ds, [1.0, 0.0, 0.0], seed=0))
