"""Every saved model goes through one loader, and each way a file can be unusable is one line."""

from pathlib import Path

import numpy as np
import pytest

from malaria_tui.cli import ExitCode, main
from malaria_tui.engine import config
from malaria_tui.engine.errors import ModelFileError, UserError
from malaria_tui.engine.models import registry
from malaria_tui.engine.models.loading import load_keras

PACKAGE = Path(__file__).resolve().parents[1] / "malaria_tui"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A real (untrained) LeNet saved as .keras."""
    cfg = config.load(None, ['model.name="lenet"', "data.image_size=32"])
    path = tmp_path_factory.mktemp("models") / "lenet.keras"
    registry.build_model(cfg).save(path)
    return path


def _lambda_model(path: Path) -> Path:
    import keras

    inp = keras.Input((32, 32, 3))
    out = keras.layers.Dense(1, activation="sigmoid")(
        keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Flatten()(inp))
    )
    keras.Model(inp, out).save(path)
    return path


def test_a_saved_model_loads_back_uncompiled(saved):
    model = load_keras(saved)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    assert np.asarray(model(x, training=False)).shape == (2, 1) and not model.compiled


@pytest.mark.parametrize("case", ["missing", "truncated", "foreign", "lambda"])
def test_an_unusable_model_file_is_one_line(saved, tmp_path, capsys, rgb_dir, case):
    path = tmp_path / f"{case}.keras"
    if case == "truncated":  # a copy cut short
        data = saved.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "foreign":
        path.write_text("not a model")
    elif case == "lambda":  # code inside the file: safe mode refuses it
        _lambda_model(path)
    needle = {
        "missing": "no such model file",
        "truncated": "truncated or damaged",
        "foreign": "not a Keras model file",
        "lambda": "arbitrary Python code",
    }[case]
    with pytest.raises(ModelFileError, match=needle) as e:
        load_keras(path)
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)
    if case != "missing":  # predict says "no such model or run directory" before loading
        assert main(["predict", str(path), str(rgb_dir)]) == ExitCode.USAGE
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err and "Traceback" not in err


def test_no_other_module_loads_keras_files():
    loaders = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if "load_model(" in p.read_text(encoding="utf-8")
    ]
    assert loaders == ["engine/models/loading.py"]
