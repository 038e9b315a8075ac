"""Seeded train/val/test splits: by patient (no person in two splits) or by image.

The split is a pure function of (records, fractions, seed), so it is identical every epoch,
every run and after a resume.
"""

from __future__ import annotations

import random
from collections import defaultdict

from malaria_tui.engine.data.records import Record
from malaria_tui.engine.errors import DataError

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
    records: list[Record], fractions, seed: int, mode: str
) -> dict[str, list[Record]]:
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


def _split_images(records, fractions, rng) -> dict[str, list[Record]]:
    """Stratified by class, so each split keeps the class balance."""
    out = {s: [] for s in SPLITS}
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


def _split_groups(records, fractions, rng) -> dict[str, list[Record]]:
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
    out = {s: [] for s in SPLITS}
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
