"""What a cross-validation directory holds, and how to open one: file names only, no TensorFlow, so
every layer (inference, review, the app) can read one, as ``rundir`` is for a run directory.

A cross-validation (CV) directory is a grid directory (``engine/grid/search.py``) whose trials are the folds, so
folds are claimed, run side by side (``--parallel``), sharded, resumed and shown live on the
HParams screen exactly as grid trials are::

    cv.json                 {"folds": K, "split": "patient"|"image", ...}: marks a CV directory
    grid.toml               base config (data.cv_folds = K) + [grid.values] "data.cv_fold" = [1..K]
    grid.csv, grid.jsonl    one row per fold, live
    trials/NN-fold<i>/      a full run directory per fold (data.cv_fold = i, 1..K)
    oof.csv                 path, label, patient, fold, prob: every image outside the test split,
                            scored by the one fold model that never saw it
    test_predictions.csv    path, label, patient, model, prob: the outer test split scored by
                            every fold model and by the ensemble (model = fold1..foldK, ensemble)
    cv.csv                  per fold (its held-out fold) and mean, sd, 95% interval
    cv_summary.json         all figures: per fold, across folds, per patient, the ensemble

``label`` is 1 for Parasitized everywhere; ``patient`` is the record's patient group.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from malaria_tui.engine.errors import RunDirError

MARKER = "cv.json"
OOF = "oof.csv"
TEST_PREDICTIONS = "test_predictions.csv"
TABLE = "cv.csv"
SUMMARY = "cv_summary.json"
TRIALS = "trials"
OOF_COLUMNS = ("path", "label", "patient", "fold", "prob")
TEST_COLUMNS = ("path", "label", "patient", "model", "prob")
ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class CVDir:
    path: Path
    folds: int
    split: str  # patient | image

    @property
    def oof(self) -> Path:
        return self.path / OOF

    @property
    def test_predictions(self) -> Path:
        return self.path / TEST_PREDICTIONS

    @property
    def table(self) -> Path:
        return self.path / TABLE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    def fold_dirs(self) -> list[Path]:
        """The fold run directories, fold 1 first."""
        return sorted(p for p in (self.path / TRIALS).iterdir() if p.is_dir())

    def summary(self) -> dict[str, Any]:
        """``cv_summary.json``; a clear error while the folds are still training."""
        try:
            return json.loads(self.summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise RunDirError(
                f"{self.path}: its folds have not all finished (no {SUMMARY}); "
                f"finish them with: malaria-tui cv --resume {self.path}"
            ) from None


def is_cv_dir(path: str | os.PathLike) -> bool:
    return (Path(path).expanduser() / MARKER).is_file()


def open_cv(path: str | os.PathLike) -> CVDir:
    """The CV directory at ``path``; one line naming it when it is not one."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise RunDirError(f"{p}: no such cross-validation directory")
    try:
        meta = json.loads((p / MARKER).read_text(encoding="utf-8"))
        return CVDir(p.resolve(), int(meta["folds"]), str(meta["split"]))
    except (OSError, ValueError, KeyError, TypeError):
        raise RunDirError(
            f"{p}: not a cross-validation directory (no readable {MARKER}); pass a folder made "
            "by `malaria-tui cv`"
        ) from None
