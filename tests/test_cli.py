"""The command as a user runs it: help without TensorFlow, one-line errors, headless runs."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from malaria_tui.cli import ExitCode, main
from tests.conftest import TINY, copy_cells

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _run(*args, timeout=300, **kw):
    return subprocess.run(
        [sys.executable, "-m", "malaria_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        **kw,
    )


def test_help_does_not_import_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "from malaria_tui.cli import main\n"
        "from malaria_tui.cli.registry import COMMANDS\n"
        "for argv in [['--help']] + [[name, '--help'] for name in COMMANDS]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'textual') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True
    )
    assert out.stdout.strip() == "[]"


def _bad(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == ExitCode.USAGE, err
    assert "\n" not in err and "Traceback" not in err and err.startswith("malaria-tui")
    return err


def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    one = copy_cells(tmp_path / "one", 3)
    for f in (one / "Uninfected").iterdir():
        f.unlink()
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("seed = [")
    cases = {
        "missing data": (
            ["--no-ui", "--data", f"folder:{tmp_path / 'nope'}"],
            "data folder not found",
        ),
        "empty folder": (
            ["--no-ui", "--data", f"folder:{empty}"],
            "no Parasitized/ or Uninfected/",
        ),
        "one class": (["--no-ui", "--data", f"folder:{one}"], "no images of class Uninfected"),
        "invalid toml": (["--no-ui", "--config", str(bad_toml)], "bad.toml: invalid TOML"),
        "unknown key": (["--no-ui", "--set", "train.epoch=1"], "train.epoch: unknown key"),
        "wrong type": (
            ["--no-ui", "--set", "data.batch_size=big"],
            "data.batch_size: Input should be a valid integer",
        ),
        "fractions": (["--no-ui", "--set", "data.fractions=[0.9, 0.1, 0.1]"], "must sum to 1"),
        "image size": (["--no-ui", "--set", "data.image_size=31"], "data.image_size"),
        "bad spec": (["--no-ui", "--data", "s3://x"], "expected sample, tfds"),
        "resume non-run": (["resume", str(tmp_path)], "not a run directory"),
        "evaluate non-run": (["evaluate", str(tmp_path / "nope")], "no such run directory"),
        "bad flag": (["--epochs", "3"], "unrecognized arguments"),
    }
    for name, (argv, needle) in cases.items():
        assert needle in _bad(capsys, argv), name
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_headless_run_then_evaluate_then_data(tmp_path):
    cells = copy_cells(tmp_path / "cells", 24)
    runs = tmp_path / "runs"
    out = _run(
        "--no-ui",
        "--runs-dir",
        str(runs),
        "--data",
        f"folder:{cells}",
        "--name",
        "e2e",
        *sum((["--set", s] for s in TINY), []),
    )
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\r" not in out.stdout  # plain output when piped
    assert re.search(r"^epoch 1/1 .* img/s loss=", out.stdout, re.M)
    assert "test: accuracy=" in out.stdout and "I0000" not in out.stderr
    # the end says where the run is, its figures rounded, and what to type next
    assert re.search(r"^  at 0\.500: sensitivity=\S+ specificity=\S+", out.stdout, re.M)
    assert "(sensitivity target, chosen on val)" in out.stdout
    assert re.search(r"best val_auc=\d\.\d{4}( |$)", out.stdout, re.M), out.stdout
    assert "evaluating the best model on the test split ..." in out.stdout
    assert f"run directory: {runs}" in out.stdout and "next: malaria-tui evaluate " in out.stdout
    (run,) = runs.iterdir()
    assert run.name.endswith("-e2e")
    ev = _run("evaluate", str(run), "--json")
    assert ev.returncode == 0, ev.stderr
    m = json.loads(ev.stdout)
    assert {
        "accuracy",
        "precision",
        "recall",
        "specificity",
        "auc",
        "tp",
        "tn",
        "fp",
        "fn",
        "n",
        "threshold",
    } <= set(m)
    saved = json.loads((run / "eval" / "metrics.json").read_text())["test"]
    assert m["n"] == saved["n"] and abs(m["auc"] - saved["auc"]) < 1e-6  # same split, same model
    other = _run("evaluate", str(run), "--data", f"folder:{cells}", "--json")
    assert json.loads(other.stdout)["n"] == 48
    d = _run("data", f"folder:{cells}", "--json")
    info = json.loads(d.stdout)
    assert (
        info["total"] == 48
        and info["counts"]["train"]["total"]
        + info["counts"]["val"]["total"]
        + info["counts"]["test"]["total"]
        == 48
    )


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_saves_a_checkpoint_exits_130_and_resume_finishes(tmp_path):
    cells = copy_cells(tmp_path / "cells", 24)
    runs = tmp_path / "runs"
    args = [
        sys.executable,
        "-m",
        "malaria_tui",
        "--no-ui",
        "--runs-dir",
        str(runs),
        "--data",
        f"folder:{cells}",
    ]
    args += sum((["--set", s] for s in [*TINY, "train.epochs=5", "data.batch_size=4"]), [])
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    deadline = time.time() + 240
    for line in proc.stdout:
        if line.startswith("epoch 1/5") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume with: malaria-tui resume" in err
    (run,) = runs.iterdir()
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["epoch"] >= 1
    res = _run("resume", str(run), "--no-ui", "--plain")
    assert res.returncode == 0, res.stderr
    assert "run resumed" in res.stdout and "run completed after 5 epochs" in res.stdout
