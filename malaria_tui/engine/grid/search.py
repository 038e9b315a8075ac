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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from malaria_tui.engine import atomic
from malaria_tui.engine import rundir as rd
from malaria_tui.engine.errors import RunDirError, TrainingFailed
from malaria_tui.engine.events import CheckpointSaved, EpochEnd, EvaluationDone, Event
from malaria_tui.engine.grid import claims
from malaria_tui.engine.grid import spec as specmod
from malaria_tui.engine.grid import tensorboard_hparams as hpw
from malaria_tui.engine.grid.placement import Placement
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
    parallel: int = 1  # trials trained at once by this worker
    shard: str = ""  # "i/n": this worker runs every n-th trial from the i-th


@dataclass(frozen=True)
class TrialStarted(Event):
    kind: ClassVar[str] = "trial_started"
    index: int
    trials: int
    name: str
    params: dict
    resumed: bool


@dataclass(frozen=True)
class TrialProgress(Event):
    """An epoch of a trial trained in its own process (``--parallel``): several trials train
    at once, so their own events are not passed on, only this line per epoch."""

    kind: ClassVar[str] = "trial_progress"
    index: int
    trials: int
    name: str
    epoch: int
    epochs: int
    val: dict
    seconds: float


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
    status: str  # "completed" | "interrupted" | "partial" (a shard's share done, others not)
    best: str | None


@dataclass
class GridResult:
    path: Path
    spec: specmod.GridSpec
    summary: Summary
    status: (
        str  # "completed" (every trial final) | "interrupted" | "partial" (a shard's share done)
    )
    test: dict | None = None  # the best trial's test metrics, when scored
    failed: list[str] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any] | None:
        return self.summary.best()


# --- the grid directory ------------------------------------------------------------------------


def create_grid_dir(
    runs_dir: str | os.PathLike, spec: specmod.GridSpec, kind: str = "grid"
) -> Path:
    """``<runs_dir>/<stamp>-grid-<name>/`` with ``grid.toml``, ``grid.csv`` (all pending) and
    the TensorBoard HParams experiment (``kind`` "cv" for a cross-validation's folds)."""
    p = rd.unique_dir(runs_dir, spec.base.name, kind=kind)
    (p / TRIALS).mkdir()
    atomic.write_text(p / GRID_TOML, spec.to_toml())
    Summary(p, spec).write()
    hpw.write_experiment(p, spec, [*metric_columns(spec), *TEST_COLUMNS])
    return p.resolve()


