"""Hostile paths and values on every command, typed as a person types them: one line on
stderr naming the file or key, exit code 2, no traceback, nothing half-written.

The table covers each command in the registry, so a new command without a row fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from malaria_tui.cli.registry import COMMANDS
from tests.conftest import MALARIA_TUI, TINY, copy_cells


def _typed(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MALARIA_TUI, *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def _one_line(out: subprocess.CompletedProcess, code: int = 2) -> str:
    err = out.stderr.strip()
    assert out.returncode == code, (out.returncode, out.stderr[-2000:])
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("malaria-tui"), err
    return err


def _hostile(tmp) -> dict[str, list[tuple[list[str], str]]]:
    """command -> [(argv after the command, what the line must name)]."""
    (tmp / "a file").write_text("not a directory")
    (tmp / "bin.toml").write_bytes(b"\x00\xff\xfe garbage")
    (tmp / "fake.keras").write_text("not a keras archive")
    (tmp / "empty").mkdir()
    nope = str(tmp / "nö pe")
    return {
        "train": [
            (["--no-ui", "--config", nope], "nö pe"),
            (["--no-ui", "--config", str(tmp / "bin.toml")], "bin.toml"),
            (["--no-ui", "--set", "train.epochs=-1"], "train.epochs"),
            (["--no-ui", "--set", "nonsense"], "nonsense"),
            (["--no-ui", "--data", f"folder:{tmp / 'a file'}"], "a file"),
            (["--no-ui", "--runs-dir", str(tmp / "a file")], "a file"),
            (["--no-ui", "--set", f'data.label_overrides="{nope}"'], "nö pe"),
        ],
        "resume": [([nope, "--no-ui"], "nö pe"), ([str(tmp / "empty"), "--no-ui"], "empty")],
        "evaluate": [
            ([nope], "nö pe"),
            ([str(tmp / "empty")], "empty"),
            ([str(tmp / "empty"), "--threshold", "2"], "--threshold"),
            ([str(tmp / "empty"), "--threshold", "nan"], "--threshold"),
        ],
        "data": [
            (["folder:" + nope], "nö pe"),
            (["folder:" + str(tmp / "empty")], "empty"),
            (["gopher://x"], "gopher://x"),
            (["sample", "--set", "data.fractions=[1, 0, 0]"], "data.fractions"),
            (["sample", "--set", f'data.label_overrides="{nope}"'], "nö pe"),
            (["sample", "--set", f'data.label_overrides="{tmp / "bin.toml"}"'], "bin.toml"),
        ],
        "watch": [([nope], "nö pe"), (["--runs-dir", str(tmp / "empty")], "empty")],
        "predict": [
            ([nope, str(tmp)], "nö pe"),
            ([str(tmp / "fake.keras"), str(tmp)], "fake.keras"),
            ([str(tmp / "fake.keras"), str(tmp), "--threshold", "-0.1"], "--threshold"),
        ],
        "export": [([nope], "nö pe"), ([str(tmp / "empty"), "--format", "onnx"], "--format")],
        "grid": [
            (["--config", nope], "nö pe"),
            (["--config", str(tmp / "bin.toml")], "bin.toml"),
            (["--resume", str(tmp / "empty")], "empty"),
            (["--config", nope, "--parallel", "0"], "--parallel"),
            (["--config", nope, "--shard", "3/2"], "--shard"),
        ],
        "cv": [
            (["--no-ui", "--config", nope], "nö pe"),
            (["--no-ui", "--config", str(tmp / "bin.toml")], "bin.toml"),
            (["--no-ui", "--resume", str(tmp / "empty")], "empty"),
            (["--no-ui", "--folds", "1"], "--folds"),
            (["--no-ui", "--data", f"folder:{tmp / 'a file'}"], "a file"),
            (["--no-ui", "--set", f'data.label_overrides="{nope}"'], "nö pe"),
        ],
        "runs": [([nope], "nö pe"), ([str(tmp / "empty"), "--sort", "bogus"], "bogus")],
        "review": [
            ([nope], "nö pe"),
            ([str(tmp / "empty")], "empty"),
            ([str(tmp / "empty"), "--top", "0"], "--top"),
        ],
        "serve": [
            (["--config", nope, "--port", "8"], "nö pe"),
            (["--port", "http"], "--port"),
        ],
    }


def test_every_command_has_hostile_cases(tmp_path):
    assert set(_hostile(tmp_path)) == set(COMMANDS)


@pytest.mark.slow
def test_hostile_paths_and_values_are_one_line_and_exit_2(tmp_path):
    before = None
    for command, cases in _hostile(tmp_path).items():
        for argv, named in cases:
            args = argv if command == "train" else [command, *argv]
            before = sorted(p.name for p in tmp_path.rglob("*"))
            line = _one_line(_typed(*args, cwd=tmp_path))
            assert named in line, (args, line)
            assert sorted(p.name for p in tmp_path.rglob("*")) == before, args  # nothing written


@pytest.mark.slow
def test_a_truncated_model_file_is_one_line(tmp_run_copy):
    run, tmp = tmp_run_copy
    cut = tmp / "cut.keras"
    data = run.best_model.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    line = _one_line(_typed("predict", str(cut), str(tmp), cwd=tmp))
    assert "cut.keras" in line


@pytest.mark.slow
def test_an_export_where_nothing_can_be_written_is_one_line(tmp_run_copy):
    run, tmp = tmp_run_copy
    blocker = tmp / "blocker"
    blocker.write_text("a file where a folder should be")
    for fmt in ("keras", "tflite", "savedmodel"):
        out = _typed("export", str(run.path), "--format", fmt, "--out", str(blocker / "m"), cwd=tmp)
        assert "blocker" in _one_line(out), fmt
    assert blocker.read_text() == "a file where a folder should be"
    assert not list(tmp.glob("**/*.tmp"))


@pytest.mark.slow
def test_a_corrupt_checkpoint_pointer_is_never_a_silent_restart(tmp_path):
    """Resume recovers from the newest intact state and says so, or refuses: it never trains
    again from epoch 0 without a word."""
    import threading

    from malaria_tui.engine import config
    from malaria_tui.engine.training.trainer import train

    cells = copy_cells(tmp_path / "cells", 16)
    cfg = config.load(None, [*TINY, f'data.source="folder:{cells}"', "train.epochs=3"])
    stop = threading.Event()
    run = train(
        cfg,
        runs_dir=tmp_path / "runs",
        stop=stop,
        on_event=lambda e: e.kind == "checkpoint_saved" and e.role == "last" and stop.set(),
    )
    assert run.status() == "interrupted"
    pointer = run.checkpoints / "latest.json"
    pointer.write_text("{ this is not json")
    out = _typed("resume", str(run.path), "--no-ui", "--plain", cwd=tmp_path)
    if out.returncode == 2:
        assert "latest.json" in _one_line(out)
        assert pointer.read_text() == "{ this is not json"  # refused: untouched
    else:
        assert out.returncode == 0, out.stderr
        assert "recovered" in (out.stdout + out.stderr)
        assert "run resumed" in out.stdout and "epoch 1/" not in out.stdout


@pytest.fixture
def tmp_run_copy(tiny_run, tmp_path):
    """A private copy of the session's tiny trained run (tests here damage it)."""
    from malaria_tui.engine.rundir import open_run

    dest = tmp_path / "runs" / tiny_run.path.name
    shutil.copytree(tiny_run.path, dest)
    (dest / "run.lock").unlink(missing_ok=True)
    assert json.loads((dest / "checkpoints" / "latest.json").read_text())
    return open_run(dest), tmp_path
