"""Keys and focus, and what fits at 80x24 (issue 16), every screen driven with Pilot.

No TensorFlow (``load_tf=False``); the one place where the app would start training
(``TrainingController.start``) is replaced by a recorder in the test that refuses a run.
"""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Button, DataTable, Input

from malaria_tui.engine import events as ev
from malaria_tui.tui.app import create_app
from malaria_tui.tui.screen_table import SCREENS
from malaria_tui.tui.screens.dialogs import KeysDialog, QuitDialog
from malaria_tui.tui.screens.model import compact_shape, compact_type
from malaria_tui.tui.training_session import TrainingSession
from malaria_tui.tui.widgets.form import ConfigField
from malaria_tui.tui.widgets.keybar import KeyBar
from malaria_tui.tui.widgets.topbar import NavTabs, status_content

from .conftest import write_run
from .test_app import text_of, wait_for

# 80x24 in the fast lane; the larger size runs in the full suite (the README's test command)
SIZES = [(80, 24), pytest.param((120, 40), marks=pytest.mark.slow, id="120x40")]


def run(coro):
    return asyncio.run(coro)


def bar_text(app) -> str:
    return app.screen.query_one(KeyBar).render().plain


def tabs_text(app) -> str:
    nav = app.screen.query_one(NavTabs)
    return nav.content_for(nav.size.width).plain


def status_text(app) -> str:
    return text_of(app.screen.query_one("#status")).strip()


# --- what fits ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_screen_keeps_its_tabs_status_and_key_bar_whole(runs_dir, size):
    """On every screen: the eight tabs with their names, the status, and a key bar that ends
    with the keys list and the palette (keys that do not fit are dropped, never cut)."""
    write_run(runs_dir, "demo")

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=size) as pilot:
            for entry in SCREENS:
                await pilot.press(entry.key)
                await pilot.pause()
                tabs = tabs_text(app)
                for e in SCREENS:
                    assert f"{e.key} {e.short}" in tabs or f"{e.key} {e.title}" in tabs, (
                        entry.mode,
                        tabs,
                    )
                assert "TF off" in status_text(app)
                bar = bar_text(app)
                assert len(bar) <= size[0], (entry.mode, bar)
                assert bar.endswith("? keys ^p palette"), (entry.mode, bar)
                assert "12345678" in bar, (entry.mode, bar)

    run(go())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tabs_stay_whole_while_training_the_status_gives_way(runs_dir, size):
    """`8 Runs` shrank to `8` while training at 80 columns: now the status shortens."""

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="train")
        async with app.run_test(size=size) as pilot:
            s = app.session
            app.tf_state = "ready"  # as when the app trains; nothing is started here
            for event in (
                ev.RunStarted(
                    run_dir=str(runs_dir / "r"),
                    config={},
                    n_train=96,
                    n_val=16,
                    n_test=16,
                    steps_per_epoch=19,
                    epochs=100,
                ),
                ev.BatchEnd(
                    epoch=99, step=18, steps=19, metrics={}, images_per_sec=9.0, global_step=1899
                ),
            ):
                s.apply(event)
            app.refresh_status()
            await pilot.pause()
            assert "8 Runs" in tabs_text(app)
            status = status_text(app)
            assert "100%" in status and "●" in status
            if size[0] >= 110:
                assert "training 100% TF ready" in status

    run(go())


