""".tflite models run through LiteRT (``ai-edge-litert``), and ``predict`` on one never imports
TensorFlow: not in this venv (TensorFlow blocked in a subprocess) and not in a fresh venv that
has no TensorFlow at all (the smallest install that can diagnose).

Everything that needs an export trains the tiny run first, so it is slow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from malaria_tui.engine.errors import ModelFileError
from malaria_tui.engine.inference import diagnose, predictor
from tests.conftest import REPO, SAMPLE

# What the smallest install adds to ``pip install --no-deps malaria-tui`` to diagnose with an
# exported .tflite model (README); numpy comes with ai-edge-litert.
SMALLEST = ["ai-edge-litert", "pillow", "rich"]
BLOCKED = ("tensorflow", "keras", "tensorflow_datasets", "tf_keras")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}

# Runs the installed ``malaria-tui`` console script (its [project.scripts] entry point) with
# TensorFlow and Keras made unimportable; every attempt to import them is reported on stderr,
# even one the code would catch.
NO_TF = textwrap.dedent(
    f"""
    import sys
    from importlib.abc import MetaPathFinder
    from importlib.metadata import entry_points

    tried = []

    class Block(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                tried.append(name)
                raise ModuleNotFoundError(f"blocked: {{name}}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    (script,) = entry_points(group="console_scripts", name="malaria-tui")
    sys.argv[0] = "malaria-tui"
    try:
        rc = script.load()()
    finally:
        print("BLOCKED_IMPORTS=" + ",".join(tried), file=sys.stderr)
    sys.exit(rc)
    """
)


def _predict_without_tf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-c", NO_TF, "predict", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        cwd=cwd,
    )
    tried = [line for line in out.stderr.splitlines() if line.startswith("BLOCKED_IMPORTS=")]
    assert tried == ["BLOCKED_IMPORTS="], f"TensorFlow or Keras imported: {out.stderr}"
    assert "deprecated" not in out.stderr, out.stderr
    out.stderr = out.stderr.replace("BLOCKED_IMPORTS=", "").strip()
    return out


def _one_cell() -> Path:
    return sorted((SAMPLE / "Parasitized").glob("*.png"))[0]


@pytest.fixture(scope="module")
def exports(tiny_run, tmp_path_factory) -> dict[str, Path]:
    """The tiny run exported as a float and as an int8 .tflite model (each checked by export)."""
    from malaria_tui.engine.export import export_run

    out = tmp_path_factory.mktemp("litert")
    paths = {"float": out / "model.tflite", "int8": out / "model-int8.tflite"}
    export_run(tiny_run.path, "tflite", str(paths["float"]))
    export_run(tiny_run.path, "tflite", str(paths["int8"]), "int8")
    return paths


@pytest.fixture(scope="module")
def keras_model(tiny_run):
    return predictor.load(tiny_run.path)


def _real_cells(size: int, gray: bool, n: int = 100) -> np.ndarray:
    files = sorted(SAMPLE.rglob("*.png"))[::7][:n]  # both classes, many patients
    x, ok, bad = diagnose.load_images(files, size, gray)
    assert len(ok) == n and not bad
    return x


def _tensorflow_tflite(path: Path, x: np.ndarray) -> np.ndarray | None:
    """P(Parasitized) from TensorFlow's own TFLite interpreter, one image at a time (its
    allocated batch of 1), quantizing as the model's input and output say; None without it."""
    from malaria_tui.engine.tfenv import tf

    lite = getattr(tf(), "lite", None)
    if not hasattr(lite, "Interpreter"):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation warning: the very reason for LiteRT
        interp = lite.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    out = []
    for img in x:
        data = img[None].astype(np.float32)
        if i["dtype"] == np.int8:
            scale, zero = i["quantization"]
            data = np.clip(np.round(data / scale + zero), -128, 127).astype(np.int8)
        interp.set_tensor(i["index"], data)
        interp.invoke()
        y = interp.get_tensor(o["index"])
        if o["dtype"] == np.int8:
            scale, zero = o["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        out.append(float(y.ravel()[0]))
    return np.array(out)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["float", "int8"])
def test_litert_agrees_with_tensorflows_tflite_interpreter_on_real_cells(
    exports, keras_model, kind
):
    model = predictor.load(exports[kind])
    assert model.kind == "tflite" and type(model.model).__module__.startswith("ai_edge_litert")
    assert model.image_size == keras_model.image_size and model.color == "gray"
    x = _real_cells(model.image_size, gray=True)
    got = model.probabilities(x)
    # batches of any size (the interpreter is resized): 100 = 3 x 32 + 4, then 1 at a time
    np.testing.assert_array_equal(model.probabilities(x, batch_size=32), got)
    np.testing.assert_array_equal(model.probabilities(x[:3], batch_size=1), got[:3])
    assert got.shape == (len(x),) and np.all((got >= 0) & (got <= 1))
    ref = _tensorflow_tflite(exports[kind], x)
    step = 0.0 if kind == "float" else model.model.get_output_details()[0]["quantization"][0]
    if ref is not None:  # the same file through TensorFlow's runtime: the same answers
        assert np.abs(got - ref).max() <= step + 1e-6
    # and the Keras model it was exported from, within the export's own tolerance
    diff = np.abs(got - keras_model.probabilities(x)).max()
    assert diff <= (1e-4 if kind == "float" else 0.25)


def test_a_foreign_or_empty_tflite_file_is_one_line_without_tensorflow(tmp_path):
    foreign, empty, png = tmp_path / "x.tflite", tmp_path / "empty.tflite", tmp_path / "p.tflite"
    foreign.write_text("not a model")
    empty.write_bytes(b"")
    shutil.copy(_one_cell(), png)
    for bad in (foreign, empty, png):
        with pytest.raises(ModelFileError, match="not a TFLite model"):
            predictor.load(bad)
    out = _predict_without_tf(str(foreign), str(_one_cell()), cwd=tmp_path)
    assert out.returncode == 2 and "not a TFLite model" in out.stderr, out.stderr
    assert "\n" not in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_a_truncated_export_is_one_line(exports, tmp_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(exports["float"].read_bytes()[:20_000])
    with pytest.raises(ModelFileError, match="not a TFLite model"):
        predictor.load(cut)
    out = _predict_without_tf(str(cut), str(_one_cell()), cwd=tmp_path)
    assert out.returncode == 2 and "not a TFLite model" in out.stderr, out.stderr
    assert "\n" not in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_predict_on_a_tflite_model_never_imports_tensorflow(exports, keras_model, cells, tmp_path):
    one = _one_cell()
    # a table for one cell
    out = _predict_without_tf(str(exports["float"]), str(one), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (
        "(tflite, 32px)" in out.stdout and "1 cells" in out.stdout and one.stem[:12] in out.stdout
    )
    # --json on one cell and a folder: the Keras model's probabilities (float export)
    out = _predict_without_tf(str(exports["float"]), str(one), str(cells), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["cells"]) == 61 and not report["unreadable"]
    want, folders, *_ = diagnose.run_predict(keras_model, [str(one), str(cells)])
    assert [(f["folder"], f["cells"]) for f in report["folders"]] == [
        (f.folder, f.cells) for f in folders
    ]
    assert sorted(f.cells for f in folders) == [1, 30, 30]
    want_p = {c.path: c.prob for c in want}
    assert max(abs(c["prob"] - want_p[c["path"]]) for c in report["cells"]) <= 1e-4
    # the int8 export on a folder, as a table with the per-folder parasitemia
    out = _predict_without_tf(str(exports["int8"]), str(cells), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "60 cells" in out.stdout and "per folder" in out.stdout and "%" in out.stdout


@pytest.mark.slow
def test_the_smallest_install_diagnoses_with_an_exported_model(exports, cells, tmp_path):
    """A fresh venv (no system site packages): ``pip install --no-deps`` of the project, then
    only SMALLEST (from the package index pip is configured with, as in CI)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "malaria_tui", src / "malaria_tui", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {k: v for k, v in ENV.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    venv = tmp_path / "venv"

    def run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path
        )

    made = run(sys.executable, "-m", "venv", str(venv))
    assert made.returncode == 0, made.stderr
    py = str(venv / "bin" / "python")
    for step in (["--no-deps", str(src)], SMALLEST):
        got = run(py, "-m", "pip", "install", "--quiet", *step)
        assert got.returncode == 0, got.stdout + got.stderr
    listed = run(py, "-m", "pip", "list", "--format=json")
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "malaria-tui" in installed and not installed & {"tensorflow", "keras", "pydantic"}
    assert run(py, "-c", "import tensorflow").returncode != 0

    script = str(venv / "bin" / "malaria-tui")
    out = run(script, "predict", str(exports["int8"]), str(cells), "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["cells"]) == 60 and sum(f["cells"] for f in report["folders"]) == 60
    here = predictor.load(exports["int8"])
    want, *_ = diagnose.run_predict(here, [str(cells)])
    want_p = {c.path: c.prob for c in want}
    assert max(abs(c["prob"] - want_p[c["path"]]) for c in report["cells"]) <= 1e-5
    table = run(script, "predict", str(exports["float"]), str(_one_cell()), timeout=120)
    assert table.returncode == 0 and "(tflite, 32px)" in table.stdout, table.stderr
