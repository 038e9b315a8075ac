"""Training in a child process followed through the run directory (the TUI's default).

Real child processes and real tiny runs: a stop saves a checkpoint that a second child
resumes; a bad folder and a killed child each come back as one failure with its reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from malaria_tui.engine import config, rundir
from malaria_tui.tui.trainer_process import TrainerProcess
from tests.conftest import copy_cells

pytestmark = pytest.mark.slow


def tiny_folder_config(cells, epochs: int, *extra: str):
    """LeNet on 32-pixel cells of the folder ``cells``, batches of 4, ``epochs`` epochs."""
    return config.load(
        None,
        [
            f'data.source="folder:{cells}"',
            "data.image_size=32",
            "data.batch_size=4",
            f"train.epochs={epochs}",
            'model.name="lenet"',
            "train.tensorboard=false",
            *extra,
        ],
    )


def _follow(trainer: TrainerProcess, when=None):
    """Every event the follower relays, and the child's exit code; ``when(event)`` may act."""
    seen = []

    def on_event(event):
        seen.append(event)
        if when is not None:
            when(event)

    return seen, trainer.follow(on_event)


def test_stop_saves_a_checkpoint_and_a_second_child_resumes_it(tmp_path):
    cells = copy_cells(tmp_path / "cells", 16)
    trainer = TrainerProcess.start(tiny_folder_config(cells, 8), tmp_path / "runs")
    run = trainer.run
    assert rundir.lock_holder(run.path) == trainer.pid  # "running" from the first moment
    assert run.status() == "running"

    def stop_on_second_batch(event):
        if event.kind == "batch" and event.global_step >= 2:
            trainer.stop()

    seen, code = _follow(trainer, stop_on_second_batch)
    kinds = [e.kind for e in seen]
    assert code == 130, trainer.log_tail()
    assert kinds[0] == "run_started" and kinds[-1] == "run_interrupted"
    assert run.status() == "interrupted" and rundir.lock_holder(run.path) is None
    assert "resume with: malaria-tui resume" in (run.path / "train.log").read_text()
    stopped = seen[-1]

    again = TrainerProcess.start(runs_dir=tmp_path / "runs", resume=run)
    seen2, code2 = _follow(again)
    assert code2 == 0, again.log_tail()
    first = seen2[0]  # only this session's events: the earlier ones were not replayed
    assert first.kind == "run_started" and first.resumed
    assert (first.start_epoch, first.start_step) == (stopped.epoch, stopped.step)
    assert seen2[-1].kind == "run_finished" and run.status() == "completed"
    assert (run.eval_dir / "metrics.json").is_file()


def test_a_bad_folder_is_one_failure_line_and_leaves_no_run_behind(tmp_path):
    runs = tmp_path / "runs"
    trainer = TrainerProcess.start(tiny_folder_config(tmp_path / "missing", 1), runs)
    seen, code = _follow(trainer)
    assert code == 2
    (failed,) = seen
    assert failed.kind == "run_failed"
    assert str(tmp_path / "missing") in failed.reason and "\n" not in failed.reason
    assert not trainer.run.path.exists() and rundir.list_runs(runs) == []


def test_a_killed_child_is_reported_and_its_run_kept(tmp_path):
    cells = copy_cells(tmp_path / "cells", 16)
    trainer = TrainerProcess.start(tiny_folder_config(cells, 50), tmp_path / "runs")

    def kill_on_first_batch(event):
        if event.kind == "batch":
            os.kill(trainer.pid, signal.SIGKILL)

    seen, code = _follow(trainer, kill_on_first_batch)
    assert code == -signal.SIGKILL
    assert seen[-1].kind == "run_failed" and "SIGKILL" in seen[-1].reason
    assert trainer.run.path.is_dir() and trainer.run.status() == "stale"


def test_the_trainer_process_module_imports_no_ui_and_no_tensorflow():
    code = "import sys, malaria_tui.tui.trainer_process; print(' '.join(sys.modules))"
    mods = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout.split()
    )
    assert not {"textual", "rich", "tensorflow", "keras"} & mods


def test_stop_before_the_child_trains_is_a_stop_not_a_failure(tmp_path):
    cells = copy_cells(tmp_path / "cells", 16)
    trainer = TrainerProcess.start(tiny_folder_config(cells, 2), tmp_path / "runs")
    time.sleep(0.5)  # the child is importing TensorFlow: no step has run yet
    assert trainer.stop()
    seen, code = _follow(trainer)
    assert code == 130, trainer.log_tail()
    assert not any(e.kind == "run_failed" for e in seen)
    assert seen[-1].kind in ("run_interrupted", "log")
