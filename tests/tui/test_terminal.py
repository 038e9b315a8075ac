"""Without a terminal the TUI refuses in one line (Textual would spin on a stdin at EOF)."""

from __future__ import annotations

import subprocess
import sys

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
