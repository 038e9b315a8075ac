"""A cross-validation directory's fold models as one ensemble: opened, checked, scored.

The ensemble's probability is the mean of its K fold models' (each with test-time augmentation
when ``eval.tta`` says so: the mean of the means is the mean over every member and view). Its
thresholds were chosen on the out-of-fold probabilities (``cv_summary.json``); each fold keeps
its own, chosen on its inner validation part. :func:`evaluate_cv` scores the ensemble and every
fold model on the outer test split side by side: from ``test_predictions.csv`` when it holds
them all, else (or with ``rescore``, or on ``--data``) by running the models.

``predictor.load`` and ``export`` turn a CV directory into one averaging Keras model
(:mod:`malaria_tui.engine.models.ensemble`) through :class:`FoldEnsemble`.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from malaria_tui.engine import cvdir, rundir
from malaria_tui.engine.errors import ModelFileError, RunDirError
from malaria_tui.engine.evaluation import measures
from malaria_tui.engine.models.ensemble import member_name
from malaria_tui.engine.tfenv import KerasModel

if TYPE_CHECKING:
    from malaria_tui.engine.config import Config

ENSEMBLE = cvdir.ENSEMBLE  # the ensemble's name in test_predictions.csv and evaluate's output


def is_cv(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a cross-validation directory (made by ``malaria-tui cv``)."""
    return cvdir.is_cv_dir(path)


@dataclass
class FoldEnsemble:
    """A finished CV directory: its fold runs (fold 1 first), their configs, its summary."""

    cv: cvdir.CVDir
    runs: list[rundir.RunDir]
    configs: list[Config]
    thresholds: dict[str, float]  # the ensemble's, chosen on the out-of-fold probabilities
    _models: list[KerasModel] = field(default_factory=list, repr=False)

    @property
    def config(self) -> Config:
        """Fold 1's config: the base config (every fold shares it but for data.cv_fold)."""
        return self.configs[0]

    @property
    def names(self) -> list[str]:
        return [member_name(i) for i in range(len(self.runs))]

    @property
    def image_size(self) -> int:
        return self._one_input()[0]

    @property
    def color(self) -> str:
        return self._one_input()[1]

    def check_one_input(self) -> None:
        """One clear error when the folds take different input sizes or colours."""
        self._one_input()

    def _one_input(self) -> tuple[int, str]:
        inputs = sorted({(c.data.image_size, _color(c)) for c in self.configs})
        if len(inputs) > 1:
            shown = ", ".join(f"{s} px {c}" for s, c in inputs)
            raise ModelFileError(
                f"{self.cv.path}: the folds take different inputs ({shown}); one averaging model "
                "needs one input size and colour (evaluate still scores each fold)"
            )
        return inputs[0]

    def members(self) -> list[KerasModel]:
        """The fold models (each fold's best.keras), loaded once."""
        if not self._models:
            from malaria_tui.engine.evaluation.score_run import load_best

            self._models = [load_best(run) for run in self.runs]
        return self._models

    def model(self) -> KerasModel:
        """One Keras model averaging the fold models (see ``models/ensemble.py``)."""
        from malaria_tui.engine.models.ensemble import average

        size = self.image_size
        return average(self.members(), size)

    def mean_probability(self, x: np.ndarray) -> np.ndarray:
        """The mean of the members' probabilities for a batch: what the ensemble must give."""
        return np.mean(
            [np.asarray(m(x, training=False), np.float64).ravel() for m in self.members()], axis=0
        )


def _color(cfg: Config) -> str:
    return cfg.data.color if cfg.data.color != "auto" else "rgb"


