"""Faults and hostile input: nothing is lost, nothing half-written, never a traceback."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from malaria_tui.cli import ExitCode, main
from malaria_tui.engine import config, rundir
from malaria_tui.engine.data import records
from malaria_tui.engine.errors import ConfigError
from tests.conftest import TINY, copy_cells

KEYS = list(config.flatten(config.Config().to_dict()))
scalars = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=12),
    st.none(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.text(max_size=6), scalars, max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=15)), values, max_size=6))
def test_config_overrides_fuzz_give_a_config_or_one_clear_error(pairs):
    overrides = []
    for k, v in pairs.items():
        literal = json.dumps(v) if v is not None else ""
        overrides.append(f"{k}={literal}")
    try:
        cfg = config.load(None, overrides)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert config.build(tomllib.loads(cfg.to_toml())) == cfg


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_config_file_fuzz(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        config.load(path)
    except ConfigError as e:
        assert str(path) in str(e) and "\n" not in str(e)


@pytest.mark.slow
def test_hostile_data_folder_trains_and_reports_skips(tmp_path):
    root = copy_cells(tmp_path / "d", 16)
    par, uni = root / "Parasitized", root / "Uninfected"
    Image.new("RGB", (1, 1), (200, 100, 150)).save(par / "tiny_1x1.png")
    Image.fromarray((np.random.default_rng(0).random((2000, 1600, 3)) * 255).astype(np.uint8)).save(
        uni / "huge.jpg"
    )
    Image.fromarray((np.arange(2500).reshape(50, 50) * 26).astype(np.uint16)).save(
        uni / "deep16.png"
    )
    Image.new("RGBA", (60, 40), (10, 20, 30, 128)).save(par / "alpha.png")
    (par / "zero.png").write_bytes(b"")
    (uni / "cut.png").write_bytes((par / "alpha.png").read_bytes()[:30])
    os.symlink(root, par / "loop")  # a folder symlink back to the root
    weird = os.fsdecode(b"C99P1thinF_\xff\xfe_cell.png")
    Image.new("L", (50, 50), 90).save(os.path.join(os.fsencode(uni), os.fsencode(weird)))
    scan = records.scan_folder(root)
    assert len(scan.records) == 32 + 5 and len(scan.skipped) == 2
    runs = tmp_path / "runs"
    argv = ["--no-ui", "--runs-dir", str(runs), "--data", f"folder:{root}", "--plain"]
    assert (
        main(argv + sum((["--set", s] for s in [*TINY, "data.limit=0", 'data.split="image"']), []))
        == ExitCode.OK
    )
    (run,) = rundir.list_runs(runs)
    logs = [e.message for e in run.events() if e.kind == "log"]
    assert any("skipped 2 unreadable" in m for m in logs)
    preds = (run.eval_dir / "predictions.csv").read_bytes()
    assert preds.count(b"\n") >= 2


def test_unwritable_runs_dir_is_one_line(tmp_path, capsys, cells):
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the runs directory should be")
    code = main(["--no-ui", "--runs-dir", str(blocker), "--data", f"folder:{cells}"])
    err = capsys.readouterr().err.strip()
    assert code == ExitCode.USAGE and "cannot create the runs directory" in err and "\n" not in err


@pytest.mark.slow
def test_sigkill_mid_training_keeps_the_last_checkpoint_and_log_usable(tmp_path):
    cells = copy_cells(tmp_path / "cells", 24)
    runs = tmp_path / "runs"
    sets = [*TINY, "train.epochs=6", "data.batch_size=4", "train.batch_events_per_second=50"]
    args = [
        sys.executable,
        "-m",
        "malaria_tui",
        "--no-ui",
        "--plain",
        "--runs-dir",
        str(runs),
        "--data",
        f"folder:{cells}",
    ]
    proc = subprocess.Popen(
        args + sum((["--set", s] for s in sets), []), stdout=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("epoch ")
        if seen >= 2 or time.time() > deadline:
            break
    time.sleep(0.3)  # land somewhere inside the next epoch or checkpoint write
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (run_path,) = runs.iterdir()
    run = rundir.RunDir(run_path)
    events = run.events()  # parseable; a torn last line would be skipped
    assert events and events[0].kind == "run_started"
    latest = json.loads((run_path / "checkpoints" / "latest.json").read_text())
    # at most the epoch in progress is lost: epoch 2 had ended (its line was printed) or was saving
    assert (run_path / "checkpoints" / latest["dir"] / "ckpt.index").exists() and latest[
        "epoch"
    ] >= 1
    assert run.status() == "stale"  # nobody holds the lock any more
    res = subprocess.run(
        [sys.executable, "-m", "malaria_tui", "resume", str(run_path), "--no-ui", "--plain"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    first = next(
        e for e in rundir.RunDir(run_path).events() if e.kind == "run_started" and e.resumed
    )
    assert first.start_epoch == latest["epoch"]


# --- environment faults mid-run: a full disk, out of memory, a data file deleted ---------------

# A real OS limit in a child process: a write past RLIMIT_FSIZE fails with EFBIG (SIGXFSZ, which
# would kill the process instead, is ignored), exactly where a full disk fails with ENOSPC;
# unprivileged, so it works in any CI container (no mount, no loop device, no root).
FSIZE_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from malaria_tui.cli import main
sys.exit(main(sys.argv[2:]))
"""

