"""predict throughput: the model alone vs the whole ``malaria-tui predict`` command, side by side.

    python bench/predict_speed.py [--run RUN_DIR] [--cells FOLDER] [--old 1000] [--tflite]

On the 23,597 shared NIH cells (``shared/data/malaria/cell_images``; the bundled sample
without them), one run measures:

1. model     the model's own forward pass, ``predictor.probabilities`` on the same cells
             already preprocessed in memory (warm): the ceiling for ``predict``;
2. command   ``malaria-tui predict RUN_DIR FOLDER`` as a subprocess (default table output),
             start-up included, wall time -> cells/s; and the ratio command / model
             (issue 18's target: >= 0.5);
3. in-process ``run_predict`` warm (no start-up), and the start-up alone (one image);
4. reference the old per-image path (Pillow, then an eager TensorFlow resize per image) on
             ``--old`` cells.

``--tflite`` adds the previous comparison of a ``.keras`` and a ``.tflite`` export (in-process
rate and one-image latency). Without ``--run``, a quick run (configs/quick.toml, bundled
sample) is trained first.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, SHARED, config, tfenv

_SCRIPT = Path(sys.executable).parent / "malaria-tui"
MALARIA_TUI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "malaria_tui"]


def _command(run: Path, target: Path, out: Path) -> float:
    """Wall seconds of ``malaria-tui predict run target`` as a person types it."""
    t = time.perf_counter()
    with open(out, "w") as f:
        subprocess.run(
            [*MALARIA_TUI, "predict", str(run), str(target)],
            check=True,
            stdout=f,
            stderr=subprocess.PIPE,
        )
    return time.perf_counter() - t


def _old_per_image(model, files: list[Path]) -> float:
    """Cells/s of predict before issue 18: decode, eager TF resize, one image at a time."""
    from malaria_tui.engine.data.images import load_pil, resize_uint8
    from malaria_tui.engine.tfenv import tf as _tf

    tf = _tf()
    gray = model.color == "gray"
    t = time.perf_counter()
    x = np.stack(
        [
            np.asarray(
                tf.cast(resize_uint8(load_pil(str(p)), model.image_size, gray), tf.float32) / 255
            )
            for p in files
        ]
    )
    model.probabilities(x)
    return len(files) / (time.perf_counter() - t)


def _tflite_section(run: Path, files: list[Path], tmp: Path) -> None:
    from malaria_tui.engine.export import export_run
    from malaria_tui.engine.inference import diagnose, predictor

    cells = tmp / "cells"
    cells.mkdir()
    for i, f in enumerate(files):
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
            [*MALARIA_TUI, "predict", str(source), str(one), "--json"],
            check=True,
            capture_output=True,
        )
        print(
            f"one-image predict, whole command incl. start-up ({name}): {time.perf_counter() - t:.2f} s"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run")
    ap.add_argument("--cells", help="folder of cells (default: the 23,597 shared NIH cells)")
    ap.add_argument("--old", type=int, default=1000, help="cells for the old per-image rate")
    ap.add_argument("--tflite", action="store_true", help="also compare .keras and .tflite")
    ap.add_argument("--n", type=int, default=2000, help="cells for --tflite")
    a = ap.parse_args()
    tfenv.divert_native_stderr()
    from malaria_tui.engine.inference import diagnose, predictor

    tmp = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    if a.run:
        run = Path(a.run)
    else:
        from malaria_tui.engine.training.trainer import train

        run = train(config.load(REPO / "configs" / "quick.toml"), runs_dir=tmp / "runs").path
    folder = Path(a.cells) if a.cells else SHARED
    if not folder.is_dir():
        folder = REPO / "malaria_tui" / "sample_data"
    files, _ = diagnose.collect([str(folder)])
    model = predictor.load(run)
    print(
        f"run {run} ({model.kind}, {model.image_size}px, {model.color}); "
        f"{len(files):,} cells under {folder}; {diagnose.WORKERS} reader threads"
    )

    # 1. the model alone, on every cell already in memory, warm
    t = time.perf_counter()
    x, ok, _ = diagnose.load_images(files, model.image_size, model.color == "gray")
    read_one_thread = len(ok) / (time.perf_counter() - t)
    model.probabilities(x[:1024])
    t = time.perf_counter()
    model.probabilities(x)
    forward = len(x) / (time.perf_counter() - t)
    del x

    # 2. the whole command, start-up included (the OS file cache is warm from step 1)
    wall = _command(run, folder, tmp / "out.txt")
    command = len(files) / wall

    # 3. in-process run_predict (no start-up) and the start-up alone
    t = time.perf_counter()
    got, *_ = diagnose.run_predict(model, [str(folder)])
    in_process = len(got) / (time.perf_counter() - t)
    startup = _command(run, files[0], tmp / "one.txt")

    # 4. the old per-image path, for reference
    old = _old_per_image(model, files[: a.old]) if a.old else float("nan")

    rows = [
        ("(i)   model forward pass, in memory, warm", f"{forward:8,.0f} cells/s"),
        (
            "(ii)  `malaria-tui predict RUN FOLDER`",
            f"{command:8,.0f} cells/s  ({len(files):,} cells in {wall:.1f} s, start-up included)",
        ),
        ("      ratio (ii) / (i)", f"{command / forward:8.2f}  (target >= 0.5)"),
        ("      run_predict in-process, no start-up", f"{in_process:8,.0f} cells/s"),
        ("      start-up: predict on one image", f"{startup:8.1f} s wall"),
        ("      reader alone, one thread", f"{read_one_thread:8,.0f} cells/s"),
        (f"      old per-image path ({a.old:,} cells)", f"{old:8,.0f} cells/s"),
    ]
    for label, value in rows:
        print(f"{label:44s}: {value}")
    if a.tflite:
        _tflite_section(run, files[: a.n], tmp)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