def test_status_content_shortens_to_the_width_it_is_given(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.tf_state = "ready"
            s = app.session
            s.status, s.epochs, s.steps_per_epoch, s.global_step = "running", 3, 10, 10
            assert status_content(app).plain == "● training 33% TF ready"
            assert status_content(app, 22).plain == "● training 33%"
            assert status_content(app, 8).plain == "● 33%"

    run(go())


def test_model_layer_table_shows_output_and_parameters_first():
    assert compact_shape("(None, 50, 50, 32)") == "50x50x32"
    assert compact_shape("(None, 128)") == "128"
    assert compact_shape("?") == "?"
    assert compact_type("BatchNormalization") == "BatchNorm"
    assert compact_type("GlobalAveragePooling2D") == "GlobalAvgPool2D"
    assert compact_type("Conv2D") == "Conv2D"


# --- text fields: enter and escape leave them, alt+digits switch from inside ---------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_enter_leaves_a_model_field_so_digits_switch_screens(runs_dir, size):
    """`4` after editing epochs turned 2 into 24: enter now leaves the field."""

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="model")
        async with app.run_test(size=size) as pilot:
            screen = app.screen
            epochs = screen.query_one("#f-train-epochs", ConfigField)
            field = epochs.query_one(Input)
            field.focus()
            await pilot.pause()
            assert screen.editing
            bar = bar_text(app)
            assert bar.startswith("esc/enter done") and "alt+12345678" in bar, bar
            assert bar.endswith("F1 keys ^p palette"), bar  # ? would be typed: F1 lists keys
            await pilot.press("end", *["backspace"] * 4, "2", "enter")
            await pilot.pause()
            assert not screen.editing and app.focused is screen.query_one("#layers")
            assert app.config.train.epochs == 2
            assert "esc/enter" not in bar_text(app)
            await pilot.press("4")
            await pilot.pause()
            assert app.screen.MODE == "train"
            assert field.value == "2" and app.config.train.epochs == 2

    run(go())


def test_escape_leaves_a_field_and_alt_digits_switch_from_inside_one(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="augment")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            field = screen.query_one("#f-augment-rotation-max_degrees", ConfigField)
            box = field.query_one(Input)
            box.focus()
            await pilot.press("end", "0")
            await pilot.pause()
            assert box.value == "1800"  # typed: digits go into the field...
            await pilot.press("alt+7")  # ...and alt+7 still switches screens
            await pilot.pause()
            assert app.screen.MODE == "predict" and box.value == "1800"
            await pilot.press("alt+2")
            await pilot.pause()
            assert app.screen is screen and screen.editing
            await pilot.press("escape")
            await pilot.pause()
            assert not screen.editing and app.focused is screen.query_one("#variants")
            await pilot.press("1")
            await pilot.pause()
            assert app.screen.MODE == "dataset"

    run(go())


def test_predict_fields_leave_on_enter_and_escape(runs_dir):
    """Predict's path field kept the focus, so `1` then `7` typed `17` into it."""

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="predict")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert "m Model" in bar_text(app) and "i Images" in bar_text(app)
            await pilot.press("m")
            await pilot.pause()
            assert app.focused is screen.query_one("#model", Input)
            await pilot.press(*"/x/run", "escape")
            await pilot.pause()
            assert isinstance(app.focused, DataTable)
            await pilot.press("i", *"/no/such/folder", "enter")  # enter predicts (refused: TF off)
            await pilot.pause()
            assert isinstance(app.focused, DataTable)
            assert "TensorFlow is off" in screen.error
            await pilot.press("1", "7")
            await pilot.pause()
            assert app.screen is screen
            assert screen.query_one("#images", Input).value == "/no/such/folder"

    run(go())


def test_alt_digits_do_nothing_on_top_of_a_dialog(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, KeysDialog)
            await pilot.press("alt+4")
            await pilot.pause()
            assert isinstance(app.screen, KeysDialog) and app.current_mode == "dataset"

    run(go())


# --- ? lists the screen's keys ---------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_question_mark_lists_each_screens_keys_and_closes(runs_dir, size):
    write_run(runs_dir, "demo")

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=size) as pilot:
            for entry in SCREENS:
                await pilot.press(entry.key)
                await pilot.pause()
                screen = app.screen
                await pilot.press("question_mark")
                await pilot.pause()
                dialog = app.screen
                assert isinstance(dialog, KeysDialog), entry.mode
                assert f"{entry.key} {entry.title}" in dialog.title_text
                box = dialog.query_one("#dialog")
                assert box.outer_size.width <= size[0] and box.outer_size.height <= size[1]
                listed = {key for key, _what, _ok in dialog.rows}
                shown = {k.key for k in screen.query_one(KeyBar)._keys}
                own = [
                    b
                    for b in screen.active_bindings.values()
                    if b.node is screen
                    and b.binding.show
                    and (b.binding.id or "").startswith(entry.mode)
                ]
                assert own, entry.mode
                for b in own:  # every key of the screen's own is listed with its tooltip
                    assert any(b.binding.tooltip == what for _k, what, _ok in dialog.rows), b
                assert listed and shown
                text = text_of(dialog.query_one("#keys-table"))
                assert "Everywhere" in text and "alt+1-9" in text
                await pilot.press("escape" if entry.key in "1357" else "question_mark")
                await pilot.pause()
                assert app.screen is screen, entry.mode

    run(go())


