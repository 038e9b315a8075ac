"""The fold ensemble of a cross-validation directory: one Keras model averaging the fold models,
and ``evaluate``, ``predict`` and ``export`` given a CV directory.

A real 3-fold CV is made once on real cells with ``malaria-tui cv`` as typed (``cv_dir``), so
every test that uses it is slow. The averaging model itself is checked fast on freshly built
(untrained, real) models."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from malaria_tui.cli import ExitCode, main
from malaria_tui.engine import config, cvdir
from malaria_tui.engine.inference import diagnose, fold_ensemble, predictor
from malaria_tui.engine.models import ensemble, registry
from malaria_tui.engine.models.loading import load_keras
from tests.conftest import MALARIA_TUI, SAMPLE, TINY, copy_cells

FOLDS = 3
NO_EXPORTS = shutil.ignore_patterns("export")


def _cli(*args: str, timeout: float = 600, columns: int = 80) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run(
        [*MALARIA_TUI, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def _real_cells(size: int, gray: bool, n: int = 100) -> np.ndarray:
    files = sorted(SAMPLE.rglob("*.png"))[::7][:n]  # both classes, many patients
    x, ok, bad = diagnose.load_images(files, size, gray)
    assert len(ok) == n and not bad
    return x


def _member_mean(cv: Path, x: np.ndarray) -> np.ndarray:
    """The mean of the fold models' probabilities, each loaded on its own from its best.keras."""
    runs = fold_ensemble.open_ensemble(cv).runs
    return np.mean(
        [np.asarray(load_keras(r.best_model)(x, training=False)).ravel() for r in runs], axis=0
    )


# --- the averaging model, fast -------------------------------------------------------------------


def test_the_ensemble_model_is_the_mean_of_its_members_and_loads_in_safe_mode(tmp_path):
    size = 40
    members = [
        registry.build_model(
            config.load(None, [f'model.name="{name}"', f"data.image_size={size}", "model.width=8"])
        )
        for name in ("cellnet", "lenet", "cellnet")  # two of the same: names made unique
    ]
    x = np.random.default_rng(0).random((5, size, size, 3), dtype=np.float32)
    each = [np.asarray(m(x, training=False)).ravel() for m in members]
    model = ensemble.average(members, size)
    got = np.asarray(model(x, training=False)).ravel()
    np.testing.assert_allclose(got, np.mean(each, axis=0), atol=1e-6)
    assert [m.name for m in ensemble.members(model)] == ["fold1", "fold2", "fold3"]
    assert not [layer for layer in model.layers if type(layer).__name__ == "Lambda"]
    model.save(tmp_path / "e.keras")
    back = load_keras(tmp_path / "e.keras")  # safe_mode=True: refuses any Lambda layer
    np.testing.assert_allclose(np.asarray(back(x)).ravel(), got, atol=1e-6)
    assert len(ensemble.members(back)) == 3


# --- a real CV directory, made as typed ----------------------------------------------------------


