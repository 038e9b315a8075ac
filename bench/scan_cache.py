"""Scanning a data folder with the scan cache cold (every image decoded) and warm (none decoded).

    python bench/scan_cache.py [--repeat 3] [--folder PATH]

The folder (default: the shared 23,597 NIH cells, else the bundled sample) is scanned as training
does (``records.scan_folder``, every image checked) three ways: with the cache off, cold (an
empty cache folder) and warm (the same folder again, nothing changed). Then
``malaria-tui data folder:PATH`` runs as a subprocess, cold and warm, for the wall time a person
sees. Each repeat uses a fresh temporary ``MALARIA_TUI_CACHE_DIR``, so a cold run is really cold
for the cache; the images themselves stay in the OS page cache after the first pass (a first
read from disk would make the cold figures slower still). Medians are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, SHARED

from malaria_tui.engine.data import records, scan_cache


def timed_scan(folder: Path, cache: str) -> tuple[float, records.Scan]:
    os.environ[scan_cache.ENV] = cache
    t = time.perf_counter()
    scan = records.scan_folder(folder)
    return time.perf_counter() - t, scan


def timed_cli(folder: Path, cache: str) -> float:
    script = Path(sys.executable).parent / "malaria-tui"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "malaria_tui"]
    env = {**os.environ, scan_cache.ENV: cache}
    t = time.perf_counter()
    subprocess.run(
        [*cmd, "data", f"folder:{folder}"], cwd=REPO, env=env, check=True, capture_output=True
    )
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--folder", type=Path, default=SHARED if SHARED.is_dir() else None)
    a = ap.parse_args()
    folder = a.folder or records.sample_root()
    times: dict[str, list[float]] = {k: [] for k in ("off", "cold", "warm", "cli cold", "cli warm")}
    n, size = 0, 0
    for _ in range(a.repeat):
        with tempfile.TemporaryDirectory(prefix="scan-cache-bench-") as tmp:
            t_off, plain = timed_scan(folder, "off")
            t_cold, cold = timed_scan(folder, tmp)
            t_warm, warm = timed_scan(folder, tmp)
            if not cold == warm == plain:
                raise SystemExit("scan_cache: cached and uncached scans differ")
            n = len(plain.records) + len(plain.skipped)
            size = sum(f.stat().st_size for f in Path(tmp).rglob("*.json"))
            for k, v in (("off", t_off), ("cold", t_cold), ("warm", t_warm)):
                times[k].append(v)
        with tempfile.TemporaryDirectory(prefix="scan-cache-bench-") as tmp:
            times["cli cold"].append(timed_cli(folder, tmp))
            times["cli warm"].append(timed_cli(folder, tmp))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{n} images in {folder}, {a.repeat} repeats, median seconds (all runs)")
    for k in times:
        print(f"  {k:9s} {med[k]:7.3f}   " + " ".join(f"{t:.3f}" for t in times[k]))
    print(
        f"scan_folder: cold / warm = {med['cold'] / med['warm']:.1f}x  (cache file {size / 1e6:.1f} MB)"
    )
    print(f"malaria-tui data: cold / warm = {med['cli cold'] / med['cli warm']:.2f}x")


if __name__ == "__main__":
    main()
