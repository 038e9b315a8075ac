"""The Predict screen (key 7), Grad-CAM in the Evaluate gallery, and resuming a run in the TUI.

The first tests need no TensorFlow; the ``slow`` ones use the session's tiny real run
(``tiny_run`` in tests/conftest.py: a cellnet trained for two epochs on real cells).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import DataTable, Input

from malaria_tui.engine.data.records import sample_root
from malaria_tui.tui.app import create_app
from malaria_tui.tui.screens.predict import PredictScreen, relabel
from malaria_tui.tui.widgets.cell_table import short_name

from .conftest import write_run
from .test_app import text_of, wait_for

SIZE = (80, 24)


def run(coro):
    return asyncio.run(coro)


def test_relabel_and_short_names():
    from malaria_tui.engine.inference.diagnose import CellResult

    cells = [CellResult(f"/x/{i}.png", "/x", p, "Uninfected") for i, p in enumerate((0.2, 0.6))]
    out = relabel(cells, 0.5)
    assert [c.label for c in out] == ["Uninfected", "Parasitized"]
    assert out[0] is cells[0]  # unchanged cells are reused
    assert short_name("/a/" + "x" * 40 + ".png", 20).count("…") == 1
    assert len(short_name("/a/" + "x" * 40 + ".png", 20)) == 20


def test_predict_waits_for_tensorflow_and_explains(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="predict")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, PredictScreen)
            assert screen.check_action("predict", ()) is None  # not offered without TF
            assert "TensorFlow is off" in text_of(screen.query_one("#message"))
            await pilot.press("ctrl+r")
            await pilot.pause()
            assert not screen.running and not screen.cells
            # number keys still switch screens from here (the table has the focus)
            await pilot.press("8")
            await pilot.pause()
            assert app.screen.MODE == "runs"

    run(go())


def test_predict_defaults_to_the_newest_run_with_a_model(runs_dir):
    older = write_run(runs_dir, "older", seed=1)
    newer = write_run(runs_dir, "newer", seed=2)
    for r in (older, newer):
        r.checkpoints.mkdir(parents=True, exist_ok=True)
    (older.checkpoints / "best.keras").write_bytes(b"not really")

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="predict")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            field = app.screen.query_one("#model", Input)
            assert field.value == str(older.path)  # the newest run *with* a best model
            await pilot.press("i", *"abc")
            await pilot.pause()
            assert app.screen.query_one("#images", Input).value == "abc"
            await pilot.press("escape")
            assert isinstance(app.focused, DataTable)

    run(go())


def copy_cells(dest: Path, per_class: int, step: int) -> None:
    for cls in ("Parasitized", "Uninfected"):
        (dest / cls).mkdir(parents=True, exist_ok=True)
        for f in sorted((sample_root() / cls).glob("*.png"))[::step][:per_class]:
            shutil.copy(f, dest / cls / f.name)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two slides' folders of real cells and one broken file."""
    root = tmp_path / "slides"
    copy_cells(root / "slide-a", 6, step=13)
    copy_cells(root / "slide-b", 4, step=17)
    (root / "slide-b" / "Uninfected" / "broken.png").write_bytes(b"\x89PNG nope")
    return root


