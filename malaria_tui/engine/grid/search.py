"""Running a grid: one full run directory per trial, ranked on validation, the best one tested.

Grid directory (``<runs_dir>/<YYYYmmdd-HHMMSS>-grid-<name>/``)::

    grid.toml        the resolved spec: base config (every key) + [grid] (seed and mode filled in)
    grid.csv         one row per trial, rewritten atomically as trials start, progress and end
    grid.jsonl       the same rows as JSON lines
    grid.lock        pid of the process running the grid (a second one is refused)
    events.out...    TensorBoard HParams experiment (``tensorboard --logdir GRID_DIR``)
    trials/<NN>-<values>/   a normal run directory per trial (config.toml, events.jsonl, ...)

Trials train on the train split and are scored on the validation split only (the trainer is
called with ``score_test=False``). Once every trial has finished, the best one by
``grid.metric`` is scored on the test split, once: its ``eval/`` gets the usual test files and
its ``grid.csv`` row the ``test_*`` columns. No other trial ever looks at the test split.

Setting ``stop`` makes the running trial save a resumable checkpoint and the grid return;
:func:`resume_grid` skips finished trials, resumes an interrupted one from its checkpoint and
restarts one killed before its first checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from malaria_tui.engine import atomic
from malaria_tui.engine import rundir as rd
from malaria_tui.engine.errors import RunDirError, TrainingFailed
from malaria_tui.engine.events import CheckpointSaved, EvaluationDone, Event
from malaria_tui.engine.grid import spec as specmod
from malaria_tui.engine.grid import tensorboard_hparams as hpw
from malaria_tui.engine.grid.results_table import (
    FINAL,
    FINISHED,
    TEST_COLUMNS,
    Summary,
    metric_columns,
)

GRID_TOML = "grid.toml"
GRID_LOCK = "grid.lock"
TRIALS = "trials"


# --- grid-level events (the trainer's own events of each trial are passed on as they are) ------


@dataclass(frozen=True)
class GridStarted(Event):
    kind: ClassVar[str] = "grid_started"
    grid_dir: str
    trials: int
    todo: int
    resumed: bool


@dataclass(frozen=True)
class TrialStarted(Event):
    kind: ClassVar[str] = "trial_started"
    index: int
    trials: int
    name: str
    params: dict
    resumed: bool


@dataclass(frozen=True)
class TrialEnded(Event):
    kind: ClassVar[str] = "trial_ended"
    index: int
    trials: int
    name: str
    status: str
    row: dict


@dataclass(frozen=True)
class BestTested(Event):
    kind: ClassVar[str] = "best_tested"
    name: str
    metric: str
    value: float
    test: dict  # the full test metrics at threshold 0.5 (as in eval/metrics.json)


@dataclass(frozen=True)
class GridEnded(Event):
    kind: ClassVar[str] = "grid_ended"
    status: str  # "completed" | "interrupted"
    best: str | None


@dataclass
class GridResult:
    path: Path
    spec: specmod.GridSpec
    summary: Summary
    status: str  # "completed" (every trial final) | "interrupted"
    test: dict | None = None  # the best trial's test metrics, when scored
    failed: list[str] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any] | None:
        return self.summary.best()


# --- the grid directory ------------------------------------------------------------------------


def create_grid_dir(runs_dir: str | os.PathLike, spec: specmod.GridSpec) -> Path:
    """``<runs_dir>/<stamp>-grid-<name>/`` with ``grid.toml``, ``grid.csv`` (all pending) and
    the TensorBoard HParams experiment."""
    p = rd.unique_dir(runs_dir, spec.base.name, kind="grid")
    (p / TRIALS).mkdir()
    atomic.write_text(p / GRID_TOML, spec.to_toml())
    Summary(p, spec).write()
    hpw.write_experiment(p, spec, [*metric_columns(spec), *TEST_COLUMNS])
    return p.resolve()


def open_grid(path: str | os.PathLike) -> tuple[Path, specmod.GridSpec]:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise RunDirError(f"{p}: no such grid directory")
    if not (p / GRID_TOML).is_file():
        raise RunDirError(
            f"{p}: not a grid directory (it has no {GRID_TOML}); pass a folder made by "
            "`malaria-tui grid`"
        )
    return p.resolve(), specmod.read(p / GRID_TOML)


def _lock_holder(grid_dir: Path) -> int | None:
    return rd.lock_holder(grid_dir, GRID_LOCK)


def _acquire(grid_dir: Path) -> None:
    holder = _lock_holder(grid_dir)
    if holder and holder != os.getpid():
        raise RunDirError(f"{grid_dir}: this grid is still being run by process {holder}")
    atomic.write_text(grid_dir / GRID_LOCK, str(os.getpid()))


def _release(grid_dir: Path) -> None:
    if _lock_holder(grid_dir) == os.getpid():
        (grid_dir / GRID_LOCK).unlink(missing_ok=True)


# --- running -----------------------------------------------------------------------------------


def run_grid(
    spec: specmod.GridSpec,
    *,
    runs_dir: str | os.PathLike = "runs",
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
) -> GridResult:
    """Create a grid directory for ``spec`` and run every trial (see the module docstring)."""
    path = create_grid_dir(runs_dir, spec)
    return run_in_dir(path, spec, on_event=on_event, stop=stop)


def resume_grid(
    grid_dir: str | os.PathLike,
    *,
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
) -> GridResult:
    """Continue a grid: finished trials are skipped, an interrupted one resumes."""
    path, spec = open_grid(grid_dir)
    return run_in_dir(path, spec, on_event=on_event, stop=stop, resumed=True)


def trial_run(grid_dir: Path, trial: specmod.Trial) -> rd.RunDir:
    return rd.RunDir(Path(grid_dir) / TRIALS / trial.name)


def _trial_state(run: rd.RunDir, trial: specmod.Trial, before: dict[str, str]) -> str:
    """``new``, a final status (skip), or ``resume`` (an unfinished run to continue)."""
    if not run.path.exists():
        return "new"
    if not run.config_path.is_file():
        raise RunDirError(f"{run.path}: a trial folder without config.toml; remove it to retry")
    if run.load_config() != trial.config:
        raise RunDirError(
            f"{run.path}: its config.toml differs from the grid's trial {trial.name}; "
            "the grid was edited after it started (start a new grid instead)"
        )
    status = run.status()
    if status == "running":
        raise RunDirError(f"{run.path}: still being trained by process {rd.lock_holder(run.path)}")
    if status in FINISHED:
        return status
    if status == "failed" and before.get(trial.name) == "failed":
        return "failed"  # the loss became NaN/Inf: retrying would do the same
    return "resume"


def _fresh(run: rd.RunDir, trial: specmod.Trial) -> None:
    """An empty trial folder holding just its ``config.toml`` (any earlier attempt is removed)."""
    if run.path.exists():
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True)
    atomic.write_text(run.config_path, trial.config.to_toml())


def run_in_dir(
    path: Path,
    spec: specmod.GridSpec,
    *,
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
    resumed: bool = False,
) -> GridResult:
    """Run the unfinished trials of the grid directory ``path`` (made by :func:`create_grid_dir`),
    then test the best trial once every trial has finished."""
    from malaria_tui.engine.training import checkpoints as ck
    from malaria_tui.engine.training.trainer import train

    stop = stop or threading.Event()
    emit = on_event or (lambda ev: None)
    _acquire(path)
    summary = Summary(path, spec)
    before = summary.previous_statuses()
    n = len(spec.trials)
    failed: list[str] = []
    try:
        todo = []
        for t in spec.trials:
            run = trial_run(path, t)
            state = _trial_state(run, t, before)
            if state in FINAL:
                summary.update(t.name, state, run)
                if state == "failed":
                    failed.append(t.name)
            else:
                summary.update(t.name, "interrupted" if state == "resume" else "pending", run)
                todo.append((t, state))
        summary.write()
        emit(GridStarted(grid_dir=str(path), trials=n, todo=len(todo), resumed=resumed))
        interrupted = False
        for t, state in todo:
            if stop.is_set():
                interrupted = True
                break
            run = trial_run(path, t)
            resume = state == "resume" and ck.latest(run.checkpoints) is not None
            if not resume:
                _fresh(run, t)
                hpw.write_trial_start(run.tensorboard, t)
            summary.update(t.name, "running", run)
            summary.write()
            emit(
                TrialStarted(index=t.index, trials=n, name=t.name, params=t.params, resumed=resume)
            )

            def forward(ev: Event, name: str = t.name, run: rd.RunDir = run) -> None:
                emit(ev)
                if isinstance(ev, CheckpointSaved) and ev.role == "last":
                    summary.update(name, "running", run)  # live best-so-far metrics
                    summary.write()

            status, error = "interrupted", ""
            try:
                # resume=True on a folder with only config.toml trains it from scratch
                train(run=run, resume=True, on_event=forward, stop=stop, score_test=False)
                status = run.status()
            except TrainingFailed as e:
                status, error = "failed", str(e)
                failed.append(t.name)
            except BaseException as e:
                status, error = (
                    ("interrupted", "")
                    if isinstance(e, KeyboardInterrupt)
                    else ("error", f"{type(e).__name__}: {e}")
                )
                summary.update(t.name, status, run, error)
                summary.write()
                raise
            if status == "stale":  # pragma: no cover - the trainer always ends with an event
                status = "interrupted"
            row = summary.update(t.name, status, run, error)
            summary.write()
            if status in FINAL:
                hpw.write_trial_metrics(
                    run.tensorboard,
                    {k: v for k, v in row["metrics"].items() if k in summary.metrics},
                    step=max(row["epochs"], 1),
                    status=status,
                )
            emit(TrialEnded(index=t.index, trials=n, name=t.name, status=status, row=row))
            if status == "interrupted":
                interrupted = True
                break
        test = None
        if not interrupted:
            test = _test_best(path, spec, summary, emit)
        status = "interrupted" if interrupted else "completed"
        emit(GridEnded(status=status, best=(summary.best() or {}).get("trial")))
        return GridResult(path, spec, summary, status, test, failed)
    finally:
        _release(path)


def _test_best(
    path: Path, spec: specmod.GridSpec, summary: Summary, emit: Callable[[Event], None]
) -> dict[str, Any] | None:
    """Score the best trial on the test split, once (a resumed grid does not score it again)."""
    best = summary.best()
    if best is None:
        return None
    t = next(t for t in spec.trials if t.name == best["trial"])
    run = trial_run(path, t)
    if not best["test"]:
        result = score_test_split(run, emit)
        summary.update(t.name, best["status"], run)
        summary.write()
        hpw.write_trial_metrics(
            run.tensorboard,
            {k: v for k, v in summary.rows[t.name]["test"].items()},
            step=max(best["epochs"], 1),
        )
        test = result["test"]
    else:
        test = json.loads((run.eval_dir / "metrics.json").read_text(encoding="utf-8"))["test"]
    emit(
        BestTested(
            name=t.name,
            metric=spec.metric,
            value=float(summary.rows[t.name]["metrics"].get(spec.metric, float("nan"))),
            test=test,
        )
    )
    return test


def score_test_split(run: rd.RunDir, emit: Callable[[Event], None] | None = None) -> dict:
    """The end-of-run evaluation with the test split, for a run trained with ``score_test=False``:
    rewrites its ``eval/`` (test metrics, thresholds chosen on val, ROC, predictions) and appends
    the ``evaluation_done`` event to its log."""
    from malaria_tui.engine.data import pipeline
    from malaria_tui.engine.evaluation import score_run
    from malaria_tui.engine.evaluation.eval_dir import write_eval

    cfg = run.load_config()
    rd.acquire_lock(run)
    try:
        model = score_run.load_best(run)
        prepared = pipeline.prepare(cfg)
        result, roc, preds = score_run.evaluate_prepared(model, prepared, cfg.eval)
        result["data"] = {
            "source": prepared.source,
            "split": prepared.split_mode,
            "counts": prepared.counts,
        }
        write_eval(run.eval_dir, result, roc, preds)
        ev = EvaluationDone(split="test", metrics=score_run.split_summary(result, "test"))
        writer = rd.EventWriter(run.events_path)
        try:
            writer.write(ev)
        finally:
            writer.close()
    finally:
        rd.release_lock(run)
    if emit is not None:
        emit(ev)
    return result
