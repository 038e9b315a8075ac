"""The run directory contract: distinct names, a tolerant event reader, clear errors."""

import json

import pytest

from malaria_tui.engine import rundir
from malaria_tui.engine.errors import RunDirError
from malaria_tui.engine.events import EpochEnd, LogMessage, from_json, to_json


def test_runs_in_the_same_second_get_distinct_directories(tmp_path):
    dirs = {rundir.create(tmp_path, "x", "seed = 1\n").path for _ in range(5)}
    assert len(dirs) == 5 and all((d / "config.toml").read_text() == "seed = 1\n" for d in dirs)


def test_event_round_trip_and_torn_last_line(tmp_path):
    run = rundir.create(tmp_path, "x", "")
    w = rundir.EventWriter(run.events_path)
    ev = EpochEnd(
        epoch=0,
        epochs=2,
        train={"loss": 0.5},
        val={"val_loss": 0.6},
        seconds=1.0,
        images_per_sec=10.0,
    )
    w.write(ev)
    w.close()
    assert from_json(to_json(ev)) == ev
    reader = rundir.EventReader(run.events_path)
    assert reader.read_new() == [ev]
    with open(run.events_path, "a") as f:
        f.write('{"event": "log", "level": "info", "mess')  # a crash mid-line
    assert reader.read_new() == []
    w = rundir.EventWriter(run.events_path)  # a resume appends after the crash's torn line
    w.write(LogMessage(level="info", message="after", time=1))
    w.close()
    got = reader.read_new()
    assert got == [LogMessage(level="info", message="after", time=1)] and reader.bad_lines == 1
    assert run.status() == "stale"


def test_open_run_rejects_non_runs(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        rundir.open_run(tmp_path / "nope")
    with pytest.raises(RunDirError, match="not a run directory"):
        rundir.open_run(tmp_path)


def test_lock_refuses_a_second_trainer(tmp_path):
    run = rundir.create(tmp_path, "x", "")
    (run.path / "run.lock").write_text("1")  # pid 1 is alive
    with pytest.raises(RunDirError, match="still being trained by process 1"):
        rundir.acquire_lock(run)
    (run.path / "run.lock").write_text("999999999")  # dead pid: stale lock is taken over
    rundir.acquire_lock(run)
    assert json.loads((run.path / "run.lock").read_text()) > 1


def test_written_files_follow_the_umask(tmp_path):
    """Colleagues on a shared box read each other's runs: no 0600 temp-file modes."""
    import os

    from malaria_tui.engine import atomic

    old = os.umask(0o022)
    try:
        atomic.write_json(tmp_path / "a.json", {"x": 1})
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic.write_text(tmp_path / "b.txt", "private")
        assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_a_damaged_checkpoint_pointer_recovers_the_newest_intact_state_or_refuses(tmp_path):
    import pytest

    from malaria_tui.engine.errors import RunDirError
    from malaria_tui.engine.training.checkpoints import resume_position

    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    assert resume_position(ckpt) is None  # nothing saved yet: a fresh start is the truth
    (ckpt / "latest.json").write_text("{ torn")
    with pytest.raises(RunDirError, match="latest.json: damaged"):
        resume_position(ckpt)
    for name in ("state-e0001-s000000", "state-e0002-s000000"):
        (ckpt / name).mkdir()
        (ckpt / name / "ckpt.index").write_bytes(b"")
    (ckpt / "state-e0003-s000000").mkdir()  # torn: no index
    pos = resume_position(ckpt)
    assert (pos.epoch, pos.step, pos.dir) == (2, 0, "state-e0002-s000000")
    assert "recovered from state-e0002-s000000" in pos.note
