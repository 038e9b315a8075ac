"""The label overlay: reviewed decisions about cell labels, kept beside the images, never in them.

``data.label_overrides = "PATH"`` points a run at one. The file is a CSV with this header::

    path,sha256,given_label,decision,time

one row per image: its path (absolute when written here), the SHA-256 of its bytes when it was
reviewed, the label its folder gives it (1 = Parasitized), the decision (``keep``, ``relabel``
or ``exclude``) and when it was made (ISO 8601, UTC). A path that appears twice is decided by
its later row; :func:`record` rewrites the file (atomically) with one row per path, oldest
decision first.

What a decision does to a run (:func:`apply`): ``relabel`` flips the label, ``exclude`` drops
the cell, ``keep`` changes nothing (it records that a person looked and agreed).

A run refuses, in one line naming the file, an overlay that is missing, is not an overlay (a
foreign header), holds a decision it does not know, or whose hashes no longer match the images
(it says how many rows): decisions about an image that has changed since are not decisions
about this image. The pipeline applies an overlay after the split and only to the splits a
run learns or picks from (:data:`APPLIED`), so reviewing never moves a patient between splits
and the test split keeps its original labels (:func:`for_splits`).

A leaf of the data layer (no TensorFlow): the pipeline, ``malaria-tui data``, the label review
and the TUI all read and write overlays through this module.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from malaria_tui.engine import atomic
from malaria_tui.engine.data.records import CLASS_NAMES, Record
from malaria_tui.engine.errors import DataError

HEADER = ("path", "sha256", "given_label", "decision", "time")
KEEP, RELABEL, EXCLUDE = "keep", "relabel", "exclude"
DECISIONS = (KEEP, RELABEL, EXCLUDE)
# Splits whose labels a run uses when an overlay applies: it trains on train, picks checkpoints
# and thresholds on val. Neither the test split nor a cross-validation's held-out fold (oof) is
# among them (the honesty rule): both are scored on their original labels, so a CV trained on
# reviewed labels reports figures comparable with an unreviewed one and the published ones.
APPLIED = ("train", "val")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Decision:
    """One reviewed image."""

    path: str
    sha256: str  # of the image's bytes when it was reviewed
    given_label: int  # the label its folder gives it: 1 Parasitized, 0 Uninfected
    decision: str  # keep | relabel | exclude
    time: str  # ISO 8601, UTC

    @property
    def label(self) -> int | None:
        """The reviewed label; ``None`` when the cell is excluded."""
        if self.decision == EXCLUDE:
            return None
        return 1 - self.given_label if self.decision == RELABEL else self.given_label

    def row(self) -> list[str]:
        return [self.path, self.sha256, str(self.given_label), self.decision, self.time]


@dataclass(frozen=True)
class Overlay:
    """An overlay file as read: its own hash, and the latest decision per image."""

    path: Path
    sha256: str  # of the overlay file's bytes: what a run records
    decisions: dict[str, Decision]  # key(image path) -> decision, in the order they were made

    def get(self, image_path: str) -> Decision | None:
        return self.decisions.get(key(image_path))


@dataclass(frozen=True)
class Changes:
    """What an overlay's decisions do to a list of records."""

    reviewed: int = 0  # records with a decision (keep included)
    relabelled: int = 0
    excluded: int = 0
    to_parasitized: int = 0  # of the relabelled, Uninfected -> Parasitized
    to_uninfected: int = 0  # of the relabelled, Parasitized -> Uninfected

    @property
    def changed(self) -> int:
        """Records whose label a run sees differently: relabelled or excluded."""
        return self.relabelled + self.excluded

    def to_dict(self) -> dict[str, int]:
        return {
            "reviewed": self.reviewed,
            "relabelled": self.relabelled,
            "excluded": self.excluded,
            "to_parasitized": self.to_parasitized,
            "to_uninfected": self.to_uninfected,
        }


@dataclass(frozen=True)
class Effect:
    """What an overlay does to a run's splits (``Prepared.label_overlay``, ``malaria-tui data``).

    ``changes`` covers every split; those in ``applied`` had them applied, the others (test)
    only hold ``reviewed`` decisions, kept for scoring beside the original labels.
    """

    path: str
    sha256: str
    rows: int  # decisions in the file
    changes: dict[str, Changes]
    applied: tuple[str, ...]
    outside: int  # decisions about images this run does not use (other data, data.limit)
    reviewed: dict[str, dict[str, Decision]] = field(default_factory=dict, repr=False)
    # split not applied -> key(path) -> decision, for the reviewed-label figures of test

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "rows": self.rows,
            "applied_to": list(self.applied),
            "outside": self.outside,
            "changes": {s: c.to_dict() for s, c in self.changes.items()},
        }


