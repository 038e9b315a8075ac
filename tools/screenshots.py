"""Regenerate an SVG screenshot of every TUI screen into ``screenshots/``.

    python tools/screenshots.py [--run RUN_DIR] [--runs-dir runs] [--out screenshots] [--no-tf]
                                [--size 120x36] [--images FOLDER]

With ``--run`` (a finished run directory) the Train screen shows that run's curves (watch mode),
Evaluate its metrics/ROC/threshold, Predict that run's model on ``--images`` (default: bundled
sample cells copied into one folder per patient) and Runs lists its runs folder. TensorFlow is
loaded (unless ``--no-tf``) so Augment shows a real preview, Model the layer summary and
Predict its results with the highlighted cell's Grad-CAM.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from malaria_tui.engine.rundir import RunDir, open_run  # noqa: E402
from malaria_tui.tui.app import create_app  # noqa: E402

SIZE = (120, 36)


async def _until(pilot, predicate, timeout: float = 120.0) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            return False
        await pilot.pause(0.1)
    return True


def sample_slides(dest: Path, patients: int = 3, per_patient: int = 8) -> Path:
    """Bundled sample cells copied into one folder per patient, plus one unreadable file."""
    from malaria_tui.engine.data.records import sample_root

    root = sample_root()
    with open(root / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["group"], []).append(r)
    groups = sorted((g for g in by if len(by[g]) >= per_patient), key=lambda g: -len(by[g]))
    for g in groups[:patients]:
        d = dest / f"slide-{g}"
        d.mkdir(parents=True, exist_ok=True)
        for r in by[g][:per_patient]:
            shutil.copy(root / r["path"], d / Path(r["path"]).name)
    (dest / f"slide-{groups[0]}" / "scan-error.png").write_bytes(b"\x89PNG truncated")
    return dest


async def shoot(
    out: Path,
    runs_dir: Path,
    run: RunDir | None,
    load_tf: bool,
    size: tuple[int, int] = SIZE,
    images: Path | None = None,
) -> list[Path]:
    saved: list[Path] = []
    app = create_app(runs_dir=runs_dir, load_tf=load_tf, evaluate_run=run)

    async with app.run_test(size=size) as pilot:
        if load_tf:
            await _until(pilot, lambda: app.tf_state != "loading", timeout=300)

        async def snap(key: str, name: str, ready=lambda: True) -> None:
            await pilot.press(key)
            await pilot.pause(0.2)
            await _until(pilot, ready)
            await pilot.pause(0.5)
            saved.append(Path(app.save_screenshot(f"{name}.svg", str(out))))

        await snap("1", "1-dataset", lambda: app.screen.info is not None)
        await snap("2", "2-augment", lambda: not load_tf or bool(app.screen.variants))
        await snap("3", "3-model", lambda: not load_tf or app.screen.summary is not None)
        if run is None:
            await snap("4", "4-train")
        await snap("5", "5-hparams")
        await snap("6", "6-evaluate", lambda: app.screen.run is None or app.screen.data is not None)
        await pilot.press("7")
        await pilot.pause(0.2)
        screen = app.screen
        model = screen.query_one("#model").value
        if load_tf and model and images is not None:
            screen.query_one("#images").value = str(images)
            screen.action_predict()
            await _until(pilot, lambda: screen.predictions_done > 0 or bool(screen.error))
            await pilot.press("down", "down")
            await _until(pilot, lambda: screen.cam_ready, timeout=60)
        await snap("7", "7-predict")
        await snap("8", "8-runs")

    if run is not None:  # the Train screen following a real run (watch mode)
        app = create_app(runs_dir=runs_dir, load_tf=False, watch_run=run)
        async with app.run_test(size=size) as pilot:
            await _until(pilot, lambda: app.session.status not in ("idle",), timeout=30)
            await pilot.pause(0.8)
            saved.append(Path(app.save_screenshot("4-train.svg", str(out))))
    return saved


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a finished run directory to show on Train/Evaluate")
    p.add_argument(
        "--runs-dir",
        default=None,
        help="runs folder for the Runs screen (default: the run's parent, else runs/)",
    )
    p.add_argument("--out", default=str(ROOT / "screenshots"))
    p.add_argument(
        "--no-tf",
        action="store_true",
        help="do not import TensorFlow (no augment preview / model summary)",
    )
    p.add_argument("--size", default="120x36", help="terminal size, COLSxROWS (default 120x36)")
    p.add_argument(
        "--images",
        help="folder for the Predict screen (default: sample cells, one folder per patient)",
    )
    args = p.parse_args(argv)
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    run = open_run(args.run) if args.run else None
    runs_dir = Path(args.runs_dir) if args.runs_dir else (run.path.parent if run else Path("runs"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="malaria-slides-") as tmp:
        images = Path(args.images) if args.images else sample_slides(Path(tmp) / "slides")
        for path in asyncio.run(shoot(out, runs_dir, run, not args.no_tf, (cols, rows), images)):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
