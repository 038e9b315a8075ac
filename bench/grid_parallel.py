"""A 4-trial grid with ``--parallel 2`` vs one trial at a time, side by side, as typed.

    python bench/grid_parallel.py [--limit 4000] [--epochs 3]

Three runs of the same grid on real cells, one after another (never at once):
  sequential   ``malaria-tui grid --config G --no-ui``            (each trial on every core)
  parallel     ``malaria-tui grid --config G --no-ui --parallel 2`` (a process per trial, 1 core each)
  sequential-1 the sequential run with ``MALARIA_TUI_THREADS=1``   (the parallel trials' threads)
Prints the wall times, the ratio parallel / sequential, and whether each trial's figures equal
those of the sequential runs: exactly at the same thread count; at another thread count the
float sums run in another order, and the largest difference is printed.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, data_source

GRID = """
name = "bench"
[data]
source = "{source}"
limit = {limit}
[train]
epochs = {epochs}
tensorboard_images = false
[grid.values]
"optimizer.learning_rate" = [0.001, 0.003]
"model.dropout" = [0.2, 0.4]
"""
FIGURES = ("val_auc", "val_accuracy", "val_loss")


def _run(tmp: Path, name: str, config: Path, extra: list[str], env: dict[str, str]) -> tuple:
    runs = tmp / name
    cmd = [sys.executable, "-m", "malaria_tui", "grid", "--config", str(config), "--no-ui"]
    cmd += ["--plain", "--runs-dir", str(runs), *extra]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **env})
    seconds = time.perf_counter() - t
    (grid_dir,) = runs.iterdir()
    with open(grid_dir / "grid.csv", newline="") as f:
        rows = {r["trial"]: r for r in csv.DictReader(f)}
    return seconds, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args()
    source, limit = data_source(a.limit)
    tmp = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    config = tmp / "grid.toml"
    config.write_text(GRID.format(source=source, limit=limit, epochs=a.epochs))
    print(f"4 trials x {a.epochs} epochs on {source} (limit {limit}); {os.cpu_count()} cores")
    seq_t, seq = _run(tmp, "sequential", config, [], {})
    par_t, par = _run(tmp, "parallel", config, ["--parallel", "2"], {})
    one_t, one = _run(tmp, "sequential-1", config, [], {"MALARIA_TUI_THREADS": "1"})
    print(f"sequential           {seq_t:7.1f} s")
    print(f"parallel 2           {par_t:7.1f} s")
    print(f"sequential, 1 thread {one_t:7.1f} s")
    print(f"ratio parallel/sequential = {par_t / seq_t:.2f} (below 1: faster)")
    same = all(par[t][k] == one[t][k] for t in par for k in (*FIGURES, "best_epoch"))
    print(f"per-trial figures parallel == sequential at 1 thread each: {same}")
    diff = max(abs(float(par[t][k]) - float(seq[t][k])) for t in par for k in FIGURES)
    print(f"largest difference vs sequential on all cores: {diff:.2e}")
    for t in sorted(par):
        print(f"  {t}: " + " ".join(f"{k}={float(par[t][k]):.4f}" for k in FIGURES))
    print(f"(runs kept in {tmp}; repo {REPO.name})")


if __name__ == "__main__":
    main()
