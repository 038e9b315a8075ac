"""The window's training: start, follow, stop, detach, watch, and quitting while a run trains.

Three sources feed one :class:`TrainingSession`, which every screen draws from: a run this
window trains, a run it only follows through the run directory's ``events.jsonl`` (a watch
window, or a run picked on the Runs screen), and a hyper-parameter grid, whose trials show one
after another. A run trains in a child process (``process``: the UI never competes with the
trainer for the GIL, and the run can outlive the window) or in a worker thread of this process
(``thread``); a grid always trains in a worker thread, as ``search.run_in_dir`` expects.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message
from textual.worker import Worker, WorkerState

from malaria_tui.engine.errors import UserError
from malaria_tui.engine.events import TERMINAL_KINDS, Event, RunFailed
from malaria_tui.engine.rundir import EventReader, RunDir
from malaria_tui.tui.messages import EngineEvent
from malaria_tui.tui.training_session import TrainingSession

if TYPE_CHECKING:
    from malaria_tui.engine.config import Config
    from malaria_tui.tui.trainer_process import TrainerProcess

TRAIN_IN = ("process", "thread")
GROUP = "train"


class Host(Protocol):
    """What the controller needs of the app (the app satisfies it; tests may too)."""

    config: Config
    runs_dir: Path
    tf_state: str

    def run_worker(self, work: Any, **kwargs: Any) -> Worker: ...
    def post_message(self, message: Message) -> bool: ...
    def notify(self, message: str, **kwargs: Any) -> None: ...
    def exit(self, result: Any = None, return_code: int = 0, message: Any = None) -> None: ...
    def refresh_status(self) -> None: ...
    def notify_shown_screen(self, hook: str) -> None: ...


class TrainingController:
    """The one run (or grid) this window trains, follows or watches."""

    def __init__(
        self, host: Host, train_in: str = "process", watch_run: RunDir | None = None
    ) -> None:
        if train_in not in TRAIN_IN:
            raise ValueError(f"train_in must be one of {', '.join(TRAIN_IN)}, not {train_in!r}")
        self.host = host
        self.train_in = train_in
        self.session = TrainingSession()
        self.watch_run = watch_run  # a watch window follows this run only and never trains
        self.followed_run: RunDir | None = None  # picked on the Runs screen to follow here
        self.current_run: RunDir | None = watch_run
        self.trainer: TrainerProcess | None = None  # the child process, in "process" mode
        self.detached_run: RunDir | None = None  # left training on its own when the window quit
        self.stop_event: threading.Event | None = None
        self._detach = threading.Event()  # set: stop following; the child trains on alone
        self._worker: Worker | None = None
        self._in_process = False  # the run in progress can be left training on its own
        self._reader: EventReader | None = None
        self._quit_after_stop = False
        self._interrupted = False  # ctrl+c, SIGINT or SIGTERM asked to stop: exit code 130
        self._resume: RunDir | None = None  # to continue once TensorFlow is ready
        self._grid: tuple | None = None  # (spec, grid_dir, resumed) of the grid to train
        self._grid_how: dict[str, Any] = {}  # placement and shard of that grid
        self._grid_began = False  # its thread started: grid_outcome waits for it
        self._grid_done = threading.Event()
        self.grid_result: Any = None  # what search.run_in_dir returned...
        self.grid_error: BaseException | None = None  # ...or raised
        if watch_run is not None:
            self._reader = EventReader(watch_run.events_path)
            self.session.note("info", f"watching {watch_run.path}")

    # --- state -------------------------------------------------------------------------------

    @property
    def training(self) -> bool:
        return self._worker is not None and not self._worker.is_finished

    @property
    def watching(self) -> RunDir | None:
        """The run followed without training it (a watch window's, or one picked on Runs)."""
        return self.watch_run or self.followed_run

    @property
    def interrupted_run(self) -> RunDir | None:
        """The run this window stopped at a resumable checkpoint, if any (for the CLI's hint)."""
        if self.watch_run is None and self.session.status == "interrupted":
            return self.current_run
        return None

    def why_not_start(self) -> str | None:
        if self.watch_run is not None:
            return "this window only watches a run; start training from a normal session"
        if self.host.tf_state != "ready":
            loading = self.host.tf_state == "loading"
            return "TensorFlow is still loading" if loading else "TensorFlow is unavailable"
        if self.training:
            return "a run is already in progress"
        return None

    # --- starting ----------------------------------------------------------------------------

    def start(self, resume: RunDir | None = None) -> str | None:
        """Start training the app's config in a new run, or continue ``resume``; returns why
        not, when it cannot."""
        why = self.why_not_start()
        if why:
            return why
        self._begin()
        if resume is not None:  # the curves so far come from the run's own log
            for event in EventReader(resume.events_path).read_new():
                self.session.apply(event)
            self.session.status = "starting"  # not the "interrupted" that log ends with
        what = (
            f"resuming {resume.name}" if resume else f"starting a {self.host.config.model.name} run"
        )
        self.session.note("info", what + "…")
        config, runs_dir, stop = self.host.config, self.host.runs_dir, self.stop_event
        if self.train_in == "process":
            self._in_process = True
            self._run(lambda: self._train_in_process(config, runs_dir, resume, stop))
        else:
            self._run(lambda: self._train_in_thread(config, runs_dir, resume, stop))
        return None

    def queue_resume(self, run: RunDir) -> None:
        """Continue ``run`` once :meth:`start_queued_resume` is called (TensorFlow is ready)."""
        self._resume = run
        self.session.note("info", f"resuming {run.path} once TensorFlow is ready…")

    def start_queued_resume(self) -> bool:
        """Continue the queued run, once, as the Runs screen's resume does, or say why not;
        False when none was queued."""
        run, self._resume = self._resume, None
        if run is None:
            return False
        why = self.start(resume=run)
        if why:
            self.session.note("error", f"cannot resume {run.name}: {why}")
            self.host.notify(f"Cannot resume {run.name}: {why}", severity="error", timeout=10)
        return True

    def queue_grid(
        self,
        spec: Any,
        grid_dir: Path,
        resumed: bool,
        placement: Any = None,
        shard: tuple[int, int] | None = None,
        test_best: bool = True,
    ) -> None:
        """Train this grid (``search.run_in_dir``) once :meth:`start_queued_grid` is called;
        ``placement``, ``shard`` and ``test_best`` as for ``run_in_dir`` (several trials at
        once, a share, a cross-validation's folds)."""
        self._grid = (spec, Path(grid_dir), resumed)
        self._grid_how = {"placement": placement, "shard": shard, "test_best": test_best}

    def start_queued_grid(self) -> None:
        if self._grid is None or self.training:
            return
        spec, grid_dir, resumed = self._grid
        self._begin()
        self.session.note("info", f"running the grid {grid_dir}…")
        stop = self.stop_event
        self._run(lambda: self._run_grid(spec, grid_dir, resumed, stop))

    def grid_outcome(self) -> Any:
        """Once the app has closed: what ``search.run_in_dir`` returned, or raise what it
        raised. A grid the window closed on before it began is stopped before its first trial."""
        from malaria_tui.engine.grid import search

        assert self._grid is not None, "no grid was queued"
        spec, grid_dir, resumed = self._grid
        if not self._grid_began:
            stop = threading.Event()
            stop.set()
            return search.run_in_dir(grid_dir, spec, stop=stop, resumed=resumed, **self._grid_how)
        self._grid_done.wait()
        if self.grid_error is not None:
            raise self.grid_error
        return self.grid_result

    def _begin(self) -> None:
        self._reader, self.followed_run = None, None  # stop following a run picked on Runs
        self.session.reset()
        self.session.status = "starting"
        self.stop_event = threading.Event()
        self._in_process = False

    def _run(self, work: Any) -> None:
        self._worker = self.host.run_worker(
            work, name=GROUP, group=GROUP, exclusive=True, thread=True, exit_on_error=False
        )
        self.host.refresh_status()

    # --- the worker threads ------------------------------------------------------------------

    def _relay(self, event: Event) -> None:
        self.host.post_message(EngineEvent(event))

    def _train_in_process(
        self, config: Config, runs_dir: Path, resume: RunDir | None, stop: threading.Event | None
    ) -> RunDir:
        """Start the trainer process and relay its events until it exits (or is left alone)."""
        from malaria_tui.tui.trainer_process import TrainerProcess

        self.trainer = TrainerProcess.start(config, runs_dir, resume)
        self.current_run = self.trainer.run
        self.trainer.follow(self._relay, detach=self._detach, stop=stop)
        return self.trainer.run

    def _train_in_thread(
        self, config: Config, runs_dir: Path, resume: RunDir | None, stop: threading.Event | None
    ) -> RunDir:
        from malaria_tui.engine.training.trainer import train

        return train(
            config,
            runs_dir=runs_dir,
            run=resume,
            resume=resume is not None,
            on_event=self._relay,
            stop=stop,
        )

    def _run_grid(
        self, spec: Any, grid_dir: Path, resumed: bool, stop: threading.Event | None
    ) -> Any:
        from malaria_tui.engine.grid import search

        self._grid_began = True
        try:
            self.grid_result = search.run_in_dir(
                grid_dir, spec, on_event=self._relay, stop=stop, resumed=resumed, **self._grid_how
            )
        except BaseException as e:  # for grid_outcome, after the window closed
            self.grid_error = e
            raise
        finally:
            self._grid_done.set()
        return self.grid_result

    # --- events --------------------------------------------------------------------------------

    def handle_event(self, event: Event) -> None:
        self.session.apply(event)
        if event.kind == "run_started" and event.run_dir and self.watch_run is None:
            with contextlib.suppress(TypeError, ValueError):
                self.current_run = RunDir(Path(event.run_dir))
        if event.kind in TERMINAL_KINDS:
            self.host.refresh_status()
            if event.kind == "run_failed":
                self.host.notify(f"Training failed: {event.reason}", severity="error", timeout=10)

    def poll(self) -> None:
        """Read what the followed run's ``events.jsonl`` gained since the last call."""
        if self._reader is not None:
            for event in self._reader.read_new():
                self.handle_event(event)

    def follow(self, run: RunDir) -> str | None:
        """Show ``run`` (live, e.g. left training by another window, or finished) by following
        its ``events.jsonl``, as ``malaria-tui watch`` does; returns why not, when this window
        trains a run of its own."""
        if self.watch_run is not None:
            return "this window watches one run only"
        if self.training:
            return "this window is training; stop its run first"
        self.session.reset()
        self.followed_run = self.current_run = run
        self._reader = EventReader(run.events_path)
        self.session.note("info", f"watching {run.path}")
        self.poll()
        self.host.refresh_status()
        return None

    def worker_changed(self, event: Worker.StateChanged) -> None:
        """The training worker ended: settle the session, and quit when that was asked."""
        worker = event.worker
        if worker is not self._worker or not worker.is_finished:
            return
        if self._detach.is_set():  # the run trains on in its own process; this window quits
            return
        if event.state == WorkerState.SUCCESS and isinstance(worker.result, RunDir):
            self.current_run = worker.result
        elif event.state == WorkerState.ERROR:
            err = worker.error
            reason = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            if not self.session.failure:
                self.handle_event(RunFailed(reason=reason))
        if self.session.active:  # the trainer returned without a terminal event
            self.session.status = "interrupted" if self._quit_after_stop else "completed"
        self.session.version += 1
        self.host.refresh_status()
        self.host.notify_shown_screen("on_run_done")
        if self._quit_after_stop:
            self.host.exit(return_code=self._stop_return_code())

    # --- stopping and quitting -------------------------------------------------------------------

    def stop(self) -> bool:
        """Ask the run for a resumable checkpoint at its next step; False when none runs."""
        if self.stop_event is None or not self.training:
            return False
        self.stop_event.set()
        self.session.status = "stopping"
        self.session.note("warning", "stopping: saving a resumable checkpoint…")
        self.host.refresh_status()
        return True

    def detach(self) -> bool:
        """Leave the run training on its own in its process; False when it has none."""
        if self.trainer is None or not self.trainer.alive:
            return False
        self.detached_run = self.trainer.run
        self._detach.set()
        return True

    def shutdown(self) -> None:
        """The window closes: a run nobody chose to keep is stopped at a checkpoint, never
        orphaned, and a thread run ends soon (the event loop waits for its thread on exit)."""
        if self._detach.is_set():
            return
        if self.stop_event is not None:  # Textual may already count the thread's worker done
            self.stop_event.set()
        if self.trainer is not None:
            self.trainer.stop()
            self._detach.set()

    def _stop_return_code(self) -> int:
        """130 when ctrl+c or a signal stopped the run at a checkpoint (as the headless CLI),
        1 when the run failed meanwhile, 0 otherwise (``q`` and its dialog)."""
        if self.session.status == "failed":
            return 1
        if self._interrupted and self.session.status == "interrupted":
            return 130
        return 0

    def _quit_handled(self) -> bool:
        """Quit at once with no run in progress, or say so while a stop is being saved."""
        if not self.training:
            self.host.exit()
            return True
        if self._quit_after_stop:
            self.host.notify("Still saving the checkpoint; the app quits when it is written.")
            return True
        return False

    def interrupt(self) -> None:
        """ctrl+c, SIGINT or SIGTERM: stop the run at the next step with a resumable
        checkpoint and quit with exit code 130; with no run in progress, quit at once."""
        if self._quit_handled():
            return
        self._interrupted = self._quit_after_stop = True
        if self.stop():
            self.host.notify("Stopping: saving a resumable checkpoint, then quitting…")
        else:
            self.host.exit()

    def must_ask_to_quit(self) -> bool:
        """``q``: quits at once with no run in progress, or says a stop is being saved; True
        when a run is in progress: keep it training, stop it or stay is the user's choice
        (:meth:`quit_chosen`)."""
        return not self._quit_handled()

    @property
    def can_detach(self) -> bool:
        """The run in progress has its own process, so it can go on after the window closes."""
        return self._in_process

    def quit_chosen(self, choice: str | None) -> None:
        """The answer to :meth:`must_ask_to_quit`: "keep", "stop", or None to stay."""
        if choice == "keep" and self.detach():
            self.host.exit()
        elif choice in ("stop", "keep"):  # "keep" before the child even started: stop
            self._quit_after_stop = True
            if not self.stop():
                self.host.exit()
