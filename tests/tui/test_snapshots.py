"""SVG snapshots (pytest-textual-snapshot) of apps built with ``create_app``: every screen at
80x24 (the smallest terminal the app is made for) and at 120x36 (the README's screenshots),
plus the dialogs at 80x24.

They are deterministic: no TensorFlow (``load_tf=False``), a run written with fixed times and
a fixed directory name, a relative runs folder (no temporary path on screen) and the clock's
time zone fixed for the log's time stamps. Update after an intended visual change with
``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from malaria_tui.engine.rundir import RunDir
from malaria_tui.tui.app import create_app
from tests.conftest import copy_cells
from tests.test_review import _lay_out_cv

from .conftest import write_run
from .test_app import wait_for

RUN = "20250101-120000-demo"
SIZES = {"80x24": (80, 24), "120x36": (120, 36)}


@pytest.fixture
def snap_runs(tmp_path, monkeypatch) -> Path:
    """``runs/`` (relative: the Runs screen shows the folder) with one finished run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    runs = Path("runs")
    runs.mkdir()
    write_run(runs, "demo", dir_name=RUN)
    yield runs
    monkeypatch.undo()
    time.tzset()


def _ready(mode: str):
    """When the screen ``mode`` shows what it will keep showing."""
    return {
        "dataset": lambda s: s.info is not None,
        "augment": lambda s: (
            bool(s.cells) and "TensorFlow" in str(s.query_one("#preview-title").content)
        ),
        "train": lambda s: s.mapp.session.status == "completed",
        "evaluate": lambda s: s.data is not None,
        "runs": lambda s: s.query_one("#runs").row_count == 1,
        "review": lambda s: s.found is not None,
    }.get(mode, lambda s: True)


def _planted(cells: Path) -> list[str]:
    from malaria_tui.engine.data import records, splits

    recs = records.scan_folder(cells).records
    train = splits.split_records(recs, (0.8, 0.1, 0.1), 42, "patient")["train"]
    names = sorted(Path(r.path).name for r in train)
    return [names[3], names[30], names[17]]


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize(
    "mode",
    ["dataset", "augment", "model", "train", "hparams", "evaluate", "predict", "runs", "review"],
)
def test_screen_snapshot(snap_compare, snap_runs, mode, size):
    if mode == "train":  # the Train screen following the finished run (`malaria-tui watch`)
        app = create_app(runs_dir=snap_runs, load_tf=False, watch_run=RunDir(snap_runs / RUN))
    elif mode == "review":  # suspects of a CV directory laid out over real bundled cells
        cells = copy_cells(Path("cells"), 30)
        cv = _lay_out_cv(cells, Path("cvs") / "20250101-cv-demo", _planted(cells))
        app = create_app(runs_dir=snap_runs, load_tf=False, initial=mode, cv_dir=cv)
    else:
        app = create_app(runs_dir=snap_runs, load_tf=False, initial=mode)
    ready = _ready(mode)

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.screen.is_mounted and ready(app.screen))
        await pilot.pause(0.3)
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(app, terminal_size=size, run_before=loaded)


def test_evaluate_threshold_moved_snapshot(snap_compare, snap_runs):
    app = create_app(runs_dir=snap_runs, load_tf=False, initial="evaluate")

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.screen.data is not None)
        await pilot.press("plus", "plus", "plus")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(100, 30), run_before=loaded)


def test_keys_dialog_snapshot(snap_compare, snap_runs):
    """`?` on the Predict screen: its keys, then those of every screen, in 80 columns."""
    app = create_app(runs_dir=snap_runs, load_tf=False, initial="predict")

    async def loaded(pilot):
        await pilot.pause(0.2)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)


def test_quit_dialog_snapshot(snap_compare, snap_runs):
    from malaria_tui.tui.screens.dialogs import QuitDialog

    app = create_app(runs_dir=snap_runs, load_tf=False, initial="train")

    async def loaded(pilot):
        await pilot.pause(0.2)
        app.push_screen(QuitDialog(can_keep=True))
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)


def test_model_field_being_edited_snapshot(snap_compare, snap_runs):
    """A field with the focus: the key bar says how to leave it and how to switch screens."""
    app = create_app(runs_dir=snap_runs, load_tf=False, initial="model")

    async def loaded(pilot):
        await pilot.pause(0.2)
        field = app.screen.query_one("#f-train-epochs Input")
        field.cursor_blink = False  # a blinking cursor is not deterministic
        field.focus()
        await pilot.press("end", "backspace", "backspace")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)
