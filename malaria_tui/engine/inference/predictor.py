"""Load a model for diagnosis from a run, a CV directory's fold ensemble, a ``.keras`` file, a
SavedModel or a ``.tflite`` file.

Every form answers the same question, ``probabilities(images)`` -> P(Parasitized), and
carries the operating threshold chosen on its run's validation split when one is known.
A ``.tflite`` file runs through LiteRT (``ai-edge-litert``) and never imports TensorFlow, so
diagnosing with one starts in a fraction of a second, and works where TensorFlow is not
installed at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from malaria_tui.engine import rundir
from malaria_tui.engine.errors import ModelFileError, UserError, one_line
from malaria_tui.engine.inference import fold_ensemble
from malaria_tui.engine.models.loading import load_keras
from malaria_tui.engine.tfenv import tf as _tf

SIDECAR = ".malaria.json"  # next to an exported model: image size and thresholds

ProbabilityFn = Callable[[np.ndarray], np.ndarray]  # float images -> P(Parasitized)


@dataclass
class Predictor:
    kind: str  # keras | savedmodel | tflite
    source: str
    image_size: int
    fn: ProbabilityFn = field(repr=False)
    model: Any = field(repr=False)  # the Keras model for kind keras (Grad-CAM needs it)
    thresholds: dict[str, float] = field(default_factory=dict)
    operating_point: str = "sensitivity_target"
    color: str = "rgb"  # "gray": the model was trained on grayscale cells; inputs are converted
    # Test-time augmentation by default (``predict`` without --tta/--no-tta): a fold ensemble's
    # eval.tta, or an ensemble export's sidecar; its thresholds were chosen on TTA probabilities
    tta: bool = False
    members: tuple[str, ...] = ()  # a fold ensemble (or its export): the fold runs it averages

    @property
    def explainable(self) -> bool:
        """Grad-CAM needs one Keras model's last convolution; an ensemble has one per member."""
        return self.kind == "keras" and not self.members

    @property
    def threshold(self) -> float:
        return float(self.thresholds.get(self.operating_point, self.thresholds.get("default", 0.5)))

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """P(Parasitized) for float images in [0,1] of shape (N, size, size, 3)."""
        out = [
            self.fn(np.ascontiguousarray(images[i : i + batch_size], np.float32))
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out).ravel() if out else np.zeros(0)


def _keras_fn(model: Any) -> ProbabilityFn:
    tf = _tf()

    @tf.function(reduce_retracing=True)
    def fn(x: Any) -> Any:
        return model(x, training=False)

    return lambda x: np.asarray(fn(tf.convert_to_tensor(x)))


def _savedmodel_fn(path: Path) -> tuple[ProbabilityFn, int | None, Any]:
    tf = _tf()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:  # TensorFlow raises many types for a foreign file
        raise ModelFileError(f"{path}: not a SavedModel ({one_line(e)})") from None
    fn = loaded.signatures.get("serving_default")
    if fn is None:
        raise ModelFileError(f"{path}: the SavedModel has no serving_default signature")
    spec = list(fn.structured_input_signature[1].values())[0]
    name = list(fn.structured_input_signature[1])[0]
    size = int(spec.shape[1]) if spec.shape[1] else None

    def call(x: np.ndarray) -> np.ndarray:
        out = fn(**{name: tf.convert_to_tensor(x)})
        return np.asarray(list(out.values())[0])

    return call, size, loaded


