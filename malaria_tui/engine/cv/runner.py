"""``malaria-tui cv``: K folds trained as the trials of a grid, then scored out of fold.

The folds are a grid over ``data.cv_fold`` (``engine/grid/search.py`` runs them: claims,
``--parallel``, ``--shard``, resume and the HParams screen come with it). When every fold has
finished, :func:`finish` scores each fold's best model on the fold it never saw (``oof.csv``)
and on the outer test split, averages the fold models into the ensemble, chooses the
ensemble's thresholds on the out-of-fold probabilities (never on the test split) and writes
the tables of ``engine/cvdir.py``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from malaria_tui.engine import atomic, cvdir
from malaria_tui.engine import rundir as rd
from malaria_tui.engine.config import Config
from malaria_tui.engine.errors import ConfigError
from malaria_tui.engine.events import Event
from malaria_tui.engine.grid import claims, search
from malaria_tui.engine.grid import spec as specmod
from malaria_tui.engine.grid.placement import Placement

METRICS = ("accuracy", "auc", "sensitivity", "specificity")
FINISH_CLAIM = "cv-scoring"
# Student's t at 0.975 for 1..30 degrees of freedom: the 95% interval of a mean over K folds
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


@dataclass(frozen=True)
class FoldsScored(Event):
    """Every fold scored out of fold and on the outer test split; the ensemble too."""

    kind: ClassVar[str] = "cv_scored"
    cv_dir: str
    summary: dict


@dataclass
class CVResult:
    path: Path
    status: str  # completed | interrupted | partial (a shard's folds done, others not)
    summary: dict[str, Any] | None
    failed: list[str]


def make_spec(base: Config, folds: int) -> specmod.GridSpec:
    """The grid of the folds: ``base`` with ``data.cv_folds = folds``, one trial per fold."""
    if folds < 2:
        raise ConfigError(f"--folds {folds}: cross-validation needs at least 2 folds")
    tree = tomllib.loads(base.to_toml())
    tree.setdefault("data", {})["cv_folds"] = folds
    tree.setdefault("data", {})["cv_fold"] = 1
    tree["grid"] = {"values": {"data.cv_fold": list(range(1, folds + 1))}}
    return specmod.from_tree(tree, where="cv")


def check_data(base: Config, folds: int) -> str:
    """Prepare the first fold's data before anything is made, so too many folds for the
    patients, or a bad label overlay, is one line. Returns the split mode (``patient``, or
    ``image`` without patient keys)."""
    from malaria_tui.engine.data import pipeline
    from malaria_tui.engine.data import records as rec

    if rec.locate(base.data.source)[0] == "tfds":
        raise ConfigError(
            "cv: TFDS records carry no file names, so no patient keys and no out-of-fold table; "
            "use a folder (folder:PATH, e.g. the NIH cell_images folder) or the bundled sample"
        )
    first = base.model_copy(
        update={"data": base.data.model_copy(update={"cv_folds": folds, "cv_fold": 1})}
    )
    return pipeline.prepare(first).split_mode


def create_cv_dir(runs_dir: str | os.PathLike, spec: specmod.GridSpec, mode: str) -> Path:
    path = search.create_grid_dir(runs_dir, spec, kind="cv")
    _mark(path, spec, mode)
    return path


def shared_cv_dir(runs_dir: str | os.PathLike, spec: specmod.GridSpec, mode: str) -> Path:
    path = search.shared_grid_dir(runs_dir, spec, kind="cv")
    _mark(path, spec, mode)
    return path


def _mark(path: Path, spec: specmod.GridSpec, mode: str) -> None:
    if not (path / cvdir.MARKER).is_file():
        meta = {"folds": spec.base.data.cv_folds, "split": mode, "seed": spec.base.seed}
        atomic.write_text(path / cvdir.MARKER, json.dumps(meta, indent=1) + "\n")


def run_cv(
    path: Path,
    *,
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
    resumed: bool = False,
    placement: Placement | None = None,
    shard: tuple[int, int] | None = None,
) -> CVResult:
    """Train the unfinished folds of ``path``, then (once all have finished) score them."""
    emit = on_event or (lambda ev: None)
    cvd = cvdir.open_cv(path)
    _, spec = search.open_grid(cvd.path)
    grid = search.run_in_dir(
        cvd.path,
        spec,
        on_event=emit,
        stop=stop,
        resumed=resumed,
        placement=placement,
        shard=shard,
        test_best=False,
    )
    summary = None
    if grid.status == "completed" and not grid.failed:
        if (cvd.path / cvdir.SUMMARY).is_file():
            summary = cvd.summary()  # scored before (a resumed, finished CV)
        elif claims.claim(cvd.path, FINISH_CLAIM):  # one shard worker scores, once
            try:
                summary = finish(cvd, emit)
            finally:
                claims.release(cvd.path, FINISH_CLAIM)
    return CVResult(cvd.path, grid.status, summary, grid.failed)


# --- scoring the finished folds ------------------------------------------------------------------


def finish(cvd: cvdir.CVDir, emit: Callable[[Event], None] | None = None) -> dict[str, Any]:
    """Score every fold out of fold and on the outer test split, and the ensemble; write
    ``oof.csv``, ``test_predictions.csv``, ``cv.csv`` and ``cv_summary.json``."""
    from malaria_tui.engine.data import pipeline
    from malaria_tui.engine.evaluation import measures, score_run

    oof_rows: list[tuple[str, int, str, int, float]] = []
    test_probs: dict[str, np.ndarray] = {}
    folds: list[dict[str, Any]] = []
    test_y: np.ndarray | None = None
    test_recs: list[Any] = []
    cfg = None
    for run_path in cvd.fold_dirs():
        run = rd.RunDir(run_path)
        cfg = run.load_config()
        fold = cfg.data.cv_fold
        prepared = pipeline.prepare(cfg)
        assert prepared.split_records is not None  # a folder source (check_data refused TFDS)
        model = score_run.load_best(run)
        y_oof, p_oof = score_run.predict(model, prepared.eval_dataset("oof"), cfg.eval.tta)
        y_test, p_test = score_run.predict(model, prepared.eval_dataset("test"), cfg.eval.tta)
        chosen = score_run.run_thresholds(run)
        th = float(chosen.get(cfg.eval.operating_point, cfg.eval.threshold))
        held = prepared.split_records["oof"]
        oof_rows += [
            (r.path, int(y), r.group, fold, float(p))
            for r, y, p in zip(held, y_oof, p_oof, strict=True)
        ]
        test_recs = prepared.split_records["test"]
        test_y = y_test
        test_probs[f"fold{fold}"] = p_test
        folds.append(
            {
                "fold": fold,
                "run": str(run.path),
                "threshold": th,
                "held_out": _scores(y_oof, p_oof, th, measures),
                "test": _scores(y_test, p_test, th, measures),
                "patients": len({r.group for r in held}),
                "images": len(held),
            }
        )
        del model
    assert cfg is not None and test_y is not None
    y_all = np.array([r[1] for r in oof_rows])
    p_all = np.array([r[4] for r in oof_rows])
    ens_th = measures.choose_thresholds(
        y_all, p_all, cfg.eval.target_sensitivity, cfg.eval.threshold
    )
    p_ens = np.mean(np.stack(list(test_probs.values())), axis=0)
    test_probs[cvdir.ENSEMBLE] = p_ens
    op = float(ens_th.get(cfg.eval.operating_point, cfg.eval.threshold))
    test_groups = [r.group for r in test_recs]
    summary: dict[str, Any] = {
        "folds": cvd.folds,
        "split": cvd.split,
        "operating_point": cfg.eval.operating_point,
        "per_fold": folds,
        "across_folds": {
            where: {
                f"{m}{suffix}": _spread([f[where][key][m] for f in folds])
                for m in METRICS
                for key, suffix in (("at_0.5", ""), ("at_threshold", "_at_threshold"))
            }
            for where in ("held_out", "test")
        },
        "out_of_fold": {
            "images": len(oof_rows),
            **_scores(y_all, p_all, op, measures),
            "patients": measures.patient_level([r[2] for r in oof_rows], y_all, p_all, 0.5),
        },
        "ensemble": {
            "members": len(folds),
            "thresholds": ens_th,
            "test": _scores(test_y, p_ens, op, measures),
            "patients": measures.patient_level(test_groups, test_y, p_ens, 0.5),
        },
        "test_images": len(test_recs),
        "test_patients": len(set(test_groups)),
    }
    _write_tables(cvd, oof_rows, test_recs, test_y, test_probs, summary)
    if emit is not None:
        emit(FoldsScored(cv_dir=str(cvd.path), summary=summary))
    return summary


def _scores(y: np.ndarray, p: np.ndarray, threshold: float, measures: Any) -> dict[str, Any]:
    at_half = measures.binary_metrics(y, p, 0.5)
    at_th = measures.binary_metrics(y, p, threshold)
    return {
        "at_0.5": {m: float(at_half[m]) for m in METRICS},
        "at_threshold": {m: float(at_th[m]) for m in METRICS},
        "threshold": float(threshold),
    }


def _spread(values: list[float]) -> dict[str, float]:
    """Mean, sample sd and the 95% interval of the mean (Student's t over the folds)."""
    a = np.asarray([v for v in values if isinstance(v, float) and math.isfinite(v)])
    if len(a) == 0:
        return {"mean": math.nan, "sd": math.nan, "low": math.nan, "high": math.nan}
    mean = float(a.mean())
    sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    t = _T975[min(len(a) - 1, len(_T975)) - 1] if len(a) > 1 else 0.0
    half = t * sd / math.sqrt(len(a))  # every metric here is a rate: the interval stays in [0, 1]
    return {"mean": mean, "sd": sd, "low": max(0.0, mean - half), "high": min(1.0, mean + half)}


def _csv(header: tuple[str, ...] | list[str], rows: list[Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _write_tables(
    cvd: cvdir.CVDir,
    oof_rows: list[tuple[str, int, str, int, float]],
    test_recs: list[Any],
    test_y: np.ndarray,
    test_probs: dict[str, np.ndarray],
    summary: dict[str, Any],
) -> None:
    atomic.write_text(
        cvd.oof, _csv(cvdir.OOF_COLUMNS, [(a, b, c, d, repr(e)) for a, b, c, d, e in oof_rows])
    )
    rows = [
        (r.path, int(y), r.group, model, repr(float(p)))
        for model, probs in test_probs.items()
        for r, y, p in zip(test_recs, test_y, probs, strict=True)
    ]
    atomic.write_text(cvd.test_predictions, _csv(cvdir.TEST_COLUMNS, rows))
    head = ["fold", "images", "patients", "threshold"]
    head += [*METRICS, *(f"{m}_at_threshold" for m in METRICS)]
    table: list[list[Any]] = []
    for f in summary["per_fold"]:
        h = f["held_out"]
        table.append(
            [f["fold"], f["images"], f["patients"], f"{f['threshold']:.4f}"]
            + [f"{h['at_0.5'][m]:.4f}" for m in METRICS]
            + [f"{h['at_threshold'][m]:.4f}" for m in METRICS]
        )
    across = summary["across_folds"]["held_out"]
    for stat in ("mean", "sd", "low", "high"):
        label = {"low": "ci95_low", "high": "ci95_high"}.get(stat, stat)
        table.append(
            [label, "", "", ""]
            + [f"{across[m][stat]:.4f}" for m in METRICS]
            + [f"{across[f'{m}_at_threshold'][stat]:.4f}" for m in METRICS]
        )
    atomic.write_text(cvd.table, _csv(head, table))
    atomic.write_text(
        cvd.summary_path, json.dumps(summary, indent=1, allow_nan=True, default=float) + "\n"
    )
