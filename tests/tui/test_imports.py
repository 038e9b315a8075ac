"""Import boundaries: the engine never pulls in Textual; the TUI never imports TensorFlow at start."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(out.stdout.split())


def test_engine_import_does_not_import_textual():
    mods = _modules_after(
        "import malaria_tui.engine, malaria_tui.engine.config, malaria_tui.engine.events, malaria_tui.engine.rundir"
    )
    assert "textual" not in mods
    assert "rich" not in mods


def test_tui_start_does_not_import_tensorflow():
    mods = _modules_after(
        "from malaria_tui.tui.app import create_app\napp = create_app(load_tf=False)"
    )
    assert "tensorflow" not in mods
    assert "keras" not in mods
