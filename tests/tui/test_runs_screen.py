"""Comparing runs: the engine's run summary, the Runs screen (sort, filter, the highlighted run's
curves, any number of marked runs), the charts (robust range, log, smoothing, legend), CSV export
of a table, and the HParams screen starting, stopping and resuming a grid.

Run directories are written through the engine's own writers (``EventWriter``, real events);
the slow test trains a real two-trial grid from the HParams screen.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from malaria_tui.engine import events as ev
from malaria_tui.engine import rundir
from malaria_tui.engine.config import Config
from malaria_tui.engine.errors import ConfigError
from malaria_tui.engine.run_summary import sort_runs, summarize, summarize_all
from malaria_tui.tui.app import create_app
from malaria_tui.tui.screens.hparams import HParamsScreen, grid_request
from malaria_tui.tui.screens.runs import RunsScreen
from malaria_tui.tui.widgets.charts import LineChart, legend, robust_range, smooth
from malaria_tui.tui.widgets.export_table import ExportTable

from .conftest import write_run
from .test_app import text_of, wait_for

# 80x24 in the fast lane; the larger size runs in the full suite (the README's test command)
SIZES = [(80, 24), pytest.param((120, 40), marks=pytest.mark.slow, id="120x40")]


def make_run(
    runs_dir: Path,
    dir_name: str,
    *,
    val_loss: list[float],
    val_auc: list[float],
    model: str = "lenet",
    monitor: str = "val_auc",
    mode: str = "max",
    end: str | None = "completed",
    test: dict | None = None,
    resumed_at: int | None = None,
    overrides: dict | None = None,
) -> rundir.RunDir:
    """A run directory with these per-epoch validation curves, through the engine's writers.

    ``resumed_at``: the run was interrupted once and resumed from that epoch (the log then
    repeats the epochs from there on, as a real resume does)."""
    tree = {
        "name": dir_name.split("-", 2)[-1],
        "model": {"name": model},
        "train": {"epochs": len(val_loss), "monitor": monitor, "monitor_mode": mode},
    } | (overrides or {})
    cfg = Config.model_validate(tree)
    path = runs_dir / dir_name
    path.mkdir(parents=True)
    (path / rundir.CONFIG).write_text(cfg.to_toml())
    run = rundir.RunDir(path.resolve())
    w = rundir.EventWriter(run.events_path)
    n = len(val_loss)

    def started(start: int) -> ev.RunStarted:
        return ev.RunStarted(
            run_dir=str(run.path),
            config=cfg.to_dict(),
            n_train=96,
            n_val=16,
            n_test=16,
            steps_per_epoch=4,
            epochs=n,
            start_epoch=start,
            resumed=start > 0,
        )

    def epoch(e: int, bump: float = 0.0) -> ev.EpochEnd:
        return ev.EpochEnd(
            epoch=e,
            epochs=n,
            train={"loss": val_loss[e] * 0.9, "accuracy": 0.7, "auc": val_auc[e] - 0.01},
            val={"val_loss": val_loss[e] + bump, "val_auc": val_auc[e] + bump},
            seconds=1.0,
            images_per_sec=100.0,
        )

    w.write(started(0))
    if resumed_at is not None:
        for e in range(resumed_at + 1):  # the last of these is redone after the resume
            w.write(epoch(e, bump=0.5 if e == resumed_at else 0.0))
        w.write(ev.RunInterrupted(epoch=resumed_at, step=2, checkpoint="x"))
        w.write(started(resumed_at))
        first = resumed_at
    else:
        first = 0
    for e in range(first, n):
        w.write(epoch(e))
    if end == "completed":
        if test:
            w.write(ev.EvaluationDone(split="test", metrics=test))
        w.write(
            ev.RunFinished(status="completed", epochs_done=n, best={"monitor": monitor, "value": 0})
        )
    elif end == "interrupted":
        w.write(ev.RunInterrupted(epoch=n - 1, step=1, checkpoint="x"))
    elif end == "failed":
        w.write(ev.RunFailed(reason="the loss became NaN"))
    w.close()
    if test:
        run.eval_dir.mkdir()
        (run.eval_dir / "metrics.json").write_text(json.dumps({"test": test}))
    return run


def three_runs(runs_dir: Path) -> dict[str, rundir.RunDir]:
    return {
        "spike": make_run(
            runs_dir,
            "20250101-100000-spiky",
            val_loss=[0.7, 0.5, 11.6, 0.4, 0.35, 0.3, 0.31, 0.29],
            val_auc=[0.8, 0.85, 0.5, 0.9, 0.93, 0.92, 0.91, 0.9],
            test={"accuracy": 0.9, "auc": 0.95},
        ),
        "cell": make_run(
            runs_dir,
            "20250102-100000-wide-cellnet-run",
            val_loss=[0.6, 0.4, 0.3],
            val_auc=[0.85, 0.96, 0.97],
            model="cellnet",
            test={"accuracy": 0.93, "auc": 0.97},
        ),
        "stopped": make_run(
            runs_dir,
            "20250103-100000-stopped",
            val_loss=[0.69, 0.6],
            val_auc=[0.7, 0.75],
            end="interrupted",
            overrides={"optimizer": {"learning_rate": 0.003}},
        ),
    }


# --- the engine's summary --------------------------------------------------------------------


def test_summary_best_is_over_epochs_with_its_epoch_and_test_figures(runs_dir):
    runs = three_runs(runs_dir)
    s = summarize(runs["spike"])
    assert (s.model, s.status, s.epochs_done, s.epochs_total) == ("lenet", "completed", 8, 8)
    assert (s.monitor, s.mode, s.best, s.best_epoch) == ("val_auc", "max", 0.93, 5)  # not the last
    assert (s.test_accuracy, s.test_auc) == (0.9, 0.95)
    assert s.val_curves["loss"][1][2] == 11.6 and s.val_curves["loss"][0] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
    ]
    assert s.train_curves["loss"][0][:2] == [1.0, 2.0]
    stopped = summarize(runs["stopped"])
    assert stopped.status == "interrupted" and stopped.test_auc is None
    assert stopped.changes["optimizer.learning_rate"] == 0.003
    assert stopped.to_dict()["changes"]["model.name"] == "lenet"


def test_summary_minimises_a_loss_monitor_and_ignores_a_redone_epoch(runs_dir):
    run = make_run(
        runs_dir,
        "20250104-100000-resumed",
        val_loss=[0.7, 0.5, 0.45, 0.6],
        val_auc=[0.8, 0.85, 0.86, 0.84],
        monitor="loss",  # the validation kind is meant: val_loss
        mode="min",
        resumed_at=2,  # epoch 3 was logged with +0.5, then redone after the resume
    )
    s = summarize(run)
    assert s.monitor == "val_loss" and s.mode == "min"
    assert (s.best, s.best_epoch) == (0.45, 3)
    assert s.val_curves["loss"] == ([1.0, 2.0, 3.0, 4.0], [0.7, 0.5, 0.45, 0.6])
    assert s.status == "completed" and s.epochs_done == 4


def test_summary_of_a_broken_run_is_shown_not_raised(runs_dir):
    bad = runs_dir / "20250105-100000-broken"
    bad.mkdir()
    (bad / rundir.CONFIG).write_text("this is not toml [")
    (bad / rundir.EVENTS).write_text('{"event": "run_started", "torn')
    s = summarize(rundir.RunDir(bad))
    assert s.config_error and s.status == "stale" and s.best is None and s.date


def test_sorting_puts_better_first_and_missing_last(runs_dir):
    three_runs(runs_dir)
    runs = summarize_all(rundir.list_runs(runs_dir))
    names = lambda xs: [s.short_name for s in xs]  # noqa: E731
    assert names(sort_runs(runs, "date")) == ["stopped", "wide-cellnet-run", "spiky"]
    assert names(sort_runs(runs, "best")) == ["wide-cellnet-run", "spiky", "stopped"]
    assert names(sort_runs(runs, "test_auc")) == ["wide-cellnet-run", "spiky", "stopped"]
    assert names(sort_runs(runs, "test_auc", reverse=True)) == [
        "spiky",
        "wide-cellnet-run",
        "stopped",
    ]
    assert names(sort_runs(runs, "name")) == ["spiky", "stopped", "wide-cellnet-run"]
    assert names(sort_runs(runs, "status")) == ["spiky", "wide-cellnet-run", "stopped"]


# --- charts ---------------------------------------------------------------------------------


def test_robust_range_clips_a_spike_but_not_an_ordinary_curve():
    spiky = [0.7, 0.5, 11.6, 0.4, 0.35, 0.3, 0.31, 0.29]
    lo, hi = robust_range(spiky)
    assert 0.2 < lo < 0.29 and 0.7 < hi < 1.0
    assert robust_range([0.7, 0.5, 0.45, 0.4, 0.35, 0.3]) is None  # nothing far out
    assert robust_range([2.3, 0.5, 0.4]) is None  # too few points to call one an outlier
    mean, lo_band, hi_band = smooth([1.0, 3.0, 2.0, 4.0], 3)
    assert mean == [2.0, 2.0, 3.0, 3.0] and lo_band == [1.0, 1.0, 2.0, 2.0]
    assert hi_band == [3.0, 3.0, 4.0, 4.0]


def test_legend_shortens_names_at_their_end_never_their_start():
    names = ["20260130-022528-run", "20260130-023001-run-long-name", "c"]
    text = legend([(n, "cyan") for n in names], 40).plain
    assert text.startswith("━ 2026") and "━ c" in text and len(text) <= 40
    assert legend([(n, "cyan") for n in names], 200).plain.count("20260130-0") == 2


# --- the Runs screen --------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen_columns_sort_filter_and_curves(runs_dir, size):
    three_runs(runs_dir)

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="runs")
        async with app.run_test(size=size) as pilot:
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            await wait_for(pilot, lambda: len(screen.order) == 3)
            table = screen.query_one("#runs", ExportTable)
            headers = [str(c.label) for c in table.ordered_columns]
            assert "best auc" in headers and "test auc" in headers
            assert ("test acc" in headers) == (size[0] >= 110)
            assert table.virtual_size.width <= size[0]  # no sideways scrolling
            short = lambda: [screen.summaries[n].short_name for n in screen.order]  # noqa: E731
            assert short() == ["stopped", "wide-cellnet-run", "spiky"]  # newest first
            row = [str(c) for c in table.get_row_at(2)]
            assert "0.930" in row and "0.950" in row  # best val_auc, test auc

            # the highlighted run's curves show at once, val and train
            chart = screen.query_one("#overlay", LineChart)
            assert [line.label for line in chart.lines] == ["val", "train"]
            assert list(chart.lines[0].ys) == [0.69, 0.6]
            await pilot.press("down", "down")
            assert list(chart.lines[0].ys)[2] == 11.6
            await pilot.pause(0.2)
            assert chart.clipped == 2  # val and train spikes on the top edge, the rest readable

            # sort: s moves to the next column (from started: model), v reverses, headers too
            await pilot.press("s")
            assert screen.sort_key == "model"
            assert short() == ["wide-cellnet-run", "spiky", "stopped"]
            screen.sort_by("name")
            assert short() == ["spiky", "stopped", "wide-cellnet-run"]
            await pilot.press("v")
            assert short() == ["wide-cellnet-run", "stopped", "spiky"]
            screen.sort_by("best")
            assert short() == ["wide-cellnet-run", "spiky", "stopped"]
            assert str(table.columns["best"].label).endswith("▼")
            await pilot.click("#runs", offset=(3, 0))  # the "run" header
            assert screen.sort_key == "name"

            # filter: typed in a field; enter leaves it, so digits switch screens again
            await pilot.press("slash")
            assert isinstance(app.focused, Input)
            await pilot.press(*"cellnet")
            assert short() == ["wide-cellnet-run"]
            await pilot.press("enter")
            assert app.focused is table
            await pilot.press("backspace")  # the table ignores it: the filter stays
            assert short() == ["wide-cellnet-run"]
            await pilot.press("slash", *["backspace"] * 7, *"interr", "escape")
            assert short() == ["stopped"] and app.focused is table
            screen.query_one("#filter", Input).value = ""
            await pilot.pause()
            assert len(screen.order) == 3
            await pilot.press("1")
            assert app.screen.MODE == "dataset"

    asyncio.run(go())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen_overlays_any_number_of_marked_runs(runs_dir, size):
    runs = three_runs(runs_dir)

    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="runs")
        async with app.run_test(size=size) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: len(screen.order) == 3)
            await pilot.press("space", "down", "space", "down", "space")
            assert len(screen.marked) == 3
            chart = screen.query_one("#overlay", LineChart)
            assert [line.label for line in chart.lines] == ["stopped", "wide-cellnet-run", "spiky"]
            await pilot.pause(0.2)
            legend_row = chart.render().renderables[-1].plain
            assert legend_row.startswith("━ stopped")  # its first character is there
            diff_text = text_of(screen.query_one("#diff"))
            assert "optimizer.learning_rate" in diff_text and "cellnet" in diff_text
            await pilot.press("m")  # the next metric: auc
            assert screen.metric == "auc" and chart.lines[2].ys[3] == 0.9
            await pilot.press("l")
            await pilot.pause(0.2)
            assert chart.log_y and "[log]" in chart._title()
            await pilot.press("a")
            await pilot.pause(0.2)
            assert chart.smoothed
            await pilot.press("c")
            assert screen.marked == [] and len(chart.lines) == 2  # back to the highlighted one

            # export: the rows as shown, into the runs folder
            screen.sort_by("best")
            await pilot.press("x")
            (out,) = runs_dir.glob("runs-*.csv")
            rows = list(csv.reader(out.open()))
            assert rows[0][:3] == ["mark", "run", "started"]
            assert [r[1] for r in rows[1:]] == ["wide-cellnet-run", "spiky", "stopped"]
            assert runs["cell"].name not in [p.name for p in runs_dir.glob("*.csv")]

    asyncio.run(go())


def test_existing_write_run_fixture_still_lists(runs_dir):
    """The TUI fixtures' own runs (stamps of today, no hand-made names)."""
    a = write_run(runs_dir, "alpha", seed=1)
    s = summarize(a)
    assert s.best == pytest.approx(0.89) and s.best_epoch == 3 and s.test_auc is not None
    assert s.short_name == "alpha" and time.strftime("%Y") in s.date