def key(path: str | os.PathLike[str]) -> str:
    """How images are matched between an overlay and a scan: the absolute, normalised path
    (relative paths are taken from the current folder, as everywhere on the command line)."""
    return os.path.abspath(os.fspath(path))


def folder_label(path: str | os.PathLike[str]) -> int | None:
    """The label an image's folder gives it (``.../Parasitized/x.png`` -> 1, any case), or
    ``None`` when its folder is not named after a class (nested deeper, for instance)."""
    name = Path(path).parent.name.lower()
    for label, cname in enumerate(CLASS_NAMES):
        if name == cname.lower():
            return label
    return None


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- reading and writing --------------------------------------------------------------------


def read(path: str | os.PathLike[str]) -> Overlay:
    """An overlay file, its format checked (not yet its hashes: :func:`check`).

    One line naming the file for a missing file, a foreign one (not our header), or a row with
    an unknown decision, a given label other than 0/1 or a malformed hash.
    """
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: label overlay not found (data.label_overrides)") from None
    except IsADirectoryError:
        raise DataError(f"{p}: a folder, not a label overlay file (data.label_overrides)") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read the label overlay ({e.strerror})") from None
    try:
        text = raw.decode("utf-8", "surrogateescape")
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error):
        rows = []
    if not rows or tuple(c.strip() for c in rows[0]) != HEADER:
        raise DataError(
            f"{p}: not a label overlay (its first line must be {','.join(HEADER)}); "
            "decisions are written by `malaria-tui review` and the Review screen"
        )
    decisions: dict[str, Decision] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        d = _decision(p, line, row)
        k = key(d.path)
        decisions.pop(k, None)  # the later row wins, and moves to the end (decision order)
        decisions[k] = d
    return Overlay(p.resolve(), hashlib.sha256(raw).hexdigest(), decisions)


def _decision(p: Path, line: int, row: Sequence[str]) -> Decision:
    where = f"{p} line {line}"
    if len(row) != len(HEADER):
        raise DataError(f"{where}: {len(row)} fields; expected {len(HEADER)} ({','.join(HEADER)})")
    path, sha, given, decision, when = (c.strip() for c in row)
    if decision not in DECISIONS:
        raise DataError(f"{where}: decision {decision!r} is not one of {', '.join(DECISIONS)}")
    if given not in ("0", "1"):
        raise DataError(f"{where}: given_label {given!r} is not 0 (Uninfected) or 1 (Parasitized)")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower()):
        raise DataError(f"{where}: sha256 {sha!r} is not a SHA-256 hex digest")
    if not path:
        raise DataError(f"{where}: no path")
    return Decision(path, sha.lower(), int(given), decision, when)


def check(overlay: Overlay, records: Iterable[Record] | None = None) -> None:
    """Refuse an overlay whose rows no longer match their images: a changed or missing file, or
    (given ``records``) a record whose label is not the row's given label. One line, how many."""
    labels = {key(r.path): r.label for r in records} if records is not None else {}
    changed, missing, relabelled = [], [], []
    for k, d in overlay.decisions.items():
        try:
            digest = file_sha256(k)
        except OSError:
            missing.append(d.path)
            continue
        if digest != d.sha256:
            changed.append(d.path)
        elif k in labels and labels[k] != d.given_label:
            relabelled.append(d.path)
    bad = changed + missing + relabelled
    if bad:
        parts = [
            f"{len(v)} {what}"
            for v, what in (
                (changed, "changed"),
                (missing, "missing"),
                (relabelled, "in another class folder"),
            )
            if v
        ]
        raise DataError(
            f"{overlay.path}: {len(bad)} of {len(overlay.decisions)} rows no longer match their "
            f"images ({', '.join(parts)}; e.g. {bad[0]}); review those cells again or remove "
            "their rows"
        )


def load(path: str | os.PathLike[str], records: Iterable[Record] | None = None) -> Overlay:
    """:func:`read` and :func:`check`: what a run uses."""
    overlay = read(path)
    check(overlay, records)
    return overlay