@pytest.fixture(scope="module")
def cv_dir(tmp_path_factory) -> Path:
    """``malaria-tui cv --folds 3`` on 100 real cells (about 80 patients), trained briefly."""
    root = tmp_path_factory.mktemp("cv_ensemble")
    cells = copy_cells(root / "cells", 50, step=7)
    sets = []
    for s in [*TINY, "data.limit=0", "train.epochs=1", "train.batch_events_per_second=1000"]:
        sets += ["--set", s]
    out = _cli(
        "cv", "--folds", str(FOLDS), "--no-ui", "--plain", "--runs-dir", str(root / "runs"),
        "--data", f"folder:{cells}", *sets, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (path,) = [p for p in (root / "runs").iterdir() if cvdir.is_cv_dir(p)]
    assert cvdir.open_cv(path).summary()["ensemble"]["thresholds"]
    return path


@pytest.fixture(scope="module")
def ens(cv_dir) -> predictor.Predictor:
    return predictor.load(cv_dir)


@pytest.mark.slow
def test_predictor_of_a_cv_dir_averages_the_folds_with_the_out_of_fold_thresholds(cv_dir, ens):
    summary = cvdir.open_cv(cv_dir).summary()
    fold1 = fold_ensemble.open_ensemble(cv_dir).config
    assert ens.kind == "keras" and len(ens.members) == FOLDS and ens.image_size == 32
    assert ens.thresholds == summary["ensemble"]["thresholds"]
    assert ens.operating_point == fold1.eval.operating_point
    assert ens.threshold == summary["ensemble"]["thresholds"]["sensitivity_target"]
    assert ens.tta is fold1.eval.tta is True
    # grayscale cells: the folds were trained on luminance, so colour input is reduced to it
    # (the folds' config.toml says "auto"; what training resolved it to is used)
    assert ens.color == fold1.data.color == "gray"
    assert predictor.load(cv_dir, "youden").threshold == summary["ensemble"]["thresholds"]["youden"]
    x = _real_cells(ens.image_size, ens.color == "gray")
    p = ens.probabilities(x)
    np.testing.assert_allclose(p, _member_mean(cv_dir, x), atol=1e-6)
    assert p.std() > 0  # not a constant
    # TTA over the ensemble: the one dihedral_mean, = the mean over members of their TTA means
    with_tta = diagnose.probabilities(ens, x[:8], tta=True)
    runs = fold_ensemble.open_ensemble(cv_dir).runs
    per_member = [diagnose.probabilities(predictor.load(r.path), x[:8], tta=True) for r in runs]
    np.testing.assert_allclose(with_tta, np.mean(per_member, axis=0), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fmt, quantize", [("keras", None), ("savedmodel", None), ("tflite", None), ("tflite", "int8")]
)
def test_an_ensemble_export_matches_its_members(cv_dir, ens, tmp_path, fmt, quantize):
    from malaria_tui.engine.export import export_run

    out = tmp_path / ("sm" if fmt == "savedmodel" else f"e.{fmt}")
    report = export_run(cv_dir, fmt, str(out), quantize)
    assert report["members"] == FOLDS and report["checked_on"] > 0
    exported = predictor.load(out)  # a .tflite runs through LiteRT
    assert exported.kind == fmt
    assert exported.thresholds == ens.thresholds and exported.threshold == ens.threshold
    assert exported.color == ens.color and exported.tta is True
    assert exported.members == ens.members and exported.image_size == ens.image_size
    x = _real_cells(ens.image_size, ens.color == "gray")
    diff = np.abs(exported.probabilities(x) - _member_mean(cv_dir, x)).max()
    if quantize:
        assert "accuracy_change" in report and diff < 0.25
    else:
        assert report["max_abs_diff"] <= 1e-4 and diff <= 1e-4


@pytest.mark.slow
def test_export_cli_writes_into_the_cv_dir_by_default(cv_dir, capsys):
    assert main(["export", str(cv_dir), "--format", "keras", "--json"]) == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(cv_dir / "export" / "ensemble.keras")
    side = json.loads((cv_dir / "export" / "ensemble.keras.malaria.json").read_text())
    assert side["cv"] == str(cv_dir) and len(side["members"]) == FOLDS and side["image_size"] == 32


@pytest.mark.slow
def test_evaluate_cv_dir_json_as_typed_lists_the_ensemble_and_every_fold(cv_dir):
    out = _cli("evaluate", str(cv_dir), "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    summary = cvdir.open_cv(cv_dir).summary()
    assert [m["model"] for m in r["models"]] == ["ensemble", "fold1", "fold2", "fold3"]
    assert r["n"] == summary["test_images"] and r["split"] == "test"
    assert r["scored_from"] == cvdir.TEST_PREDICTIONS
    by = {m["model"]: m for m in r["models"]}
    assert by["ensemble"]["thresholds"] == summary["ensemble"]["thresholds"]
    for key in ("accuracy", "auc", "sensitivity", "specificity"):
        assert by["ensemble"][key] == pytest.approx(summary["ensemble"]["test"]["at_0.5"][key])
        assert by["ensemble"]["chosen"][key] == pytest.approx(
            summary["ensemble"]["test"]["at_threshold"][key]
        )
        for f in summary["per_fold"]:
            assert by[f"fold{f['fold']}"][key] == pytest.approx(f["test"]["at_0.5"][key])
    for f in summary["per_fold"]:
        assert by[f"fold{f['fold']}"]["run"] == f["run"]
        assert by[f"fold{f['fold']}"]["chosen"]["threshold"] == pytest.approx(f["threshold"])
    # the table, in 80 columns: every model on one line, nothing cut
    table = _cli("evaluate", str(cv_dir))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in table.stdout
    for name in ("ensemble", "fold1", "fold2", "fold3"):
        (row,) = [line for line in lines if line.startswith(name + " ")]
        assert len(row.split()) == 9


def _rounded(r: dict) -> list:
    keys = ("accuracy", "auc", "sensitivity", "specificity", "tp", "fp", "tn", "fn")
    return [
        [m["model"], *(round(m[k], 9) for k in keys), *(round(m["chosen"][k], 9) for k in keys)]
        for m in r["models"]
    ]


@pytest.mark.slow
def test_test_predictions_csv_equals_rescoring_the_models(cv_dir):
    ens = fold_ensemble.open_ensemble(cv_dir)
    read = fold_ensemble.from_test_predictions(ens)
    again = fold_ensemble.rescore(ens)
    assert read is not None and read.paths == again.paths and read.groups == again.groups
    assert np.array_equal(read.labels, again.labels)
    for name in [*ens.names, fold_ensemble.ENSEMBLE]:
        np.testing.assert_allclose(read.probs[name], again.probs[name], atol=1e-6)
    fast = fold_ensemble.evaluate_cv(cv_dir)
    slow = fold_ensemble.evaluate_cv(cv_dir, rescore_models=True)
    assert (fast["scored_from"], slow["scored_from"]) == (cvdir.TEST_PREDICTIONS, "models")
    assert _rounded(fast) == _rounded(slow)


@pytest.mark.slow
def test_predict_cv_dir_as_typed(cv_dir, ens):
    folder = SAMPLE / "Parasitized"
    out = _cli("predict", str(cv_dir), str(folder), "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["model"] == str(cv_dir) and r["tta"] is True and r["threshold"] == ens.threshold
    files, _ = diagnose.collect([str(folder)])
    assert [c["path"] for c in r["cells"]] == [str(f) for f in files]
    x, _, _ = diagnose.load_images(files[:16], ens.image_size, ens.color == "gray")
    expected = diagnose.probabilities(ens, x, tta=True)  # the mean of the folds, with TTA
    got = np.array([c["prob"] for c in r["cells"][:16]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    plain = _cli("predict", str(cv_dir), str(files[0]), "--no-tta", "--csv")
    assert plain.returncode == 0, plain.stderr
    prob = float(plain.stdout.splitlines()[1].split(",")[1])
    assert prob == pytest.approx(float(ens.probabilities(x[:1])[0]), abs=1e-5)
    table = _cli("predict", str(cv_dir), str(files[0]))
    assert "mean of 3 folds" in table.stdout and "with TTA" in table.stdout


@pytest.mark.slow
def test_unfinished_or_broken_cv_dirs_are_one_line_errors(cv_dir, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(cv_dir, unfinished, ignore=NO_EXPORTS)
    (unfinished / cvdir.SUMMARY).unlink()
    no_best = tmp_path / "no_best"
    shutil.copytree(cv_dir, no_best, ignore=NO_EXPORTS)
    fold2 = fold_ensemble.open_ensemble(no_best).runs[1]
    fold2.best_model.unlink()
    mixed = tmp_path / "mixed"
    shutil.copytree(cv_dir, mixed, ignore=NO_EXPORTS)
    fold3 = mixed / "trials" / sorted(p.name for p in (mixed / "trials").iterdir())[2]
    toml = (fold3 / "config.toml").read_text()
    assert "image_size = 32" in toml
    (fold3 / "config.toml").write_text(toml.replace("image_size = 32", "image_size = 48"))
    cells = str(SAMPLE / "Parasitized")
    cases = [
        (["evaluate", str(unfinished)], "have not all finished"),
        (["predict", str(unfinished), cells], "have not all finished"),
        (["export", str(unfinished), "--format", "tflite"], "have not all finished"),
        (["evaluate", str(no_best), "--json"], "fold 2 has no best model"),
        (["predict", str(no_best), cells], "fold 2 has no best model"),
        (["export", str(no_best)], "fold 2 has no best model"),
        (["predict", str(mixed), cells], "different inputs (32 px"),
        (["export", str(mixed), "--out", str(tmp_path / "m.keras")], "different inputs"),
        (["predict", str(cv_dir), cells, "--explain", str(tmp_path / "cams")], "not the mean of 3"),
    ]
    for argv, needle in cases:
        assert main(argv) == ExitCode.USAGE, argv
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err, (argv, err)
    for d in (unfinished, no_best, mixed):
        assert not (d / "export").exists()  # nothing half-written
    assert not (tmp_path / "m.keras").exists()
