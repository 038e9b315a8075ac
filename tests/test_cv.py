"""Patient-level cross-validation: the folds' split (pure and fast), then ``malaria-tui cv`` as
typed on real cells: folds disjoint by patient, the outer test split untouched, every table
written, an interrupted CV resumed, and bad input refused in one line."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from malaria_tui.engine import config as cfgmod
from malaria_tui.engine import cvdir
from malaria_tui.engine.data import records, splits
from tests.conftest import MALARIA_TUI, SAMPLE, TINY, copy_cells

FRACTIONS = (0.8, 0.1, 0.1)


def _sample():
    scan = records.scan_folder(SAMPLE)
    return scan.records


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_folds_are_disjoint_by_patient_and_the_test_split_is_a_normal_runs(folds):
    recs = _sample()
    normal = splits.split_records(recs, FRACTIONS, 42, "patient")
    held_out: list[set[str]] = []
    for fold in range(1, folds + 1):
        parts = splits.cross_validation(recs, FRACTIONS, 42, "patient", folds, fold)
        assert parts["test"] == normal["test"]  # the outer test split: exactly a normal run's
        groups = {name: {r.group for r in rs} for name, rs in parts.items()}
        for a in parts:
            for b in parts:
                if a < b:
                    assert not groups[a] & groups[b], (fold, a, b)
        everything = sorted(r.path for rs in parts.values() for r in rs)
        assert everything == sorted(r.path for r in recs)  # nothing lost, nothing twice
        held_out.append(groups["oof"])
        # the same folds for every fold's run: its training patients are the other folds'
        again = splits.cross_validation(recs, FRACTIONS, 42, "patient", folds, fold)
        assert again == parts
    for i, a in enumerate(held_out):
        for b in held_out[i + 1 :]:
            assert not a & b
    non_test = {r.group for r in normal["train"] + normal["val"]}
    assert set().union(*held_out) == non_test


def test_folds_spread_infected_and_healthy_patients_evenly():
    recs = _sample()
    infected = {r.group for r in recs if r.label == 1}
    per_fold = []
    for fold in range(1, 6):
        oof = splits.cross_validation(recs, FRACTIONS, 42, "patient", 5, fold)["oof"]
        groups = {r.group for r in oof}
        per_fold.append((len(groups & infected), len(groups - infected)))
    sick, healthy = zip(*per_fold, strict=True)
    assert max(sick) - min(sick) <= 2 and max(healthy) - min(healthy) <= 2, per_fold


def test_without_patient_keys_folds_are_stratified_by_image():
    recs = [records.Record(r.path, r.label, f"file:{i}") for i, r in enumerate(_sample())]
    sizes = []
    for fold in range(1, 4):
        parts = splits.cross_validation(recs, FRACTIONS, 42, "image", 3, fold)
        oof = parts["oof"]
        sizes.append(len(oof))
        share = sum(r.label for r in oof) / len(oof)
        assert 0.45 < share < 0.55
    assert max(sizes) - min(sizes) <= 2


def test_the_fold_keys_are_checked_in_the_config():
    with pytest.raises(Exception, match="at least 2"):
        cfgmod.load(None, ["data.cv_folds=1"])
    with pytest.raises(Exception, match="1 to data.cv_folds"):
        cfgmod.load(None, ["data.cv_folds=3", "data.cv_fold=4"])


# --- the command, as typed ---------------------------------------------------------------------


def _cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*MALARIA_TUI, *args], capture_output=True, text=True, timeout=timeout)


def _sets(cells: Path, epochs: int = 2) -> list[str]:
    out = ["--data", f"folder:{cells}"]
    for s in [
        *TINY,
        "data.limit=0",
        f"train.epochs={epochs}",
        "train.batch_events_per_second=1000",
    ]:
        out += ["--set", s]
    return out


@pytest.mark.slow  # the command as typed, in a subprocess per case
@pytest.mark.parametrize(
    "args, words",
    [
        (["--folds", "1"], ["--folds 1", "at least 2"]),
        (["--folds", "40"], ["--folds 40", "patients outside the test split", "at most"]),
        (["--resume", "."], ["not a cross-validation directory"]),
        (["--data", "tfds"], ["TFDS", "no patient keys", "folder:PATH"]),
    ],
)
def test_bad_cv_input_gives_one_line_exit_2_and_writes_nothing(tmp_path, args, words):
    cells = copy_cells(tmp_path / "cells", 12)
    extra = [] if "--resume" in args else _sets(cells)
    done = _cli("cv", "--no-ui", "--runs-dir", str(tmp_path / "runs"), *extra, *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert all(w in last for w in words), last
    assert not (tmp_path / "runs").exists()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_3_fold_cv_scores_every_cell_out_of_fold_and_the_ensemble_on_the_test_split(tmp_path):
    cells = copy_cells(tmp_path / "cells", 30, step=3)
    done = _cli(
        "cv",
        "--folds",
        "3",
        "--no-ui",
        "--plain",
        "--runs-dir",
        str(tmp_path / "runs"),
        *_sets(cells),
    )
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "runs").iterdir()
    cvd = cvdir.open_cv(path)
    assert cvd.folds == 3 and cvd.split == "patient"
    assert "3-fold cross-validation by patient" in done.stdout
    assert "ensemble" in done.stdout and "mean auc" in done.stdout

    oof = _rows(cvd.oof)
    test = _rows(cvd.test_predictions)
    test_paths = {r["path"] for r in test}
    oof_paths = [r["path"] for r in oof]
    assert len(oof_paths) == len(set(oof_paths))  # every non-test image once
    assert not set(oof_paths) & test_paths  # the outer test split is never out of fold
    all_cells = {str(p) for p in cells.rglob("*.png")}
    assert set(oof_paths) | test_paths == all_cells
    # each fold's held-out patients: in no other fold, and never in that fold's own training
    fold_of = defaultdict(set)
    for r in oof:
        fold_of[r["patient"]].add(r["fold"])
    assert all(len(f) == 1 for f in fold_of.values())
    test_count = len(test) // 4  # four models scored each test image
    for run in cvd.fold_dirs():
        start = json.loads((run / "events.jsonl").read_text().splitlines()[0])
        assert start["score_test"] is False  # a fold never looks at the test split itself
        k = str(start["config"]["data"]["cv_fold"])
        held = [r for r in oof if r["fold"] == k]
        assert held and start["n_test"] == test_count
        assert start["n_train"] + start["n_val"] + len(held) == len(oof)
    # the test split scored by 3 fold models and their mean
    models = defaultdict(dict)
    for r in test:
        models[r["model"]][r["path"]] = float(r["prob"])
    assert set(models) == {"fold1", "fold2", "fold3", "ensemble"}
    for p, prob in models["ensemble"].items():
        assert prob == pytest.approx(sum(models[f"fold{i}"][p] for i in (1, 2, 3)) / 3, abs=1e-6)
    summary = cvd.summary()
    assert [f["fold"] for f in summary["per_fold"]] == [1, 2, 3]
    table = _rows(cvd.table)
    assert [r["fold"] for r in table] == ["1", "2", "3", "mean", "sd", "ci95_low", "ci95_high"]
    mean_auc = sum(f["held_out"]["at_0.5"]["auc"] for f in summary["per_fold"]) / 3
    assert float(table[3]["auc"]) == pytest.approx(mean_auc, abs=1e-4)
    assert summary["ensemble"]["thresholds"]["default"] == 0.5


@pytest.mark.slow
def test_an_interrupted_cv_resumes_and_trains_no_fold_twice(tmp_path):
    cells = copy_cells(tmp_path / "cells", 20, step=3)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [*MALARIA_TUI, "cv", "--folds", "2", "--no-ui", "--plain", "--runs-dir", str(runs), *_sets(cells, 40)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(runs.glob("*/trials/*/checkpoints/latest.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    (path,) = runs.iterdir()
    assert f"resume with: malaria-tui cv --resume {path}" in err
    assert not (path / cvdir.SUMMARY).exists()  # nothing scored before every fold has finished

    done = _cli("cv", "--resume", str(path), "--no-ui", "--plain")
    assert done.returncode == 0, done.stderr
    assert "(resuming)" in done.stdout
    starts = {}
    for run in cvdir.open_cv(path).fold_dirs():
        events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
        starts[run.name] = [e["resumed"] for e in events if e["event"] == "run_started"]
    assert starts == {"01-fold1": [False, True], "02-fold2": [False]}, starts
    assert cvdir.open_cv(path).summary()["folds"] == 2
