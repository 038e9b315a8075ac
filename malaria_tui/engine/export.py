"""Export a run's best model (Keras, SavedModel, TFLite float or int8) and check it.

Every export is compared with the original model on the run's own test images, loaded the way
``predict`` loads it (a ``.tflite`` file through LiteRT, ``ai-edge-litert``): float exports
must agree to 1e-4 in probability; an int8 export reports its accuracy change instead.
A ``<export>.malaria.json`` sidecar carries the image size and the run's thresholds, so
``predict`` on the exported file uses the same operating point.

A cross-validation directory exports as one model that averages its fold models
(:func:`export_ensemble`), checked against the mean of the members' probabilities on the CV's
outer test images, with the ensemble's thresholds (chosen out of fold) in the sidecar.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from malaria_tui.engine import atomic, rundir
from malaria_tui.engine.config import Config
from malaria_tui.engine.errors import UserError
from malaria_tui.engine.evaluation import measures
from malaria_tui.engine.tfenv import KerasModel
from malaria_tui.engine.tfenv import tf as _tf

FORMATS = ("keras", "savedmodel", "tflite")


def _test_images(cfg: Config, limit: int = 512) -> tuple[np.ndarray, np.ndarray, Any]:
    """Up to ``limit`` test images and labels as arrays, and the prepared data."""
    from malaria_tui.engine.data import pipeline

    prepared = pipeline.prepare(cfg)
    xs, ys = [], []
    for x, y in prepared.eval_dataset("test"):
        xs.append(np.asarray(x))
        ys.append(np.asarray(y).ravel())
        if sum(len(a) for a in xs) >= limit:
            break
    return np.concatenate(xs)[:limit], np.concatenate(ys)[:limit], prepared


def _representative(prepared: Any, n: int = 200) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Training images, one by one, for int8 calibration."""

    def gen() -> Iterator[list[np.ndarray]]:
        count = 0
        for x, _ in prepared.train_epoch(0, augment=False):
            for img in np.asarray(x):
                yield [img[None].astype(np.float32)]
                count += 1
                if count >= n:
                    return

    return gen


def _prepare_destination(dest: Path, folder: bool) -> None:
    """Make the folder an export goes into, or say in one line why it cannot be, before any
    slow work starts."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(
            f"--out {dest}: cannot create the folder {dest.parent} ({e.strerror}); "
            "choose another path"
        ) from None
    if not os.access(dest.parent, os.W_OK):
        raise UserError(f"--out {dest}: {dest.parent} is not writable; choose another path")
    if dest.is_dir() and not folder:
        raise UserError(f"--out {dest}: is a folder; give a file name")
    if dest.exists() and not dest.is_dir() and folder:
        raise UserError(f"--out {dest}: is a file; a SavedModel is a folder, give a new name")


def export_run(
    run_path: str | os.PathLike[str], fmt: str, out: str | None = None, quantize: str | None = None
) -> dict[str, Any]:
    """Write the export and return a report: path, size, agreement with the original."""
    from malaria_tui.engine.evaluation.score_run import load_best, run_thresholds
    from malaria_tui.engine.inference import fold_ensemble

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    if quantize and (quantize != "int8" or fmt != "tflite"):
        raise UserError("--quantize int8 goes with --format tflite only")
    if fold_ensemble.is_cv(run_path):
        return export_ensemble(run_path, fmt, out, quantize)
    run = rundir.open_run(run_path)
    dest = _destination(run.path, "model", fmt, out, quantize)
    cfg = run.trained_config()  # "auto" colour as training resolved it (a grid trial too)
    model = load_best(run)
    _write_model(model, fmt, dest, cfg, quantize)
    thresholds = run_thresholds(run)
    atomic.write_json(
        _sidecar_path(dest, fmt),
        {
            "image_size": cfg.data.image_size,
            "color": cfg.data.color,
            "thresholds": thresholds,
            "run": str(run.path),
            "positive": "Parasitized",
        },
    )
    return _checked(model, dest, cfg, quantize)


def export_ensemble(
    cv_path: str | os.PathLike[str], fmt: str, out: str | None = None, quantize: str | None = None
) -> dict[str, Any]:
    """A CV directory's fold models as one model that averages them (``models/ensemble.py``),
    written and checked like a single export: against the mean of the members' probabilities
    on the CV's outer test images."""
    from malaria_tui.engine.inference import fold_ensemble

    ens = fold_ensemble.open_ensemble(cv_path)
    ens.check_one_input()  # folds of different input sizes cannot be averaged by one model
    dest = _destination(ens.cv.path, "ensemble", fmt, out, quantize)
    model = ens.model()
    cfg = ens.config  # fold 1's: its test split is the outer test split every fold shares
    _write_model(model, fmt, dest, cfg, quantize)
    atomic.write_json(
        _sidecar_path(dest, fmt),
        {
            "image_size": ens.image_size,
            "color": ens.color,
            "thresholds": ens.thresholds,
            "tta": cfg.eval.tta,  # the thresholds were chosen on probabilities with TTA
            "cv": str(ens.cv.path),
            "members": [str(r.path) for r in ens.runs],
            "positive": "Parasitized",
        },
    )
    report = _checked(model, dest, cfg, quantize, reference=ens.mean_probability)
    return report | {"members": len(ens.runs)}