def _litert_interpreter(path: Path) -> Any:
    """LiteRT's interpreter for ``path`` (``ai-edge-litert``; TensorFlow is never imported)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise UserError(
            f"{path}: running a .tflite model needs LiteRT; pip install ai-edge-litert"
        ) from None
    try:
        interp = Interpreter(model_path=str(path))
        interp.allocate_tensors()
    except Exception as e:  # LiteRT raises ValueError or RuntimeError for a foreign file
        raise ModelFileError(f"{path}: not a TFLite model ({one_line(e)})") from None
    return interp


def _tflite_fn(path: Path) -> tuple[ProbabilityFn, int, Any]:
    """Runs through LiteRT: float or int8-quantized input and output, any batch size."""
    interp = _litert_interpreter(path)
    inputs, outputs = interp.get_input_details(), interp.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]["shape"]) != 4:
        raise ModelFileError(f"{path}: not a cell classifier (one image input, one output)")
    size = int(inputs[0]["shape"][1])
    batch = [int(inputs[0]["shape"][0])]  # the batch size the tensors are allocated for

    def call(x: np.ndarray) -> np.ndarray:
        if len(x) != batch[0]:
            interp.resize_tensor_input(inputs[0]["index"], [len(x), size, size, 3])
            interp.allocate_tensors()
            batch[0] = len(x)
        i = interp.get_input_details()[0]
        o = interp.get_output_details()[0]
        data = x
        if i["dtype"] != np.float32:  # int8-quantized input
            scale, zero = i["quantization"]
            lo, hi = np.iinfo(i["dtype"]).min, np.iinfo(i["dtype"]).max
            data = np.clip(np.round(x / scale + zero), lo, hi).astype(i["dtype"])
        interp.set_tensor(i["index"], data)
        interp.invoke()
        y = interp.get_tensor(o["index"])
        if o["dtype"] != np.float32:  # int8-quantized output
            scale, zero = o["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, np.float32)

    return call, size, interp


def _sidecar(path: Path) -> dict[str, Any]:
    side = path.with_name(path.name + SIDECAR) if path.is_file() else path / SIDECAR
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError):
        return {}


def load(source: str | Path, operating_point: str | None = None) -> Predictor:
    """A run directory, a cross-validation directory (its fold models averaged), a ``.keras``
    file, a SavedModel directory or a ``.tflite`` file."""
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such model or run directory")
    if path.is_dir() and (path / rundir.CONFIG).is_file():
        run = rundir.open_run(path)
        from malaria_tui.engine.evaluation.score_run import load_best, run_thresholds

        cfg = run.trained_config()
        model = load_best(run)
        p = Predictor(
            "keras",
            str(run.best_model),
            cfg.data.image_size,
            _keras_fn(model),
            model,
            run_thresholds(run),
            cfg.eval.operating_point,
            color=cfg.data.color if cfg.data.color != "auto" else "rgb",
        )
    elif path.is_dir() and fold_ensemble.is_cv(path):
        ens = fold_ensemble.open_ensemble(path)
        model = ens.model()
        p = Predictor(
            "keras",
            str(ens.cv.path),
            ens.image_size,
            _keras_fn(model),
            model,
            dict(ens.thresholds),
            ens.config.eval.operating_point,
            color=ens.color,
            tta=ens.config.eval.tta,
            members=tuple(str(r.path) for r in ens.runs),
        )
    elif path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise UserError(
                f"{path}: neither a run directory (no config.toml) nor a SavedModel (no saved_model.pb)"
            )
        fn, size, keep = _savedmodel_fn(path)
        meta = _sidecar(path)
        p = Predictor(
            "savedmodel",
            str(path),
            meta.get("image_size") or size or 64,  # 64: as for a .keras file without a size
            fn,
            keep,
            meta.get("thresholds", {}),
        )
    elif path.suffix == ".tflite":
        fn, size, keep = _tflite_fn(path)
        meta = _sidecar(path)
        p = Predictor("tflite", str(path), size, fn, keep, meta.get("thresholds", {}))
    elif path.suffix == ".keras":
        model = load_keras(path)
        shape = model.inputs[0].shape if getattr(model, "inputs", None) else (None, None)
        meta = _sidecar(path)
        size = meta.get("image_size") or (int(shape[1]) if shape[1] else 64)
        p = Predictor("keras", str(path), size, _keras_fn(model), model, meta.get("thresholds", {}))
    else:
        raise UserError(
            f"{path}: unknown model format; give a run directory, a .keras or .tflite file, or a SavedModel folder"
        )
    if p.kind != "keras" or not path.is_dir():
        p.color = _sidecar(path).get("color", p.color)
        p.tta = bool(_sidecar(path).get("tta", p.tta))
        p.members = tuple(_sidecar(path).get("members", p.members))
    if operating_point:
        p.operating_point = operating_point
    p.thresholds.setdefault("default", 0.5)
    return p
