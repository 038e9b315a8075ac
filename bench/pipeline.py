"""The input pipeline alone vs what the model consumes: images/s, side by side in one run.

    python bench/pipeline.py [--limit 6000] [--epochs 2]

The pipeline is the engine's own training pipeline (decode, resize, cache, seeded shuffle,
augmentation, batching, prefetch) iterated with no model; the model figure is the custom loop
training on that same pipeline. Target: pipeline >= 5x the model.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import build_loop, config, data_source, tfenv, time_epoch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    tfenv.tf()
    from malaria_tui.engine.data import pipeline

    source, limit = data_source(a.limit)
    cfg = config.load(None, [f'data.source="{source}"', f"data.limit={limit}"])
    prepared = pipeline.prepare(cfg)
    n = prepared.counts["train"]["total"]
    loop = build_loop(cfg, prepared, "custom")
    time_epoch(loop, prepared.train_epoch(0), n)  # fills the cache, traces the step
    feed, model = [], []
    for e in range(1, a.epochs + 1):
        t = time.perf_counter()
        for _ in prepared.train_epoch(e):
            pass
        feed.append(n / (time.perf_counter() - t))
        model.append(time_epoch(loop, prepared.train_epoch(e), n))
    f, m = statistics.median(feed), statistics.median(model)
    print(
        f"{n} training images ({source}), {cfg.model.name} @ {cfg.data.image_size}px, batch {cfg.data.batch_size}"
    )
    print(f"  pipeline alone : {f:8.0f} images/s  ({' '.join(f'{r:.0f}' for r in feed)})")
    print(f"  model training : {m:8.0f} images/s  ({' '.join(f'{r:.0f}' for r in model)})")
    print(f"pipeline / model = {f / m:.1f}x  (target >= 5)")


if __name__ == "__main__":
    main()