def _destination(home: Path, stem: str, fmt: str, out: str | None, quantize: str | None) -> Path:
    """``--out``, or ``HOME/export/<stem>.<format>``; its folder made (or refused) up front."""
    suffix = {
        "keras": ".keras",
        "savedmodel": "",
        "tflite": "-int8.tflite" if quantize else ".tflite",
    }[fmt]
    dest = Path(out).expanduser() if out else home / "export" / f"{stem}{suffix or '-savedmodel'}"
    _prepare_destination(dest, folder=fmt == "savedmodel")
    return dest


def _sidecar_path(dest: Path, fmt: str) -> Path:
    from malaria_tui.engine.inference import predictor as pr

    return dest.with_name(dest.name + pr.SIDECAR) if fmt != "savedmodel" else dest / pr.SIDECAR


def _write_model(
    model: KerasModel, fmt: str, dest: Path, cfg: Config, quantize: str | None
) -> None:
    tf = _tf()
    if fmt == "keras":
        from malaria_tui.engine.training.checkpoints import save_model

        save_model(model, dest)
    else:
        saved = dest.parent / f".{dest.name}.savedmodel.tmp"
        shutil.rmtree(saved, ignore_errors=True)
        model.export(str(saved), format="tf_saved_model", verbose=False)
        if fmt == "savedmodel":
            shutil.rmtree(dest, ignore_errors=True)
            saved.replace(dest)
        else:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
            if quantize:
                _, _, prepared = _test_images(cfg, 1)
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = _representative(prepared)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
            atomic.write_bytes(dest, converter.convert())
            shutil.rmtree(saved, ignore_errors=True)


def _checked(
    model: KerasModel,
    dest: Path,
    cfg: Config,
    quantize: str | None,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """:func:`check`, removing the export when it fails."""
    try:
        return check(model, dest, cfg, quantized=bool(quantize), reference=reference)
    except UserError:
        shutil.rmtree(dest, ignore_errors=True) if dest.is_dir() else dest.unlink(missing_ok=True)
        raise


def check(
    model: KerasModel,
    dest: Path,
    cfg: Config,
    quantized: bool,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """The export at ``dest``, loaded as ``predict`` loads it, against ``reference`` (default:
    ``model`` itself) on up to 512 of ``cfg``'s test images."""
    from malaria_tui.engine.inference import predictor as pr

    x, y, _ = _test_images(cfg)
    if reference is not None:
        ref = np.asarray(reference(x)).ravel() if len(x) else np.zeros(0)
    else:
        ref = np.asarray(model(x, training=False)).ravel()
    got = pr.load(dest).probabilities(x)
    diff = float(np.max(np.abs(ref - got))) if len(x) else 0.0
    acc_ref = measures.binary_metrics(y, ref, 0.5)["accuracy"]
    acc_got = measures.binary_metrics(y, got, 0.5)["accuracy"]
    size = sum(f.stat().st_size for f in dest.rglob("*")) if dest.is_dir() else dest.stat().st_size
    report = {
        "path": str(dest),
        "bytes": int(size),
        "checked_on": int(len(x)),
        "max_abs_diff": diff,
        "accuracy_original": acc_ref,
        "accuracy_export": acc_got,
        "accuracy_change": acc_got - acc_ref,
        "quantized": quantized,
    }
    if not quantized and diff > 1e-4:
        raise UserError(
            f"{dest}: export disagrees with the original model by {diff:.2e} (> 1e-4); not usable"
        )
    return report
