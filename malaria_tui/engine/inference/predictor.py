"""Load a model for diagnosis from a run, a ``.keras`` file, a SavedModel or a ``.tflite`` file.

Every form answers the same question, ``probabilities(images)`` -> P(Parasitized), and
carries the operating threshold chosen on its run's validation split when one is known.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from malaria_tui.engine import rundir
from malaria_tui.engine.errors import UserError
from malaria_tui.engine.tfenv import tf as _tf

SIDECAR = ".malaria.json"  # next to an exported model: image size and thresholds


def _register_custom_objects() -> None:
    import malaria_tui.engine.models.layers  # noqa: F401
    import malaria_tui.engine.models.lenet  # noqa: F401
    import malaria_tui.engine.training.keras_metrics  # noqa: F401


def load_keras(path: Path):
    """A ``.keras`` file with ``safe_mode=True``: code inside the file (Lambda layers) is refused."""
    _tf()
    import keras

    _register_custom_objects()
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a Keras model file (.keras files are zip archives)")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except ValueError as e:
        if "safe_mode" in str(e) or "Lambda" in str(e):
            raise UserError(
                f"{path}: refused: the model contains arbitrary Python code (a Lambda layer), which "
                "safe_mode does not load because it could run anything; re-save it without Lambda layers"
            ) from None
        raise UserError(f"{path}: cannot load this Keras model ({_first_line(e)})") from None
    except Exception as e:  # noqa: BLE001 - Keras raises many types for a bad file
        raise UserError(f"{path}: cannot load this Keras model ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__


@dataclass
class Predictor:
    kind: str  # keras | savedmodel | tflite
    source: str
    image_size: int
    thresholds: dict = field(default_factory=dict)
    operating_point: str = "sensitivity_target"
    color: str = "rgb"  # "gray": the model was trained on grayscale cells; inputs are converted
    _fn: object = None
    model: object = None  # the Keras model, when kind == "keras" (Grad-CAM needs it)

    @property
    def threshold(self) -> float:
        return float(self.thresholds.get(self.operating_point, self.thresholds.get("default", 0.5)))

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """P(Parasitized) for float images in [0,1] of shape (N, size, size, 3)."""
        out = [
            self._fn(np.ascontiguousarray(images[i : i + batch_size], np.float32))
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out).ravel() if out else np.zeros(0)


def _keras_fn(model):
    tf = _tf()

    @tf.function(reduce_retracing=True)
    def fn(x):
        return model(x, training=False)

    return lambda x: np.asarray(fn(tf.convert_to_tensor(x)))


def _savedmodel_fn(path: Path):
    tf = _tf()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:  # noqa: BLE001
        raise UserError(f"{path}: not a SavedModel ({_first_line(e)})") from None
    fn = loaded.signatures.get("serving_default")
    if fn is None:
        raise UserError(f"{path}: the SavedModel has no serving_default signature")
    spec = list(fn.structured_input_signature[1].values())[0]
    name = list(fn.structured_input_signature[1])[0]
    size = int(spec.shape[1]) if spec.shape[1] else None

    def call(x):
        out = fn(**{name: tf.convert_to_tensor(x)})
        return np.asarray(list(out.values())[0])

    return call, size, loaded


def _tflite_fn(path: Path):
    tf = _tf()
    try:
        interp = tf.lite.Interpreter(model_path=str(path), num_threads=None)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"{path}: not a TFLite model ({_first_line(e)})") from None
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    size = int(inp["shape"][1])

    def call(x):
        results = []
        interp.resize_tensor_input(inp["index"], [len(x), size, size, 3])
        interp.allocate_tensors()
        i = interp.get_input_details()[0]
        o = interp.get_output_details()[0]
        data = x
        if i["dtype"] != np.float32:  # int8-quantized input
            scale, zero = i["quantization"]
            data = np.clip(np.round(x / scale + zero), -128, 127).astype(i["dtype"])
        interp.set_tensor(i["index"], data)
        interp.invoke()
        y = interp.get_tensor(o["index"])
        if o["dtype"] != np.float32:
            scale, zero = o["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        results.append(y)
        return np.concatenate(results)

    del out
    return call, size, interp


def _sidecar(path: Path) -> dict:
    side = path.with_name(path.name + SIDECAR) if path.is_file() else path / SIDECAR
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError):
        return {}


def load(source: str | Path, operating_point: str | None = None) -> Predictor:
    """A run directory, a ``.keras`` file, a SavedModel directory or a ``.tflite`` file."""
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such model or run directory")
    if path.is_dir() and (path / rundir.CONFIG).is_file():
        run = rundir.open_run(path)
        from malaria_tui.engine.evaluation.score_run import load_best, run_thresholds

        cfg = run.load_config()
        model = load_best(run)
        p = Predictor(
            "keras",
            str(run.best_model),
            cfg.data.image_size,
            run_thresholds(run),
            cfg.eval.operating_point,
        )
        p.color = cfg.data.color if cfg.data.color != "auto" else "rgb"
        p._fn, p.model = _keras_fn(model), model
    elif path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise UserError(
                f"{path}: neither a run directory (no config.toml) nor a SavedModel (no saved_model.pb)"
            )
        fn, size, keep = _savedmodel_fn(path)
        meta = _sidecar(path)
        p = Predictor(
            "savedmodel", str(path), meta.get("image_size", size), meta.get("thresholds", {})
        )
        p._fn, p.model = fn, keep
    elif path.suffix == ".tflite":
        fn, size, keep = _tflite_fn(path)
        meta = _sidecar(path)
        p = Predictor("tflite", str(path), size, meta.get("thresholds", {}))
        p._fn, p.model = fn, keep
        p._keep = keep
    elif path.suffix == ".keras":
        model = load_keras(path)
        shape = model.inputs[0].shape if getattr(model, "inputs", None) else (None, None)
        meta = _sidecar(path)
        size = meta.get("image_size") or (int(shape[1]) if shape[1] else 64)
        p = Predictor("keras", str(path), size, meta.get("thresholds", {}))
        p._fn, p.model = _keras_fn(model), model
    else:
        raise UserError(
            f"{path}: unknown model format; give a run directory, a .keras or .tflite file, or a SavedModel folder"
        )
    if p.kind != "keras" or not path.is_dir():
        p.color = _sidecar(path).get("color", p.color)
    if operating_point:
        p.operating_point = operating_point
    p.thresholds.setdefault("default", 0.5)
    return p
