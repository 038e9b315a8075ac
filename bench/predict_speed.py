"""predict throughput on 2,000 real cells (.keras vs .tflite) and one-image latency with start-up.

    python bench/predict_speed.py [--run RUN_DIR]

Without --run, a quick run (configs/quick.toml, bundled sample) is trained first.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, SHARED, config, tfenv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run")
    ap.add_argument("--n", type=int, default=2000)
    a = ap.parse_args()
    tfenv.divert_native_stderr()
    from malaria_tui.engine.export import export_run
    from malaria_tui.engine.inference import diagnose, predictor

    tmp = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    if a.run:
        run = Path(a.run)
    else:
        from malaria_tui.engine.training.trainer import train

        run = train(config.load(REPO / "configs" / "quick.toml"), runs_dir=tmp / "runs").path
    src = SHARED if SHARED.is_dir() else REPO / "malaria_tui" / "sample_data"
    cells = tmp / "cells"
    cells.mkdir()
    for i, f in enumerate(sorted(src.rglob("*.png"))[: a.n]):
        shutil.copy(f, cells / f"{i:05d}_{f.name}")
    tfl = tmp / "m.tflite"
    export_run(run, "tflite", str(tfl))
    rates = {}
    for name, source in (("keras", run), ("tflite", tfl)):
        model = predictor.load(source)
        diagnose.run_predict(model, [str(cells)])  # warm-up
        t = time.perf_counter()
        got, *_ = diagnose.run_predict(model, [str(cells)])
        rates[name] = len(got) / (time.perf_counter() - t)
        print(f"{name:6s}: {rates[name]:7.0f} images/s on {len(got)} cells (read + resize + model)")
    print(f"tflite / keras = {rates['tflite'] / rates['keras']:.2f}")
    one = next(cells.iterdir())
    for name, source in (("keras", run), ("tflite", tfl)):
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "malaria_tui", "predict", str(source), str(one), "--json"],
            check=True,
            capture_output=True,
        )
        print(
            f"one-image predict, whole command incl. start-up ({name}): {time.perf_counter() - t:.2f} s"
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
