"""Seeded train/val/test splits: by patient (no person in two splits) or by image.

The split is a pure function of (records, fractions, seed), so it is identical every epoch,
every run and after a resume.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from malaria_tui.engine.data.records import Record
from malaria_tui.engine.errors import DataError

if TYPE_CHECKING:
    from malaria_tui.engine.config import DataConfig

Splits = dict[str, list[Record]]

SPLITS = ("train", "val", "test")
MIN_GROUPS_FOR_PATIENT_SPLIT = 6


def resolve_mode(mode: str, groups_known: bool, n_groups: int) -> str:
    """``auto`` means patient whenever file names carry enough patient keys."""
    if mode == "auto":
        return "patient" if groups_known and n_groups >= MIN_GROUPS_FOR_PATIENT_SPLIT else "image"
    if mode == "patient" and (not groups_known or n_groups < MIN_GROUPS_FOR_PATIENT_SPLIT):
        raise DataError(
            f"data.split = 'patient' needs at least {MIN_GROUPS_FOR_PATIENT_SPLIT} patient groups "
            f"(found {n_groups}); use data.split = 'image'"
        )
    return mode


def split_records(
    records: list[Record], fractions: Sequence[float], seed: int, mode: str
) -> Splits:
    rng = random.Random(seed)
    parts = _assign(records, fractions, rng, mode)
    out = dict(zip(SPLITS, parts, strict=True))
    for name in SPLITS:
        if not out[name]:
            raise DataError(
                f"the {name} split is empty ({len(records)} images); use more images or change data.fractions"
            )
    return out


def cross_validation(
    records: list[Record], fractions: Sequence[float], seed: int, mode: str, folds: int, fold: int
) -> Splits:
    """Fold ``fold`` (1..``folds``) of a cross-validation, by patient in ``patient`` mode.

    The test split is exactly the one :func:`split_records` sets aside (no fold ever trains on
    it); the rest is cut into ``folds`` folds, infected and healthy patients spread evenly.
    ``oof`` is the held-out fold; the other folds are split again into ``train`` and ``val``
    (the validation part that picks checkpoints and thresholds) in the ratio of the first two
    fractions. Every fold uses the same folds: they depend on the seed only.
    """
    outer = split_records(records, fractions, seed, mode)
    rest = sorted(outer["train"] + outer["val"], key=lambda r: r.path)
    units = len({r.group for r in rest}) if mode == "patient" else len(rest)
    if folds > units:
        what = "patients" if mode == "patient" else "images"
        raise DataError(
            f"--folds {folds}: only {units} {what} outside the test split; use at most {units} folds"
        )
    cut = _assign(rest, [1.0 / folds] * folds, random.Random(f"{seed}-folds"), mode)
    for i, part in enumerate(cut):
        if not part:
            raise DataError(
                f"fold {i + 1} of {folds} is empty: {len(rest)} images outside the test split "
                f"are too few for {folds} folds; use fewer folds"
            )
    held = cut[fold - 1]
    training = sorted((r for i, part in enumerate(cut) if i != fold - 1 for r in part), key=_path)
    train_w, val_w = fractions[0], fractions[1]
    inner = _assign(
        training, [train_w / (train_w + val_w), val_w / (train_w + val_w)],
        random.Random(f"{seed}-fold{fold}"), mode,
    )  # fmt: skip
    out = {"train": inner[0], "val": inner[1], "test": outer["test"], "oof": held}
    for name in ("train", "val"):
        if not out[name]:
            raise DataError(f"fold {fold}: its {name} part is empty; use fewer folds")
    return out


def _path(r: Record) -> str:
    return r.path


def _assign(
    records: list[Record], weights: Sequence[float], rng: random.Random, mode: str
) -> list[list[Record]]:
    if mode == "image":
        return _split_images(records, weights, rng)
    return _split_groups(records, weights, rng)


def _split_images(
    records: list[Record], weights: Sequence[float], rng: random.Random
) -> list[list[Record]]:
    """Stratified by class, so each part keeps the class balance."""
    out: list[list[Record]] = [[] for _ in weights]
    for label in (0, 1):
        items = sorted((r for r in records if r.label == label), key=_path)
        rng.shuffle(items)
        n = len(items)
        start = 0
        for k, w in enumerate(weights):
            stop = n if k == len(weights) - 1 else start + round(n * w)
            out[k] += items[start:stop]
            start = stop
    for part in out:
        part.sort(key=_path)
    return out


def _split_groups(
    records: list[Record], weights: Sequence[float], rng: random.Random
) -> list[list[Record]]:
    """Whole patients to each part, greedily filling the part furthest below its target.

    Infected patients (who have both classes) and healthy ones are assigned separately, so the
    class balance of every part stays close to the whole set's.
    """
    by_group: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_group[r.group].append(r)
    strata: dict[bool, list[str]] = {True: [], False: []}
    for g, rs in by_group.items():
        strata[any(r.label == 1 for r in rs)].append(g)
    n = len(weights)
    out: list[list[Record]] = [[] for _ in weights]
    for infected in (True, False):
        groups = sorted(strata[infected])
        rng.shuffle(groups)
        total = sum(len(by_group[g]) for g in groups)
        filled = [0] * n
        # The first groups go round-robin from the last part (test, val, train for a split),
        # so small parts get one.
        for i, g in enumerate(groups):
            if i < n and len(groups) >= n:
                k = n - 1 - i
            else:
                k = max(
                    range(n),
                    key=lambda j: (weights[j] * total - filled[j]) / max(weights[j], 1e-9),
                )
            filled[k] += len(by_group[g])
            out[k] += by_group[g]
    for part in out:
        part.sort(key=_path)
    return out


def limit(records: list[Record], n: int, seed: int) -> list[Record]:
    """A class-balanced random subset of ``n`` images (for quick runs and tests); 0: all."""
    if not n or n >= len(records):
        return records
    rng = random.Random(seed)
    out = []
    for label in (0, 1):
        items = sorted((r for r in records if r.label == label), key=lambda r: r.path)
        rng.shuffle(items)
        out += items[: n // 2 + (n % 2 if label == 1 else 0)]
    return sorted(out, key=lambda r: r.path)


@dataclass(frozen=True)
class Plan:
    """The images a run uses (``data.limit`` applied), how they are split, and the splits."""

    records: list[Record]
    mode: str  # patient | image
    parts: Splits

    def counts(self) -> dict[str, dict[str, int]]:
        return counts(self.parts)


def for_training(records: list[Record], groups_known: bool, data: DataConfig, seed: int) -> Plan:
    """``data.limit``, ``data.split`` and ``data.fractions`` applied to a folder's records.

    Training, ``malaria-tui data`` and the Dataset screen all call this, so the splits shown are
    the ones a run trains on.
    """
    used = limit(records, data.limit, seed)
    mode = resolve_mode(data.split, groups_known, len({r.group for r in used}))
    if data.cv_folds:
        parts = cross_validation(used, data.fractions, seed, mode, data.cv_folds, data.cv_fold)
        return Plan(used, mode, parts)
    return Plan(used, mode, split_records(used, data.fractions, seed, mode))


def counts(parts: Splits) -> dict[str, dict[str, int]]:
    """Per split: ``Parasitized``, ``Uninfected``, ``total`` and patient ``groups``."""
    out = {}
    for s, rs in parts.items():
        pos = sum(r.label for r in rs)
        out[s] = {
            "Parasitized": pos,
            "Uninfected": len(rs) - pos,
            "total": len(rs),
            "groups": len({r.group for r in rs}),
        }
    return out