def shared_grid_dir(
    runs_dir: str | os.PathLike, spec: specmod.GridSpec, kind: str = "grid"
) -> Path:
    """``<runs_dir>/grid-<name>/``, made by whichever shard worker comes first and joined by the
    others (no time stamp, so every worker of a job array names the same folder). Joining a
    folder made from another grid file is refused."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in spec.base.name) or "grid"
    p = Path(runs_dir).expanduser() / f"{kind}-{safe}"
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        p.mkdir()
    except FileExistsError:
        for _ in range(300):  # the first worker writes grid.toml within moments of mkdir
            if (p / GRID_TOML).is_file():
                break
            time.sleep(0.1)
        _, theirs = open_grid(p)
        if theirs.to_toml() != spec.to_toml():
            raise RunDirError(
                f"{p}: a grid made from another grid file is already there; pick another --name "
                "or join it with --resume"
            ) from None
        return p.resolve()
    (p / TRIALS).mkdir()
    Summary(p, spec).write()
    hpw.write_experiment(p, spec, [*metric_columns(spec), *TEST_COLUMNS])
    atomic.write_text(p / GRID_TOML, spec.to_toml())  # last: joiners wait for it
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


def _trial_state(
    run: rd.RunDir, trial: specmod.Trial, before: dict[str, str], busy_ok: bool = False
) -> str:
    """``new``, a final status (skip), ``resume`` (an unfinished run to continue), or with
    ``busy_ok`` (shard workers) ``busy``: another live worker holds the trial."""
    if busy_ok:
        h = claims.holder(run.path.parent.parent, trial.name)
        if h is not None and not claims.is_stale(h) and h.pid != os.getpid():
            return "busy"
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
    if status == "running" and busy_ok:
        return "busy"
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
    placement: Placement | None = None,
    shard: tuple[int, int] | None = None,
    test_best: bool = True,
) -> GridResult:
    """Run the unfinished trials of the grid directory ``path`` (made by :func:`create_grid_dir`),
    then test the best trial once every trial has finished (unless ``test_best`` is False: a
    cross-validation scores all its folds itself).

    ``placement`` runs several trials at once, each in its own process (:mod:`.placement`);
    ``shard=(i, n)`` runs only the trials whose position is ``i`` modulo ``n``, so ``n``
    workers, on one machine or many sharing the folder, split the grid. Every trial is
    claimed before it trains (:mod:`.claims`), so no two workers ever train the same one.
    """
    placement = placement or Placement()
    stop = stop or threading.Event()
    emit = on_event or (lambda ev: None)
    if shard is None:
        _acquire(path)  # one worker for the whole grid; shard workers rely on claims alone
    summary = Summary(path, spec)
    before = summary.previous_statuses()
    n = len(spec.trials)
    share = {t.name for i, t in enumerate(spec.trials) if shard is None or i % shard[1] == shard[0]}
    failed: list[str] = []
    try:
        todo = []
        for t in spec.trials:
            run = trial_run(path, t)
            if t.name not in share:
                _sync_row(summary, path, t)  # another shard's: shown, never touched
                continue
            state = _trial_state(run, t, before, busy_ok=shard is not None)
            if state in FINAL:
                summary.update(t.name, state, run)
                if state == "failed":
                    failed.append(t.name)
            elif state == "busy":
                _sync_row(summary, path, t)
            else:
                summary.update(t.name, "interrupted" if state == "resume" else "pending", run)
                todo.append((t, state))
        _write(summary, path, shard, set())
        emit(
            GridStarted(
                grid_dir=str(path),
                trials=n,
                todo=len(todo),
                resumed=resumed,
                parallel=placement.parallel,
                shard=f"{shard[0]}/{shard[1]}" if shard else "",
            )
        )
        run_trials = _run_parallel if placement.processes else _run_sequential
        interrupted = run_trials(
            _Grid(path, spec, summary, emit, stop, shard, failed), todo, placement
        )
        if shard is not None:
            for t in spec.trials:
                if t.name not in share:
                    _sync_row(summary, path, t)
            _write(summary, path, shard, set())
        everything = all(r["status"] in FINAL for r in summary.rows.values())
        test = None
        if test_best and not interrupted and everything and claims.claim(path, claims.TEST_CLAIM):
            try:
                test = _test_best(path, spec, summary, emit)
            finally:
                claims.release(path, claims.TEST_CLAIM)
        status = (
            "interrupted"
            if interrupted or (shard is None and not everything)
            else "completed"
            if everything
            else "partial"
        )
        emit(GridEnded(status=status, best=(summary.best() or {}).get("trial")))
        return GridResult(path, spec, summary, status, test, failed)
    finally:
        if shard is None:
            _release(path)


@dataclass
class _Grid:
    """What the trial runners share: the grid, its table, where events go, the stop flag."""

    path: Path
    spec: specmod.GridSpec
    summary: Summary
    emit: Callable[[Event], None]
    stop: threading.Event
    shard: tuple[int, int] | None
    failed: list[str]
    owned: set[str] = field(default_factory=set)  # trials this worker is training now

    def write(self) -> None:
        _write(self.summary, self.path, self.shard, self.owned)

    def begin(self, t: specmod.Trial, state: str) -> rd.RunDir:
        """Make the trial's folder ready (fresh, or resumed from its checkpoint)."""
        from malaria_tui.engine.training import checkpoints as ck

        run = trial_run(self.path, t)
        resume = state == "resume" and ck.latest(run.checkpoints) is not None
        if not resume:
            _fresh(run, t)
            hpw.write_trial_start(run.tensorboard, t)
        self.owned.add(t.name)
        self.summary.update(t.name, "running", run)
        self.write()
        n = len(self.spec.trials)
        self.emit(
            TrialStarted(index=t.index, trials=n, name=t.name, params=t.params, resumed=resume)
        )
        return run

    def end(self, t: specmod.Trial, run: rd.RunDir, status: str, error: str = "") -> None:
        if status == "stale":  # pragma: no cover - the trainer always ends with an event
            status = "interrupted"
        if status == "failed":
            self.failed.append(t.name)
        row = self.summary.update(t.name, status, run, error)
        self.write()
        if status in FINAL:
            hpw.write_trial_metrics(
                run.tensorboard,
                {k: v for k, v in row["metrics"].items() if k in self.summary.metrics},
                step=max(row["epochs"], 1),
                status=status,
            )
        self.owned.discard(t.name)
        claims.release(self.path, t.name)
        n = len(self.spec.trials)
        self.emit(TrialEnded(index=t.index, trials=n, name=t.name, status=status, row=row))

    def checkpointed(self, t: specmod.Trial, run: rd.RunDir) -> None:
        """A trial saved its last checkpoint: its live best-so-far metrics go to the table."""
        self.summary.update(t.name, "running", run)
        self.write()


