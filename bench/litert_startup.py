"""Start-up: ``malaria-tui predict M.tflite CELL`` (LiteRT, no TensorFlow) vs ``import tensorflow``.

    python bench/litert_startup.py [--model M.tflite] [--repeats 5]

Without --model, a small run (configs/quick.toml, one epoch on 256 bundled cells) is trained
and exported to .tflite by the ``malaria-tui`` command in child processes first. Then, as new
processes and alternately (so both see the same machine load), ``python -c "import tensorflow"``
and the installed ``malaria-tui predict M.tflite CELL`` (one real cell, the whole command:
start-up, model load, image, table) run ``--repeats`` times each after one untimed warm-up of
each; wall times are compared by their medians. A last run checks that predict left
TensorFlow and Keras unimported. Target: predict <= 0.5 x import tensorflow.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO

SCRIPT = Path(sys.executable).parent / "malaria-tui"
MALARIA_TUI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "malaria_tui"]
CELL = sorted((REPO / "malaria_tui" / "sample_data" / "Parasitized").glob("*.png"))[0]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=True, **kw)


def _export(tmp: Path) -> Path:
    runs = tmp / "runs"
    quick = ["--config", str(REPO / "configs" / "quick.toml"), "--runs-dir", str(runs)]
    sets = ["--set", "train.epochs=1", "--set", "data.limit=256"]
    _run([*MALARIA_TUI, "--no-ui", "--plain", *quick, *sets], cwd=tmp)
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    model = tmp / "model.tflite"
    _run([*MALARIA_TUI, "export", str(run), "--format", "tflite", "--out", str(model)], cwd=tmp)
    return model


def _wall(args: list[str]) -> float:
    t = time.perf_counter()
    _run(args)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a .tflite file (default: train and export a small run)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-litert-") as tmp:
        model = Path(a.model) if a.model else _export(Path(tmp))
        commands = {
            "import tensorflow": [sys.executable, "-c", "import tensorflow"],
            "predict .tflite": [*MALARIA_TUI, "predict", str(model), str(CELL)],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for args in commands.values():
            _wall(args)  # warm-up: files into the page cache
        for i in range(a.repeats):
            for name, args in commands.items() if i % 2 == 0 else reversed(list(commands.items())):
                times[name].append(_wall(args))
        check = (
            "import sys; from malaria_tui.cli import main; "
            f"rc = main(['predict', {str(model)!r}, {str(CELL)!r}, '--json']); "
            "print([m for m in ('tensorflow', 'keras') if m in sys.modules], file=sys.stderr); "
            "sys.exit(rc)"
        )
        leaked = _run([sys.executable, "-c", check]).stderr.strip().splitlines()[-1]
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        runs = ", ".join(f"{x:.2f}" for x in t)
        print(f"{name:18s}: median {med[name]:.2f} s  ({runs})")
    ratio = med["predict .tflite"] / med["import tensorflow"]
    print(f"predict .tflite / import tensorflow = {ratio:.2f} (target <= 0.5)")
    print(f"TensorFlow or Keras imported by predict: {leaked}")


if __name__ == "__main__":
    main()
