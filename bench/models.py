"""Training images/s and peak memory of every model in the registry at its default size.

    python bench/models.py [--limit 2000]

Each model trains two epochs in its own process (so peak RSS is its own); the second epoch's
images/s is reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from _common import build_loop, config, data_source, tfenv, time_epoch

HERE = Path(__file__).resolve().parent


def one(name: str, limit: int) -> dict:
    tfenv.tf()
    from malaria_tui.engine.data import pipeline

    source, limit = data_source(limit)
    cfg = config.load(
        None, [f'data.source="{source}"', f"data.limit={limit}", f'model.name="{name}"']
    )
    prepared = pipeline.prepare(cfg)
    n = prepared.counts["train"]["total"]
    loop = build_loop(cfg, prepared, "custom")
    time_epoch(loop, prepared.train_epoch(0), n)
    rate = time_epoch(loop, prepared.train_epoch(1), n)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": name,
        "params": int(loop.model.count_params()),
        "images_per_s": rate,
        "peak_mb": peak_mb,
        "size": cfg.data.image_size,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--one")
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.limit)))
        return
    from malaria_tui.engine.models.registry import MODEL_NAMES

    print(f"{'model':18s} {'params':>10s} {'px':>4s} {'images/s':>9s} {'peak RSS':>9s}")
    for name in MODEL_NAMES:
        out = subprocess.run(
            [sys.executable, str(HERE / "models.py"), "--one", name, "--limit", str(a.limit)],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            print(
                f"{name:18s} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
            )
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['model']:18s} {r['params']:10,d} {r['size']:4d} {r['images_per_s']:9.0f} {r['peak_mb']:8.0f}M"
        )


if __name__ == "__main__":
    main()
