"""tf.data input pipelines: parallel decode, resize, 3 channels, cache, seeded shuffle, prefetch.

Images are cached as uint8 after resizing (4x smaller than float) and converted to [0,1] floats
after the cache. Each training epoch is its own dataset whose order and augmentations depend
only on (seed, epoch), so a resumed run sees exactly the batches it would have seen. The cache
is in memory, a tf.data disk cache, or sharded TFRecords (``shards.py``, for data larger than
memory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from malaria_tui.engine.config import AugmentConfig, Config
from malaria_tui.engine.data import augment as aug
from malaria_tui.engine.data import label_overlay, shards, splits
from malaria_tui.engine.data import records as rec
from malaria_tui.engine.data.images import load_pil, resize_uint8
from malaria_tui.engine.data.shards import ShardSet
from malaria_tui.engine.errors import DataError
from malaria_tui.engine.tfenv import Dataset, Tensor
from malaria_tui.engine.tfenv import tf as _tf


@dataclass
class Prepared:
    """Everything the trainer needs to know about the data of one run."""

    source: str
    split_mode: str
    image_size: int
    batch_size: int
    seed: int
    counts: dict[str, dict[str, int]]  # split -> {"Parasitized": n, "Uninfected": n, "total": n}
    split_records: splits.Splits | None  # None for TFDS (no file names)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache: str = "memory"  # memory | disk | shards (both need use_disk_cache) | none
    shards: int = 16  # cache = shards: files per split
    shuffle_buffer: int = 10_000  # cache = shards: examples held by the training shuffle
    color: str = "rgb"  # gray: every image is reduced to luminance (set when the data is grayscale)
    autotune: bool = False  # tf.data autotuning of the datasets handed out (see _finish)
    # data.label_overrides: what the overlay changed in train/val, and its decisions
    # about test cells, which keep their original labels (scored on both: score_run)
    overlay: label_overlay.Effect | None = None
    _cached: dict[str, Dataset] = field(default_factory=dict, repr=False)
    _augment_cfg: AugmentConfig | None = None
    _cache_dir: Path | None = None
    _tfds_splits: dict[str, Dataset] | None = None
    _shard_sets: dict[str, ShardSet] = field(default_factory=dict, repr=False)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, -(-self.counts["train"]["total"] // self.batch_size))

    def base(self, split: str) -> Dataset:
        """The decoded, resized, cached uint8 examples of one split in record order (built once).

        ``shards`` without a cache folder (``use_disk_cache``) streams from the files uncached:
        it is meant for data that would not fit in memory.
        """
        if split not in self._cached:
            if self._sharded() and split != "train":  # train shards are written shuffled
                ds = shards.in_order(self._shard_set(split)).map(lambda im, y, i: (im, y))
            else:
                ds = self._source(split)
                if self.cache == "disk" and self._cache_dir is not None:
                    ds = ds.cache(str(_fresh_disk_cache(self._cache_dir, split)))
                elif self.cache in ("memory", "disk"):
                    ds = ds.cache()
            self._cached[split] = ds
        return self._cached[split]

    def _source(self, split: str, order: np.ndarray | None = None) -> Dataset:
        """Decoded, resized, uncached ``(image, label)`` of a split, in record order or (folder
        sources) in ``order``."""
        tf = _tf()
        if self._tfds_splits is not None:
            return self._tfds_splits[split].map(
                lambda im, y: (resize_uint8(im, self.image_size, self.color == "gray"), y),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        assert self.split_records is not None  # a folder source: records, not TFDS splits
        recs = self.split_records[split]
        if order is not None:
            recs = [recs[i] for i in order]
        return _file_dataset(recs, self.image_size, self.color == "gray")

    def _sharded(self) -> bool:
        return self.cache == "shards" and self._cache_dir is not None

    def _shard_set(self, split: str) -> ShardSet:
        """The split's TFRecord shards under the cache folder, written on first use.

        The train split is written in a permutation fixed by the seed, so that each shard is a
        random sample and a bounded shuffle buffer still mixes classes and patients; TFDS
        splits keep TFDS's own (already shuffled) order.
        """
        if split not in self._shard_sets:
            tf = _tf()
            n = self.counts[split]["total"]
            recs = self.split_records[split] if self.split_records else []
            permute = split == "train" and self.split_records is not None
            order = np.random.default_rng(self.seed).permutation(n) if permute else np.arange(n)
            what = [(r.path, r.label) for r in recs]
            key = shards.key_of(
                self.source, split, n, self.image_size, self.color, self.shards, self.seed, what
            )

            def source() -> Dataset:
                ds = self._source(split, order)
                idx = tf.data.Dataset.from_tensor_slices(order.astype(np.int64))
                return tf.data.Dataset.zip(ds, idx).map(lambda ex, i: (ex[0], ex[1], i))

            assert self._cache_dir is not None  # _sharded()
            folder = self._cache_dir / f"{split}.shards"
            self._shard_sets[split] = shards.ensure(folder, key, source, n, self.shards)
        return self._shard_sets[split]

    def train_epoch(self, epoch: int, skip_batches: int = 0, augment: bool = True) -> Dataset:
        """Batches of epoch ``epoch``: shuffled and augmented as a function of (seed, epoch)."""
        tf = _tf()
        n = self.counts["train"]["total"]
        cfg = self._augment_cfg
        if self._sharded():
            ds = shards.epoch(
                self._shard_set("train"), _derive(self.seed, epoch), self.shuffle_buffer
            ).map(lambda im, y, i: (im, y))
        else:
            ds = self.base("train").shuffle(
                n, seed=_derive(self.seed, epoch), reshuffle_each_iteration=False
            )
        ds = ds.enumerate()

        def per_image(i: Tensor, ex: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            image, label = ex
            x = tf.cast(image, tf.float32) / 255.0
            if augment and cfg is not None:
                x = aug.augment_image(
                    x, tf.stack([tf.constant(self.seed, tf.int64), epoch * 1_000_003 + i]), cfg
                )
            return x, label

        ds = ds.map(per_image, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(self.batch_size)
        if augment and cfg is not None and (cfg.mixup.enabled or cfg.cutmix.enabled):
            ds = ds.enumerate().map(
                lambda b, xy: aug.mix_batch(
                    xy[0],
                    xy[1],
                    tf.stack([tf.constant(self.seed + 1, tf.int64), epoch * 100_003 + b]),
                    cfg,
                ),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        else:
            ds = ds.map(lambda x, y: (x, tf.cast(y, tf.float32)))
        ds = ds.map(lambda x, y: (x, tf.reshape(y, [-1, 1])))
        if skip_batches:
            ds = ds.skip(skip_batches)
        return self._finish(ds)

    def eval_dataset(self, split: str) -> Dataset:
        """Unshuffled, unaugmented batches, in the order of ``split_records[split]``."""
        tf = _tf()
        ds = self.base(split).map(
            lambda im, y: (tf.cast(im, tf.float32) / 255.0, tf.cast(y, tf.float32))
        )
        ds = ds.batch(self.batch_size).map(lambda x, y: (x, tf.reshape(y, [-1, 1])))
        return self._finish(ds)

    def _finish(self, ds: Dataset) -> Dataset:
        """Prefetch, and tf.data autotuning only when asked for.

        With autotuning on, destroying an epoch's iterator waits for the autotuner's thread to
        wake up (``RootDataset::Iterator::~Iterator``), so many epochs end in a long stall on a
        small CPU machine. Off, ``AUTOTUNE`` parallelism stays at min(16, CPU cores) and the
        prefetch buffer keeps its own (legacy) sizing, which keeps up with these models.
        """
        tf = _tf()
        options = tf.data.Options()
        options.autotune.enabled = self.autotune
        return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def use_disk_cache(prepared: Prepared, cache_dir: Path) -> None:
    """Cache decoded images (``disk`` or ``shards``) under ``cache_dir`` (the run's ``cache/``)."""
    prepared._cache_dir = cache_dir


def _fresh_disk_cache(cache_dir: Path, split: str) -> Path:
    """The cache file prefix for ``split``; a cache left half-written by a killed run is removed
    (TF marks an unfinished cache with a ``.lockfile`` and would refuse to read or rewrite it)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    prefix = cache_dir / split
    if any(cache_dir.glob(f"{split}*.lockfile")):
        for f in cache_dir.glob(f"{split}*"):
            f.unlink(missing_ok=True)
    return prefix


def _derive(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**31 - 1)


def _file_dataset(records: list[rec.Record], size: int, gray: bool = False) -> Dataset:
    tf = _tf()
    paths = [r.path for r in records]
    labels = np.array([r.label for r in records], np.int32)
    # Bytes, not str: file names need not be valid UTF-8.
    ds = tf.data.Dataset.from_tensor_slices(
        (np.array([os.fsencode(p) for p in paths], dtype=object), labels)
    )
    if all(Path(p).suffix.lower() in rec.TF_DECODABLE for p in paths):

        def load(path: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
            raw = tf.io.read_file(path)
            image = tf.io.decode_image(raw, channels=3, expand_animations=False, dtype=tf.uint8)
            return resize_uint8(image, size, gray), label

    else:

        def load(path: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
            image = tf.numpy_function(lambda p: load_pil(os.fsdecode(p)), [path], tf.uint8)
            image.set_shape([None, None, 3])
            return resize_uint8(image, size, gray), label

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def prepare(config: Config) -> Prepared:
    """Scan, split and describe the data of a run; datasets are built lazily from the result."""
    d = config.data
    kind, root = rec.locate(d.source)
    if kind == "tfds":
        if d.label_overrides:
            raise DataError(
                "data.label_overrides: TFDS records carry no file names to match; use a folder source"
            )
        return _prepare_tfds(config, root or None)
    scan = rec.scan_folder(root)
    plan = splits.for_training(scan.records, scan.groups_known, d, config.seed)
    # after the split, so reviewed labels never move a patient; test keeps its labels
    parts, overlay = label_overlay.for_splits(plan.parts, d.label_overrides)
    return _from_config(
        config,
        color=resolve_color(d.color, plan.records),
        split_mode=plan.mode,
        counts=splits.counts(parts),
        split_records=parts,
        skipped=scan.skipped,
        overlay=overlay,
    )


def _from_config(config: Config, **fields: Any) -> Prepared:
    """A :class:`Prepared` with what every source takes from the config, plus ``fields``."""
    d = config.data
    return Prepared(
        source=d.source,
        image_size=d.image_size,
        batch_size=d.batch_size,
        seed=config.seed,
        cache=d.cache,
        shards=d.shards,
        shuffle_buffer=d.shuffle_buffer,
        autotune=d.autotune,
        _augment_cfg=config.augment,
        **fields,
    )


def resolve_color(color: str, records: list[rec.Record], probe: int = 64) -> str:
    """``auto``: gray when the images are single-channel (e.g. the 50x50 NIH copies), else rgb."""
    if color != "auto":
        return color
    from PIL import Image

    step = max(1, len(records) // probe)
    for r in records[::step][:probe]:
        with Image.open(r.path) as im:
            if im.mode not in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L"):
                return "rgb"
    return "gray"


def prepare_all(config: Config) -> Prepared:
    """Every image of a source as one split named ``all`` (for scoring a model on new data)."""
    d = config.data
    kind, root = rec.locate(d.source)
    records: splits.Splits | None
    parts: dict[str, Dataset] | None
    if kind == "tfds":
        from malaria_tui.engine.data import tfds_source

        ds, _ = tfds_source.load_tfds(root or None)
        parts = tfds_source.whole(ds)
        counts = tfds_source.count_splits(parts)
        records, skipped = None, []
    else:
        scan = rec.scan_folder(root)
        records, skipped = {"all": scan.records}, scan.skipped
        counts, parts = splits.counts(records), None
    return _from_config(
        config,
        color="rgb" if d.color == "auto" else d.color,
        split_mode="none",
        counts=counts,
        split_records=records,
        skipped=skipped,
        _tfds_splits=parts,
    )


def _prepare_tfds(config: Config, data_dir: str | None) -> Prepared:
    from malaria_tui.engine.data import tfds_source

    d = config.data
    if d.split == "patient":
        raise DataError(
            "data.split = 'patient': TFDS malaria records carry no file names, so no patient keys; use 'image' or 'auto'"
        )
    ds, n = tfds_source.load_tfds(data_dir)
    if d.limit:
        ds, n = ds.take(d.limit), min(n, d.limit)
    parts = tfds_source.split_tfds(ds, list(d.fractions), config.seed)
    return _from_config(
        config,
        split_mode="image",
        counts=tfds_source.count_splits(parts),
        split_records=None,
        color="rgb" if d.color == "auto" else d.color,
        _tfds_splits=parts,
    )
