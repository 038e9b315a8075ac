"""The TUI with real TensorFlow: augmentation preview and one tiny real training run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from malaria_tui.cli import ExitCode, main
from malaria_tui.engine import config, rundir
from malaria_tui.engine.rundir import list_runs
from malaria_tui.tui.app import create_app
from malaria_tui.tui.screens.augment import AugmentScreen
from malaria_tui.tui.screens.evaluate import EvaluateScreen
from malaria_tui.tui.screens.train import TrainScreen
from malaria_tui.tui.widgets.form import ConfigField
from tests.conftest import TINY, copy_cells

from .test_app import text_of, wait_for

pytestmark = pytest.mark.slow
SIZE = (80, 24)


def tiny_config():
    return config.load(
        None,
        [
            "data.limit=64",
            "train.epochs=1",
            "data.image_size=32",
            "model.name='lenet'",
            "train.tensorboard=false",
        ],
    )


def test_augment_preview_changes_with_settings(runs_dir):
    async def go():
        app = create_app(tiny_config(), runs_dir=runs_dir, initial="augment")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, AugmentScreen)
            assert app.tf_state == "loading"  # first frame painted before TensorFlow
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            await wait_for(pilot, lambda: bool(screen.variants), timeout=60)
            first = [v.copy() for v in screen.variants]
            assert all(v.dtype == np.uint8 and v.ndim == 3 for v in first)
            count = screen.preview_count
            assert (
                screen.query_one("#f-augment-rotation-max_degrees", ConfigField).set_text("120")
                == ""
            )
            await wait_for(pilot, lambda: screen.preview_count > count, timeout=60)
            assert any(
                not np.array_equal(a, b) for a, b in zip(first, screen.variants, strict=False)
            )
            count = screen.preview_count
            await pilot.press("r")  # re-roll on a key
            await wait_for(pilot, lambda: screen.preview_count > count, timeout=60)
            assert screen.seed == 1

    asyncio.run(go())


def test_tiny_real_training_run_from_the_train_screen(runs_dir):
    async def go():
        app = create_app(tiny_config(), runs_dir=runs_dir, initial="train")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainScreen)
            assert screen.check_action("start", ()) is None  # offered only once TF is ready
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            assert screen.check_action("start", ()) is True
            await pilot.press("s")
            await wait_for(pilot, lambda: app.training)
            # no silent wait before the first batch: it says what it does
            assert "preparing data…" in text_of(screen.query_one("#headline"))
            await wait_for(pilot, lambda: not app.training, timeout=300)
            s = app.session
            assert s.status == "completed", (s.status, s.failure)
            logged = [line.text for line in s.log]
            assert "compiling the training step…" in logged
            assert any(t.startswith("evaluating the best model on the") for t in logged)
            assert s.activity == ""
            assert s.epochs_done == 1 and s.batch["loss"].points()[0]
            assert "auc" in s.epoch_val
            assert (
                app.current_run is not None
                and (app.current_run.eval_dir / "metrics.json").is_file()
            )
            await pilot.pause(0.4)
            assert screen.query_one("#loss-chart").has_data
            await pilot.press("6")
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, EvaluateScreen) and app.screen.data is not None,
            )
            assert app.screen.run == app.current_run
            assert len(app.screen.data.predictions) > 0

    asyncio.run(go())


def _long_config():
    """Longer than any test waits: a tiny LeNet epoch takes a fraction of a second."""
    return config.load(
        None,
        [
            "data.limit=64",
            "train.epochs=5000",
            "data.image_size=32",
            "model.name='lenet'",
            "train.tensorboard=false",
        ],
    )


@pytest.mark.parametrize("train_in", ["process", "thread"])
def test_quit_while_training_asks_then_stops_with_a_checkpoint(runs_dir, train_in):
    from malaria_tui.tui.screens.dialogs import QuitDialog

    async def go():
        app = create_app(_long_config(), runs_dir=runs_dir, initial="train", train_in=train_in)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            await pilot.press("s")
            await wait_for(pilot, lambda: app.session.status == "running", timeout=120)
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, QuitDialog)
            # leaving the run alone is offered only when it has its own process
            assert bool(app.screen.query("#keep")) == (train_in == "process")
            await pilot.press("escape")  # cancel: keeps training
            await pilot.pause()
            assert app.training and not isinstance(app.screen, QuitDialog)
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("k")  # thread mode: nothing happens, the dialog stays
            await pilot.pause()
            if train_in == "thread":
                assert isinstance(app.screen, QuitDialog) and app.training
                await pilot.click("#stop")
                await wait_for(pilot, lambda: not app.training, timeout=120)
                await pilot.pause(0.2)
        (run,) = list_runs(runs_dir)
        if train_in == "thread":
            assert app.session.status == "interrupted" and run.status() == "interrupted"
            assert not (run.path / "train.log").exists()  # it trained in this process
            return
        # process: `k` left the run training on its own and the window quit at once
        assert app.return_code == 0 and app.detached_run == run
        pid = app.trainer.pid
        assert rundir.lock_holder(run.path) == pid and pid != os.getpid()
        assert run.status() == "running"
        os.kill(pid, signal.SIGINT)  # as a user would stop it later: a checkpoint, exit 130
        deadline = time.monotonic() + 120
        while run.status() == "running" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert run.status() == "interrupted"
        assert "resumable checkpoint" in (run.path / "train.log").read_text()

    asyncio.run(go())


def _interrupt_checks(run, app):
    """The app stopped ``run`` at a resumable checkpoint and exits 130; returns the position."""
    assert app.return_code == 130, (app.return_code, app.session.status, app.session.failure)
    assert app.interrupted_run == run and run.status() == "interrupted"
    events = run.events()
    stopped = [e for e in events if e.kind == "run_interrupted"][-1]
    saved = [e for e in events if e.kind == "checkpoint_saved" and e.role == "interrupt"][-1]
    latest = json.loads((run.checkpoints / "latest.json").read_text())
    assert latest["dir"] == Path(saved.path).name == Path(stopped.checkpoint).name
    assert (latest["epoch"], latest["step"]) == (stopped.epoch, stopped.step)
    assert (run.checkpoints / latest["dir"] / "ckpt.index").is_file()
    assert not (run.path / "run.lock").exists()  # the trainer let go of the run
    assert not list(run.path.rglob("*.tmp*"))  # nothing half-written
    return stopped.epoch, stopped.step


def test_ctrl_c_and_sigterm_stop_at_a_checkpoint_exit_130_and_resume_continues(runs_dir):
    """ctrl+c in the app, then a real SIGTERM to this process while the app resumes the run:
    each stops at the next step with a checkpoint and exits 130; `resume` then finishes."""
    cfg = config.load(
        None,
        [
            "data.limit=64",
            "train.epochs=2",
            "data.image_size=32",
            "data.batch_size=4",
            "model.name='lenet'",
            "train.tensorboard=false",
        ],
    )
    positions = []

    async def ctrl_c():
        app = create_app(cfg, runs_dir=runs_dir, initial="train")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            await pilot.press("s")
            await wait_for(pilot, lambda: app.session.status == "running", timeout=120)
            await pilot.press("ctrl+c")
            await wait_for(pilot, lambda: app.return_code is not None, timeout=120)
        (run,) = list_runs(runs_dir)
        positions.append(_interrupt_checks(run, app))
        return run

    run = asyncio.run(ctrl_c())

    def not_handled(signum, frame):  # what the app must replace while it runs
        raise AssertionError("SIGTERM reached the process instead of the app")

    async def sigterm():
        app = create_app(runs_dir=runs_dir, resume_run=run)  # `malaria-tui resume RUN`
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.session.status == "running", timeout=180)
            os.kill(os.getpid(), signal.SIGTERM)
            await wait_for(pilot, lambda: app.return_code is not None, timeout=120)
        positions.append(_interrupt_checks(run, app))

    previous = signal.signal(signal.SIGTERM, not_handled)
    try:
        asyncio.run(sigterm())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert positions[1] > positions[0]  # the second stop came later in the same run
    assert main(["resume", str(run.path), "--no-ui", "--plain"]) == ExitCode.OK
    starts = [e for e in run.events() if e.kind == "run_started"]
    assert [(e.start_epoch, e.start_step) for e in starts[1:]] == positions
    assert run.status() == "completed"


def test_two_watch_windows_follow_one_live_run_without_touching_it(tmp_path):
    """A real headless run (the writer) and two `malaria-tui watch` windows on it at once."""
    cells = copy_cells(tmp_path / "cells", 24)
    runs = tmp_path / "runs"
    sets = [*TINY, "train.epochs=4", "data.batch_size=4", "train.tensorboard=false"]
    writer = subprocess.Popen(
        [sys.executable, "-m", "malaria_tui", "--no-ui", "--plain", "--runs-dir", str(runs)]
        + ["--data", f"folder:{cells}", *sum((["--set", s] for s in sets), [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def snapshot(path):
        return {
            str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*"))
        }

    try:
        deadline = time.monotonic() + 240
        while not list(runs.glob("*/events.jsonl")):
            assert writer.poll() is None, writer.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.1)
        (run,) = rundir.list_runs(runs)
        statuses: list[set] = [set(), set()]
        holders: set = set()
        evaluated = [asyncio.Event(), asyncio.Event()]
        exited, looked = asyncio.Event(), asyncio.Event()

        async def watch(i):
            app = create_app(runs_dir=runs, load_tf=False, watch_run=rundir.open_run(run.path))
            async with app.run_test(size=SIZE) as pilot:
                s = app.session
                while s.status != "completed":
                    statuses[i].add(s.status)
                    holders.add(rundir.lock_holder(run.path))
                    assert time.monotonic() < deadline, (i, s.status, s.failure)
                    await pilot.pause(0.1)
                assert app.controller.start() is not None  # a watch window never trains
                await exited.wait()
                await pilot.press("6")  # reads the run's eval/ files
                await wait_for(
                    pilot,
                    lambda: isinstance(app.screen, EvaluateScreen) and app.screen.data is not None,
                    timeout=60,
                )
                evaluated[i].set()
                await looked.wait()  # stays open while the run is inspected
            return app

        async def go():
            tasks = [asyncio.create_task(watch(i)) for i in range(2)]
            while writer.poll() is None:
                await asyncio.sleep(0.1)
            before = snapshot(run.path)
            exited.set()
            for e in evaluated:
                await e.wait()
            await asyncio.sleep(1.5)  # six more UI ticks of both windows polling the run
            after = snapshot(run.path)
            looked.set()
            return before, after, await asyncio.gather(*tasks)

        before, after, apps = asyncio.run(go())
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait()
    assert writer.returncode == 0, writer.stderr.read()[-2000:]
    for i, app in enumerate(apps):
        s = app.session
        assert "running" in statuses[i]  # each window followed the run live
        assert s.status == "completed" and s.epochs_done == 4 and len(s.epoch_val["auc"]) == 4
        assert s.test_metrics and app.current_run == run
    assert holders - {None} == {writer.pid}  # only the writer ever held the training lock
    assert before == after and "run.lock" not in after  # the windows wrote nothing
    assert {Path(n).parts[0] for n in after} == {
        "config.toml",
        "events.jsonl",
        "checkpoints",
        "eval",
    }
    assert sum(e.kind == "run_started" for e in run.events()) == 1
