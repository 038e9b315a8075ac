"""Faults and hostile input: nothing is lost, nothing half-written, never a traceback."""

import json
import os
import signal
import subprocess
import sys
import time
import tomllib

import numpy as np
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