@pytest.mark.slow
def test_predict_a_folder_relabel_sort_gradcam_and_errors(tiny_run, folder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()

    async def go():
        app = create_app(runs_dir=tiny_run.path.parent, initial="predict")
        async with app.run_test(size=(120, 36)) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            await pilot.pause()
            assert screen.query_one("#model", Input).value == str(tiny_run.path)
            assert screen.check_action("predict", ()) is True

            # errors are one line in the message bar, never a crash
            screen.query_one("#images", Input).value = str(empty)
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: not screen.running and screen.error, timeout=60)
            assert "no images found" in screen.error
            screen.query_one("#model", Input).value = str(tmp_path / "nope.keras")
            screen.query_one("#images", Input).value = str(folder)
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: not screen.running and screen.error, timeout=60)
            assert "no such model" in screen.error
            assert "-error" in screen.query_one("#message").classes

            screen.query_one("#model", Input).value = str(tiny_run.path)
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: screen.predictions_done == 1, timeout=120)
            assert not screen.error
            assert len(screen.cells) == 20 and len(screen.unreadable) == 1
            assert "broken.png" in screen.unreadable[0][0]
            assert [Path(f.folder).parent.name for f in screen.folders] == ["slide-a"] * 2 + [
                "slide-b"
            ] * 2
            probs = [c.prob for c in screen.table.sorted_cells]
            assert probs == sorted(probs, reverse=True)  # most suspicious first
            table = screen.query_one("#cells", DataTable)
            assert table.row_count == 20
            summary = text_of(screen.query_one("#summary"))
            assert "parasitemia" in summary and "unreadable" in summary

            # the threshold relabels without running the model again
            t0 = screen.threshold
            assert t0 == pytest.approx(screen.model_threshold)
            n0 = sum(c.label == "Parasitized" for c in screen.cells)
            screen.set_threshold(1.0)
            await pilot.pause()
            assert sum(c.label == "Parasitized" for c in screen.cells) <= n0
            assert all(f.parasitized == 0 for f in screen.folders if f.cells) or n0 == 0
            screen.set_threshold(0.0)
            assert all(c.label == "Parasitized" for c in screen.cells)
            assert all(f.parasitemia == 100.0 for f in screen.folders)
            await pilot.press("d")
            assert screen.threshold == pytest.approx(t0)
            assert screen.predictions_done == 1

            # sorting by a header click / o
            screen.table.sort_by("file")
            names = [Path(c.path).name.lower() for c in screen.table.sorted_cells]
            assert names == sorted(names)

            # the highlighted cell: large, with its Grad-CAM overlay beside it
            table.focus()
            await pilot.press("down")
            await wait_for(pilot, lambda: screen.cell_view.heat_ready, timeout=60)
            assert screen.cell_view.path == screen.cells[screen.table.selected].path
            hit = screen.cell_view.heat_value
            assert isinstance(hit, np.ndarray) and hit.dtype == np.uint8 and hit.ndim == 3

            # the progress counted every cell
            assert screen.progress is not None and screen.progress[:2] == (21, 21)

            # a new prediction clears the previous results at once
            screen.predict(str(tiny_run.path), str(folder))
            assert screen.running and screen.cells == [] and table.row_count == 0
            assert screen.progress is None and "predicting" in str(
                screen.query_one("#message").content
            )
            await wait_for(pilot, lambda: screen.predictions_done == 2, timeout=120)

            # TTA re-runs the same folder with the 8 views
            await pilot.press("t")
            await wait_for(pilot, lambda: screen.predictions_done == 3, timeout=180)
            assert screen.tta_used and len(screen.cells) == 20

    run(go())


@pytest.mark.slow
def test_evaluate_gallery_shows_gradcam_beside_the_cell(tiny_run):
    async def go():
        app = create_app(runs_dir=tiny_run.path.parent, initial="evaluate", evaluate_run=tiny_run)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            await wait_for(pilot, lambda: screen.data is not None, timeout=30)
            screen.set_threshold(1.0)  # every parasitized cell becomes a mistake
            await pilot.pause()
            grid = screen.query_one("#errors")
            assert grid.items
            grid.focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.dialog is not None, timeout=5)
            dialog = screen.dialog
            await wait_for(pilot, lambda: not isinstance(dialog.heat_value, str), timeout=90)
            assert isinstance(dialog.heat_value, np.ndarray)
            assert dialog.query_one("#cam-img").size.width > 8
            # the model is loaded once and cached for the next cell
            assert len(app.predictors) == 1

    run(go())


def test_resume_without_tensorflow_says_why(runs_dir):
    r = write_run(runs_dir, "stopped", finished=False, with_eval=False)

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, resume_run=r)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.screen.MODE == "train"
            assert not app.training
            assert any("cannot resume" in line.text for line in app.session.log)

    run(go())


@pytest.mark.slow
def test_resume_run_continues_an_interrupted_run_in_the_tui(tmp_path):
    from malaria_tui.engine import config
    from malaria_tui.engine.training.trainer import train

    cfg = config.load(
        None,
        [
            "data.limit=48",
            "data.image_size=32",
            "data.batch_size=16",
            "train.epochs=2",
            'model.name="lenet"',
            "train.tensorboard=false",
        ],
    )
    stop = threading.Event()

    def on_event(e):
        if e.kind == "batch":
            stop.set()

    r = train(cfg, runs_dir=tmp_path / "runs", on_event=on_event, stop=stop)
    assert r.status() == "interrupted"

    async def go():
        app = create_app(runs_dir=r.path.parent, resume_run=r)
        async with app.run_test(size=SIZE) as pilot:
            assert app.screen.MODE == "train"
            await wait_for(pilot, lambda: app.training, timeout=180)
            await wait_for(pilot, lambda: not app.training, timeout=300)
            assert app.session.status == "completed", app.session.failure
            assert app.current_run == r

    run(go())
    assert r.status() == "completed"
