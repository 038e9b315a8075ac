"""Hyper-parameter grids: the [grid] section, trial expansion, a real 2x2 grid end to end (CSV,
ranking, the test split for the best trial only, TensorBoard HParams read back by TensorBoard's
own hparams plugin), and an interrupted grid resumed."""

import json
import subprocess
import sys
import threading
import tomllib

import pytest

from malaria_tui.cli import ExitCode, main
from malaria_tui.engine.errors import ConfigError
from malaria_tui.engine.grid import search
from malaria_tui.engine.grid import spec as gspec
from malaria_tui.engine.grid.results_table import Summary, read_csv
from tests.conftest import REPO, TINY

GRID_2X2 = """
name = "g"
[grid.values]
"optimizer.learning_rate" = [0.001, 0.003]
"model.dropout" = [0.2, 0.4]
"""
KEYS = ["optimizer.learning_rate", "model.dropout"]


def _overrides(cells):
    return [
        *TINY,
        "data.limit=0",
        f'data.source="folder:{cells}"',
        "train.batch_events_per_second=1000",
    ]


def _file(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the [grid] section: one clear line, before anything trains --------------------------------


@pytest.mark.parametrize(
    "grid, expected",
    [
        ('[grid.values]\n"model.dropout" = []', ['"model.dropout"', "empty list"]),
        ('[grid.values]\n"model.dropot" = [0.1]', ["model.dropot", "unknown", "model.dropout"]),
        ('[grid.values]\n"data.batch_size" = [16, "big"]', ["data.batch_size", "integer", "'big'"]),
        ('[grid.values]\n"model.dropout" = [0.2, 1.5]', ["model.dropout", "less than 1", "1.5"]),
        ('[grid.values]\n"model.dropout" = 0.2', ['"model.dropout"', "must be a list"]),
        ('[grid.values]\n"model" = [1]', ['"model"', "is a section"]),
        (
            f'[grid.values]\n"model.dense_units" = {list(range(1, 16))}\n'
            f'"model.width" = {list(range(4, 19))}',
            ["225 trials (15 x 15)", "grid.max_trials = 200", "grid.sample"],
        ),
        (
            '[grid]\nmax_trials = 3\n[grid.values]\n"model.dropout" = [0.1, 0.2]\n"loss.gamma" = [1.0, 2.0]',
            ["4 trials (2 x 2)", "grid.max_trials = 3"],
        ),
        (
            '[grid]\nsample = 5\n[grid.values]\n"model.dropout" = [0.1, 0.2]',
            ["sample = 5", "only 2"],
        ),
        (
            '[grid]\nsamples = 2\n[grid.values]\n"model.dropout" = [0.1]',
            ["grid.samples", "unknown"],
        ),
        ('[grid]\nmetric = "val_f1"\n[grid.values]\n"model.dropout" = [0.1]', ["val_f1", "metric"]),
        ('[grid]\nmetric = "val_auc"', ["grid.values is empty"]),
        ('[train]\nepochs = 0\n[grid.values]\n"model.dropout" = [0.1]', ["train.epochs"]),
        ("[model]\ndropout = 0.1", ["no [grid] section"]),
    ],
)
def test_a_bad_grid_is_one_line_naming_the_file_and_key(tmp_path, grid, expected):
    path = _file(tmp_path, grid)
    with pytest.raises(ConfigError) as e:
        gspec.load(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    for part in expected:
        assert part in msg, msg


def test_the_command_refuses_a_bad_grid_with_exit_2_and_creates_nothing(tmp_path, capsys):
    path = _file(tmp_path, '[grid.values]\n"optimizer.lr" = [0.001, 0.01]')
    runs = tmp_path / "runs"
    code = main(["grid", "--config", str(path), "--no-ui", "--runs-dir", str(runs)])
    err = capsys.readouterr().err.strip()
    assert code == ExitCode.USAGE, err
    assert "\n" not in err and err.startswith("malaria-tui: ") and "optimizer.lr" in err
    assert str(path) in err and "optimizer.learning_rate" in err  # the file and a suggestion
    assert not runs.exists()
    code = main(["grid", "--resume", str(runs.parent / "cells-or-anything"), "--no-ui"])
    assert code == ExitCode.USAGE and "no such grid directory" in capsys.readouterr().err
    code = main(["grid", "--resume", str(path.parent.parent), "--no-ui"])
    assert code == ExitCode.USAGE and "not a grid directory" in capsys.readouterr().err
    code = main(["grid", "--config", str(path), "--resume", str(tmp_path)])
    assert code == ExitCode.USAGE and "not allowed with" in capsys.readouterr().err


# --- trials: the Cartesian product, or N seeded random ones ------------------------------------


CARTESIAN = """
seed = 5
[grid.values]
"optimizer.learning_rate" = [1, 0.003]
"model.name" = ["lenet", "cellnet", "lenet_subclassed"]
"augment.mixup.enabled" = [false, true]
"""


def test_the_shipped_example_grid_is_valid():
    spec = gspec.load(REPO / "configs" / "grid.toml")
    assert len(spec.trials) == spec.total == 8 and spec.metric == "val_auc"
    assert all(t.config.data.source == "sample" for t in spec.trials)


def test_help_does_not_import_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "from malaria_tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['grid', '--help'])\n"
        "main(['grid', '--config', 'configs/grid.toml', '--set', 'grid.max_trials=2', '--no-ui'])\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'textual') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "[]" and "grid.max_trials = 2" in out.stderr


def test_trials_are_the_cartesian_product_in_order(tmp_path):
    spec = gspec.load(_file(tmp_path, CARTESIAN), ["data.image_size=40"])
    assert spec.total == 12 and len(spec.trials) == 12 and spec.seed == 5
    assert [tuple(t.params.values()) for t in spec.trials] == gspec.product(spec)
    first = spec.trials[0]
    assert first.params == {
        "optimizer.learning_rate": 1.0,  # validated: an int for a float key becomes a float
        "model.name": "lenet",
        "augment.mixup.enabled": False,
    }
    assert first.name == "01-lr1_lenet_mixup-off" and first.config.name == "run-" + first.name
    assert len({t.name for t in spec.trials}) == 12
    last = spec.trials[-1].config
    assert (last.optimizer.learning_rate, last.model.name, last.augment.mixup.enabled) == (
        0.003,
        "lenet_subclassed",
        True,
    )
    assert all(t.config.data.image_size == 40 for t in spec.trials)  # --set reaches every trial
    assert spec.mode == "max" and spec.metric == "val_auc"
    again = gspec.from_tree(tomllib.loads(spec.to_toml()))  # grid.toml reloads to the same grid
    assert again.trials == spec.trials


def test_sample_draws_seeded_random_trials_from_the_product(tmp_path):
    path = _file(tmp_path, CARTESIAN)
    a = gspec.load(path, ["grid.sample=5"])
    b = gspec.load(path, ["grid.sample=5"])
    everything = gspec.product(a)
    picked = [tuple(t.params.values()) for t in a.trials]
    assert len(picked) == 5 and len(set(picked)) == 5 and set(picked) <= set(everything)
    assert picked == sorted(picked, key=everything.index)  # kept in grid order
    assert [t.name for t in a.trials] == [t.name for t in b.trials]
    assert a.seed == 5  # the config's seed by default
    others = {
        tuple(
            tuple(t.params.values())
            for t in gspec.load(path, ["grid.sample=5", f"grid.seed={s}"]).trials
        )
        for s in range(6)
    }
    assert len(others) > 1
    loss = gspec.load(path, ["grid.sample=2", 'grid.metric="val_loss"'])
    assert loss.mode == "min" and len(loss.trials) == 2
    keys = gspec.load(path, ["grid.values.model.dropout=[0.1, 0.2]"])
    assert keys.keys[-1] == "model.dropout" and keys.total == 24


def test_ranking_breaks_ties_on_val_loss_and_skips_unfinished(tmp_path):
    spec = gspec.load(_file(tmp_path, CARTESIAN), ["grid.sample=4"])
    s = Summary(tmp_path, spec)
    rows = list(s.rows.values())
    for row, (status, auc, loss) in zip(
        rows,
        [
            ("completed", 0.8, 0.5),
            ("completed", 0.9, 0.6),
            ("completed", 0.9, 0.4),
            ("running", 1.0, 0.1),
        ],
        strict=True,
    ):
        row["metrics"] = {"val_auc": auc, "val_loss": loss}
        s.update(row["trial"], status)
    assert [r["rank"] for r in rows] == [3, 2, 1, None]
    assert s.best() is rows[2]
    s.write()
    csv_rows = read_csv(tmp_path / "grid.csv")
    assert [r["rank"] for r in csv_rows] == ["3", "2", "1", ""]
    assert list(csv_rows[0])[:3] == ["trial", "status", "rank"]
    assert [
        json.loads(line)["trial"] for line in (tmp_path / "grid.jsonl").read_text().splitlines()
    ] == [r["trial"] for r in rows]


# --- a real grid ---------------------------------------------------------------------------------


def _tensorboard_hparams(grid_dir):
    """What TensorBoard's HParams dashboard would show, through the plugin's own backend."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(grid_dir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(grid_dir))
    ctx = backend_context.Context(
        base_plugin.TBContext(logdir=str(grid_dir), multiplexer=mux, data_provider=provider)
    )
    rctx = context.RequestContext()
    tags = ctx.hparams_metadata(rctx, "")
    experiment = ctx.experiment_from_metadata(rctx, "", True, tags, None)
    request = api_pb2.ListSessionGroupsRequest(
        slice_size=100,
        allowed_statuses=[
            api_pb2.STATUS_UNKNOWN,
            api_pb2.STATUS_SUCCESS,
            api_pb2.STATUS_FAILURE,
            api_pb2.STATUS_RUNNING,
        ],
    )
    groups = list_session_groups.Handler(rctx, ctx, "", request).run().session_groups
    sessions = {
        g.name: (
            {
                k: v.number_value if v.HasField("number_value") else v.string_value
                for k, v in g.hparams.items()
            },
            {m.name.tag: m.value for m in g.metric_values},
            [s.status for s in g.sessions],
        )
        for g in groups
    }
    return experiment, sessions, api_pb2.STATUS_SUCCESS


def _test_metrics(run_dir):
    return json.loads((run_dir / "eval" / "metrics.json").read_text()).get("test")


@pytest.mark.slow
def test_a_2x2_grid_end_to_end(tmp_path, cells, capsys):
    path = _file(tmp_path, GRID_2X2)
    runs = tmp_path / "runs"
    argv = ["--config", str(path), "--no-ui", "--plain", "--runs-dir", str(runs)]
    for o in _overrides(cells):
        argv += ["--set", o]
    code = main(["grid", *argv])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, err
    (grid_dir,) = runs.iterdir()
    assert grid_dir.name.endswith("-grid-g")
    rows = read_csv(grid_dir / "grid.csv")
    names = ["01-lr0.001_drop0.2", "02-lr0.001_drop0.4", "03-lr0.003_drop0.2", "04-lr0.003_drop0.4"]
    assert [r["trial"] for r in rows] == names
    assert {"trial", "status", "rank", *KEYS, "val_auc", "val_loss", "test_auc"} <= set(rows[0])
    assert all(r["status"] == "completed" and r["epochs"] == "1" for r in rows)
    assert [(r["optimizer.learning_rate"], r["model.dropout"]) for r in rows] == [
        ("0.001", "0.2"),
        ("0.001", "0.4"),
        ("0.003", "0.2"),
        ("0.003", "0.4"),
    ]
    # ranked on validation: val_auc high first, ties to the lower val_loss
    by_rank = sorted(rows, key=lambda r: int(r["rank"]))
    assert sorted(int(r["rank"]) for r in rows) == [1, 2, 3, 4]
    keys = [(-float(r["val_auc"]), float(r["val_loss"])) for r in by_rank]
    assert keys == sorted(keys)
    best = by_rank[0]
    # the test split: scored once, for the best trial only
    for r in rows:
        run_dir = grid_dir / "trials" / r["trial"]
        events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
        splits = [e["split"] for e in events if e["event"] == "evaluation_done"]
        preds = (run_dir / "eval" / "predictions.csv").read_text().splitlines()[1:]
        if r is best:
            assert r["test_auc"] and r["test_accuracy"] and splits == ["val", "test"]
            assert _test_metrics(run_dir)["n"] > 0
            assert any(p.startswith("test,") for p in preds)
        else:
            assert r["test_auc"] == r["test_accuracy"] == "" and splits == ["val"]
            assert _test_metrics(run_dir) is None
            assert preds and all(p.startswith("val,") for p in preds)
    jsonl = [json.loads(line) for line in (grid_dir / "grid.jsonl").read_text().splitlines()]
    assert [j["trial"] for j in jsonl] == names and sum(bool(j["test"]) for j in jsonl) == 1
    assert gspec.read(grid_dir / "grid.toml").trials == gspec.load(path, _overrides(cells)).trials
    # the headless output: a trial line each, the best trial's test line, the table by rank
    assert out.count("trial 1/4 ") == 2 and f"best trial {best['trial']}" in out
    table = out[out.index("rank  trial") :].splitlines()[1:]
    assert [line.split()[1] for line in table] == [r["trial"] for r in by_rank]
    # TensorBoard HParams, read back with TensorBoard's own hparams plugin
    experiment, sessions, success = _tensorboard_hparams(grid_dir)
    assert {h.name for h in experiment.hparam_infos} == set(KEYS)
    assert {"val_auc", "val_loss", "val_accuracy", "loss", "test_auc"} <= {
        m.name.tag for m in experiment.metric_infos
    }
    assert set(sessions) == set(names)
    for r in rows:
        hparams, metrics, statuses = sessions[r["trial"]]
        assert hparams == pytest.approx({k: float(r[k]) for k in KEYS})
        assert metrics["val_auc"] == pytest.approx(float(r["val_auc"]))
        assert metrics["val_loss"] == pytest.approx(float(r["val_loss"]))
        assert ("test_auc" in metrics) == (r is best) and statuses == [success]


@pytest.mark.slow
def test_an_interrupted_grid_resumes_without_retraining_finished_trials(tmp_path, cells, capsys):
    spec = gspec.load(_file(tmp_path, GRID_2X2), _overrides(cells))
    stop = threading.Event()
    current = {}

    def stop_in_trial_2(ev):
        if ev.kind == "trial_started":
            current["index"] = ev.index
        if ev.kind == "batch" and current.get("index") == 2 and ev.step == 1:
            stop.set()

    first = search.run_grid(spec, runs_dir=tmp_path / "runs", on_event=stop_in_trial_2, stop=stop)
    assert first.status == "interrupted" and first.test is None
    rows = read_csv(first.path / "grid.csv")
    assert [r["status"] for r in rows] == ["completed", "interrupted", "pending", "pending"]
    assert all(r["test_auc"] == "" for r in rows)  # nothing tested while the grid is unfinished
    trials = first.path / "trials"
    t1, t2 = (trials / spec.trials[i].name for i in (0, 1))
    assert sorted(p.name for p in trials.iterdir()) == [t1.name, t2.name]
    assert _test_metrics(t1) is None
    t1_model = (t1 / "checkpoints" / "best.keras").stat().st_mtime_ns

    events = []
    resumed = search.resume_grid(first.path, on_event=events.append)
    assert resumed.status == "completed" and resumed.path == first.path
    started = [e for e in events if e.kind == "trial_started"]
    assert [e.index for e in started] == [2, 3, 4]
    assert started[0].resumed and not started[1].resumed
    run_started = next(e for e in events if e.kind == "run_started")
    assert run_started.resumed and run_started.start_step == 1  # trial 2 went on where it stopped
    assert (t1 / "checkpoints" / "best.keras").stat().st_mtime_ns == t1_model  # not retrained
    t1_log = [json.loads(line) for line in (t1 / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in t1_log].count("run_started") == 1
    rows = read_csv(first.path / "grid.csv")
    assert all(r["status"] == "completed" for r in rows)
    tested = [r["trial"] for r in rows if r["test_auc"]]
    assert tested == [resumed.best["trial"]] and resumed.test is not None
    assert [r["trial"] for r in rows if _test_metrics(trials / r["trial"])] == tested

    # a finished grid: --resume trains and tests nothing again, and prints the table
    metrics_file = trials / tested[0] / "eval" / "metrics.json"
    stamp = metrics_file.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["grid", "--resume", str(first.path), "--no-ui", "--plain"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "4 trials, 0 to run" in out and "rank  trial" in out
    assert metrics_file.stat().st_mtime_ns == stamp
