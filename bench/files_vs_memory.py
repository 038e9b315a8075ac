"""Training from image files (the engine's tf.data pipeline) vs from tensors already in memory.

    python bench/files_vs_memory.py [--epochs 3] [--limit 6000]

Both feed the same custom loop and model, with the same augmentation; the in-memory variant
decodes every image up front into one tensor. Epoch 0 (file decode and cache fill) is reported
separately; the ratio compares the following epochs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import build_loop, config, data_source, tfenv, time_epoch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=6000)
    a = ap.parse_args()
    tf = tfenv.tf()
    from malaria_tui.engine.data import pipeline

    source, limit = data_source(a.limit)
    cfg = config.load(None, [f'data.source="{source}"', f"data.limit={limit}"])
    prepared = pipeline.prepare(cfg)
    n = prepared.counts["train"]["total"]
    t = time.perf_counter()
    images, labels = zip(
        *[
            (im.numpy(), y.numpy())
            for im, y in pipeline._file_dataset(
                prepared.split_records["train"], cfg.data.image_size
            )
        ],
        strict=True,
    )
    print(f"decoding {n} files into memory took {time.perf_counter() - t:.1f}s")
    mem = pipeline.Prepared(
        **{
            **prepared.__dict__,
            "_cached": {
                "train": tf.data.Dataset.from_tensor_slices((np.stack(images), np.array(labels)))
            },
        }
    )
    loops = {"files": build_loop(cfg, prepared, "custom"), "memory": build_loop(cfg, mem, "custom")}
    sources = {"files": prepared, "memory": mem}
    first = {k: time_epoch(loop, sources[k].train_epoch(0), n) for k, loop in loops.items()}
    rates = {k: [] for k in loops}
    for e in range(1, a.epochs + 1):
        for k, loop in loops.items():
            rates[k].append(time_epoch(loop, sources[k].train_epoch(e), n))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{n} training images ({source}), model {cfg.model.name} @ {cfg.data.image_size}px")
    for k in loops:
        print(
            f"  {k:6s} first epoch {first[k]:6.0f} img/s; then "
            + " ".join(f"{r:6.0f}" for r in rates[k])
            + f"  median {med[k]:.0f}"
        )
    print(f"files / memory = {med['files'] / med['memory']:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
