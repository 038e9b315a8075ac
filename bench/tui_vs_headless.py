"""Training speed inside the TUI vs headless: images/s of the same small real run, side by side.

    python bench/tui_vs_headless.py [--epochs 3] [--repeats 3] [--set KEY=VALUE ...]

One process imports TensorFlow once, then trains the same config (bundled sample, cellnet,
48 px by default) alternately headless (the engine's trainer with the CLI's plain reporter)
and inside the app driven by ``App.run_test()``, while the Train screen redraws its live
charts every 0.25 s. ``--train-in process`` (the app's default): the app starts a trainer
process and follows its run directory; ``thread``: the trainer runs in a worker thread of the
app's process; ``both`` measures the two side by side. Throughput is the engine's own images/s
of the epochs after the first (the first includes tracing); the median of ``--repeats`` per
mode is compared (the order rotates every repeat so all modes see the same machine load).
``--cli`` adds ``malaria-tui --no-ui`` run as a new process: its first epoch starts as cold as
the app's trainer process does, so it is the fair baseline for the whole-run figure.
While the TUI trains, every 2 s a key switches to the next of the other screens (1 2 3 5 6 7 8 in
turn) and 4 switches back to Train; the time from keypress to the new screen's first frame is
recorded (``_keys.switch``): training uses both cores then. ``--delay 0 --every 0.5`` also
presses keys through the trainer's start-up (data preparation, tracing) and its end-of-run
evaluation, where a trainer in the app's own process holds the GIL for long stretches. Before pressing ``s``, each screen
is shown once, as a user setting up a run does (``--cold`` skips that, so every first press shows
a screen for the first time); ``--keys 14`` visits only Dataset (session 2's bench).
Targets: TUI / headless >= 0.95; keypress to screen change well under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from _common import config, tfenv
from _keys import switch

from malaria_tui.engine.rundir import RunDir

VERBOSE = False


def steady_ips(run: RunDir) -> tuple[float, float]:
    """(images/s of the epochs after the first, images/s over the whole run's epochs)."""
    ends = [e for e in run.events() if e.kind == "epoch_end"]
    start = next(e for e in run.events() if e.kind == "run_started")
    later = [e.images_per_sec for e in ends[1:]] or [ends[-1].images_per_sec]
    wall = ends[-1].time - start.time
    return statistics.mean(later), start.n_train * len(ends) / wall


def headless(cfg, runs_dir: Path) -> RunDir:
    from malaria_tui.cli.headless import reporter
    from malaria_tui.engine.training.trainer import train

    sink = io.StringIO()
    with redirect_stdout(sink):
        report = reporter(force_plain=True)
        try:
            return train(cfg, runs_dir=runs_dir, on_event=report)
        finally:
            report.close()


def headless_cli(cfg, runs_dir: Path) -> RunDir:
    """``malaria-tui --no-ui --plain`` in a new process, as a user runs it: TensorFlow starts
    cold, as in the app's trainer process."""
    from malaria_tui.engine.rundir import list_runs

    runs_dir.mkdir(parents=True)
    config = runs_dir / "config.toml"
    config.write_text(cfg.to_toml())
    cmd = [sys.executable, "-m", "malaria_tui", "--no-ui", "--plain", "--config", str(config)]
    subprocess.run([*cmd, "--runs-dir", str(runs_dir)], check=True, capture_output=True)
    return list_runs(runs_dir)[-1]


OTHERS = [("1", "dataset"), ("2", "augment"), ("3", "model"), ("5", "hparams")]
OTHERS += [("6", "evaluate"), ("7", "predict"), ("8", "runs")]


async def in_tui(
    cfg,
    runs_dir: Path,
    latencies: dict[str, list[float]],
    cold: bool,
    others: list,
    train_in: str,
    delay: float = 3.0,
    every: float = 2.0,
) -> tuple[RunDir, int]:
    from malaria_tui.tui.app import create_app

    app = create_app(cfg, runs_dir=runs_dir, initial="train", train_in=train_in)
    redraws = 0
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        original = screen.redraw

        def counted(*args, **kwargs) -> None:
            nonlocal redraws
            redraws += 1
            original(*args, **kwargs)

        screen.redraw = counted
        while not app.tf_ready:
            await pilot.pause(0.1)
        if not cold:
            for key, mode in [*OTHERS, ("4", "train")]:
                await switch(app, key, mode)
                await pilot.pause(0.3)
        await pilot.press("s")
        while not app.training:
            await pilot.pause(0.05)
        next_press = time.monotonic() + delay  # 3 s: past tracing, while the step loop runs
        turn = 0
        while app.training:
            if time.monotonic() >= next_press:
                key, mode = others[turn % len(others)]
                turn += 1
                a = await switch(app, key, mode)
                b = await switch(app, "4", "train")
                latencies.setdefault(mode, []).append(a)
                latencies.setdefault("train", []).append(b)
                if VERBOSE:
                    print(f"    to {mode:9s}{a * 1000:4.0f} ms, back to train {b * 1000:4.0f} ms")
                next_press = time.monotonic() + every
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        assert app.session.status == "completed", (app.session.status, app.session.failure)
        assert screen.query_one("#loss-chart").has_data
        run = app.current_run
    assert run is not None
    return run, redraws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--verbose", action="store_true", help="print each keypress latency")
    ap.add_argument("--cold", action="store_true", help="no screen shown before training starts")
    ap.add_argument(
        "--keys", choices=["all", "14"], default="all", help="visit every screen, or only Dataset"
    )
    ap.add_argument(
        "--delay", type=float, default=3.0, help="first keypress this long after `s` (s)"
    )
    ap.add_argument("--every", type=float, default=2.0, help="seconds between keypress pairs")
    ap.add_argument(
        "--cli",
        action="store_true",
        help="also time `malaria-tui --no-ui` in a new process (cold start, like the app's trainer)",
    )
    ap.add_argument(
        "--train-in",
        choices=["process", "thread", "both"],
        default="process",
        help="where the app trains (its default: process)",
    )
    a = ap.parse_args()
    global VERBOSE
    VERBOSE = a.verbose
    t0 = time.perf_counter()
    tfenv.tf()
    print(f"TensorFlow imported in {time.perf_counter() - t0:.1f}s")
    cfg = config.load(
        None,
        [
            'data.source="sample"',
            'model.name="cellnet"',
            "data.image_size=48",
            f"train.epochs={a.epochs}",
            "train.tensorboard=false",
            *a.set,
        ],
    )
    tuis = ["process", "thread"] if a.train_in == "both" else [a.train_in]
    cli = ["headless-cli"] if a.cli else []
    order = ["headless", *cli, *(f"tui-{m}" for m in tuis)]
    results: dict[str, list[tuple[float, float]]] = {m: [] for m in order}
    latencies: dict[str, dict[str, list[float]]] = {m: {} for m in order if m.startswith("tui")}
    others = OTHERS if a.keys == "all" else OTHERS[:1]
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as tmp:
        for r in range(a.repeats):
            k = r % len(order)
            for mode in order[k:] + order[:k]:  # rotated: every mode sees the same load
                runs = Path(tmp) / f"{mode}-{r}"
                t = time.perf_counter()
                if mode.startswith("headless"):
                    run = (headless if mode == "headless" else headless_cli)(cfg, runs)
                    extra = ""
                else:
                    where = mode.removeprefix("tui-")
                    run, redraws = asyncio.run(
                        in_tui(cfg, runs, latencies[mode], a.cold, others, where, a.delay, a.every)
                    )
                    extra = f", {redraws} Train-screen redraws"
                ips, whole = steady_ips(run)
                results[mode].append((ips, whole))
                print(
                    f"{mode:11s} run {r + 1}: {ips:7.0f} img/s after epoch 1, "
                    f"{whole:7.0f} img/s whole run, {time.perf_counter() - t:5.1f}s wall{extra}"
                )
    report(results, latencies, a.repeats)


def report(results: dict, latencies: dict, repeats: int) -> None:
    best = {m: statistics.median(v[0] for v in vals) for m, vals in results.items()}
    whole = {m: statistics.median(v[1] for v in vals) for m, vals in results.items()}
    print()
    print(f"median img/s of {repeats} runs each; ratios are each mode / headless (and / cli)")
    cli = "headless-cli" in results
    head = f"{'':13s}{'steady':>10s}{'ratio':>8s}" + (f"{'/ cli':>8s}" if cli else "")
    print(head + f"{'whole run':>12s}{'ratio':>8s}" + (f"{'/ cli':>8s}" if cli else ""))
    for m in results:
        row = f"{m:13s}{best[m]:10.0f}{best[m] / best['headless']:8.3f}"
        row += f"{best[m] / best['headless-cli']:8.3f}" if cli else ""
        row += f"{whole[m]:12.0f}{whole[m] / whole['headless']:8.3f}"
        row += f"{whole[m] / whole['headless-cli']:8.3f}" if cli else ""
        print(row)
    for m, per_screen in latencies.items():
        ratio = best[m] / best["headless"]
        print(f"{m}: steady ratio target >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'}")
        lat = sorted(x * 1000 for xs in per_screen.values() for x in xs)
        if not lat:
            continue
        q = lambda f, lat=lat: lat[min(len(lat) - 1, int(f * len(lat)))]  # noqa: E731
        print(
            f"  keypress -> screen change while training ({len(lat)} presses): median "
            f"{q(0.5):.0f} ms, p90 {q(0.9):.0f} ms, p99 {q(0.99):.0f} ms, max {lat[-1]:.0f} ms, "
            f"{sum(x > 100 for x in lat)} over 100 ms (target well under 100 ms)"
        )
        print(
            "  median (max) per screen: "
            + ", ".join(
                f"{s} {statistics.median(xs) * 1000:.0f} ({max(xs) * 1000:.0f})"
                for s, xs in per_screen.items()
            )
        )


if __name__ == "__main__":
    main()