def _run_sequential(g: _Grid, todo: list[tuple[specmod.Trial, str]], placement: Placement) -> bool:
    """One trial after another in this process; True if stopped before the end."""
    from malaria_tui.engine.training.trainer import train

    for t, state in todo:
        if g.stop.is_set():
            return True
        if not claims.claim(g.path, t.name):
            _sync_row(g.summary, g.path, t)  # another worker has it
            continue
        run = g.begin(t, state)

        def forward(ev: Event, t: specmod.Trial = t, run: rd.RunDir = run) -> None:
            g.emit(ev)
            if isinstance(ev, CheckpointSaved) and ev.role == "last":
                g.checkpointed(t, run)
                claims.heartbeat(g.path, [t.name])

        try:
            # resume=True on a folder with only config.toml trains it from scratch
            train(run=run, resume=True, on_event=forward, stop=g.stop, score_test=False)
            status, error = run.status(), ""
        except TrainingFailed as e:
            status, error = "failed", str(e)
        except BaseException as e:
            status, error = (
                ("interrupted", "")
                if isinstance(e, KeyboardInterrupt)
                else ("error", f"{type(e).__name__}: {e}")
            )
            g.summary.update(t.name, status, run, error)
            g.write()
            claims.release(g.path, t.name)
            raise
        g.end(t, run, status, error)
        if status == "interrupted":
            return True
    return False


POLL_SECONDS = 0.2


def _run_parallel(g: _Grid, todo: list[tuple[specmod.Trial, str]], placement: Placement) -> bool:
    """Up to ``placement.parallel`` trials at once, each in its own process on its own device
    (or share of the cores), followed through their event logs; True if stopped before the end.

    A trial whose process dies without finishing (killed, out of memory) is marked ``error``
    and the others go on; ``--resume`` retries it from its last checkpoint."""
    from malaria_tui.engine.grid.trial_process import INTERRUPTED, TrialProcess

    pending = list(todo)
    running: dict[int, tuple[specmod.Trial, TrialProcess]] = {}
    beat = time.monotonic()
    unfinished = False
    try:
        while pending or running:
            if g.stop.is_set():
                for _, proc in running.values():
                    proc.stop()
                pending.clear()
            free = [s for s in range(placement.parallel) if s not in running]
            while free and pending:
                t, state = pending.pop(0)
                if not claims.claim(g.path, t.name):
                    _sync_row(g.summary, g.path, t)
                    continue
                run = g.begin(t, state)
                slot = free.pop(0)
                running[slot] = (t, TrialProcess.start(run, slot, placement.env(slot)))
            for slot, (t, proc) in list(running.items()):
                code = proc.exit_code()  # before reading, so no event written before exit is lost
                for ev in proc.new_events():
                    if isinstance(ev, EpochEnd):
                        g.emit(_progress(g, t, ev))
                    elif isinstance(ev, CheckpointSaved) and ev.role == "last":
                        g.checkpointed(t, proc.run)
                if code is None:
                    continue
                del running[slot]
                status = proc.run.status()
                error = ""
                if status in ("running", "stale") or (
                    code not in (0, INTERRUPTED) and status not in FINAL
                ):
                    status, error = "error", proc.failure_reason()
                if status not in FINAL:
                    unfinished = True
                g.end(t, proc.run, status, error)
            if time.monotonic() - beat > claims.HEARTBEAT_SECONDS:
                claims.heartbeat(g.path, list(g.owned))
                beat = time.monotonic()
            if running or pending:
                time.sleep(POLL_SECONDS)
    finally:
        for _, proc in running.values():  # an error in this process: stop the trials in order
            proc.stop()
        for _, proc in running.values():
            proc.popen.wait()
    return g.stop.is_set() or unfinished


def _progress(g: _Grid, t: specmod.Trial, ev: EpochEnd) -> TrialProgress:
    return TrialProgress(
        index=t.index,
        trials=len(g.spec.trials),
        name=t.name,
        epoch=ev.epoch,
        epochs=ev.epochs,
        val={k: v for k, v in ev.val.items() if isinstance(v, int | float)},
        seconds=ev.seconds,
    )


def _sync_row(summary: Summary, path: Path, t: specmod.Trial) -> None:
    """A trial another worker owns, as its folder shows it now."""
    run = trial_run(path, t)
    if not run.events_path.exists():
        h = claims.holder(path, t.name)
        status = "running" if h is not None and not claims.is_stale(h) else "pending"
        summary.update(t.name, status, None)
        return
    status = run.status()
    if status == "stale":
        h = claims.holder(path, t.name)
        status = "running" if h is not None and not claims.is_stale(h) else "interrupted"
    summary.update(t.name, status, run)


def _write(summary: Summary, path: Path, shard: tuple[int, int] | None, owned: set[str]) -> None:
    """Rewrite ``grid.csv``; with shards, under a lock and with the other workers' trials
    read from their folders first, so no worker writes over another's rows."""
    if shard is None:
        summary.write()
        return
    import fcntl

    with open(path / ".grid.csv.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            mine = set(owned)
            for t in summary.spec.trials:
                if t.name not in mine and summary.rows[t.name]["status"] not in FINAL:
                    _sync_row(summary, path, t)
            summary.write()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
