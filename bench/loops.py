"""Custom GradientTape loop vs Keras fit: images/s on the same model and data, side by side.

    python bench/loops.py [--epochs 5] [--limit 6000] [--set KEY=VALUE ...]

Each loop trains one warm-up epoch (tracing, cache fill), then the loops alternate epochs (and
which goes first) so both see the same machine load; the medians are compared. Per-epoch rates
swing by +-20% on a shared 2-core machine, so use five epochs or more.
"""

from __future__ import annotations

import argparse
import statistics

from _common import build_loop, config, data_source, tfenv, time_epoch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=6000)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    tfenv.tf()
    from malaria_tui.engine.data import pipeline

    source, limit = data_source(a.limit)
    cfg = config.load(None, [f'data.source="{source}"', f"data.limit={limit}", *a.set])
    prepared = pipeline.prepare(cfg)
    n = prepared.counts["train"]["total"]
    loops = {k: build_loop(cfg, prepared, k) for k in ("custom", "fit")}
    for loop in loops.values():
        time_epoch(loop, prepared.train_epoch(0), n)
    rates = {k: [] for k in loops}
    for e in range(1, a.epochs + 1):
        order = list(loops) if e % 2 else list(loops)[::-1]
        for k in order:
            rates[k].append(time_epoch(loops[k], prepared.train_epoch(e), n))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"model {cfg.model.name} @ {cfg.data.image_size}px, batch {cfg.data.batch_size}, {n} training images ({source})"
    )
    for k, v in rates.items():
        print(f"  {k:6s} " + " ".join(f"{r:7.0f}" for r in v) + f"  median {med[k]:.0f} img/s")
    print(f"custom / fit = {med['custom'] / med['fit']:.3f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