def open_ensemble(path: str | os.PathLike[str]) -> FoldEnsemble:
    """The finished CV directory at ``path``; one clear :class:`RunDirError` line when it is not
    one, when its folds have not all finished, or when a fold has no best model."""
    cv = cvdir.open_cv(path)
    summary = cv.summary()  # RunDirError while folds are still training
    try:
        raw = summary["ensemble"]["thresholds"]
        thresholds = {str(k): float(v) for k, v in raw.items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise RunDirError(
            f"{cv.path}: {cvdir.SUMMARY} has no ensemble thresholds; "
            f"finish the folds with: malaria-tui cv --resume {cv.path}"
        ) from None
    try:
        dirs = cv.fold_dirs()
    except OSError:
        dirs = []
    if len(dirs) != cv.folds:
        raise RunDirError(
            f"{cv.path}: has {len(dirs)} fold directories, expected {cv.folds}; "
            f"finish them with: malaria-tui cv --resume {cv.path}"
        )
    runs = [rundir.open_run(d) for d in dirs]
    configs = [run.trained_config() for run in runs]
    order = sorted(range(len(runs)), key=lambda i: configs[i].data.cv_fold)
    runs, configs = [runs[i] for i in order], [configs[i] for i in order]
    if [c.data.cv_fold for c in configs] != list(range(1, cv.folds + 1)):
        raise RunDirError(
            f"{cv.path}: its fold directories are not folds 1..{cv.folds} of one cross-validation"
        )
    for i, run in enumerate(runs):
        if not run.best_model.is_file():
            raise RunDirError(
                f"{run.path}: fold {i + 1} has no best model (best.keras); "
                f"finish it with: malaria-tui cv --resume {cv.path}"
            )
    thresholds.setdefault("default", 0.5)
    return FoldEnsemble(cv, runs, configs, thresholds)


# --- scoring side by side --------------------------------------------------------------------


@dataclass
class Scored:
    """Labels, patient groups and each model's probabilities for the same cells, in order."""

    paths: list[str]
    labels: np.ndarray
    groups: list[str] | None
    probs: dict[str, np.ndarray]  # fold1..foldK, ensemble
    source: str  # test_predictions.csv | models


def from_test_predictions(ens: FoldEnsemble) -> Scored | None:
    """``test_predictions.csv`` as :class:`Scored`, or None when it is missing or does not hold
    every fold model and the ensemble for the same cells."""
    try:
        with open(ens.cv.test_predictions, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    by: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        by[r.get("model", "")].append(r)
    wanted = [*ens.names, ENSEMBLE]
    if set(by) != set(wanted):
        return None
    first = by[wanted[0]]
    paths = [r["path"] for r in first]
    try:
        labels = np.array([int(float(r["label"])) for r in first], dtype=int)
        probs = {}
        for name in wanted:
            if [r["path"] for r in by[name]] != paths:
                return None
            probs[name] = np.array([float(r["prob"]) for r in by[name]])
    except (KeyError, ValueError):
        return None
    patients = [r.get("patient", "") or "" for r in first]
    return Scored(paths, labels, patients if any(patients) else None, probs, cvdir.TEST_PREDICTIONS)


def rescore(ens: FoldEnsemble, data: str | None = None) -> Scored:
    """Run every fold model on the outer test split (or on every image of ``data``), with TTA
    as each fold's ``eval.tta`` says; the ensemble is the mean of the folds'."""
    from malaria_tui.engine.data import pipeline
    from malaria_tui.engine.evaluation.score_run import predict

    split = "all" if data else "test"
    prepared_by_input: dict[tuple[int, str], Any] = {}
    probs: dict[str, np.ndarray] = {}
    labels: np.ndarray | None = None
    paths: list[str] = []
    groups: list[str] | None = None
    for name, cfg, model in zip(ens.names, ens.configs, ens.members(), strict=True):
        key = (cfg.data.image_size, _color(cfg))
        if key not in prepared_by_input:
            if data:
                cfg = cfg.model_copy(
                    update={"data": cfg.data.model_copy(update={"source": data, "limit": 0})}
                )
                prepared_by_input[key] = pipeline.prepare_all(cfg)
            else:
                prepared_by_input[key] = pipeline.prepare(cfg)
        prepared = prepared_by_input[key]
        y, p = predict(model, prepared.eval_dataset(split), cfg.eval.tta)
        recs = prepared.split_records[split] if prepared.split_records else None
        here = [r.path for r in recs] if recs else [f"tfds:{split}:{i}" for i in range(len(y))]
        if labels is None:
            labels, paths = y, here
            groups = [r.group for r in recs] if recs else None
        elif here != paths or not np.array_equal(y, labels):
            raise RunDirError(
                f"{ens.cv.path}: {name} was scored on other cells than fold 1; its data settings differ"
            )
        probs[name] = p
    assert labels is not None
    probs[ENSEMBLE] = np.mean([probs[n] for n in ens.names], axis=0)
    return Scored(paths, labels, groups, probs, "models")


def evaluate_cv(
    path: str | os.PathLike[str],
    data: str | None = None,
    threshold: float | None = None,
    rescore_models: bool = False,
) -> dict[str, Any]:
    """The ensemble and every fold model on the outer test split (or every image of ``data``):
    each at ``threshold`` (default ``eval.threshold``, 0.5) and at its own chosen thresholds."""
    from malaria_tui.engine.evaluation.score_run import report, run_thresholds

    ens = open_ensemble(path)
    scored = None if (data or rescore_models) else from_test_predictions(ens)
    if scored is None:
        scored = rescore(ens, data)
    cfg = ens.config
    th = cfg.eval.threshold if threshold is None else threshold
    chosen = {ENSEMBLE: ens.thresholds} | {
        name: run_thresholds(run) for name, run in zip(ens.names, ens.runs, strict=True)
    }
    models = []
    for name in [ENSEMBLE, *ens.names]:
        row: dict[str, Any] = {"model": name}
        if name == ENSEMBLE:
            row["members"] = len(ens.names)
        else:
            row["run"] = str(ens.runs[ens.names.index(name)].path)
        y, p = scored.labels, scored.probs[name]
        row |= report(y, p, th, chosen[name], scored.groups)
        # at the threshold of the operating point predict uses (the table's second half)
        op = chosen[name].get(cfg.eval.operating_point, chosen[name].get("default", 0.5))
        row["chosen"] = measures.binary_metrics(y, p, op)
        models.append(row)
    return {
        "cv": str(ens.cv.path),
        "data": data or f"{cfg.data.source} (outer test split)",
        "split": "all" if data else "test",
        "n": int(len(scored.labels)),
        "threshold": th,
        "operating_point": cfg.eval.operating_point,
        "tta": cfg.eval.tta,
        "scored_from": scored.source,
        "models": models,
    }