# --- the HParams screen -----------------------------------------------------------------------


def test_grid_field_requests(tmp_path):
    base = Config()
    folder, spec = grid_request("model.dropout=0.2,0.4 optimizer.learning_rate=0.001,0.003", base)
    assert (
        folder is None
        and len(spec.trials) == 4
        and spec.keys
        == (
            "model.dropout",
            "optimizer.learning_rate",
        )
    )
    _, spec = grid_request('model.name=lenet,cellnet train.epochs=2 grid.metric="val_loss"', base)
    assert [t.params["model.name"] for t in spec.trials] == ["lenet", "cellnet"]
    assert spec.base.train.epochs == 2 and spec.metric == "val_loss" and spec.mode == "min"
    _, spec = grid_request("configs/grid.toml model.dropout=[0.1,0.3]", base)
    assert spec.values["model.dropout"] == [0.1, 0.3] and spec.base.model.name == "cellnet"
    for bad, says in [
        ("", "type a grid config"),
        ("train.epochs=2", "two or more values"),
        ("model.dropuot=0.2,0.4", "model.dropuot"),
        ("model.dropout=0.2,7", "model.dropout"),
        ("nothing.toml", "no such grid config"),
        (str(tmp_path), "not a grid folder"),
        ("a.toml b.toml", "one config file"),
    ]:
        with pytest.raises(ConfigError, match=says):
            grid_request(bad, base)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_hparams_refuses_bad_input_inline_and_exports(runs_dir, size):
    async def go():
        app = create_app(runs_dir=runs_dir, load_tf=False, initial="hparams")
        async with app.run_test(size=size) as pilot:
            screen = app.screen
            assert isinstance(screen, HParamsScreen)
            await pilot.pause()
            await pilot.press("n")
            assert isinstance(app.focused, Input)
            await pilot.press(*"model.dropout=0.2,9", "enter")
            message = screen.query_one("#grid-message")
            assert "model.dropout" in screen.message and message.has_class("-error")
            assert "\n" not in screen.message and message.size.height == 1
            await pilot.press("n", "ctrl+a", "ctrl+k", *"model.dropout=0.2,0.4", "enter")
            assert screen.message == "cannot start the grid: TensorFlow is unavailable"
            assert not list(runs_dir.iterdir())  # nothing was created

            g = runs_dir / "20250101-000000-grid-g"
            g.mkdir()
            (g / "grid.csv").write_text(
                "trial,status,rank,model.dropout,val_auc\n"
                "t0,completed,2,0.2,0.90\nt1,completed,1,0.4,0.95\n"
            )
            screen.action_reload()
            await pilot.pause()
            screen.query_one("#grid", ExportTable).focus()
            await pilot.press("x")
            (out,) = g.glob("grid-*.csv")
            rows = list(csv.reader(out.open()))
            assert rows[0] == ["best", "trial", "status", "rank", "model.dropout", "val_auc"]
            assert [r[1] for r in rows[1:]] == ["t1", "t0"]  # as shown: best first

    asyncio.run(go())


