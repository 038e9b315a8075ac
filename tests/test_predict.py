"""predict, Grad-CAM, thresholds and export on a tiny real model and real cells.

The model is trained once (``tiny_run``), so every test that uses it is slow."""

import json
import shutil

import numpy as np
import pytest

from malaria_tui.cli import ExitCode, main
from malaria_tui.engine import explain
from malaria_tui.engine.inference import diagnose, predictor
from malaria_tui.engine.models import tta


@pytest.fixture(scope="module")
def model(tiny_run):
    return predictor.load(tiny_run.path)


@pytest.mark.slow
def test_run_threshold_and_colour_handling(model, tiny_run):
    chosen = json.loads((tiny_run.eval_dir / "metrics.json").read_text())["thresholds"]
    assert model.threshold == chosen["sensitivity_target"] and model.color == "gray"
    assert predictor.load(tiny_run.path, "youden").threshold == chosen["youden"]


@pytest.mark.slow
def test_predict_rgb_crops_of_any_size_with_a_summary_per_folder(model, rgb_dir, tmp_path):
    folder = tmp_path / "slide"
    shutil.copytree(rgb_dir, folder)
    (folder / "Uninfected" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    cells, folders, bad, th, x = diagnose.run_predict(model, [str(folder)], keep_inputs=True)
    assert len(cells) == 34 and [p.split("/")[-1] for p, _ in bad] == ["broken.png"]
    assert all(0.0 <= c.prob <= 1.0 for c in cells) and th == model.threshold
    assert np.allclose(x[..., 0], x[..., 1]) and np.allclose(
        x[..., 1], x[..., 2]
    )  # gray model: luminance
    assert {f.folder.split("/")[-1]: f.cells for f in folders} == {
        "Parasitized": 11,
        "Uninfected": 23,
    }
    for f in folders:
        assert f.ci_low <= f.parasitemia <= f.ci_high
    # in small chunks: the same cells and probabilities, progress counted up to every file
    seen = []
    again, *_ = diagnose.run_predict(
        model, [str(folder)], chunk=4, on_progress=lambda done, total: seen.append((done, total))
    )
    assert [(c.path, round(c.prob, 5)) for c in again] == [
        (c.path, round(c.prob, 5)) for c in cells
    ]
    assert seen[0] == (0, 35) and seen[-1] == (35, 35) and len(seen) == 1 + 9


@pytest.mark.slow
def test_tta_is_the_mean_over_the_eight_symmetries(model, rgb_dir):
    files, _ = diagnose.collect([str(rgb_dir / "Parasitized")])
    x, _, _ = diagnose.load_images(files[:4], model.image_size, gray=True)
    manual = np.mean(
        [model.probabilities(np.ascontiguousarray(v)) for v in tta.dihedral(x)], axis=0
    )
    np.testing.assert_allclose(diagnose.probabilities(model, x, tta=True), manual, atol=1e-6)
    assert len({v.tobytes() for v in tta.dihedral(x)}) == 8


def test_wilson_interval():
    lo, hi = diagnose.wilson(5, 10)
    assert abs(lo - 0.2366) < 1e-3 and abs(hi - 0.7634) < 1e-3
    assert diagnose.wilson(0, 20)[0] == 0.0 and diagnose.wilson(20, 20)[1] == 1.0


@pytest.mark.slow
def test_gradcam_maps_and_overlays(model, rgb_dir, tmp_path):
    files, _ = diagnose.collect([str(rgb_dir / "Parasitized")])
    x, ok, _ = diagnose.load_images(files[:3], model.image_size, gray=True)
    cams = explain.gradcam(model.model, x)
    assert cams.shape == x.shape[:3] and cams.min() >= 0 and cams.max() <= 1 + 1e-6
    assert all(c.std() > 0 for c in cams)
    out = explain.write_overlays(model.model, x, ok, tmp_path / "cams")
    assert len(out) == 3 and all(p.stat().st_size > 0 for p in out)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fmt, quantize", [("keras", None), ("savedmodel", None), ("tflite", None), ("tflite", "int8")]
)
def test_exports_agree_with_the_original_and_predict_reads_them(
    tiny_run, model, rgb_dir, tmp_path, fmt, quantize
):
    from malaria_tui.engine.export import export_run

    out = tmp_path / f"m.{fmt}" if fmt != "savedmodel" else tmp_path / "sm"
    report = export_run(tiny_run.path, fmt, str(out), quantize)
    assert report["checked_on"] > 0
    exported = predictor.load(out)
    assert exported.threshold == model.threshold and exported.color == "gray"
    files, _ = diagnose.collect([str(rgb_dir)])
    x, _, _ = diagnose.load_images(files[:8], model.image_size, gray=True)
    diff = np.abs(exported.probabilities(x) - model.probabilities(x)).max()
    if quantize:
        assert "accuracy_change" in report and diff < 0.25
    else:
        assert report["max_abs_diff"] <= 1e-4 and diff <= 1e-4


@pytest.mark.slow
def test_bad_models_and_paths_are_one_line_errors(tmp_path, capsys, tiny_run, rgb_dir):
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ([str(fake), str(rgb_dir)], "not a Keras model file"),
        ([str(tmp_path / "nope"), str(rgb_dir)], "no such model or run directory"),
        ([str(tiny_run.path), str(empty)], "no images found"),
        ([str(tiny_run.path), str(tmp_path / "nothing")], "no such file or folder"),
        ([str(tiny_run.path), str(rgb_dir), "--threshold", "2"], "must be between 0 and 1"),
    ]
    for argv, needle in cases:
        assert main(["predict", *argv]) == ExitCode.USAGE
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err


@pytest.mark.slow
def test_predict_cli_csv(tiny_run, rgb_dir, capsys, tmp_path):
    assert (
        main(
            [
                "predict",
                str(tiny_run.path),
                str(rgb_dir),
                "--csv",
                "--tta",
                "--explain",
                str(tmp_path / "cams"),
            ]
        )
        == ExitCode.OK
    )
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "path,prob_parasitized,label" and len(rows) == 35
    assert len(list((tmp_path / "cams").glob("*.gradcam.png"))) == 34


def test_table_paths_are_the_shortest_tails_that_tell_cells_apart():
    from malaria_tui.engine.inference.diagnose import short_paths

    got = short_paths(["/d/P/cell_1.png", "/d/U/cell_1.png", "/d/U/cell_2.png"])
    assert got == {
        "/d/P/cell_1.png": "P/cell_1.png",
        "/d/U/cell_1.png": "U/cell_1.png",
        "/d/U/cell_2.png": "cell_2.png",
    }
    folders = [
        "/home/x/shared/data/malaria-rgb/Parasitized",
        "/home/x/shared/data/malaria-rgb/Uninfected",
    ]
    assert list(short_paths(folders).values()) == ["Parasitized", "Uninfected"]
