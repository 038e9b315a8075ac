"""Rebuild the bundled sample (malaria_tui/sample_data) from the shared NIH grayscale copy.

Picks 750 cells per class, spread round-robin over every patient group, seeded; copies the PNG
bytes unchanged and writes a manifest (path,label,group,sha256). Run from the repo root:
    python tools/make_sample.py ../shared/data/malaria
"""

from __future__ import annotations

import csv
import hashlib
import random
import shutil
import sys
from collections import defaultdict
from pathlib import Path

PER_CLASS = 750


def main(src: str) -> None:
    src_p = Path(src)
    with open(src_p / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out = Path(__file__).resolve().parents[1] / "malaria_tui" / "sample_data"
    if out.exists():
        shutil.rmtree(out)
    rng = random.Random(20261127)
    picked = []
    for label in ("Parasitized", "Uninfected"):
        by_group = defaultdict(list)
        for r in rows:
            if r["label"] == label:
                by_group[r["group"]].append(r)
        queues = []
        for g in sorted(by_group):
            items = sorted(by_group[g], key=lambda r: r["path"])
            rng.shuffle(items)
            queues.append(items)
        rng.shuffle(queues)
        chosen = []
        while len(chosen) < PER_CLASS:
            for q in queues:
                if q and len(chosen) < PER_CLASS:
                    chosen.append(q.pop())
        picked += chosen
    with open(out.parent / "sample_data.csv.tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group", "sha256"])
        for r in sorted(picked, key=lambda r: r["path"]):
            name = Path(r["path"]).name
            dest = out / r["label"] / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = (src_p / r["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == r["sha256"]
            dest.write_bytes(data)
            w.writerow([f"{r['label']}/{name}", r["label"], r["group"], r["sha256"]])
    (out.parent / "sample_data.csv.tmp").replace(out / "manifest.csv")
    print(f"{len(picked)} images from {len({r['group'] for r in picked})} groups -> {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/malaria")
