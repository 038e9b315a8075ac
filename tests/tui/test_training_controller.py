"""The training controller inside a real app: a tiny real run started, refused a second time,
stopped at a checkpoint, resumed and left training on its own; and a grid trained by the app
(the halves of ``grid_app.run_grid_app``), finished, stopped by quitting, or failing in its own way."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest

from malaria_tui.engine import rundir
from malaria_tui.engine.errors import RunDirError
from malaria_tui.engine.grid import search
from malaria_tui.engine.grid import spec as gspec
from malaria_tui.engine.grid.results_table import read_csv
from malaria_tui.tui.app import create_app
from malaria_tui.tui.grid_app import create_grid_app
from malaria_tui.tui.screens.dialogs import QuitDialog
from malaria_tui.tui.screens.hparams import HParamsScreen
from tests.conftest import TINY, copy_cells
from tests.test_trainer_process import tiny_folder_config

from .test_app import wait_for

pytestmark = pytest.mark.slow
SIZE = (80, 24)


def test_start_refuse_stop_resume_and_detach(tmp_path):
    cells = copy_cells(tmp_path / "cells", 16)
    runs = tmp_path / "runs"

    async def go():
        app = create_app(tiny_folder_config(cells, 5000), runs_dir=runs, initial="train")
        async with app.run_test(size=SIZE) as pilot:
            ctl = app.controller
            assert ctl.start() == "TensorFlow is still loading"
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            assert ctl.start() is None
            assert ctl.start() == "a run is already in progress"
            await wait_for(pilot, lambda: ctl.session.status == "running", timeout=120)
            run = ctl.current_run
            assert ctl.follow(run) == "this window is training; stop its run first"
            assert ctl.stop() and ctl.session.status == "stopping"
            await wait_for(pilot, lambda: not ctl.training, timeout=120)
            assert ctl.session.status == "interrupted" and ctl.interrupted_run == run
            assert run.status() == "interrupted"

            assert ctl.start(resume=run) is None
            await wait_for(pilot, lambda: ctl.session.status == "running", timeout=120)
            assert ctl.session.start_global_step > 0  # on from the checkpoint
            assert ctl.detach() and ctl.detached_run == run
            await wait_for(pilot, lambda: not ctl.training, timeout=30)  # it stopped following
            assert ctl.session.status == "running"  # not settled: the run goes on elsewhere
        return app, run

    app, run = asyncio.run(go())
    pid = app.trainer.pid
    assert rundir.lock_holder(run.path) == pid != os.getpid() and run.status() == "running"
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 120
    while run.status() == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.status() == "interrupted"


GRID = """
name = "g"
[grid.values]
"model.dropout" = [0.2, 0.4]
"""


def _spec(tmp_path, cells, *extra):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    sets = [*TINY, "data.limit=0", f'data.source="folder:{cells}"', "train.tensorboard=false"]
    return gspec.load(path, [*sets, *extra])


def test_a_grid_trained_by_the_app_finishes_and_shows_on_hparams(tmp_path):
    cells = copy_cells(tmp_path / "cells", 12)
    spec = _spec(tmp_path, cells)

    async def go():
        app = create_grid_app(spec, None, tmp_path / "runs", resumed=False)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, HParamsScreen)
            await wait_for(pilot, lambda: app.training, timeout=60)
            assert app.controller.start() == "a run is already in progress"
            await wait_for(pilot, lambda: not app.training, timeout=300)
            screen.action_reload()
            await pilot.pause()
            assert [r["status"] for r in screen.rows] == ["completed", "completed"]
            logged = [line.text for line in app.session.log]
            assert any(text.startswith("grid trial 2/2") for text in logged)
            assert logged[-1].startswith("grid completed, best trial")
        return app

    app = asyncio.run(go())
    result = app.controller.grid_outcome()
    assert result.status == "completed" and result.test is not None
    assert result.path == app.grid_dir and result.path.parent == tmp_path / "runs"


def test_quitting_stops_the_grid_at_a_checkpoint_and_resume_finishes_it(tmp_path):
    cells = copy_cells(tmp_path / "cells", 12)
    spec = _spec(tmp_path, cells, "train.epochs=5000")

    async def go():
        app = create_grid_app(spec, None, tmp_path / "runs", resumed=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.session.status == "running", timeout=180)
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, QuitDialog)
            assert not app.screen.query("#keep")  # a thread cannot outlive the window
            await pilot.press("s")
            await wait_for(pilot, lambda: app.return_code is not None, timeout=120)
        return app

    app = asyncio.run(go())
    first = app.controller.grid_outcome()
    assert app.return_code == 0 and first.status == "interrupted"
    assert [r["status"] for r in read_csv(first.path / "grid.csv")] == ["interrupted", "pending"]

    path, spec2 = search.open_grid(first.path)

    async def resume():
        app = create_grid_app(spec2, path, "unused", resumed=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.session.status == "running", timeout=180)
            started = next(e for e in app.session.log if "grid trial 1/2" in e.text)
            assert "(resuming)" in started.text
            await pilot.press("ctrl+c")
            await wait_for(pilot, lambda: app.return_code is not None, timeout=120)
        return app

    again = asyncio.run(resume())
    assert again.return_code == 130
    assert again.controller.grid_outcome().status == "interrupted"


def test_a_grid_that_cannot_start_raises_its_error_after_the_window_closes(tmp_path):
    cells = copy_cells(tmp_path / "cells", 4)
    spec = _spec(tmp_path, cells)
    path = search.create_grid_dir(tmp_path / "runs", spec)
    other = subprocess.Popen(["sleep", "120"])  # another live process "runs" the grid
    try:
        (path / search.GRID_LOCK).write_text(str(other.pid))

        async def go():
            app = create_grid_app(spec, path, tmp_path / "runs", resumed=False)
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, lambda: app.session.status == "failed", timeout=180)
                assert "still being run by process" in app.session.failure
            return app

        app = asyncio.run(go())
    finally:
        other.kill()
        other.wait()
    with pytest.raises(RunDirError, match="still being run"):
        app.controller.grid_outcome()


def test_a_grid_whose_window_closed_before_it_began_comes_back_interrupted(tmp_path):
    cells = copy_cells(tmp_path / "cells", 4)
    spec = _spec(tmp_path, cells)
    app = create_grid_app(spec, None, tmp_path / "runs", resumed=False, load_tf=False)
    assert app.controller.grid_outcome().status == "interrupted"  # it never ran


def test_hparams_follows_trials_training_side_by_side(tmp_path):
    """``grid --parallel 2`` in the app: two trial processes at once, both shown as running on
    the HParams screen while they train, each trial's epochs in the log, then the finished grid."""
    from malaria_tui.engine.grid.placement import Placement

    cells = copy_cells(tmp_path / "cells", 12)
    spec = _spec(tmp_path, cells, "train.epochs=3")
    seen_running: list[int] = []

    async def go():
        app = create_grid_app(spec, None, tmp_path / "runs", False, placement=Placement(2))
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, HParamsScreen)
            await wait_for(pilot, lambda: app.training, timeout=60)

            def both_running() -> bool:
                screen.action_reload()
                seen_running.append(sum(r["status"] == "running" for r in screen.rows))
                return seen_running[-1] == 2

            await wait_for(pilot, both_running, timeout=180)
            assert "2 running" in str(screen.query_one("#grid-title").render())
            await wait_for(pilot, lambda: not app.training, timeout=300)
            screen.action_reload()
            assert [r["status"] for r in screen.rows] == ["completed", "completed"]
            logged = [line.text for line in app.session.log]
            for name in (t.name for t in spec.trials):
                assert any(f"{name}: epoch 3/3" in text for text in logged), logged
            assert logged[-1].startswith("grid completed, best trial")
        return app

    app = asyncio.run(go())
    assert app.controller.grid_outcome().test is not None
