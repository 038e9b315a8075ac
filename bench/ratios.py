"""Every speed ratio of the project in one run, with a summary table at the end.

    python bench/ratios.py [--quick]

Runs the side-by-side benchmarks one after another (never at once: they would share the cores)
and collects the ratio each prints: custom loop vs ``fit``, image files vs tensors in memory,
input pipeline vs model, TUI vs headless (and keypress latency while training), mirrored on two
logical devices vs one, and images/s and peak memory per registry model. Each script's full
output is shown as it runs; ``--quick`` uses smaller subsets (a smoke run, noisier figures).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ("loops.py", ["--epochs", "5", "--limit", "4000"]),
    ("files_vs_memory.py", ["--epochs", "3", "--limit", "4000"]),
    ("pipeline.py", ["--limit", "4000"]),
    ("tui_vs_headless.py", ["--epochs", "3", "--repeats", "3"]),
    ("strategies.py", ["--epochs", "2", "--limit", "3000"]),
    ("models.py", ["--limit", "2000"]),
]
QUICK = [
    ("loops.py", ["--epochs", "2", "--limit", "1500"]),
    ("files_vs_memory.py", ["--epochs", "2", "--limit", "1500"]),
    ("pipeline.py", ["--limit", "1500"]),
    ("tui_vs_headless.py", ["--epochs", "3", "--repeats", "1"]),
    ("strategies.py", ["--epochs", "1", "--limit", "1000"]),
    ("models.py", ["--limit", "600"]),
]
# lines worth repeating in the summary: ratios, targets, latencies and the per-model table
KEEP = re.compile(
    r"( = |target|keypress|^model |^\S+\s+[\d,]+\s+\d+\s+[\d.]+|TUI/headless|^steady|^(headless|tui-\w+)\s+\d)"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller subsets: a smoke run")
    a = ap.parse_args()
    summary: list[tuple[str, list[str], float, int]] = []
    for script, args in QUICK if a.quick else FULL:
        cmd = [sys.executable, str(HERE / script), *args]
        print(f"\n$ python bench/{script} {' '.join(args)}", flush=True)
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        kept = []
        for line in proc.stdout:
            print(line, end="", flush=True)
            if KEEP.search(line):
                kept.append(line.rstrip())
        rc = proc.wait()
        summary.append((script, kept, time.perf_counter() - t, rc))
    print("\n" + "=" * 78 + "\nsummary (each script measures its pair side by side in one process)")
    for script, kept, seconds, rc in summary:
        status = "" if rc == 0 else f"  FAILED (exit {rc})"
        print(f"\n{script}  ({seconds / 60:.1f} min){status}")
        for line in kept:
            print(f"  {line.strip()}")


if __name__ == "__main__":
    main()
