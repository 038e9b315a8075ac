"""The malaria-tui Textual application.

``create_app()`` builds it for the CLI, the tests and ``tools/screenshots.py``. TensorFlow is
never imported at start-up: the first frame paints, then a thread imports it while the top bar
says "TF loading…"; actions that need it are offered once it says "TF ready".
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from malaria_tui.engine import config as config_mod
from malaria_tui.engine.config import Config
from malaria_tui.engine.errors import ConfigError, UserError
from malaria_tui.engine.events import TERMINAL_KINDS, Event, RunFailed
from malaria_tui.engine.rundir import EventReader, RunDir, list_runs
from malaria_tui.tui.commands import MalariaCommands
from malaria_tui.tui.messages import EngineEvent, TFReady
from malaria_tui.tui.screens.base import QUIT_TOOLTIP, BaseScreen
from malaria_tui.tui.training_session import TrainingSession
from malaria_tui.tui.widgets.topbar import SCREENS

TICK_SECONDS = 0.25
TRAIN_IN = ("process", "thread")
PREBUILD_GAP_SECONDS = 0.1  # between two screens built ahead, so keys are still read between
SCREEN_GROUP = Binding.Group("Screens", compact=True)


def _lazy(module: str, cls: str):
    """A screen factory importing its module on first use (keeps start-up light)."""

    def make() -> Screen:
        import importlib

        return getattr(importlib.import_module(f"malaria_tui.tui.screens.{module}"), cls)()

    make.__name__ = cls
    return make


class MalariaApp(App[None]):
    """Dataset, augmentation, model, training, grids, evaluation, prediction and runs, in one app."""

    TITLE = "malaria-tui"
    CSS_PATH = "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]
    COMMANDS = App.COMMANDS | {MalariaCommands}
    MODES = {
        "dataset": _lazy("dataset", "DatasetScreen"),
        "augment": _lazy("augment", "AugmentScreen"),
        "model": _lazy("model", "ModelScreen"),
        "train": _lazy("train", "TrainScreen"),
        "hparams": _lazy("hparams", "HParamsScreen"),
        "evaluate": _lazy("evaluate", "EvaluateScreen"),
        "predict": _lazy("predict", "PredictScreen"),
        "runs": _lazy("runs", "RunsScreen"),
    }
    BINDINGS = [
        *(
            Binding(
                key,
                f"show('{mode}')",
                label,
                id=f"screen.{mode}",
                group=SCREEN_GROUP,
                tooltip=f"Show the {label} screen",
            )
            for key, mode, label, _short in SCREENS
        ),
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            id="app.quit_ctrl",
            tooltip=QUIT_TOOLTIP,
            show=False,
            priority=True,
        ),
        # Not a priority binding: with text selected, ctrl+c still copies it (Input, screen).
        Binding(
            "ctrl+c",
            "interrupt",
            "Stop & quit",
            id="app.interrupt",
            show=False,
            tooltip="Stop training at the next step with a resumable checkpoint, then quit "
            "(exit code 130); with no run in progress, quit",
        ),
        Binding(
            "f2",
            "toggle_dark",
            "Light/dark",
            id="app.toggle_theme",
            tooltip="Switch between the light and dark theme",
            show=False,
        ),
    ]

    def __init__(
        self,
        config: Config | None = None,
        runs_dir: str | Path = "runs",
        watch_run: RunDir | None = None,
        *,
        grid_dir: str | Path | None = None,
        initial: str | None = None,
        load_tf: bool = True,
        evaluate_run: RunDir | None = None,
        graphics: str | None = None,
        resume_run: RunDir | None = None,
        train_in: str = "process",
    ) -> None:
        if watch_run is not None and resume_run is not None:
            raise ValueError("a window either watches a run or resumes one, not both")
        start = initial or (
            "train" if watch_run is not None or resume_run is not None else "dataset"
        )
        if train_in not in TRAIN_IN:
            raise ValueError(f"train_in must be one of {', '.join(TRAIN_IN)}, not {train_in!r}")
        if start not in self.MODES:
            raise ValueError(f"unknown screen {start!r}; one of {', '.join(self.MODES)}")
        self.DEFAULT_MODE = start  # the first screen is built directly, never a blank default
        super().__init__()
        self.config: Config = config or Config()
        self.runs_dir = Path(runs_dir)
        self.grid_dir = Path(grid_dir) if grid_dir else None
        self.watch_run = watch_run
        self.load_tf = load_tf
        # "halfblock" (works everywhere, over SSH and in tmux) or "auto": Kitty/Sixel images via
        # textual-image for the large cell view when the terminal answers that it supports them.
        self.graphics = graphics or os.environ.get("MALARIA_TUI_GRAPHICS", "halfblock")
        self.tf_state = "loading" if load_tf else "off"
        self.tf_error = ""
        self.session = TrainingSession()
        self.current_run: RunDir | None = evaluate_run or watch_run or resume_run
        # continued on the Train screen as soon as TensorFlow is ready (`malaria-tui resume`)
        self.resume_run = resume_run
        self._predictors: dict[str, tuple[tuple, Any]] = {}
        self._predictor_lock = threading.Lock()
        self.compare_runs: list[RunDir] = []
        # "process": a child process trains and this window follows its run directory (the UI
        # never competes with the trainer for the GIL, and the run can outlive the window);
        # "thread": the trainer runs in a worker thread of this process.
        self.train_in = train_in
        self.stop_event: threading.Event | None = None
        self.trainer = None  # the TrainerProcess being followed, in "process" mode
        self._detach = threading.Event()  # set: stop following; the child trains on alone
        self.detached_run: RunDir | None = None  # left training headless when the window quit
        self.followed_run: RunDir | None = None  # a run picked on the Runs screen to watch here
        self._reader: EventReader | None = None
        self._quit_after_stop = False
        self._interrupted = False  # ctrl+c / SIGINT / SIGTERM asked to stop (exit code 130)
        self._drawn_version = -1
        self.started_at = time.monotonic()
        self.first_paint_seconds: float | None = None
        self._prebuild_stopped = False  # set when shutting down: no more screens built ahead
        self._tick_timer: Timer | None = None
        self._exit_task: asyncio.Future | None = None

    # --- start-up ---------------------------------------------------------------------------

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run in the terminal, with TensorFlow's native log lines kept off the screen."""
        if not kwargs.get("headless"):
            ensure_terminal_stdin()
        if self.graphics == "auto":
            self.graphics = detect_graphics()
        with native_stderr_diverted(self.load_tf):
            return super().run(*args, **kwargs)

    def on_mount(self) -> None:
        self._handle_signals()
        if self.watch_run is not None:
            self._reader = EventReader(self.watch_run.events_path)
            self.session.note("info", f"watching {self.watch_run.path}")
            self._poll_watch()
        if self.resume_run is not None:
            self.session.note("info", f"resuming {self.resume_run.path} once TensorFlow is ready…")
            if not self.load_tf:
                self._resume_pending_run()
        self._tick_timer = self.set_interval(TICK_SECONDS, self._tick, name="ui-tick")
        self.call_after_refresh(self._after_first_frame)

    def _handle_signals(self) -> None:
        """SIGINT and SIGTERM (``kill``, a service manager, a closed serve tab) act as ctrl+c.

        In the terminal a ctrl+c keystroke is a key (Textual's raw mode sends no signal); a
        signal from elsewhere would otherwise kill the app mid-step, or raise
        ``KeyboardInterrupt`` in the event loop, without a checkpoint. The loop restores the
        previous handlers when it closes.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.action_interrupt)

    def _after_first_frame(self) -> None:
        self.first_paint_seconds = time.monotonic() - self.started_at
        if self.load_tf:
            self._import_tf()
        self.set_timer(PREBUILD_GAP_SECONDS, self._prebuild_next_screen)

    def _prebuild_next_screen(self) -> None:
        """Build one screen not shown yet, then schedule the next, until every screen exists.

        A screen's first visit composes and styles its widgets (120-410 ms at idle, several
        times that while training saturates the cores); built ahead at start-up, a first visit
        is a switch like any other. This is what ``App._init_mode`` does on a first
        ``switch_mode``, minus ``ScreenResume``, which ``switch_mode`` posts on the real visit,
        and minus a restyle of every screen: the new screen's widgets are styled as they mount,
        after its CSS is loaded, so it is marked current with the app's CSS (a theme change
        since then still restyles it when shown).
        """
        mode = next((m for m in self.MODES if m not in self._screen_stacks), None)
        quitting = self._prebuild_stopped or self._exit or not self.is_running
        if mode is None and not quitting:
            # the screens live as long as the app: out of every full collection's walk, as
            # TensorFlow's objects are (tfenv.tf), so no collection pauses a keypress
            gc.freeze()
        if mode is None or quitting:  # shutting down closes the screens it finds: add none
            return
        screen, _mounted = self._get_screen(self._modes[mode]())
        self._load_screen_css(screen)
        screen._css_update_count = self._css_update_count
        # its size now, so the breakpoint classes (-narrow, -short...) are set before it shows
        screen.post_message(events.Resize(self.size, self.size))
        self._screen_stacks[mode] = [screen]
        self.set_timer(PREBUILD_GAP_SECONDS, self._prebuild_next_screen)

    def _mounting(self) -> list[Screen]:
        return [
            s for st in self._screen_stacks.values() for s in st if not s._mounted_event.is_set()
        ]

    async def _screens_mounted(self) -> None:
        """Stop building screens ahead and let those still mounting finish (5 s at most)."""
        self._prebuild_stopped = True
        if self._tick_timer is not None:  # it reads self.screen, which closing empties
            self._tick_timer.stop()
        for screen in self._mounting():  # registered, so its task runs even if not started yet
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(screen._mounted_event.wait(), 5.0)

    def exit(self, result=None, return_code: int = 0, message=None) -> None:
        """Exit, once no screen built ahead is still mounting.

        Textual mounts nothing once ``exit()`` was called, so a screen composed after it would
        have no widgets and its ``on_mount`` would raise (a traceback on a quick ``q``).
        """
        if self._prebuild_stopped or not self._mounting():
            self._prebuild_stopped = True
            super().exit(result, return_code, message)
            return

        async def when_mounted() -> None:
            await self._screens_mounted()
            super(MalariaApp, self).exit(result, return_code, message)

        self._exit_task = asyncio.ensure_future(when_mounted())

    async def _shutdown(self) -> None:
        """``run_test`` shuts down without ``exit()``: the same wait first. A run still being
        followed that nobody chose to keep is stopped at a checkpoint, never orphaned."""
        await self._screens_mounted()
        if self.trainer is not None and not self._detach.is_set():
            self.trainer.stop()
            self._detach.set()
        await super()._shutdown()

    def _import_tf(self) -> None:
        """Import TensorFlow in a daemon thread, not a worker: a worker runs in asyncio's
        default executor, which the event loop joins on exit, so quitting in the first seconds
        waited (about 5 s) for an import nobody needed any more."""

        def run() -> None:
            try:
                from malaria_tui.engine import tfenv

                tfenv.tf()
            except Exception as e:  # noqa: BLE001 - shown in the top bar; the UI keeps working
                message = TFReady(f"{type(e).__name__}: {e}")
            else:
                message = TFReady()
            if self.is_running and not self._exit:
                self.post_message(message)

        threading.Thread(target=run, name="import TensorFlow", daemon=True).start()

    @on(TFReady)
    def _tf_ready(self, message: TFReady) -> None:
        self.tf_state = "failed" if message.error else "ready"
        self.tf_error = message.error
        if message.error:
            self.notify(
                f"TensorFlow could not be imported: {message.error}", severity="error", timeout=10
            )
        self._refresh_status()
        self._notify_shown_screen("on_tf_ready")
        self.refresh_bindings()
        self._resume_pending_run()

    def _resume_pending_run(self) -> None:
        """Continue the run given as ``resume_run`` (once; the same path as the Runs screen's u)."""
        run, self.resume_run = self.resume_run, None
        if run is None:
            return
        why = self.start_training(resume=run)
        if why:
            self.session.note("error", f"cannot resume {run.name}: {why}")
            self.notify(f"Cannot resume {run.name}: {why}", severity="error", timeout=10)
        self.action_show("train")
        screen = self.get_screen_of("train")
        if screen is not None and hasattr(screen, "redraw") and screen.is_mounted:
            screen.redraw()

    @property
    def tf_ready(self) -> bool:
        return self.tf_state == "ready"

    def _notify_shown_screen(self, hook: str) -> None:
        """Call ``hook`` on the screen shown now, only: every screen catches up in its
        ``on_screen_resume``, so the others (all built ahead) do no work, TensorFlow's included,
        until they are shown."""
        method = getattr(self.screen, hook, None)
        if isinstance(self.screen, BaseScreen) and method is not None:
            method()

    def get_screen_of(self, mode: str) -> Screen | None:
        stack = self._screen_stacks.get(mode)
        return stack[0] if stack else None

    # --- status ----------------------------------------------------------------------------

    def status_content(self) -> Content:
        tf = {
            "loading": "[$warning]TF loading…[/]",
            "ready": "[$success]TF ready[/]",
            "failed": "[$error]TF failed[/]",
            "off": "[$text-muted]TF off[/]",
        }[self.tf_state]
        s = self.session
        run = ""
        if self.watch_run is not None or self.followed_run is not None:
            run = f"[$accent]watch[/] {s.status} "
        elif s.status == "starting":
            run = "[$warning]starting…[/] "
        elif s.active:
            pct = 100 * s.global_step / s.total_steps if s.total_steps else 0
            verb = "stopping" if s.status == "stopping" else "training"
            run = f"[$warning]● {verb}[/] {pct:.0f}% "
        elif s.status != "idle":
            run = f"{s.status.replace('_', ' ')} "
        return Content.from_markup(run + tf)

    def _refresh_status(self) -> None:
        if isinstance(self.screen, BaseScreen):
            self.screen.update_status()

    # --- screens ---------------------------------------------------------------------------

    def action_show(self, mode: str) -> None:
        if mode in self.MODES and self.current_mode != mode:
            self.switch_mode(mode)
            self.call_after_refresh(self._refresh_status)

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    # --- configuration (edited by the Augment and Model screens) -----------------------------

    def config_with(self, changes: dict[str, Any]) -> Config:
        """The current config with dotted ``key -> value`` changes; raises ConfigError."""
        tree = self.config.to_dict()
        for key, value in changes.items():
            node = tree
            *parents, leaf = key.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value
        return config_mod.build(tree, where="config")

    def set_config_value(self, key: str, value: Any) -> str | None:
        """Apply one validated change; returns the reason when refused (config unchanged)."""
        try:
            self.config = self.config_with({key: value})
        except ConfigError as e:
            msg = str(e).removeprefix("config: ")
            return msg.removeprefix(f"{key}: ")
        return None

    # --- events: trainer process or thread, and watch mode share one path -------------------

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        self.handle_event(message.event)

    def handle_event(self, event: Event) -> None:
        self.session.apply(event)
        if event.kind == "run_started" and event.run_dir and self.watch_run is None:
            with contextlib.suppress(TypeError, ValueError):
                self.current_run = RunDir(Path(event.run_dir))
        if event.kind in TERMINAL_KINDS:
            self._refresh_status()
            if event.kind == "run_failed":
                self.notify(f"Training failed: {event.reason}", severity="error", timeout=10)

    def _poll_watch(self) -> None:
        if self._reader is None:
            return
        for event in self._reader.read_new():
            self.handle_event(event)

    def _tick(self) -> None:
        self._poll_watch()
        if self.session.version != self._drawn_version:
            self._drawn_version = self.session.version
            self._refresh_status()
            screen = self.get_screen_of("train")
            if screen is not None and screen.is_current and hasattr(screen, "redraw"):
                screen.redraw()

    # --- training ------------------------------------------------------------------------

    @property
    def training(self) -> bool:
        return any(w.group == "train" and w.is_running for w in self.workers)

    def start_training(self, resume: RunDir | None = None) -> str | None:
        """Start (or resume) training (its own process, or a thread: ``train_in``); returns why
        not, when it cannot."""
        if self.watch_run is not None:
            return "this window only watches a run; start training from a normal session"
        if not self.tf_ready:
            return (
                "TensorFlow is still loading"
                if self.tf_state == "loading"
                else "TensorFlow is unavailable"
            )
        if self.training:
            return "a run is already in progress"
        self._reader, self.followed_run = None, None  # stop watching a run picked on Runs
        self.session.reset()
        if resume is not None:  # the curves so far come from the run's own log
            for event in EventReader(resume.events_path).read_new():
                self.session.apply(event)
        self.session.status = "starting"
        what = f"resuming {resume.name}" if resume else f"starting a {self.config.model.name} run"
        self.session.note("info", what + "…")
        self.stop_event = threading.Event()
        if self.train_in == "process":
            self._process_worker(self.config, resume, self.stop_event)
        else:
            self._thread_worker(self.config, resume, self.stop_event)
        self._refresh_status()
        return None

    def follow_run(self, run: RunDir) -> str | None:
        """Show ``run`` (live, e.g. left training by another window, or finished) on the Train
        screen by following its ``events.jsonl``, as ``malaria-tui watch`` does; returns why
        not, when this window is training a run of its own."""
        if self.watch_run is not None:
            return "this window watches one run only"
        if self.training:
            return "this window is training; stop its run first"
        self.session.reset()
        self.followed_run = self.current_run = run
        self._reader = EventReader(run.events_path)
        self.session.note("info", f"watching {run.path}")
        self._poll_watch()
        self._refresh_status()
        return None

    def stop_training(self) -> bool:
        if self.stop_event is None or not self.training:
            return False
        self.stop_event.set()
        self.session.status = "stopping"
        self.session.note("warning", "stopping: saving a resumable checkpoint…")
        self._refresh_status()
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", name="train")
    def _process_worker(
        self, config: Config, resume: RunDir | None, stop: threading.Event
    ) -> RunDir:
        """Start the trainer process and relay its events until it exits (or is left alone)."""
        from malaria_tui.trainproc import TrainerProcess

        self.trainer = TrainerProcess.start(config, self.runs_dir, resume)
        self.current_run = self.trainer.run
        self.trainer.follow(self._event_from_thread, detach=self._detach, stop=stop)
        return self.trainer.run

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", name="train")
    def _thread_worker(
        self, config: Config, resume: RunDir | None, stop: threading.Event
    ) -> RunDir:
        from malaria_tui.engine.training.trainer import train

        return train(
            config,
            runs_dir=self.runs_dir,
            run=resume,
            resume=resume is not None,
            on_event=self._event_from_thread,
            stop=stop,
        )

    def _event_from_thread(self, event: Event) -> None:
        self.post_message(EngineEvent(event))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "train" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
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
        self._refresh_status()
        self._notify_shown_screen("on_run_done")
        if self._quit_after_stop:
            self.exit(return_code=self._stop_return_code())

    # --- quitting ------------------------------------------------------------------------

    def _stop_return_code(self) -> int:
        """130 when ctrl+c or a signal stopped the run at a checkpoint (as the headless CLI),
        1 when the run failed meanwhile, 0 otherwise (``q`` and its dialog)."""
        if self.session.status == "failed":
            return 1
        if self._interrupted and self.session.status == "interrupted":
            return 130
        return 0

    @property
    def interrupted_run(self) -> RunDir | None:
        """The run this window stopped at a resumable checkpoint, if any (for the CLI's hint)."""
        if self.watch_run is None and self.session.status == "interrupted":
            return self.current_run
        return None

    def action_interrupt(self) -> None:
        """ctrl+c, SIGINT or SIGTERM: stop the run at the next step with a resumable
        checkpoint and quit with exit code 130; with no run in progress, quit at once."""
        if self._quit_handled():
            return
        self._interrupted = self._quit_after_stop = True
        if self.stop_training():
            self.notify("Stopping: saving a resumable checkpoint, then quitting…")
        else:
            self.exit()

    def _quit_handled(self) -> bool:
        """Quit at once with no run in progress, or say so while a stop is being saved."""
        if not self.training:
            self.exit()
            return True
        if self._quit_after_stop:
            self.notify("Still saving the checkpoint; the app quits when it is written.")
            return True
        return False

    async def action_quit(self) -> None:
        if self._quit_handled():
            return

        def chosen(choice: str | None) -> None:
            if choice == "keep" and self.trainer is not None and self.trainer.alive:
                self.detached_run = self.trainer.run
                self._detach.set()
                self.exit()
            elif choice in ("stop", "keep"):  # "keep" before the child even started: stop
                self._quit_after_stop = True
                if not self.stop_training():
                    self.exit()

        from malaria_tui.tui.screens.dialogs import QuitDialog

        self.push_screen(QuitDialog(can_keep=self.train_in == "process"), chosen)

    # --- models for prediction and Grad-CAM (loaded in worker threads, cached) -----------------

    def load_predictor(self, source: str | Path) -> Any:
        """``engine.inference.predictor.load(source)``, cached while the model file is unchanged.

        Called from worker threads (Predict screen, Evaluate gallery); raises ``UserError``.
        """
        from malaria_tui.engine.inference import predictor

        path = Path(source).expanduser()
        try:
            key = str(path.resolve())
            probe = path / "checkpoints" / "best.keras" if path.is_dir() else path
            stamp = (probe.stat().st_mtime_ns, probe.stat().st_size) if probe.exists() else ()
        except OSError:
            key, stamp = str(path), ()
        with self._predictor_lock:
            hit = self._predictors.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
            loaded = predictor.load(path)
            self._predictors[key] = (stamp, loaded)
            while len(self._predictors) > 3:  # a few models at most stay in memory
                self._predictors.pop(next(iter(self._predictors)))
            return loaded

    def newest_run_with_model(self) -> RunDir | None:
        """The current run when it has a best model, else the newest such run."""
        runs = list_runs(self.runs_dir)
        if self.current_run is not None:
            runs.append(self.current_run)
        for run in reversed(runs):
            if run.best_model.is_file():
                return run
        return None

    def newest_run_with_eval(self) -> RunDir | None:
        for run in reversed(list_runs(self.runs_dir)):
            if (run.eval_dir / "metrics.json").is_file() or (
                run.eval_dir / "predictions.csv"
            ).is_file():
                return run
        return None


def ensure_terminal_stdin() -> None:
    """Make file descriptor 0 a terminal before Textual's own input thread reads it.

    Textual's Linux driver polls stdin; at end-of-file (``< /dev/null``, a closed pipe, a
    service manager) every poll returns at once and the app burns a whole core doing nothing.
    So a non-terminal stdin is replaced by the controlling terminal (``/dev/tty``), and
    without one the TUI refuses with one line instead of spinning.
    textual-serve's web driver (``TEXTUAL_DRIVER`` set) talks over stdin on purpose: left alone.
    """
    if os.environ.get("TEXTUAL_DRIVER"):
        return
    try:
        if os.isatty(0):
            return
    except OSError:
        pass
    try:
        fd = os.open("/dev/tty", os.O_RDWR | getattr(os, "O_NOCTTY", 0))
    except OSError:
        raise UserError(
            "the TUI needs a terminal, and neither stdin nor /dev/tty is one; "
            "train with --no-ui, follow a run with `tail -f RUN/events.jsonl`, "
            "or use `malaria-tui serve` for a browser"
        ) from None
    os.dup2(fd, 0)
    os.close(fd)


def detect_graphics() -> str:
    """``native`` when the terminal does Sixel or the Kitty protocol, else ``halfblock``.

    textual-image asks the terminal at import time, which must happen before Textual starts.
    """
    try:
        import textual_image.renderable as tir
        import textual_image.widget  # noqa: F401 - caches the cell size while we still can ask

        return "native" if tir.Image in (tir.SixelImage, tir.TGPImage) else "halfblock"
    except Exception:  # noqa: BLE001 - any trouble means: use half-blocks
        return "halfblock"


@contextlib.contextmanager
def native_stderr_diverted(enabled: bool = True) -> Iterator[None]:
    """Point file descriptor 2 (TensorFlow's C++ logging) at /dev/null while the TUI runs.

    Textual draws on ``sys.__stderr__``, so that is re-pointed at a duplicate of the terminal;
    this also works when the CLI already diverted fd 2 (``tfenv.divert_native_stderr``).
    Set ``MALARIA_TUI_NATIVE_LOG=path`` to keep those lines in a file instead.
    """
    if not enabled:
        yield
        return
    from malaria_tui.engine import tfenv

    original = sys.__stderr__
    try:
        tfenv.divert_native_stderr(os.environ.get("MALARIA_TUI_NATIVE_LOG") or None)
        if getattr(tfenv.divert_native_stderr, "_done", False) and sys.stderr is not original:
            sys.__stderr__ = sys.stderr
        yield
    finally:
        sys.__stderr__ = original


def create_app(
    config: Config | None = None,
    runs_dir: str | Path = "runs",
    watch_run: RunDir | None = None,
    **kwargs: Any,
) -> MalariaApp:
    """The app for the CLI, the tests and the screenshot tool (see :class:`MalariaApp`).

    ``resume_run=RunDir`` opens the Train screen and continues that interrupted run as soon
    as TensorFlow is ready (``malaria-tui resume RUN_DIR``).
    """
    return MalariaApp(config=config, runs_dir=runs_dir, watch_run=watch_run, **kwargs)