def _write(path: Path, decisions: Iterable[Decision]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(d.row() for d in decisions)
    atomic.write_text(path, buf.getvalue())


def record(
    overlay_path: str | os.PathLike[str],
    image_path: str | os.PathLike[str],
    given_label: int,
    decision: str,
    *,
    when: str | None = None,
) -> Decision:
    """Record (or replace) the decision about one image; creates the overlay when missing.

    The image is hashed now, so the decision stays tied to these bytes. The file is rewritten
    atomically: a reader (a run starting) sees it before or after, never half-written.
    """
    if decision not in DECISIONS:
        raise DataError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    if given_label not in (0, 1):
        raise DataError(f"given label {given_label!r} is not 0 (Uninfected) or 1 (Parasitized)")
    p = Path(overlay_path).expanduser()
    current = read(p).decisions if p.exists() else {}
    k = key(image_path)
    try:
        digest = file_sha256(k)
    except OSError as e:
        raise DataError(f"{k}: cannot read the image to review ({e.strerror})") from None
    d = Decision(k, digest, int(given_label), decision, when or now())
    current.pop(k, None)
    current[k] = d
    _write(p, current.values())
    return d


def record_many(overlay_path: str | os.PathLike[str], decisions: Iterable[Decision]) -> None:
    """Record several decisions in one rewrite (their hashes as given: they were taken when the
    images were reviewed); used to import decisions and by tests."""
    p = Path(overlay_path).expanduser()
    current = read(p).decisions if p.exists() else {}
    for d in decisions:
        if d.decision not in DECISIONS:
            raise DataError(f"decision {d.decision!r} is not one of {', '.join(DECISIONS)}")
        k = key(d.path)
        current.pop(k, None)
        current[k] = replace(d, path=k)
    _write(p, current.values())


def forget(overlay_path: str | os.PathLike[str], image_path: str | os.PathLike[str]) -> bool:
    """Remove the decision about one image (undo); ``False`` when there was none."""
    p = Path(overlay_path).expanduser()
    if not p.exists():
        return False
    current = read(p).decisions
    if current.pop(key(image_path), None) is None:
        return False
    _write(p, current.values())
    return True


# --- applying -------------------------------------------------------------------------------


def changes_of(records: Sequence[Record], overlay: Overlay) -> Changes:
    """What the overlay's decisions would do to ``records`` (nothing is applied)."""
    return apply(records, overlay)[1]


def apply(
    records: Sequence[Record], overlay: Overlay | str | os.PathLike[str]
) -> tuple[list[Record], Changes]:
    """``records`` as reviewed: relabelled ones flipped, excluded ones dropped, order kept.

    ``overlay`` is an :class:`Overlay` (already checked) or the path of one (read and checked
    here, labels included)."""
    if not isinstance(overlay, Overlay):
        overlay = read(overlay)
        check(overlay, records)
    out: list[Record] = []
    reviewed = relabelled = excluded = to_p = to_u = 0
    for r in records:
        d = overlay.decisions.get(key(r.path))
        if d is None:
            out.append(r)
            continue
        reviewed += 1
        if d.decision == EXCLUDE:
            excluded += 1
        elif d.decision == RELABEL:
            relabelled += 1
            new = 1 - r.label
            to_p += new == 1
            to_u += new == 0
            out.append(replace(r, label=new))
        else:
            out.append(r)
    return out, Changes(reviewed, relabelled, excluded, to_p, to_u)


def for_splits(
    parts: Mapping[str, list[Record]],
    overlay_path: str,
    applied: Sequence[str] = APPLIED,
) -> tuple[dict[str, list[Record]], Effect | None]:
    """The overlay at ``overlay_path`` ("" for none) applied to the splits named in ``applied``.

    Called after the split, so decisions never move a patient from one split to another. The
    other splits (test) keep their records and labels; their decisions are kept in
    :attr:`Effect.reviewed` so the evaluation can score them on the reviewed labels too.
    """
    if not overlay_path:
        return dict(parts), None
    every = [r for rs in parts.values() for r in rs]
    overlay = load(overlay_path, every)
    out: dict[str, list[Record]] = {}
    changes: dict[str, Changes] = {}
    reviewed: dict[str, dict[str, Decision]] = {}
    for split, rs in parts.items():
        new, ch = apply(rs, overlay)
        changes[split] = ch
        if split in applied:
            out[split] = new
        else:
            out[split] = list(rs)
            found = {key(r.path): overlay.decisions.get(key(r.path)) for r in rs}
            reviewed[split] = {k: d for k, d in found.items() if d is not None}
    for split in applied:
        if split in out and parts[split] and not out[split]:
            raise DataError(
                f"{overlay.path}: excludes every image of the {split} split; nothing left to use"
            )
    used = sum(c.reviewed for c in changes.values())
    return out, Effect(
        path=str(overlay.path),
        sha256=overlay.sha256,
        rows=len(overlay.decisions),
        changes=changes,
        applied=tuple(s for s in applied if s in parts),
        outside=len(overlay.decisions) - used,
        reviewed=reviewed,
    )


def reviewed_labels(
    records: Sequence[Record], decisions: Mapping[str, Decision]
) -> tuple[list[bool], list[int], Changes]:
    """For a split scored on its original labels (test): which records the reviewed labels keep,
    their reviewed labels (original where undecided), and what changed."""
    kept: list[bool] = []
    labels: list[int] = []
    for r in records:
        d = decisions.get(key(r.path))
        label = r.label if d is None else d.label
        kept.append(label is not None)
        labels.append(r.label if label is None else label)
    _, ch = apply(records, Overlay(Path(), "", dict(decisions)))
    return kept, labels, ch
