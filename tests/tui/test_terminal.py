"""Without a terminal the TUI refuses in one line (Textual would spin on a stdin at EOF)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest

from malaria_tui.engine import rundir
from tests.conftest import TINY, copy_cells

CODE = """
from malaria_tui.engine.errors import UserError
from malaria_tui.tui.app import create_app
try:
    create_app(load_tf=False).run()
except UserError as e:
    print("refused:", e)
"""


def test_no_terminal_is_a_one_line_refusal_not_a_busy_loop(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", CODE],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "refused: the TUI needs a terminal" in out.stdout


def _drain(fd: int, out: bytearray) -> None:
    """Read the terminal's screen output until the app closes it (the pty must never fill)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            return
        if not chunk:
            return
        out += chunk


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_sigint_to_the_tui_process_stops_at_a_checkpoint_and_exits_130(tmp_path):
    """The real `malaria-tui` in a real terminal: start a run with keys, `kill -INT` it."""
    cells = copy_cells(tmp_path / "cells", 24)
    runs = tmp_path / "runs"
    sets = [*TINY, "train.epochs=5", "data.batch_size=4", "train.tensorboard=false"]
    args = [
        sys.executable,
        "-m",
        "malaria_tui",
        "--runs-dir",
        str(runs),
        "--data",
        f"folder:{cells}",
    ]
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        args + sum((["--set", s] for s in sets), []),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    screen = bytearray()
    reader = threading.Thread(target=_drain, args=(master, screen), daemon=True)
    reader.start()
    try:
        os.write(master, b"4")  # the Train screen
        deadline = time.monotonic() + 240
        log = None
        while log is None or b'"event": "batch"' not in log.read_bytes():
            assert proc.poll() is None, bytes(screen)[-2000:]
            assert time.monotonic() < deadline, "the run never started"
            os.write(master, b"s")  # start: refused until TensorFlow is ready, then ignored
            time.sleep(0.3)
            found = list(runs.glob("*/events.jsonl"))
            log = found[0] if found else None
        os.kill(proc.pid, signal.SIGINT)  # `kill -INT PID`, not a key
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        os.close(master)
    run = rundir.RunDir(log.parent)
    text = re.sub(r"\x1b\[[0-9;?<>=]*[A-Za-z]", "", bytes(screen).decode("utf-8", "replace"))
    assert rc == 130, text[-2000:]
    assert f"resume with: malaria-tui resume {run.path}" in text
    assert run.status() == "interrupted"
    latest = json.loads((run.checkpoints / "latest.json").read_text())
    stopped = [e for e in run.events() if e.kind == "run_interrupted"]
    assert len(stopped) == 1 and stopped[0].checkpoint.endswith(latest["dir"])
    assert (run.checkpoints / latest["dir"] / "ckpt.index").is_file()