# Memory the same way: RLIMIT_DATA (private writable memory; Linux >= 4.7) set once TensorFlow
# is imported makes a larger allocation fail at once, whatever the machine's RAM or overcommit
# policy, so nothing is ever touched or swapped. Exit 3 if the kernel ignores it.
DATA_CHILD = """
import ctypes, re, resource, sys
from malaria_tui.engine import tfenv
tfenv.tf()
used = int(re.search(r"VmData:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) << 10
room = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_DATA, (used + room, used + room))
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
probe = libc.malloc(ctypes.c_size_t(2 * room))
if probe:
    libc.free(ctypes.c_void_p(probe))
    sys.exit(3)
from malaria_tui.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _interrupted_run(tmp_path, *sets):
    """A tiny real run stopped after its first epoch, as Ctrl+C leaves it (checkpoint e1)."""
    from malaria_tui.engine.training.trainer import train

    cells = copy_cells(tmp_path / "cells", 24)
    cfg = config.load(
        None, [*TINY, f'data.source="folder:{cells}"', "train.epochs=2", "data.batch_size=8", *sets]
    )
    stop = threading.Event()

    def after_first_epoch(event):
        if event.kind == "checkpoint_saved" and event.role == "last":
            stop.set()

    run = train(cfg, runs_dir=tmp_path / "runs", on_event=after_first_epoch, stop=stop)
    assert run.status() == "interrupted"
    return run


def _states(run) -> dict:
    """Every checkpoint file but best.keras (which is replaced whole when a model improves)."""
    return {
        str(p.relative_to(run.checkpoints)): p.read_bytes()
        for p in run.checkpoints.rglob("*")
        if p.is_file() and p.name != "best.keras"
    }


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines and "Traceback" not in stderr, stderr[-3000:]
    assert lines[-1].startswith("malaria-tui: training failed: "), stderr[-3000:]
    return lines[-1].removeprefix("malaria-tui: training failed: ")


def _resumes_to_the_end(run, position) -> None:
    assert main(["resume", str(run.path), "--no-ui", "--plain"]) == ExitCode.OK
    start = [e for e in run.events() if e.kind == "run_started"][-1]
    assert (start.start_epoch, start.start_step) == position and run.status() == "completed"


@pytest.mark.slow
def test_full_disk_mid_run_is_one_line_exit_1_and_the_last_checkpoint_survives(tmp_path):
    run = _interrupted_run(tmp_path)
    before = _states(run)
    latest = json.loads((run.checkpoints / "latest.json").read_text())
    data = next((run.checkpoints / latest["dir"]).glob("ckpt.data-*")).stat().st_size
    best = (run.checkpoints / "best.keras").stat().st_size
    # room for the log and a new best.keras, not for the next state checkpoint (TF's own writer)
    limit = (best + data) // 2
    assert run.events_path.stat().st_size * 4 < best < limit < data
    res = subprocess.run(
        [sys.executable, "-c", FSIZE_CHILD, str(limit), "resume", str(run.path), "--no-ui"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == ExitCode.FAILED, res.stderr[-3000:]
    line = _one_line(res.stderr)
    assert line.startswith(f"file too large writing {run.checkpoints} (over the file-size limit")
    assert "--runs-dir" in line and "resume" in line
    events = run.events()
    assert events[-1].kind == "run_failed" and events[-1].reason == line
    assert any(e.kind == "epoch_end" and e.epoch == 1 for e in events)  # it failed saving epoch 2
    # the previous checkpoint is byte for byte what it was, nothing half-written is left
    assert _states(run) == before
    assert not [p for p in run.path.rglob("*") if p.name.startswith(".") or "tmp" in p.name]
    assert zipfile.is_zipfile(run.best_model) and zipfile.ZipFile(run.best_model).testzip() is None
    assert not (run.path / "run.lock").exists()
    _resumes_to_the_end(run, (latest["epoch"], latest["step"]))  # space back: resume finishes


def test_disk_full_errors_are_named_from_python_and_from_tensorflow(tmp_path):
    """/dev/full: a real ENOSPC. TensorFlow reports it as ResourceExhaustedError, the class of
    an out-of-memory error, so the text decides; the CLI's line must say disk, not memory."""
    from malaria_tui.engine.faults import explain_fault
    from malaria_tui.engine.tfenv import tf

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    try:
        with open("/dev/full", "wb") as f:
            f.write(b"x")
    except OSError as e:
        assert explain_fault(e).startswith("disk full writing the run directory; free space")
    else:
        raise AssertionError("/dev/full took a write")
    with pytest.raises(tf().errors.ResourceExhaustedError) as tf_error:
        tf().io.write_file("/dev/full", b"x" * 100_000)
    line = explain_fault(tf_error.value)
    assert line.startswith("disk full writing /dev/full; free space") and "memory" not in line