def test_f1_lists_keys_from_inside_a_field_and_the_palette_keys_command_too(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="predict")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            await pilot.press("i", "f1")
            await pilot.pause()
            assert isinstance(app.screen, KeysDialog)
            keys = [k for k, _w, _ok in app.screen.rows]
            assert {"i", "m", "^r", "t"} <= set(keys) and keys.count("-") == 0
            await pilot.press("f1")
            await pilot.pause()
            assert app.screen is screen and screen.query_one("#images", Input).value == ""
            commands = {c.title: c for c in app.get_system_commands(screen)}
            assert "List this screen's keys" in commands["Keys"].help
            commands["Keys"].callback()
            await pilot.pause()
            assert isinstance(app.screen, KeysDialog)
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is screen

    run(go())


# --- the Train screen refuses a config the form refused ------------------------------------


def test_train_refuses_to_start_while_a_field_is_invalid(runs_dir, monkeypatch):
    """The Model screen refused an empty epochs; `s` on Train started with the old value."""

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="model")
        started: list = []
        monkeypatch.setattr(app.controller, "start", lambda *a, **k: started.append(a))
        async with app.run_test(size=(80, 24)) as pilot:
            epochs = app.screen.query_one("#f-train-epochs", ConfigField)
            assert epochs.set_text("") == "a value is needed"
            await pilot.press("4")
            await pilot.pause()
            train = app.screen
            app.tf_state = "ready"  # start is offered (the recorder above trains nothing)
            train.redraw()
            await pilot.pause()
            headline = " ".join(text_of(train.query_one("#headline")).split())
            assert "cannot start: train.epochs: a value is needed" in headline
            assert "Model screen, key 3" in headline
            await pilot.press("s")
            await pilot.pause()
            assert started == []
            assert any("train.epochs" in n.message for n in app._notifications)
            await pilot.press("3")
            await pilot.pause()
            assert epochs.set_text("2") == ""
            await pilot.press("4")
            await pilot.pause()
            assert "cannot start" not in text_of(train.query_one("#headline"))
            await pilot.press("s")
            await pilot.pause()
            assert len(started) == 1

    run(go())


# --- the quit dialog ---------------------------------------------------------------------


@pytest.mark.parametrize("can_keep", [True, False])
def test_quit_dialog_choices_read_unmistakably(runs_dir, can_keep):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        chosen: list = []
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.push_screen(QuitDialog(can_keep=can_keep), chosen.append)
            await pilot.pause()
            labels = [str(b.label) for b in app.screen.query(Button)]
            expected = ["Stop training and quit", "Cancel"]
            assert labels == (["Quit, keep training"] if can_keep else []) + expected
            box = app.screen.query_one("#dialog")
            assert box.outer_size.width <= 80
            hint = text_of(app.screen.query_one("#hint"))
            assert ("k quit, keep training" in hint) == can_keep
            await pilot.press("k")
            await pilot.pause()
            if not can_keep:
                assert isinstance(app.screen, QuitDialog)
                await pilot.click("#stop")
            await pilot.pause()
        assert chosen == (["keep"] if can_keep else ["stop"])

    run(go())


# --- what a run is doing while no batch is counted ---------------------------------------------


