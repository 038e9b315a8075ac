"""Sharded TFRecord cache (data.cache = "shards") on real cells: same examples, seeded order."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from malaria_tui.engine import config
from malaria_tui.engine.data import pipeline, shards
from malaria_tui.engine.errors import ConfigError
from malaria_tui.engine.training.trainer import train
from tests.conftest import REPO, TINY, copy_cells


def _sets(cells, cache, *more):
    return [
        f'data.source="folder:{cells}"',
        f'data.cache="{cache}"',
        "data.image_size=32",
        "data.batch_size=16",
        *more,
    ]


def _prepared(cells, cache="shards", cache_dir=None, *more):
    p = pipeline.prepare(config.load(None, _sets(cells, cache, *more)))
    if cache_dir is not None:
        pipeline.use_disk_cache(p, cache_dir)
    return p


def _arrays(ds):
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def _multiset(x, y):
    return sorted((img.tobytes(), float(label)) for img, label in zip(x, y.ravel(), strict=True))


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """120 real cells (60 per class): 96 train, so 9 shards of 11 (more than one read cycle)."""
    return copy_cells(tmp_path_factory.mktemp("shards") / "cells", 60, step=5)


def test_config_takes_shards_and_refuses_bad_values_in_one_line():
    c = config.load(None, ['data.cache="shards"', "data.shards=4", "data.shuffle_buffer=100"])
    assert (c.data.cache, c.data.shards, c.data.shuffle_buffer) == ("shards", 4, 100)
    for bad, needle in [
        ("data.shards=0", "data.shards: Input should be greater than or equal to 1"),
        ("data.shuffle_buffer=0", "data.shuffle_buffer: Input should be greater than or equal"),
        ('data.cache="tfrecord"', "data.cache: Input should be 'memory', 'disk', 'shards' or"),
    ]:
        with pytest.raises(ConfigError) as e:
            config.load(None, [bad])
        assert needle in str(e.value) and "\n" not in str(e.value)


def test_shards_hold_exactly_the_examples_of_the_memory_cache(cells, tmp_path):
    mem = _prepared(cells, "memory")
    sh = _prepared(cells, "shards", tmp_path / "cache", "data.shards=9")
    n = mem.counts["train"]["total"]
    a, b = _arrays(mem.train_epoch(0, augment=False)), _arrays(sh.train_epoch(0, augment=False))
    assert len(a[0]) == len(b[0]) == n and _multiset(*a) == _multiset(*b)
    # val and test come back in record order, as evaluation expects (per-image rows, patients)
    for split in ("val", "test"):
        ea, eb = _arrays(mem.eval_dataset(split)), _arrays(sh.eval_dataset(split))
        assert np.array_equal(ea[0], eb[0]) and np.array_equal(ea[1], eb[1])
    # the train split is stored pre-shuffled; every record carries its index in the split
    train = sh._shard_set("train")
    assert len(train.files) == 9 > shards.CYCLE and sum(train.counts) == n
    assert train.files == sorted(
        str(f) for f in (tmp_path / "cache/train.shards").glob("*.tfrecord")
    )
    base = list(mem.base("train").as_numpy_iterator())
    idx = []
    for image, label, i in shards.in_order(train).as_numpy_iterator():
        assert np.array_equal(image, base[i][0]) and label == base[i][1]
        idx.append(int(i))
    assert sorted(idx) == list(range(n)) and idx != sorted(idx)
    assert [int(i) for *_, i in shards.in_order(sh._shard_set("val")).as_numpy_iterator()] == list(
        range(sh.counts["val"]["total"])
    )


@pytest.mark.parametrize("buffer", [10_000, 8])  # whole split / bounded: both seeded
def test_epoch_order_is_a_pure_function_of_seed_and_epoch(cells, tmp_path, buffer):
    more = ("data.shards=9", f"data.shuffle_buffer={buffer}")
    first = _prepared(cells, "shards", tmp_path / "cache", *more)
    e1 = _arrays(first.train_epoch(1))  # augmented: the per-example seeds follow the order
    files = first._shard_set("train").files
    stamps = [os.stat(f).st_mtime_ns for f in files]
    again = _prepared(cells, "shards", tmp_path / "cache", *more)  # e.g. a resumed process
    r1 = _arrays(again.train_epoch(1))
    assert np.array_equal(e1[0], r1[0]) and np.array_equal(e1[1], r1[1])
    assert [os.stat(f).st_mtime_ns for f in again._shard_set("train").files] == stamps  # reused
    plain = [_arrays(again.train_epoch(e, augment=False)) for e in (1, 2)]
    assert _multiset(*plain[0]) == _multiset(*plain[1])
    assert not np.array_equal(plain[0][1], plain[1][1])  # another epoch, another order


def test_skip_batches_resumes_with_the_tail_of_the_same_epoch(cells, tmp_path):
    sh = _prepared(cells, "shards", tmp_path / "cache", "data.shards=4", "data.shuffle_buffer=20")
    whole = [(x.numpy(), y.numpy()) for x, y in sh.train_epoch(3)]
    tail = [(x.numpy(), y.numpy()) for x, y in sh.train_epoch(3, skip_batches=2)]
    assert len(tail) == len(whole) - 2 == sh.steps_per_epoch - 2
    for (xa, ya), (xb, yb) in zip(whole[2:], tail, strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)


_KILLED_WRITER = """
import os, sys, time
from pathlib import Path
from malaria_tui.engine import config
from malaria_tui.engine.data import pipeline
from malaria_tui.engine.tfenv import tf as _tf

