"""Pilot-driven behaviour of every screen (no TensorFlow: ``load_tf=False``)."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path

import pytest
from textual import events
from textual.widgets import DataTable

from malaria_tui.engine import events as ev
from malaria_tui.engine import rundir
from malaria_tui.engine.config import Config
from malaria_tui.tui.app import create_app
from malaria_tui.tui.screens.augment import AugmentScreen
from malaria_tui.tui.screens.dataset import DatasetScreen
from malaria_tui.tui.screens.evaluate import EvaluateScreen
from malaria_tui.tui.screens.hparams import HParamsScreen
from malaria_tui.tui.screens.model import ModelScreen
from malaria_tui.tui.screens.predict import PredictScreen
from malaria_tui.tui.screens.runs import RunsScreen
from malaria_tui.tui.screens.train import TrainScreen
from malaria_tui.tui.widgets.cells import CellGrid
from malaria_tui.tui.widgets.form import ConfigField
from malaria_tui.tui.widgets.topbar import status_content

from .conftest import write_run

SIZE = (80, 24)


def run(coro):
    return asyncio.run(coro)


def text_of(static) -> str:
    """What a Static shows, as plain text (Rich renderables included)."""
    from rich.console import Console

    console = Console(width=max(40, static.size.width or 80), file=io.StringIO(), record=True)
    console.print(static.content)
    return console.export_text()


async def wait_for(pilot, predicate, timeout: float = 10.0, step: float = 0.05):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(step)


def test_number_keys_switch_screens(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=SIZE) as pilot:
            assert isinstance(app.screen, DatasetScreen)
            expected = {
                "2": AugmentScreen,
                "3": ModelScreen,
                "4": TrainScreen,
                "5": HParamsScreen,
                "6": EvaluateScreen,
                "7": PredictScreen,
                "8": RunsScreen,
                "1": DatasetScreen,
            }
            for key, cls in expected.items():
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, cls), key
            assert app.tf_state == "off"
            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0

    run(go())


def test_ctrl_c_without_a_run_quits_at_once(runs_dir, finished_run):
    async def go(**kwargs):
        app = create_app(runs_dir=runs_dir, load_tf=False, **kwargs)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+c")
            await pilot.pause()
        return app

    for kwargs in ({}, {"watch_run": finished_run}):
        app = run(go(**kwargs))
        # Textual's own ctrl+c only says "press ctrl+q to quit" and leaves the app running
        assert app.return_code == 0 and app.interrupted_run is None, kwargs


def test_every_binding_has_id_description_and_tooltip(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=SIZE) as pilot:
            for key in "123456789":
                await pilot.press(key)
                await pilot.pause()
                for active in app.screen.active_bindings.values():
                    b = active.binding
                    if (
                        b.action.startswith(("app.", "screen.", "focus", "command_palette"))
                        and not b.id
                    ):
                        continue  # Textual's own bindings
                    ours = (
                        cls
                        for cls in type(active.node).__mro__
                        if cls.__module__.startswith("malaria_tui")
                    )  # a subclass of a Textual widget inherits its bindings too
                    if any(b in vars(cls).get("BINDINGS", ()) for cls in ours):
                        assert b.id, (key, b)
                        assert b.description, (key, b)
                        assert b.tooltip, (key, b)  # shown when the key bar is hovered

    run(go())


def test_dataset_filters_by_class_and_split(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, DatasetScreen)
            await wait_for(pilot, lambda: screen.info is not None)
            assert len(screen.shown) == 1500
            await pilot.press("c")  # Parasitized
            assert screen.class_filter == "Parasitized"
            assert len(screen.shown) == 750 and all(i.positive for i in screen.shown)
            await pilot.press("s")  # train split
            train_p = [i for i in screen.shown]
            assert train_p and all(i.info["split"] == "train" for i in train_p)
            assert len(train_p) == screen.info.split_counts()["train"][1]
            # open one large: file name, label and patient are shown
            screen.query_one(CellGrid).focus()
            await pilot.press("enter")
            await pilot.pause()
            dialog = app.screen
            text = text_of(dialog.query_one("#details"))
            assert "Parasitized" in text and train_p[0].info["patient"] in text
            assert Path(train_p[0].path).name in text
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen

    run(go())


def test_dataset_shows_folder_with_colour_crops(runs_dir):
    folder = Path("/work/shared/data/malaria-rgb/cell_images")
    if not folder.is_dir():
        import pytest

        pytest.skip("shared colour crops not present")
    cfg = Config.model_validate({"data": {"source": f"folder:{folder}", "split": "image"}})

    async def go():
        app = create_app(cfg, runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: screen.info is not None)
            assert not screen.info.error
            assert len(screen.info.records) == 34
            assert screen.info.sizes["min"] != screen.info.sizes["max"]  # varied crop sizes

    run(go())


def test_model_fields_refuse_invalid_values_inline(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="model")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            dropout = screen.query_one("#f-model-dropout", ConfigField)
            # type into the real Input widget, key by key (intermediate valid values apply)
            dropout.query_one("Input").focus()
            await pilot.press("end", *["backspace"] * 8, *"1.5")
            await pilot.pause()
            assert dropout.query_one("Input").value == "1.5"
            assert dropout.has_class("-invalid")
            assert "less than 1" in text_of(dropout.query_one(".field-error"))
            assert app.config.model.dropout == 0.0  # the last valid value typed ("0")
            await pilot.press(*["backspace"] * 3, *"0.25")
            await pilot.pause()
            assert not dropout.has_class("-invalid")
            assert app.config.model.dropout == 0.25
            epochs = screen.query_one("#f-train-epochs", ConfigField)
            assert "integer" in epochs.set_text("2.5")
            assert "greater than or equal to 1" in epochs.set_text("0")
            assert epochs.set_text("3") == "" and app.config.train.epochs == 3
            loss = screen.query_one("#f-loss-name", ConfigField)
            assert loss.set_text("bce") == "" and app.config.loss.name == "bce"

    run(go())


def test_evaluate_threshold_keys_recompute(runs_dir):
    write_run(runs_dir, "demo")

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="evaluate")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: screen.data is not None and hasattr(screen, "at"))
            first = screen.at
            assert screen.threshold == 0.5
            text0 = text_of(screen.query_one("#at-threshold"))
            for _ in range(25):
                await pilot.press("plus")
            assert abs(screen.threshold - 0.75) < 1e-9
            assert screen.at.tp + screen.at.fp < first.tp + first.fp  # fewer positive calls
            assert screen.at.specificity >= first.specificity
            assert text_of(screen.query_one("#at-threshold")) != text0
            await pilot.press("minus")
            assert abs(screen.threshold - 0.74) < 1e-9
            await pilot.press("y")  # Youden preset from metrics.json
            assert screen.threshold == 0.47
            n_wrong = len(screen.query_one("#errors", CellGrid).items)
            assert n_wrong == screen.at.fp + screen.at.fn
            await pilot.press("g")
            assert screen.has_class("show-gallery")

    run(go())


def test_evaluate_without_runs_explains(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="evaluate")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "No evaluated run yet" in text_of(app.screen.query_one("#metrics"))

    run(go())


def test_runs_lists_compares_and_opens(runs_dir):
    a = write_run(runs_dir, "alpha", seed=1, lr=1e-3)
    b = write_run(runs_dir, "beta", seed=2, lr=3e-3, finished=False, with_eval=False)

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="runs")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: len(screen.order) == 2)
            table = screen.query_one("#runs", DataTable)
            assert table.row_count == 2
            assert screen.summaries[a.name].status == "completed"
            assert screen.summaries[b.name].status == "stale"
            await pilot.press("space", "down", "space")
            assert screen.marked == [b.name, a.name]
            diff_text = text_of(screen.query_one("#diff"))
            assert "optimizer.learning_rate" in diff_text
            chart = screen.query_one("#overlay")
            assert len(chart.lines) == 2 and all(len(line.xs) == 3 for line in chart.lines)
            await pilot.press("e")  # open the highlighted (alpha) in Evaluate
            await pilot.pause()
            assert isinstance(app.screen, EvaluateScreen)
            await wait_for(pilot, lambda: app.screen.data is not None)
            assert app.screen.run == a

    run(go())


def test_hparams_reads_grid_csv_and_sorts(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="hparams")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await pilot.pause()
            assert "malaria-tui grid --config configs/grid.toml" in text_of(
                screen.query_one("#grid-title")
            )
            g = runs_dir / "grid-1"
            g.mkdir()
            (g / "grid.csv").write_text(
                "trial,status,optimizer.learning_rate,val_auc,val_loss\n"
                "0,completed,0.001,0.91,0.3\n1,completed,0.003,0.95,0.25\n2,failed,0.01,,\n"
            )
            screen.action_reload()
            await pilot.pause()
            assert screen.best_row["trial"] == "1"
            assert [r["trial"] for r in screen.sorted_rows()] == ["1", "0", "2"]
            await pilot.press("v")
            assert [r["trial"] for r in screen.sorted_rows()] == ["0", "1", "2"]
            screen.sort_by("optimizer.learning_rate", reverse=False)
            assert [r["trial"] for r in screen.sorted_rows()] == ["0", "1", "2"]
            assert screen.query_one("#grid", DataTable).row_count == 3
            # the engine's layout: <runs>/<stamp>-grid-<name>/grid.csv with a rank column
            g2 = runs_dir / "20250101-000000-grid-g"
            g2.mkdir()
            (g2 / "grid.toml").write_text('[grid]\nmetric = "val_loss"\nmode = "min"\n')
            (g2 / "grid.csv").write_text(
                "trial,status,rank,model.dropout,val_loss,val_auc,test_auc\n"
                "t0,completed,2,0.2,0.30,0.97,\nt1,completed,1,0.4,0.20,0.93,0.94\nt2,running,,0.6,,,\n"
            )
            screen.mapp.grid_dir = g2
            screen.action_reload()
            await pilot.pause()
            assert screen.best_metric == "val_loss" and screen.best_mode == "min"
            assert screen.best_row["trial"] == "t1"
            assert [r["trial"] for r in screen.sorted_rows()] == ["t1", "t0", "t2"]

    run(go())


def test_watch_mode_follows_a_growing_events_file(runs_dir):
    cfg = Config()
    run_ = rundir.create(runs_dir, "watched", cfg.to_toml())
    w = rundir.EventWriter(run_.events_path)
    w.write(
        ev.RunStarted(
            run_dir=str(run_.path),
            config=cfg.to_dict(),
            n_train=64,
            n_val=8,
            n_test=8,
            steps_per_epoch=4,
            epochs=2,
        )
    )
    for step in range(1, 3):
        w.write(
            ev.BatchEnd(
                epoch=0,
                step=step,
                steps=4,
                metrics={"loss": 0.7, "auc": 0.6},
                images_per_sec=100.0,
                global_step=step,
            )
        )

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, watch_run=rundir.open_run(run_.path))
        async with app.run_test(size=SIZE) as pilot:
            assert isinstance(app.screen, TrainScreen)
            s = app.session
            await wait_for(pilot, lambda: s.global_step == 2)
            assert s.status == "running" and s.epochs == 2
            # a torn line waits for its newline
            with open(run_.events_path, "a") as f:
                line = json.dumps(
                    ev.to_json(
                        ev.BatchEnd(
                            epoch=0,
                            step=3,
                            steps=4,
                            metrics={"loss": 0.6},
                            images_per_sec=90.0,
                            global_step=3,
                        )
                    )
                )
                f.write(line[:20])
                f.flush()
                await pilot.pause(0.4)
                assert s.global_step == 2
                f.write(line[20:] + "\n")
            await wait_for(pilot, lambda: s.global_step == 3)
            w.write(
                ev.EpochEnd(
                    epoch=0,
                    epochs=2,
                    train={"loss": 0.6},
                    val={"val_loss": 0.65, "val_auc": 0.7},
                    seconds=3.0,
                    images_per_sec=90.0,
                )
            )
            w.write(
                ev.RunFinished(
                    status="completed", epochs_done=1, best={"monitor": "val_auc", "value": 0.7}
                )
            )
            w.close()
            await wait_for(pilot, lambda: s.status == "completed")
            await pilot.pause(0.4)
            headline = text_of(app.screen.query_one("#headline"))
            assert "watching" in headline and "completed" in headline
            assert app.screen.query_one("#loss-chart").has_data
            # watching never offers to start training
            assert app.screen.check_action("start", ()) is False

    run(go())


def test_runs_screen_watches_a_live_run_left_by_another_window(runs_dir):
    """A run trained by another process (here: this test, holding its lock) is followed live
    on the Train screen after `w` on the Runs screen; starting a run of its own ends that."""
    live = write_run(runs_dir, "live", epochs=4, finished=False, with_eval=False)
    rundir.write_lock(live, os.getpid())  # "running": someone trains it
    writer = rundir.EventWriter(live.events_path)

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="runs")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: len(screen.order) == 1)
            assert screen.summaries[live.name].status == "running"
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen))
            assert app.controller.followed_run == live and app.session.epochs_done == 4
            assert "watch" in status_content(app).plain
            writer.write(ev.EvaluationDone(split="test", metrics={"accuracy": 0.9, "auc": 0.95}))
            writer.write(ev.RunFinished(status="completed", epochs_done=4, best={}))
            await wait_for(pilot, lambda: app.session.status == "completed")
            assert app.session.test_metrics["auc"] == 0.95
            assert app.controller.start() is not None  # TF off here: refused, still watching
            assert app.controller.followed_run == live

    try:
        run(go())
    finally:
        writer.close()


def test_watch_mode_shows_finished_run(finished_run, runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, watch_run=finished_run)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.session.status == "completed")
            assert app.session.epochs_done == 3
            assert app.session.epoch_val["auc"].points()[0] == [1.0, 2.0, 3.0]
            await pilot.press("6")
            await wait_for(pilot, lambda: app.screen.data is not None)
            assert app.screen.run == finished_run

    run(go())


def test_command_palette_offers_screen_commands(runs_dir):
    from malaria_tui.tui.commands import MalariaCommands

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            provider = MalariaCommands(app.screen)
            titles = [t for t, _, _ in provider._commands()]
            assert "Go to Evaluate" in titles and "Show class: Parasitized" in titles
            hits = [h async for h in provider.search("evaluate")]
            assert any("Evaluate" in h.text for h in hits)
            await pilot.press("6")
            await pilot.pause()
            titles = [t for t, _, _ in MalariaCommands(app.screen)._commands()]
            assert "Threshold: Youden J" in titles and "Show class: Parasitized" not in titles

    run(go())


def test_key_bar_shows_the_screen_keys_and_runs_a_clicked_one(runs_dir):
    from malaria_tui.tui.widgets.keybar import KeyBar

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            bar = app.screen.query_one(KeyBar)
            text = bar.render().plain
            assert text.startswith("⏎ Open cell q Quit c Class") and text.endswith("^p palette")
            # nine screens: at 80 columns the digits stay and their label "Screens" gives way
            assert len(text) == SIZE[0] and "123456789" in text
            four = next(k for k in bar._keys if k.key == "4")
            await pilot.hover(KeyBar, offset=(four.start, 0))
            assert bar.tooltip == "Show the Train screen"
            await pilot.click(KeyBar, offset=(four.start, 0))
            await pilot.pause()
            assert isinstance(app.screen, TrainScreen)
            bar = app.screen.query_one(KeyBar)
            assert "s Start" in bar.render().plain
            start = next(k for k in bar._keys if k.key == "s")
            assert not start.enabled  # TensorFlow is off: start is shown, dimmed, and refused
            await pilot.click(KeyBar, offset=(start.start, 0))
            await pilot.pause()
            assert not app.training

    run(go())


def test_screens_are_built_ahead_so_a_first_visit_is_only_a_switch(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: all(app.get_screen_of(mode) for mode in app.MODES))
            built = {mode: app.get_screen_of(mode) for mode in app.MODES}
            await wait_for(pilot, lambda: all(s.is_mounted for s in built.values()))
            augment = built["augment"]
            assert augment.query(ConfigField) and app.screen is built["dataset"]
            assert augment.has_class("-narrow", "-short")  # styled for 80x24 before it shows
            for key in "2345678":
                await pilot.press(key)
                await pilot.pause()
            assert app.screen is built["runs"]
            assert {mode: app.get_screen_of(mode) for mode in app.MODES} == built

    run(go())


@pytest.mark.slow  # 40 start-ups: a stress loop, not daily work
def test_quitting_while_screens_are_built_ahead_exits_cleanly(runs_dir):
    """Quit at 40 points of the start-up, while the screens are being built ahead, by `q`
    (``exit()``, after which Textual mounts nothing) and by ``run_test``'s own shutdown: a screen
    composed after either would have no widgets and its on_mount would raise (re-raised here)."""

    async def go(delay: float, press_q: bool):
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=SIZE) as pilot:
            await asyncio.sleep(delay)  # no pilot.pause: it would wait for the builds
            if press_q:
                app.post_message(events.Key("q", "q"))
                await wait_for(pilot, lambda: app._exit)
        return app

    for step in range(40):
        app = run(go(step * 0.025, press_q=step % 2 == 0))
        assert app.return_code in (0, None), step