def test_session_says_what_the_run_does_between_batches():
    s = TrainingSession()
    s.status = "starting"
    assert s.activity == "preparing data"
    s.apply(
        ev.RunStarted(
            run_dir="/r", config={}, n_train=8, n_val=2, n_test=2, steps_per_epoch=2, epochs=1
        )
    )
    assert s.activity == ""
    s.apply(ev.Phase(what="compiling the training step"))
    assert s.activity == "compiling the training step"
    assert s.log[-1].text == "compiling the training step…"
    s.apply(
        ev.BatchEnd(
            epoch=0, step=1, steps=2, metrics={"loss": 0.5}, images_per_sec=9.0, global_step=1
        )
    )
    assert s.activity == ""
    s.apply(ev.Phase(what="evaluating the best model on the test split"))
    assert s.activity == "evaluating the best model on the test split"
    s.apply(ev.EvaluationDone(split="test", metrics={"auc": 0.9}))
    assert s.activity == ""
    s.apply(ev.Phase(what="evaluating the best model on the test split"))
    s.apply(ev.RunFinished(status="completed", epochs_done=1, best={}))
    assert s.activity == "" and s.phase == ""


def test_train_screen_shows_the_phase_in_its_status_line_and_log(runs_dir):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="train")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            app.session.status = "starting"
            screen.redraw()
            await pilot.pause()
            assert "preparing data…" in text_of(screen.query_one("#headline"))
            app.controller.handle_event(
                ev.RunStarted(
                    run_dir=str(runs_dir / "r"),
                    config={},
                    n_train=8,
                    n_val=2,
                    n_test=2,
                    steps_per_epoch=2,
                    epochs=1,
                )
            )
            app.controller.handle_event(ev.Phase(what="compiling the training step"))
            await pilot.pause(0.4)  # a UI tick
            assert "compiling the training step…" in text_of(screen.query_one("#headline"))
            log = "\n".join(line.text for line in screen.query_one("#log").lines)
            assert "compiling the training step…" in log

    run(go())


# --- every screen's main keys at 80x24 and at a larger size ---------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_screens_main_keys(runs_dir, size):
    a = write_run(runs_dir, "alpha", seed=1, lr=1e-3)
    b = write_run(runs_dir, "beta", seed=2, lr=3e-3)

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False)
        async with app.run_test(size=size) as pilot:
            # 1 Dataset: class and split filters
            screen = app.screen
            await wait_for(pilot, lambda: screen.info is not None)
            await pilot.press("c", "s")
            assert (screen.class_filter, screen.split_filter) == ("Parasitized", "train")
            # 2 Augment: next/previous cell and re-roll (the preview itself needs TensorFlow)
            await pilot.press("2")
            screen = app.screen
            await wait_for(pilot, lambda: bool(screen.cells))
            await pilot.press("n", "n", "p", "r")
            assert (screen.cell_index, screen.seed) == (1, 1)
            assert "TensorFlow is unavailable" in text_of(screen.query_one("#preview-title"))
            # 3 Model: ctrl+d asks for the summary again; escape leaves a field
            await pilot.press("3")
            screen = app.screen
            await pilot.press("ctrl+d")
            assert "not available" in text_of(screen.query_one("#model-head"))
            # 4 Train: metric and view
            await pilot.press("4")
            screen = app.screen
            view = screen.view
            await pilot.press("b")
            assert screen.view != view
            # 5 HParams: reload
            await pilot.press("5", "r")
            # 6 Evaluate: threshold, presets, gallery
            await pilot.press("6")
            screen = app.screen
            await wait_for(pilot, lambda: screen.data is not None)
            await pilot.press("plus", "plus", "minus")
            assert screen.threshold == pytest.approx(0.51)
            await pilot.press("d")
            assert screen.threshold == 0.5
            await pilot.press("g")
            assert screen.has_class("show-gallery")
            # 7 Predict: fields by key, TTA
            await pilot.press("7")
            screen = app.screen
            await pilot.press("t")
            assert screen.query_one("#tta").value
            await pilot.press("i", "escape", "m", "enter")
            assert isinstance(app.focused, DataTable)
            # 8 Runs: mark two, open one in Evaluate
            await pilot.press("8")
            screen = app.screen
            await wait_for(pilot, lambda: len(screen.order) == 2)
            await pilot.press("space", "down", "space")
            assert len(screen.marked) == 2
            await pilot.press("e")
            await wait_for(pilot, lambda: app.screen.MODE == "evaluate")
            await wait_for(pilot, lambda: app.screen.data is not None)
            assert app.screen.run in (a, b)

    run(go())
