"""The input pipeline alone vs what the model consumes: images/s, side by side in one run.

    python bench/pipeline.py [--limit 6000] [--epochs 2] [--cache memory,shards] [--set KEY=VALUE]

The pipeline is the engine's own training pipeline (decode, resize, cache, seeded shuffle,
augmentation, batching, prefetch) iterated with no model; the model figure is the custom loop
training on that same pipeline. One row per ``data.cache`` mode: ``memory`` (decoded images in
RAM) and ``shards`` (TFRecord shards on disk, read back through a parallel interleave, for data
larger than memory), each with its first pass (decode + cache fill or shard write). Target:
pipeline >= 5x the model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import build_loop, config, data_source, tfenv, time_epoch


def _images_per_sec(ds, n: int) -> float:
    t = time.perf_counter()
    for _ in ds:
        pass
    return n / (time.perf_counter() - t)


def _each(rates: list[float]) -> str:
    return " ".join(f"{x:.0f}" for x in rates)


def measure(cfg, epochs: int, cache_dir: Path) -> dict:
    from malaria_tui.engine.data import pipeline

    prepared = pipeline.prepare(cfg)
    pipeline.use_disk_cache(prepared, cache_dir)
    n = prepared.counts["train"]["total"]
    t = time.perf_counter()
    _images_per_sec(prepared.train_epoch(0), n)  # decode, fill the cache / write the shards
    first = time.perf_counter() - t
    loop = build_loop(cfg, prepared, "custom")
    time_epoch(loop, prepared.train_epoch(0), n)  # traces the step
    feed, model = [], []
    for e in range(1, epochs + 1):
        feed.append(_images_per_sec(prepared.train_epoch(e), n))
        model.append(time_epoch(loop, prepared.train_epoch(e), n))
    disk = sum(f.stat().st_size for f in cache_dir.rglob("*") if f.is_file())
    return {"n": n, "first": first, "feed": feed, "model": model, "disk": disk}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--cache", default="memory,shards", help="comma-separated data.cache modes")
    ap.add_argument("--set", action="append", default=[], help="extra config override")
    a = ap.parse_args()
    tfenv.tf()

    source, limit = data_source(a.limit)
    rows = {}
    for cache in a.cache.split(","):
        cfg = config.load(
            None,
            [f'data.source="{source}"', f"data.limit={limit}", f'data.cache="{cache}"', *a.set],
        )
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
            rows[cache] = measure(cfg, a.epochs, Path(tmp))
    n = next(iter(rows.values()))["n"]
    d = cfg.data
    print(
        f"{n} training images ({source}), {cfg.model.name} @ {d.image_size}px, batch {d.batch_size}"
        f"; shards: {d.shards} files, shuffle buffer {d.shuffle_buffer}"
    )
    for cache, r in rows.items():
        f, m = statistics.median(r["feed"]), statistics.median(r["model"])
        print(f"  {cache:<7} first pass {r['first']:5.1f} s, {r['disk'] / 1e6:6.1f} MB on disk")
        print(f"    pipeline alone : {f:8.0f} images/s  ({_each(r['feed'])})")
        print(f"    model training : {m:8.0f} images/s  ({_each(r['model'])})")
        print(f"    pipeline / model = {f / m:.1f}x  (target >= 5)")


if __name__ == "__main__":
    main()
