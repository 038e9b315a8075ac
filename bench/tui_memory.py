"""Memory and responsiveness of the TUI following a fast-growing run (watch mode).

    python bench/tui_memory.py [--events 50000] [--rate 5000] [--idle 10]

A second process appends batch events to ``events.jsonl`` with the engine's ``EventWriter``
(``--rate`` per second, an epoch every 1000 steps) while the app, driven by ``App.run_test()``
in watch mode, follows the file. The app's RSS is sampled after it has folded 0, 10k, 25k and
50k events (target: flat, a few MB of growth), number keys are pressed while it streams (latency
from the key event to the new screen's first frame, ``_keys.py``), and finally the CPU the app uses while
idle on the finished run is measured (target: a few percent).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _keys import switch

from malaria_tui.engine import events as ev
from malaria_tui.engine import rundir
from malaria_tui.engine.config import Config

STEPS = 1000  # batches per epoch


def marks(n: int) -> tuple[int, ...]:
    """Where RSS is sampled: 0, 10k, 25k and 50k events for the default 50,000."""
    return (0, n // 5, n // 2, n)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def writer(events_path: str, n: int, rate: float, go) -> None:
    """The second process: a trainer-like stream of events, ``rate`` per second."""
    go.wait()
    w = rundir.EventWriter(events_path)
    epochs = max(1, n // STEPS)
    t0 = time.time()
    for gs in range(1, n + 1):
        epoch, step = divmod(gs - 1, STEPS)
        loss = 0.7 / (1 + gs / 2000)
        w.write(
            ev.BatchEnd(
                epoch=epoch,
                step=step + 1,
                steps=STEPS,
                metrics={"loss": loss, "accuracy": 1 - loss, "auc": 1 - loss / 2},
                images_per_sec=rate * 64,
                global_step=gs,
            )
        )
        if step + 1 == STEPS:
            w.write(
                ev.EpochEnd(
                    epoch=epoch,
                    epochs=epochs,
                    train={"loss": loss, "auc": 1 - loss / 2},
                    val={"val_loss": loss * 1.1, "val_auc": 1 - loss / 1.8},
                    seconds=STEPS / rate,
                    images_per_sec=rate * 64,
                )
            )
        ahead = gs / rate - (time.time() - t0)
        if ahead > 0.002:
            time.sleep(ahead)
    w.write(ev.RunFinished(status="completed", epochs_done=epochs, best={}))
    w.close()


async def measure(run: rundir.RunDir, n: int, go, idle_seconds: float, trace: bool = False) -> dict:
    from malaria_tui.tui.app import create_app

    app = create_app(runs_dir=run.path.parent, load_tf=False, watch_run=run)
    out: dict = {"rss": {}, "latency": []}
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.5)
        s = app.session
        # build every screen once first: what is measured below is the stream, not start-up
        first = []
        for key, mode in (("1", "dataset"), ("6", "evaluate"), ("8", "runs"), ("4", "train")):
            t = time.perf_counter()
            await pilot.press(key)
            while app.current_mode != mode:
                await pilot.pause(0.001)
            first.append(time.perf_counter() - t)
        out["first_visit"] = first
        await pilot.pause(1.0)
        gc.collect()
        out["rss"][0] = rss_mb()
        if trace:
            import tracemalloc

            tracemalloc.start()
            base = tracemalloc.take_snapshot()
        go.set()
        keys = [("1", "dataset"), ("4", "train"), ("6", "evaluate"), ("4", "train")]
        k = 0
        next_press = time.monotonic() + 0.7
        for mark in marks(n)[1:]:
            while s.global_step < mark:
                if time.monotonic() >= next_press:  # a keypress while events stream in
                    key, mode = keys[k % len(keys)]
                    k += 1
                    out["latency"].append(await switch(app, key, mode))
                    next_press = time.monotonic() + 0.7
                await pilot.pause(0.05)
            gc.collect()
            out["rss"][mark] = rss_mb()
            print(
                f"  {mark:6d} events folded: RSS {out['rss'][mark]:7.1f} MB "
                f"(+{out['rss'][mark] - out['rss'][0]:.1f})",
                flush=True,
            )
        while s.status != "completed":
            await pilot.pause(0.1)
        if trace:
            gc.collect()
            top = tracemalloc.take_snapshot().compare_to(base, "lineno")[:8]
            out["trace"] = [str(t) for t in top]
            tracemalloc.stop()
        await pilot.press("4")
        await pilot.pause(1.0)
        out["points"] = {k: len(v.points()[0]) for k, v in s.batch.items()}
        # idle on the finished run: CPU seconds per wall second while nothing happens
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        out["idle_cpu"] = (time.process_time() - c0) / (time.perf_counter() - w0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--rate", type=float, default=5000.0, help="batch events per second")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    ap.add_argument("--trace", action="store_true", help="tracemalloc: where memory grew")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tui-mem-") as tmp:
        cfg = Config()
        run = rundir.create(Path(tmp) / "runs", "stream", cfg.to_toml())
        w = rundir.EventWriter(run.events_path)
        w.write(
            ev.RunStarted(
                run_dir=str(run.path),
                config=cfg.to_dict(),
                n_train=64 * STEPS,
                n_val=1000,
                n_test=1000,
                steps_per_epoch=STEPS,
                epochs=max(1, a.events // STEPS),
            )
        )
        w.close()
        ctx = mp.get_context("spawn")
        go = ctx.Event()
        proc = ctx.Process(target=writer, args=(str(run.events_path), a.events, a.rate, go))
        proc.start()
        t = time.perf_counter()
        try:
            out = asyncio.run(measure(run, a.events, go, a.idle, a.trace))
        finally:
            proc.join(60)
            if proc.is_alive():
                proc.terminate()
        size = run.events_path.stat().st_size / 1e6
    rss = out["rss"]
    lat = sorted(out["latency"])
    print()
    print(
        f"events.jsonl: {a.events} batch events, {size:.1f} MB, in {time.perf_counter() - t:.0f}s"
    )
    print("RSS (MB) after " + ", ".join(f"{k // 1000}k: {v:.1f}" for k, v in rss.items()))
    m = marks(a.events)
    print(
        f"growth 0 -> {m[-1] // 1000}k: {rss[m[-1]] - rss[0]:+.1f} MB; "
        f"{m[1] // 1000}k -> {m[-1] // 1000}k: {rss[m[-1]] - rss[m[1]]:+.1f} MB "
        "(target: flat, a few MB)"
    )
    print(f"chart points kept per batch metric: {out['points']}")
    if lat:
        print(
            f"keypress -> first frame of the new screen while streaming: median {1000 * statistics.median(lat):.0f} ms, "
            f"max {1000 * lat[-1]:.0f} ms over {len(lat)} presses"
        )
    first = ", ".join(f"{1000 * v:.0f}" for v in out["first_visit"])
    print(
        f"first visit of Dataset, Evaluate, Runs, Train (built then, before the stream): {first} ms"
    )
    print(f"idle CPU on the finished run: {100 * out['idle_cpu']:.1f}% of one core")
    for line in out.get("trace", []):
        print("  grew:", line)


if __name__ == "__main__":
    main()
