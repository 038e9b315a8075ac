"""Suspect labels: the cells of a cross-validation whose out-of-fold probability contradicts the
label their folder gives them, found by confident learning (cleanlab).

Input is a CV directory's ``oof.csv`` (``path, label, patient, fold, prob``: every image outside
the test split, scored by the one fold model that never saw it; ``engine/cvdir.py``), and
optionally its ``test_predictions.csv`` (the outer test split scored by the fold ensemble).
Confident learning needs exactly that: probabilities from models that did not train on the
cell, so a mislabelled cell cannot have been memorised.

Which cells are flagged: ``cleanlab.filter.find_label_issues`` with its default
``filter_by="prune_by_noise_rate"``. It estimates, from per-class confidence thresholds, how
many cells of each given class really belong to the other (the off-diagonal of the confident
joint) and flags that many, those with the largest margin for the other class. Its count
(``Suspects.n_flagged``) is cleanlab's estimate of the label errors, not a number we pick.

How they are ranked: by ``self_confidence``, the out-of-fold probability of the *given* label,
lowest first (cleanlab's ``return_indices_ranked_by="self_confidence"``; it is also the
``score`` shown). It is the most direct reading of "how sure the evidence is": a Parasitized
cell scored 0.01 by a model that never saw it contradicts its label more firmly than one scored
0.30. With two classes ``normalized_margin`` (p_given - p_other = 2 p_given - 1) orders cells
identically, so nothing is lost by the simpler score; ``confidence_weighted_entropy`` mixes in
how uncertain the model is overall, which says less about this label.

cleanlab runs with ``n_jobs=1``: the sets here are small (23,597 cells take well under a
second), and a worker pool would fork the TUI's process.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from malaria_tui.engine import cvdir
from malaria_tui.engine.cvdir import ENSEMBLE, OOF_COLUMNS, TEST_COLUMNS
from malaria_tui.engine.data import label_overlay
from malaria_tui.engine.errors import RunDirError

RANKING = "self_confidence"
OVERLAY = "label_overrides.csv"  # the overlay a CV directory's review writes by default


@dataclass(frozen=True)
class Scored:
    """One cell with an out-of-sample probability."""

    path: str
    label: int  # given label: 1 Parasitized, 0 Uninfected
    patient: str
    fold: int  # the fold that held it out (0 for the outer test split)
    prob: float  # out-of-sample P(Parasitized)
    split: str = "oof"  # oof | test


@dataclass(frozen=True)
class Suspect:
    """A flagged cell, as the review table and the Review screen show it."""

    rank: int  # 1: the surest evidence against its label
    path: str
    label: int  # given label
    prob: float  # out-of-fold P(Parasitized)
    patient: str
    fold: int
    score: float  # P(given label), cleanlab's self-confidence: lower is surer it is wrong
    split: str = "oof"  # oof | test (the outer test split, scored by the ensemble)
    decision: str = ""  # the overlay's decision so far: keep | relabel | exclude | "" (none)

    @property
    def suggested(self) -> int:
        """The label the evidence points to: the other one."""
        return 1 - self.label


@dataclass(frozen=True)
class Suspects:
    source: str  # the oof.csv read
    n_images: int  # cells scored (oof, plus test when asked)
    n_flagged: int  # every cell cleanlab flags (``suspects`` may be the top part)
    suspects: list[Suspect]
    ranking: str = RANKING
    overlay: str = ""  # the overlay whose decisions are shown ("" none)
    flagged_by_split: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["suspects"] = [asdict(s) for s in self.suspects]
        return out


def read_scored(
    path: str | os.PathLike[str], columns: Sequence[str] = OOF_COLUMNS, split: str = "oof"
) -> list[Scored]:
    """The rows of an ``oof.csv`` (or, with :data:`TEST_COLUMNS`, the ensemble's rows of a
    ``test_predictions.csv``); one line naming the file when it is missing or not one."""
    p = Path(path).expanduser()
    try:
        with open(p, encoding="utf-8", newline="", errors="surrogateescape") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise RunDirError(
            f"{p}: not written yet (the folds have not all finished); finish them with "
            f"`malaria-tui cv --resume {p.parent}`"
        ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RunDirError(f"{p}: cannot read it ({type(e).__name__})") from None
    if not rows or tuple(c.strip() for c in rows[0]) != tuple(columns):
        raise RunDirError(f"{p}: not an {p.name} of `malaria-tui cv` (header {','.join(columns)})")
    out: list[Scored] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            path_, label, patient, fold, prob = row
            if split == "test":
                if fold != ENSEMBLE:
                    continue
                fold = "0"
            s = Scored(path_, int(label), patient, int(fold), float(prob), split)
        except ValueError:
            raise RunDirError(f"{p} line {line}: not a row of {','.join(columns)}") from None
        if s.label not in (0, 1) or not 0.0 <= s.prob <= 1.0 or math.isnan(s.prob):
            raise RunDirError(f"{p} line {line}: label must be 0 or 1 and prob in [0, 1]")
        out.append(s)
    return out


def flag(labels: Sequence[int] | np.ndarray, probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """Indices of the cells cleanlab flags, surest first (see the module's docstring).

    ``probs`` are P(Parasitized); cleanlab's ``pred_probs`` are N x 2, column 0 P(Uninfected),
    column 1 P(Parasitized). Fewer than two cells of either class: nothing can be estimated,
    nothing is flagged.
    """
    from cleanlab.filter import find_label_issues

    y = np.asarray(labels, dtype=np.int64)
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    if len(y) == 0 or min(int((y == 0).sum()), int((y == 1).sum())) < 2:
        return np.zeros(0, dtype=np.int64)
    pred_probs = np.stack([1.0 - p, p], axis=1)
    found = find_label_issues(y, pred_probs, return_indices_ranked_by=RANKING, n_jobs=1)
    idx = np.asarray(found, dtype=np.int64)
    score = self_confidence(y, p)
    # cleanlab sorts by the same score; ties broken by index here, so the order is reproducible
    return idx[np.lexsort((idx, score[idx]))]


def self_confidence(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """P(given label) of each cell (cleanlab's ``self_confidence`` label quality)."""
    from cleanlab.rank import get_label_quality_scores

    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    pred_probs = np.stack([1.0 - p, p], axis=1)
    return np.asarray(get_label_quality_scores(np.asarray(labels), pred_probs, method=RANKING))


def find_suspects(
    oof_csv: str | os.PathLike[str],
    *,
    top: int | None = None,
    overlay: str | os.PathLike[str] | None = None,
    test_csv: str | os.PathLike[str] | None = None,
) -> Suspects:
    """The suspects of a cross-validation's ``oof.csv``, surest first (``top``: the first N).

    ``overlay``: an overlay file whose decisions are shown beside each suspect (a missing file
    is fine: nothing decided yet). ``test_csv``: also flag the outer test split's cells, from
    the fold ensemble's probabilities in ``test_predictions.csv`` (flagged on their own, so the
    out-of-fold suspects do not depend on it). Decisions about test cells never change what a
    run learns; they add reviewed-label figures beside the original ones.
    """
    groups = [read_scored(oof_csv)]
    if test_csv is not None:
        groups.append(read_scored(test_csv, TEST_COLUMNS, "test"))
    found: list[tuple[float, str, Scored]] = []
    by_split: dict[str, int] = {}
    for cells in groups:
        y = np.array([c.label for c in cells], dtype=np.int64)
        p = np.array([c.prob for c in cells], dtype=np.float64)
        idx = flag(y, p)
        quality = self_confidence(y, p) if len(idx) else np.zeros(0)
        for i in idx:
            found.append((float(quality[i]), cells[i].path, cells[i]))
        if cells:
            by_split[cells[0].split] = len(idx)
    found.sort(key=lambda t: (t[0], t[1]))
    decisions: dict[str, label_overlay.Decision] = {}
    if overlay is not None and Path(overlay).expanduser().exists():
        decisions = label_overlay.read(overlay).decisions
    shown = found if top is None else found[: max(0, top)]
    suspects = []
    for rank, (score, _, c) in enumerate(shown, start=1):
        d = decisions.get(label_overlay.key(c.path))
        suspects.append(
            Suspect(
                rank,
                c.path,
                c.label,
                c.prob,
                c.patient,
                c.fold,
                score,
                c.split,
                d.decision if d else "",
            )
        )
    return Suspects(
        source=str(Path(oof_csv).expanduser()),
        n_images=sum(len(g) for g in groups),
        n_flagged=len(found),
        suspects=suspects,
        overlay=str(overlay) if overlay is not None else "",
        flagged_by_split=by_split,
    )


def decide(
    overlay: str | os.PathLike[str], suspect: Suspect | Scored, decision: str
) -> label_overlay.Decision:
    """Record a decision (keep | relabel | exclude) about a suspect in ``overlay``: the image is
    hashed now.

    ``keep`` and ``relabel`` are about the label the person was shown (the suspect's). The
    overlay stores decisions relative to the label the image's folder gives it, so when those
    differ (a cross-validation trained on an earlier overlay) the decision is translated:
    keeping a relabelled cell's label is ``relabel``, relabelling it back is ``keep``.
    """
    folder = label_overlay.folder_label(suspect.path)
    if folder is not None and folder != suspect.label and decision != label_overlay.EXCLUDE:
        decision = label_overlay.RELABEL if decision == label_overlay.KEEP else label_overlay.KEEP
    given = suspect.label if folder is None else folder
    return label_overlay.record(overlay, suspect.path, given, decision)


def overlay_of(cv_dir: str | os.PathLike[str]) -> Path:
    """The overlay a CV directory's review writes by default: ``CV_DIR/label_overrides.csv``."""
    return Path(cv_dir).expanduser().resolve() / OVERLAY


def for_cv(
    cv_dir: str | os.PathLike[str],
    *,
    top: int | None = None,
    overlay: str | os.PathLike[str] | None = None,
    include_test: bool = False,
) -> Suspects:
    """:func:`find_suspects` of a CV directory (its ``oof.csv``; with ``include_test`` its
    ensemble's ``test_predictions.csv`` too), the decisions of ``overlay`` (default
    :func:`overlay_of`) beside them. One line for a folder that is not a CV directory, or one
    whose folds have not all finished."""
    cv = cvdir.open_cv(cv_dir)
    return find_suspects(
        cv.oof,
        top=top,
        overlay=overlay if overlay is not None else cv.path / OVERLAY,
        test_csv=cv.test_predictions if include_test else None,
    )
