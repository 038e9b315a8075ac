"""Typed progress events: the only thing the engine tells its front ends.

Every event is a frozen dataclass with a ``kind``; :func:`to_json` / :func:`from_json` map
them to the lines of a run's ``events.jsonl``, so a live callback and a file being followed
deliver the very same objects.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_dir: str
    config: dict
    n_train: int
    n_val: int
    n_test: int
    steps_per_epoch: int
    epochs: int
    start_epoch: int = 0
    start_step: int = 0
    resumed: bool = False
    score_test: bool = True  # False: a search trial; the test split stays unseen, resumed too


@dataclass(frozen=True)
class BatchEnd(Event):
    """Sent at most ``train.batch_events_per_second`` times a second (plus each epoch's last)."""

    kind: ClassVar[str] = "batch"
    epoch: int
    step: int
    steps: int
    metrics: dict
    images_per_sec: float
    global_step: int = 0


@dataclass(frozen=True)
class EpochEnd(Event):
    kind: ClassVar[str] = "epoch_end"
    epoch: int
    epochs: int
    train: dict
    val: dict
    seconds: float
    images_per_sec: float


@dataclass(frozen=True)
class CheckpointSaved(Event):
    kind: ClassVar[str] = "checkpoint_saved"
    epoch: int
    step: int
    path: str
    role: str  # "best" | "last" | "interrupt"
    monitor: str = ""
    value: float | None = None


@dataclass(frozen=True)
class Phase(Event):
    """What a run is doing while no batch is counted (compiling the step, the final
    evaluation), so a front end can say so instead of standing still."""

    kind: ClassVar[str] = "phase"
    what: str


@dataclass(frozen=True)
class EvaluationDone(Event):
    kind: ClassVar[str] = "evaluation_done"
    split: str
    metrics: dict


@dataclass(frozen=True)
class LogMessage(Event):
    kind: ClassVar[str] = "log"
    level: str
    message: str


@dataclass(frozen=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: str  # "completed" | "early_stopped"
    epochs_done: int
    best: dict


@dataclass(frozen=True)
class RunInterrupted(Event):
    kind: ClassVar[str] = "run_interrupted"
    epoch: int
    step: int
    checkpoint: str


@dataclass(frozen=True)
class RunFailed(Event):
    kind: ClassVar[str] = "run_failed"
    reason: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        BatchEnd,
        EpochEnd,
        CheckpointSaved,
        Phase,
        EvaluationDone,
        LogMessage,
        RunFinished,
        RunInterrupted,
        RunFailed,
    )
}

TERMINAL_KINDS = frozenset({"run_finished", "run_failed", "run_interrupted"})


def to_json(event: Event) -> dict[str, Any]:
    return {"event": event.kind, **dataclasses.asdict(event)}


def from_json(obj: dict[str, Any]) -> Event | None:
    """The event for one parsed log line; ``None`` for a kind this version does not know."""
    cls = EVENT_TYPES.get(obj.get("event", ""))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in obj.items() if k in names})
