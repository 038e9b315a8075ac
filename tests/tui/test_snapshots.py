"""SVG snapshots (pytest-textual-snapshot) of apps built with ``create_app``.

Update after an intended visual change with ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from malaria_tui.tui.app import create_app

from .conftest import write_run
from .test_app import wait_for


def test_dataset_screen_snapshot(snap_compare, runs_dir):
    app = create_app(runs_dir=runs_dir, load_tf=False)

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.screen.info is not None)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)


def test_evaluate_screen_snapshot(snap_compare, runs_dir):
    write_run(runs_dir, "demo", dir_name="20250101-120000-demo")
    app = create_app(runs_dir=runs_dir, load_tf=False, initial="evaluate")

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.screen.data is not None)
        await pilot.press("plus", "plus", "plus")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(100, 30), run_before=loaded)


def test_predict_screen_snapshot(snap_compare, runs_dir):
    """Key 7 before TensorFlow: the form, the message bar and the empty table/side panel."""
    app = create_app(runs_dir=runs_dir, load_tf=False, initial="predict")

    async def loaded(pilot):
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)