@pytest.mark.slow
def test_hparams_trains_stops_and_resumes_a_tiny_grid(tmp_path):
    from malaria_tui.engine import config
    from malaria_tui.engine.grid.results_table import read_csv
    from tests.conftest import TINY, copy_cells

    cells = copy_cells(tmp_path / "cells", 12)
    cfg = config.load(
        None,
        [*TINY, "data.limit=0", f'data.source="folder:{cells}"', "train.tensorboard=false"],
    )
    runs = tmp_path / "runs"

    async def go():
        app = create_app(cfg, runs_dir=runs, initial="hparams")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: app.tf_ready, timeout=180)
            await pilot.press("n", *"model.dropout=0.2,0.4", "enter")
            await wait_for(pilot, lambda: app.training or "cannot" in screen.message, timeout=120)
            assert app.training, screen.message
            grid_dir = screen.launched
            assert grid_dir is not None and grid_dir.parent == runs
            await wait_for(pilot, lambda: app.session.status == "running", timeout=120)
            await pilot.press("ctrl+x")
            await wait_for(pilot, lambda: not app.training, timeout=120)
            await pilot.pause(0.3)
            assert "interrupted" in screen.message and "u resumes" in screen.message
            statuses = [r["status"] for r in read_csv(grid_dir / "grid.csv")]
            assert "completed" not in statuses[1:] and statuses != ["completed", "completed"]

            await pilot.press("u")  # the rest can train in well under a second: wait for its end
            done = ("grid completed", "grid stopped", "cannot")
            await wait_for(pilot, lambda: screen.message.startswith(done), timeout=300)
            assert screen.message.startswith("grid completed"), screen.message
            await wait_for(pilot, lambda: not app.training, timeout=60)
            screen.action_reload()
            assert [r["status"] for r in screen.rows] == ["completed", "completed"]
            assert screen.message.startswith("grid completed")
            assert screen.query_one("#grid", ExportTable).row_count == 2

    asyncio.run(go())
