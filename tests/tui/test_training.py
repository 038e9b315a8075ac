"""The TUI with real TensorFlow: augmentation preview and one tiny real training run."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from malaria_tui.engine import config
from malaria_tui.tui.app import create_app
from malaria_tui.tui.screens.augment import AugmentScreen
from malaria_tui.tui.screens.evaluate import EvaluateScreen
from malaria_tui.tui.screens.train import TrainScreen
from malaria_tui.tui.widgets.form import ConfigField

from .test_app import wait_for

pytestmark = pytest.mark.slow
SIZE = (80, 24)


def tiny_config():
    return config.load(
        None,
        [
            "data.limit=64",
            "train.epochs=1",
            "data.image_size=32",
            "model.name='lenet'",
            "train.tensorboard=false",
        ],
    )


def test_augment_preview_changes_with_settings(runs_dir):
    async def go():
        app = create_app(tiny_config(), runs_dir=runs_dir, initial="augment")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, AugmentScreen)
            assert app.tf_state == "loading"  # first frame painted before TensorFlow
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            await wait_for(pilot, lambda: bool(screen.variants), timeout=60)
            first = [v.copy() for v in screen.variants]
            assert all(v.dtype == np.uint8 and v.ndim == 3 for v in first)
            count = screen.preview_count
            assert (
                screen.query_one("#f-augment-rotation-max_degrees", ConfigField).set_text("120")
                == ""
            )
            await wait_for(pilot, lambda: screen.preview_count > count, timeout=60)
            assert any(
                not np.array_equal(a, b) for a, b in zip(first, screen.variants, strict=False)
            )
            count = screen.preview_count
            await pilot.press("r")  # re-roll on a key
            await wait_for(pilot, lambda: screen.preview_count > count, timeout=60)
            assert screen.seed == 1

    asyncio.run(go())


def test_tiny_real_training_run_from_the_train_screen(runs_dir):
    async def go():
        app = create_app(tiny_config(), runs_dir=runs_dir, initial="train")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, TrainScreen)
            assert screen.check_action("start", ()) is None  # offered only once TF is ready
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            assert screen.check_action("start", ()) is True
            await pilot.press("s")
            await wait_for(pilot, lambda: app.training)
            await wait_for(pilot, lambda: not app.training, timeout=300)
            s = app.session
            assert s.status == "completed", (s.status, s.failure)
            assert s.epochs_done == 1 and s.batch["loss"].points()[0]
            assert "auc" in s.epoch_val
            assert (
                app.current_run is not None
                and (app.current_run.eval_dir / "metrics.json").is_file()
            )
            await pilot.pause(0.4)
            assert screen.query_one("#loss-chart").has_data
            await pilot.press("6")
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, EvaluateScreen) and app.screen.data is not None,
            )
            assert app.screen.run == app.current_run
            assert len(app.screen.data.predictions) > 0

    asyncio.run(go())


def test_quit_while_training_asks_then_stops_with_a_checkpoint(runs_dir):
    from malaria_tui.engine.rundir import list_runs
    from malaria_tui.tui.screens.dialogs import QuitDialog

    cfg = config.load(
        None,
        [
            "data.limit=64",
            "train.epochs=50",
            "data.image_size=32",
            "model.name='lenet'",
            "train.tensorboard=false",
        ],
    )

    async def go():
        app = create_app(cfg, runs_dir=runs_dir, initial="train")
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            await pilot.press("s")
            await wait_for(pilot, lambda: app.session.status == "running", timeout=120)
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, QuitDialog)
            await pilot.press("escape")  # cancel: keeps training
            await pilot.pause()
            assert app.training and not isinstance(app.screen, QuitDialog)
            await pilot.press("q")
            await pilot.pause()
            await pilot.click("#stop")
            await wait_for(pilot, lambda: not app.training, timeout=120)
            await pilot.pause(0.2)
        assert app.session.status == "interrupted"
        (run,) = list_runs(runs_dir)
        assert run.status() == "interrupted"

    asyncio.run(go())
