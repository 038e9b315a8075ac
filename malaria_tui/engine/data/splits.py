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
    if mode == "image":
        out = _split_images(records, fractions, rng)
    else:
        out = _split_groups(records, fractions, rng)
    for name in SPLITS:
        if not out[name]:
            raise DataError(
                f"the {name} split is empty ({len(records)} images); use more images or change data.fractions"
            )
    return out


def _split_images(records: list[Record], fractions: Sequence[float], rng: random.Random) -> Splits:
    """Stratified by class, so each split keeps the class balance."""
    out: Splits = {s: [] for s in SPLITS}
    for label in (0, 1):
        items = sorted((r for r in records if r.label == label), key=lambda r: r.path)
        rng.shuffle(items)
        n = len(items)
        a = round(n * fractions[0])
        b = a + round(n * fractions[1])
        out["train"] += items[:a]
        out["val"] += items[a:b]
        out["test"] += items[b:]
    for s in SPLITS:
        out[s].sort(key=lambda r: r.path)
    return out


def _split_groups(records: list[Record], fractions: Sequence[float], rng: random.Random) -> Splits:
    """Whole patients to each split, greedily filling the split furthest below its target.

    Infected patients (who have both classes) and healthy ones are assigned separately, so the
    class balance of every split stays close to the whole set's.
    """
    by_group: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_group[r.group].append(r)
    strata: dict[bool, list[str]] = {True: [], False: []}
    for g, rs in by_group.items():
        strata[any(r.label == 1 for r in rs)].append(g)
    out: Splits = {s: [] for s in SPLITS}
    for infected in (True, False):
        groups = sorted(strata[infected])
        rng.shuffle(groups)
        total = sum(len(by_group[g]) for g in groups)
        filled = [0, 0, 0]
        # The first groups go round-robin in the order test, val, train so small splits get one.
        for i, g in enumerate(groups):
            if i < 3 and len(groups) >= 3:
                k = (2, 1, 0)[i]
            else:
                k = max(
                    range(3),
                    key=lambda j: (fractions[j] * total - filled[j]) / max(fractions[j], 1e-9),
                )
            filled[k] += len(by_group[g])
            out[SPLITS[k]] += by_group[g]
    for s in SPLITS:
        out[s].sort(key=lambda r: r.path)
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
