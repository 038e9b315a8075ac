"""``malaria-tui runs``: the Runs screen's table, headless, run as a person types it (the
installed command in a subprocess) on run directories written through the engine's writers,
and (slow) on two tiny runs trained by the engine."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest

from tests.conftest import TINY, copy_cells
from tests.test_readme_commands import cli
from tests.tui.test_runs_screen import three_runs

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_plain_table_through_a_pipe(tmp_path):
    runs = tmp_path / "runs"
    three_runs(runs)
    out = cli("runs", str(runs), timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "\x1b" not in out.stdout and len(lines) == 4
    assert lines[0].split() == [
        "name",
        "date",
        "model",
        "status",
        "epochs",
        "monitor",
        "best",
        "best_epoch",
        "test_acc",
        "test_auc",
        "changes",
    ]
    assert lines[1].startswith("20250103-100000-stopped ")  # newest first
    spiky = next(line for line in lines if "spiky" in line).split()
    assert spiky[spiky.index("val_auc") + 1 : spiky.index("val_auc") + 5] == [
        "0.9300",
        "5",
        "0.9000",
        "0.9500",
    ]
    # numbers are right-aligned under their header
    end = lines[0].index("best ") + 4
    assert all(line[end - 4 : end] in ("best", "9300", "9700", "7500") for line in lines)


def test_json_csv_and_sort_keys(tmp_path):
    runs = tmp_path / "runs"
    three_runs(runs)
    data = json.loads(cli("runs", str(runs), "--json", "--sort", "best", timeout=60).stdout)
    assert [d["name"][16:] for d in data] == ["wide-cellnet-run", "spiky", "stopped"]
    spiky = data[1]
    assert spiky["best"] == 0.93 and spiky["best_epoch"] == 5 and spiky["mode"] == "max"
    assert spiky["test_accuracy"] == 0.9 and spiky["test_auc"] == 0.95
    assert data[2]["status"] == "interrupted" and data[2]["test_auc"] is None
    assert data[2]["changes"]["optimizer.learning_rate"] == 0.003

    rows = list(
        csv.DictReader(
            io.StringIO(
                cli(
                    "runs", str(runs), "--csv", "--sort", "test_auc", "--reverse", timeout=60
                ).stdout
            )
        )
    )
    # lowest test AUC first, the run without one still last
    assert [r["name"][16:] for r in rows] == ["spiky", "wide-cellnet-run", "stopped"]
    assert rows[2]["test_auc"] == "" and rows[0]["best_epoch"] == "5"
    names = cli("runs", str(runs), "--json", "--sort", "name", timeout=60).stdout
    assert [d["name"][16:] for d in json.loads(names)] == ["spiky", "stopped", "wide-cellnet-run"]


def test_a_terminal_gets_a_rich_table_that_fits_80_columns(tmp_path):
    runs = tmp_path / "runs"
    three_runs(runs)
    env = os.environ | {"TTY_COMPATIBLE": "1", "COLUMNS": "80"}
    out = cli("runs", str(runs), "--sort", "best", env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    text = ANSI.sub("", out.stdout)
    assert "\x1b[" in out.stdout  # styled: a terminal
    assert max(len(line) for line in text.splitlines()) <= 80
    head = text.splitlines()[0]
    assert "best val_auc ▼" in head and "test_auc" in head and "name" in head
    assert "changes" not in head  # dropped first
    assert "20250101-100000-spiky" in text


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args, says in [
        ((str(tmp_path / "nowhere"),), "no such runs directory"),
        ((str(tmp_path), "--sort", "bogus"), "unknown sort key 'bogus'"),
        ((str(tmp_path), "--json", "--csv"), "not allowed with"),
    ]:
        out = cli("runs", *args, timeout=60)
        assert out.returncode == 2 and out.stdout == "", args
        assert out.stderr.strip().count("\n") == 0 and says in out.stderr, out.stderr
    (tmp_path / "file").write_text("x")
    out = cli("runs", str(tmp_path / "file"), timeout=60)
    assert out.returncode == 2 and "not a directory" in out.stderr


def test_an_empty_folder_says_so(tmp_path):
    out = cli("runs", str(tmp_path), timeout=60)
    assert out.returncode == 0 and out.stdout == "" and "no runs in" in out.stderr
    assert json.loads(cli("runs", str(tmp_path), "--json", timeout=60).stdout) == []
    assert cli("runs", "--help", timeout=60).stdout.startswith("usage: malaria-tui runs ")


@pytest.mark.slow
def test_two_tiny_trained_runs(tmp_path):
    from malaria_tui.engine import config
    from malaria_tui.engine.rundir import RunDir
    from malaria_tui.engine.training.trainer import train

    cells = copy_cells(tmp_path / "cells", 24, step=11)
    runs = tmp_path / "runs"
    trained: list[RunDir] = []
    for lr, name in ((1e-3, "slow-lr"), (3e-3, "fast-lr")):
        cfg = config.load(
            None,
            [
                *TINY,
                f'data.source="folder:{cells}"',
                "data.limit=0",
                "train.epochs=3",
                f"optimizer.learning_rate={lr}",
                f'name="{name}"',
            ],
        )
        trained.append(train(cfg, runs_dir=runs))

    out = cli("runs", str(runs), "--json", "--sort", "best", timeout=120)
    assert out.returncode == 0, out.stderr
    data = {d["name"]: d for d in json.loads(out.stdout)}
    assert set(data) == {r.name for r in trained}
    for run in trained:
        d = data[run.name]
        aucs = [e.val["val_auc"] for e in run.events() if e.kind == "epoch_end"]
        assert d["best"] == pytest.approx(max(aucs)) and d["epochs_done"] == 3
        assert d["best_epoch"] == aucs.index(max(aucs)) + 1
        test = json.loads((run.eval_dir / "metrics.json").read_text())["test"]
        assert d["test_auc"] == pytest.approx(test["auc"]) and d["status"] == "completed"
        assert d["model"] == "lenet" and d["changes"]["data.image_size"] == 32
    bests = [d["best"] for d in json.loads(out.stdout)]
    assert bests == sorted(bests, reverse=True)
    plain = cli("runs", str(runs), timeout=120).stdout.splitlines()
    assert len(plain) == 3 and all(r.name in "\n".join(plain) for r in trained)