@pytest.mark.slow
def test_out_of_memory_is_one_line_exit_1_and_nothing_half_written(tmp_path):
    """LeNet at 1024 px: its Dense kernel alone is 1032256 x 100 floats (413 MB) and the child
    may use 256 MB more than TensorFlow's start-up, so TensorFlow's allocator refuses it."""
    cells = copy_cells(tmp_path / "cells", 24)
    runs = tmp_path / "runs"
    sets = [*TINY, "data.image_size=1024", 'data.cache="none"']
    args = [sys.executable, "-c", DATA_CHILD, "256", "--no-ui", "--plain", "--runs-dir", str(runs)]
    args += ["--data", f"folder:{cells}", *sum((["--set", s] for s in sets), [])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=600)
    if proc.returncode == 3:
        pytest.skip("this kernel does not enforce RLIMIT_DATA (Linux < 4.7)")
    assert proc.returncode == ExitCode.FAILED, err[-3000:]
    line = _one_line(err)
    assert line.startswith("out of memory; lower data.batch_size or data.image_size")
    (run,) = rundir.list_runs(runs)
    events = run.events()
    assert [e.kind for e in events] == ["run_failed"] and events[0].reason == line
    # only the config and the log: no checkpoint folder, no temp file, no lock left behind
    assert sorted(p.name for p in run.path.iterdir()) == ["config.toml", "events.jsonl"]


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["none", "memory"])
def test_data_files_deleted_mid_run_fail_in_one_line_and_keep_the_checkpoint(
    tmp_path, capsys, cache
):
    """Every image is deleted at the first batch of epoch 2. Without a cache epoch 2 reads them
    again; with the memory cache (default) the test split is read for the first time by the
    final evaluation. Either way: one line naming the file, exit 1, the checkpoint kept."""
    from malaria_tui.cli.headless import run_training
    from malaria_tui.engine.training.trainer import train

    cells = copy_cells(tmp_path / "cells", 24)
    kept = shutil.copytree(cells, tmp_path / "kept")
    cfg = config.load(
        None,
        [
            *TINY,
            f'data.source="folder:{cells}"',
            "data.limit=0",
            "train.epochs=2",
            "data.batch_size=8",
            f'data.cache="{cache}"',
        ],
    )

    def delete_in_epoch_2(event):
        if event.kind == "batch" and event.epoch == 1 and cells.exists():
            shutil.rmtree(cells)

    def job(stop, report):  # the CLI's own headless path, with a hook in the event stream
        def on_event(event):
            report(event)
            delete_in_epoch_2(event)

        return train(cfg, runs_dir=tmp_path / "runs", on_event=on_event, stop=stop)

    code = run_training(job, plain=True)
    assert code == ExitCode.FAILED and not cells.exists()
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"a data file disappeared during training ({cells}{os.sep}")
    assert line.endswith(".png); restore it and resume the run")
    (run,) = rundir.list_runs(tmp_path / "runs")
    events = run.events()
    assert events[-1].kind == "run_failed" and events[-1].reason == line
    latest = json.loads((run.checkpoints / "latest.json").read_text())
    assert latest["epoch"] == (1 if cache == "none" else 2) and latest["step"] == 0
    assert (run.checkpoints / latest["dir"] / "ckpt.index").is_file()
    assert not [p for p in run.path.rglob("*") if p.name.startswith(".")]
    kept.rename(cells)  # the files are back: the run resumes from that checkpoint and finishes
    _resumes_to_the_end(run, (latest["epoch"], 0))
