"""Resumable training state and the best model, written so a crash never corrupts either.

State goes to a fresh ``state-e<epoch>-s<step>/`` folder (weights, optimizer slots, step
counters, dropout seed states via ``tf.train.Checkpoint``), then ``latest.json`` is replaced
atomically to point at it, and only then are older folders pruned. The best model is saved as
``best.keras`` via a temporary file and a rename.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from malaria_tui.engine import atomic
from malaria_tui.engine.tfenv import KerasModel
from malaria_tui.engine.tfenv import tf as _tf

LATEST = "latest.json"


@dataclass(frozen=True)
class Position:
    """Where training resumes: ``epoch`` (0-based) and batches already done in it."""

    epoch: int
    step: int
    best: float | None
    bad_epochs: int = 0
    dir: str = ""
    note: str = ""  # how it was found, when not through an intact latest.json


def _checkpoint(model: KerasModel, optimizer: Any) -> Any:
    """Weights, optimizer slots and the dropout layers' seed-generator states.

    Keras 3 keeps seed states in plain ``SeedGenerator`` objects that TF's object tracking
    does not see, so they are listed explicitly; without them a resumed run would draw
    different dropout masks from an uninterrupted one.
    """
    tf = _tf()
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    rng = tf.train.Checkpoint(**{f"s{i}": v for i, v in enumerate(seeds)})
    return tf.train.Checkpoint(model=model, optimizer=optimizer, rng=rng)


def save_state(
    ckpt_dir: Path, model: KerasModel, optimizer: Any, pos: Position, keep: int = 2
) -> Path:
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    name = f"state-e{pos.epoch:04d}-s{pos.step:06d}"
    tmp = ckpt_dir / f".{name}.tmp"
    final = ckpt_dir / name
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _checkpoint(model, optimizer).write(str(tmp / "ckpt"))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:  # a full disk, Ctrl+C: no half-written folder; latest.json unchanged
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic.fsync_dir(ckpt_dir)
    atomic.write_json(
        ckpt_dir / LATEST,
        {
            "dir": name,
            "epoch": pos.epoch,
            "step": pos.step,
            "best": pos.best,
            "bad_epochs": pos.bad_epochs,
        },
    )
    _prune(ckpt_dir, keep, current=name)
    return final


def _prune(ckpt_dir: Path, keep: int, current: str) -> None:
    states = sorted(p for p in ckpt_dir.glob("state-e*") if p.is_dir() and p.name != current)
    for old in states[: max(0, len(states) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in ckpt_dir.glob(".state-*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)


def latest(ckpt_dir: Path) -> Position | None:
    try:
        data = json.loads((ckpt_dir / LATEST).read_text())
    except (OSError, ValueError):
        return None
    if not (ckpt_dir / data.get("dir", "") / "ckpt.index").exists():
        return None
    return Position(
        data["epoch"], data["step"], data.get("best"), data.get("bad_epochs", 0), data["dir"]
    )


def resume_position(ckpt_dir: Path) -> Position | None:
    """Where a resume starts: the state ``latest.json`` points at. When that pointer is damaged
    or points nowhere, the newest intact ``state-*`` folder, with a ``note`` saying so (the
    best value and patience are then unknown: the caller recovers them from the event log).
    None only when the run saved no state at all; a run whose states are all damaged is
    refused, never silently trained again from the start."""
    from malaria_tui.engine.errors import RunDirError

    pos = latest(ckpt_dir)
    if pos is not None:
        return pos
    pointer = ckpt_dir / LATEST
    states = sorted(
        (p for p in ckpt_dir.glob("state-e*-s*") if (p / "ckpt.index").is_file()), reverse=True
    )
    if not states:
        if pointer.exists():
            raise RunDirError(
                f"{pointer}: damaged, and no intact state-*/ folder beside it to resume from; "
                "train the run again"
            )
        return None
    newest = states[0].name
    epoch, step = (int(part[1:]) for part in newest.removeprefix("state-").split("-"))
    why = "unreadable" if pointer.exists() else "missing"
    return Position(
        epoch, step, None, 0, newest, note=f"{pointer} was {why}: recovered from {newest}"
    )


def restore_state(ckpt_dir: Path, model: KerasModel, optimizer: Any, pos: Position) -> None:
    """Read a saved state into ``model`` and ``optimizer`` (under the run's strategy scope)."""
    if not optimizer.built:  # LossScaleOptimizer.build is not idempotent
        optimizer.build(model.trainable_variables)
    status = _checkpoint(model, optimizer).read(str(ckpt_dir / pos.dir / "ckpt"))
    status.assert_existing_objects_matched()


def save_model(model: KerasModel, path: Path) -> None:
    """``model.save`` to a temp file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    atomic.fsync_dir(path.parent)
