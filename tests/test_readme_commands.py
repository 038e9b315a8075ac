"""Every command the README lists, run as a person types it: the installed ``malaria-tui``
in a subprocess (a pseudo-terminal of 80x24 for the app), never the function behind it.

A command that vanishes from the CLI, or a README line that no longer parses, fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from malaria_tui.cli.registry import COMMANDS, DEFAULT, build_parser, markdown_table, prog
from tests.conftest import MALARIA_TUI, REPO, TINY, copy_cells
from tests.pty_terminal import Terminal

README = (REPO / "README.md").read_text()


def cli(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MALARIA_TUI, *args], capture_output=True, text=True, timeout=timeout, **kw
    )


def readme_commands() -> set[str]:
    """The command of every ``malaria-tui ...`` the README shows (DEFAULT for options only)."""
    found = set()
    for m in re.finditer(r"malaria-tui((?: [\w./:=\"'-]+)?)", README):
        word = m.group(1).strip()
        found.add(word if word in COMMANDS else DEFAULT)
    return found


def test_the_readme_table_is_the_registry():
    block = README.split("<!-- commands:start -->\n", 1)[1].split("\n<!-- commands:end -->", 1)[0]
    assert block == markdown_table(), "run: python tools/readme_commands.py"
    assert readme_commands() == set(COMMANDS)  # and the README names no command that is not one


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_answers_help_with_its_own_usage(name):
    out = cli(*([] if name == DEFAULT else [name]), "--help", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: {prog(name)} "), out.stdout[:200]
    assert COMMANDS[name].summary[:40] in " ".join(out.stdout.split())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_a_help_text(name):
    for action in build_parser(name)._actions:
        assert action.help, f"{prog(name)} {'/'.join(action.option_strings) or action.dest}"
        assert "%%" not in action.help % {"default": action.default}, action.help


def test_data_help_lists_every_spec_form():
    text = " ".join(cli("data", "--help", timeout=60).stdout.split())
    for form in ("sample", "tfds", "tfds:DATA_DIR", "folder:PATH"):
        assert form in text


def test_data_describes_the_bundled_sample_and_a_folder(tmp_path):
    out = cli("data", "sample", timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Parasitized" in out.stdout and "Traceback" not in out.stderr
    cells = copy_cells(tmp_path / "cells", 6)
    info = json.loads(cli("data", f"folder:{cells}", "--json", timeout=120).stdout)
    assert info["total"] == 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_http_on_a_free_port(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [*MALARIA_TUI, "serve", "--port", str(port), "--runs-dir", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        end, page = time.monotonic() + 60, ""
        while time.monotonic() < end and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    assert r.status == 200
                    page = r.read().decode()
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.3)
        assert "malaria-tui" in page and "<html" in page.lower()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_the_app_opens_at_80x24_and_quits(tmp_path):
    term = Terminal([*MALARIA_TUI, "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path)
    try:
        term.wait_for("TF ready", timeout=120)  # the first frame came long before
        term.press("q")
        assert term.wait_exit() == 0
    finally:
        term.close()


@pytest.mark.slow
def test_the_readme_main_job_as_typed(tmp_path):
    """The README's first line after install: ``malaria-tui --no-ui`` on the bundled cells."""
    line = next(x for x in README.splitlines() if x.startswith("pip install . && "))
    typed = shlex.split(line.split("&&", 1)[1].split("#", 1)[0])
    assert typed[0] == "malaria-tui"
    out = cli(*typed[1:], cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-cellnet")  # no --name: named by its model
    test = json.loads((run / "eval" / "metrics.json").read_text())["test"]
    assert test["n"] > 100 and test["accuracy"] > 0.85, test


@pytest.mark.slow
def test_train_evaluate_predict_export_resume_watch_grid_as_typed(tmp_path):
    cells = copy_cells(tmp_path / "cells", 24)
    runs = tmp_path / "runs"
    sets = [a for s in TINY for a in ("--set", s)]
    umask = os.umask(0o022)  # a shared box: colleagues read each other's runs
    out = cli("--no-ui", "--runs-dir", str(runs), "--data", f"folder:{cells}", *sets)
    assert out.returncode == 0, out.stderr
    (run,) = runs.iterdir()

    ev = cli("evaluate", str(run))
    assert ev.returncode == 0 and "accuracy" in ev.stdout, ev.stderr
    assert cli("evaluate", str(run), "--threshold", "2").returncode == 2

    pred = cli("predict", str(run), str(cells / "Parasitized"), "--csv")
    assert pred.returncode == 0, pred.stderr
    assert len(pred.stdout.strip().splitlines()) == 1 + 24

    exp = cli("export", str(run), "--format", "tflite", "--out", str(tmp_path / "m.tflite"))
    assert exp.returncode == 0 and "exported" in exp.stdout, exp.stderr
    os.umask(umask)
    private = [
        p for p in [*run.rglob("*"), tmp_path / "m.tflite"] if p.stat().st_mode & 0o044 != 0o044
    ]
    assert not private, private  # every file the run and the export wrote follows the umask
    one = next((cells / "Uninfected").iterdir())
    pred = cli("predict", str(tmp_path / "m.tflite"), str(one), "--json")
    assert pred.returncode == 0, pred.stderr
    assert len(json.loads(pred.stdout)["cells"]) == 1

    res = cli("resume", str(run), "--no-ui", "--plain")
    assert res.returncode in (0, 2) and "Traceback" not in res.stderr, res.stderr

    term = Terminal([*MALARIA_TUI, "watch", str(run)], cwd=tmp_path)
    try:
        term.wait_for(run.name[:20], timeout=120)
        term.press("q")
        assert term.wait_exit() == 0
    finally:
        term.close()

    grid_toml = tmp_path / "grid.toml"
    grid_toml.write_text(
        '[model]\nname = "lenet"\n[grid]\nmetric = "val_auc"\n'
        '[grid.values]\n"model.dropout" = [0.2, 0.4]\n'
    )
    grid = cli(
        "grid",
        "--config",
        str(grid_toml),
        "--no-ui",
        "--runs-dir",
        str(tmp_path / "grids"),
        "--data",
        f"folder:{cells}",
        *sets,
    )
    assert grid.returncode == 0, grid.stderr
    assert "2 trials" in grid.stdout and "best trial" in grid.stdout


def test_python_m_runs_the_same_command():
    out = subprocess.run(
        [sys.executable, "-m", "malaria_tui", "evaluate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.startswith("usage: malaria-tui evaluate ")


def test_bad_command_line_is_one_line_and_exit_2():
    out = cli("evaluate", timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().count("\n") == 0
    assert out.stderr.startswith("malaria-tui evaluate: error:")


def test_no_repo_checkout_is_needed(tmp_path):
    """The installed command runs from any folder (configs are built in)."""
    out = cli("data", "sample", "--json", cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and json.loads(out.stdout)["total"] == 1500
