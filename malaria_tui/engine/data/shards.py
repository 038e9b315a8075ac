"""Sharded TFRecord cache: decoded uint8 images on disk, read back in a seeded order.

For data larger than memory (``data.cache = "shards"``). Each split is written once to
``data.shards`` TFRecord files of ``tf.train.Example`` records (``image``: the raw
size x size x 3 uint8 bytes, ``label``, ``index``: the example's position in the split's
records), each file contiguous, in a fixed write order (the train split in a seeded
permutation, so every shard is a random sample of it; other splits in record order).

A set is committed by its ``manifest.json``, written last: a folder without one, or whose
files disagree with it, was left by a killed run and is wiped and rewritten. Shards are
written under a temp name and renamed, so a complete-looking file is always a complete file.

Order. ``in_order`` gives back the write order exactly (val/test: record order, as evaluation
needs). ``epoch`` is a pure function of its seed: the shards in a seeded order, ``CYCLE`` open
at a time and interleaved one record each, then a seeded shuffle buffer. That is a uniform
permutation only when ``buffer`` >= the split. A smaller buffer bounds memory but only mixes
nearby records (none comes out more than ``buffer`` places early), so which images can share a
batch depends mostly on the fixed write order: hence the train split is written pre-shuffled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from malaria_tui.engine import atomic
from malaria_tui.engine.tfenv import Dataset, Tensor
from malaria_tui.engine.tfenv import tf as _tf

MANIFEST = "manifest.json"
VERSION = 1
CYCLE = 8  # shards read at once (open files and read-ahead buffers)


@dataclass(frozen=True)
class ShardSet:
    """A committed set of shards: its files, in write order, and what they hold."""

    files: list[str]
    counts: list[int]
    image_shape: tuple[int, int, int]
    label_dtype: str

    @property
    def n(self) -> int:
        return sum(self.counts)


def key_of(*parts: object) -> str:
    """A fingerprint of what a shard set was built from (records, size, colour, count, order)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def ensure(folder: Path, key: str, source: Callable[[], Dataset], n: int, shards: int) -> ShardSet:
    """The shard set in ``folder`` for ``key``, written from ``source()`` unless already there.

    ``source()`` returns a dataset of ``(image, label, index)`` in write order.
    """
    found = _load(folder, key)
    if found is not None:
        return found
    shutil.rmtree(folder, ignore_errors=True)  # a half-written or stale set
    return write(folder, key, source(), n, shards)


def write(folder: Path, key: str, ds: Dataset, n: int, shards: int) -> ShardSet:
    """Write ``ds`` to at most ``shards`` contiguous shards (all the same size but the last),
    each under a temp name, fsynced, then renamed; the manifest is written last, as the commit."""
    tf = _tf()
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-n // max(1, min(shards, n)))  # records per shard; only the last may be short
    total = -(-n // size) if n else 0
    names = [f"{k:05d}-of-{total:05d}.tfrecord" for k in range(total)]
    image_shape, label_dtype = None, ds.element_spec[1].dtype.name
    counts: list[int] = []
    shard: tuple[Any, Path] | None = None  # the open writer and its temp file
    written = 0
    try:
        for images, labels, indices in ds.batch(64).prefetch(1).as_numpy_iterator():
            for image, label, index in zip(images, labels, indices, strict=True):
                image_shape = image_shape or [int(d) for d in image.shape]
                if shard is None:
                    tmp = folder / f".{names[len(counts)]}.tmp"
                    shard = (tf.io.TFRecordWriter(str(tmp)), tmp)
                writer, tmp = shard
                writer.write(_example(image, int(label), int(index)))
                written += 1
                if written == size or len(counts) * size + written == n:
                    writer.close()
                    _fsync(tmp)
                    os.replace(tmp, folder / names[len(counts)])
                    counts.append(written)
                    shard, written = None, 0
    finally:
        if shard is not None:
            shard[0].close()
    if sum(counts) != n or len(counts) != total:
        raise RuntimeError(f"shard writer: expected {n} examples, the source gave {sum(counts)}")
    atomic.fsync_dir(folder)
    manifest = {
        "version": VERSION,
        "key": key,
        "image_shape": image_shape,
        "label_dtype": label_dtype,
        "files": [
            {"name": f, "count": c, "bytes": (folder / f).stat().st_size}
            for f, c in zip(names, counts, strict=True)
        ],
    }
    atomic.write_json(folder / MANIFEST, manifest)
    return _set(folder, manifest)


def in_order(s: ShardSet) -> Dataset:
    """``(image, label, index)`` in write order: each shard whole, read ahead in parallel."""
    tf = _tf()
    block = max(s.counts, default=1)  # every shard but the last holds exactly this many
    ds = tf.data.Dataset.from_tensor_slices(s.files).interleave(
        tf.data.TFRecordDataset,
        cycle_length=max(1, min(CYCLE, len(s.files))),
        block_length=block,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return _parse(ds, s)


def epoch(s: ShardSet, seed: int, buffer: int) -> Dataset:
    """``(image, label, index)`` in an order that depends only on ``seed`` (see module doc)."""
    tf = _tf()
    order = np.random.default_rng(seed).permutation(len(s.files))
    ds = tf.data.Dataset.from_tensor_slices([s.files[i] for i in order]).interleave(
        tf.data.TFRecordDataset,
        cycle_length=max(1, min(CYCLE, len(s.files))),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = _parse(ds, s)
    return ds.shuffle(max(1, min(buffer, s.n)), seed=seed, reshuffle_each_iteration=False)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _example(image: np.ndarray, label: int, index: int) -> bytes:
    tf = _tf()
    f = tf.train.Feature
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": f(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
                "label": f(int64_list=tf.train.Int64List(value=[label])),
                "index": f(int64_list=tf.train.Int64List(value=[index])),
            }
        )
    ).SerializeToString()


def _parse(records: Dataset, s: ShardSet) -> Dataset:
    """Batched parsing (one ``parse_example`` per 64 records), in parallel, order kept."""
    tf = _tf()
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "index": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ex = tf.io.parse_example(batch, spec)
        images = tf.reshape(tf.io.decode_raw(ex["image"], tf.uint8), [-1, *s.image_shape])
        return images, tf.cast(ex["label"], s.label_dtype), ex["index"]

    ds = records.batch(64).map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.unbatch()
    return ds.apply(tf.data.experimental.assert_cardinality(s.n))


def _load(folder: Path, key: str) -> ShardSet | None:
    """The committed set in ``folder`` if it was built for ``key`` and its files are intact."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("version") != VERSION or manifest.get("key") != key:
        return None
    for f in manifest["files"]:
        p = folder / f["name"]
        if not p.is_file() or p.stat().st_size != f["bytes"]:
            return None
    return _set(folder, manifest)


def _set(folder: Path, manifest: dict[str, Any]) -> ShardSet:
    return ShardSet(
        files=[str(folder / f["name"]) for f in manifest["files"]],
        counts=[f["count"] for f in manifest["files"]],
        image_shape=tuple(manifest["image_shape"]),
        label_dtype=manifest["label_dtype"],
    )