tf = _tf()
p = pipeline.prepare(config.load(None, sys.argv[2:]))
pipeline.use_disk_cache(p, Path(sys.argv[1]))
real = p._source

def stall(k, image):  # the source stalls after 64 images: the writer is mid-set
    if k >= 64:
        time.sleep(600)
    return image

def slow_source(split, order=None):
    ds = real(split, order).enumerate()
    def f(k, ex):
        image = tf.numpy_function(stall, [k, ex[0]], tf.uint8)
        image.set_shape(ex[0].shape)
        return image, ex[1]
    return ds.map(f)

p._source = slow_source
p._shard_set("train")
"""


@pytest.mark.slow
def test_a_killed_half_written_shard_set_is_detected_and_rewritten(cells, tmp_path):
    cache = tmp_path / "cache"
    folder = cache / "train.shards"
    sets = _sets(cells, "shards", "data.shards=8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLED_WRITER), str(cache), *sets], env=env
    )
    deadline = time.time() + 120
    try:
        while not (folder.is_dir() and any(folder.glob("*.tfrecord"))):
            assert proc.poll() is None and time.time() < deadline, "the writer never got going"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-set: it stalls before its 65th image
        proc.wait(timeout=30)
    left = {f.name for f in folder.iterdir()}
    assert "manifest.json" not in left and any(n.endswith(".tmp") for n in left), left
    assert 0 < len([n for n in left if n.endswith(".tfrecord")]) < 8

    mem = _prepared(cells, "memory")
    sh = _prepared(cells, "shards", cache, "data.shards=8")
    x, y = _arrays(sh.train_epoch(0, augment=False))
    assert _multiset(x, y) == _multiset(*_arrays(mem.train_epoch(0, augment=False)))
    names = sorted(f.name for f in folder.iterdir())
    assert names == [f"{k:05d}-of-00008.tfrecord" for k in range(8)] + ["manifest.json"]

    # a shard cut short under an intact manifest (a bad disk, a copy) is caught by its size
    victim = folder / "00003-of-00008.tfrecord"
    victim.write_bytes(victim.read_bytes()[:100])
    again = _prepared(cells, "shards", cache, "data.shards=8")
    assert _multiset(*_arrays(again.train_epoch(0, augment=False))) == _multiset(x, y)
    assert victim.stat().st_size > 100


@pytest.mark.slow
def test_tiny_training_run_with_shards_stops_resumes_and_finishes(cells, tmp_path):
    cfg = config.load(
        None,
        [
            *TINY,
            f'data.source="folder:{cells}"',
            "data.limit=0",
            'data.cache="shards"',
            "data.shards=3",
            "train.epochs=2",
            "train.batch_events_per_second=1000",
            "train.tensorboard=false",
        ],
    )
    stop = threading.Event()

    def stop_in_second_epoch(ev):
        if ev.kind == "batch" and ev.epoch == 1 and ev.step == 2:
            stop.set()

    run = train(cfg, runs_dir=tmp_path / "runs", on_event=stop_in_second_epoch, stop=stop)
    assert run.status() == "interrupted"
    manifest = run.path / "cache" / "train.shards" / shards.MANIFEST
    stamp = manifest.stat().st_mtime_ns
    seen = []

    def on_event(ev):
        if ev.kind == "batch" and not seen:  # the resumed run reads the shards it left
            seen.append(manifest.stat().st_mtime_ns)

    train(run=run, resume=True, on_event=on_event)
    assert run.status() == "completed" and seen == [stamp]
    assert not (run.path / "cache").exists()  # like the disk cache: only kept for a resume
