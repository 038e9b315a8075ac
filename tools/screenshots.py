"""Regenerate an SVG screenshot of every TUI screen into ``screenshots/``.

    python tools/screenshots.py [--run RUN_DIR] [--runs-dir runs] [--out screenshots] [--no-tf]

With ``--run`` (a finished run directory) the Train screen shows that run's curves (watch mode),
Evaluate its metrics/ROC/threshold, and Runs lists its runs folder. TensorFlow is loaded (unless
``--no-tf``) so Augment shows a real preview and Model the layer summary.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
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


async def shoot(out: Path, runs_dir: Path, run: RunDir | None, load_tf: bool) -> list[Path]:
    saved: list[Path] = []
    app = create_app(runs_dir=runs_dir, load_tf=load_tf, evaluate_run=run)

    async with app.run_test(size=SIZE) as pilot:
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
        await snap("7", "7-runs")

    if run is not None:  # the Train screen following a real run (watch mode)
        app = create_app(runs_dir=runs_dir, load_tf=False, watch_run=run)
        async with app.run_test(size=SIZE) as pilot:
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
    args = p.parse_args(argv)
    run = open_run(args.run) if args.run else None
    runs_dir = Path(args.runs_dir) if args.runs_dir else (run.path.parent if run else Path("runs"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(out, runs_dir, run, not args.no_tf)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
