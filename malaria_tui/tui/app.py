"""The malaria-tui Textual application.

``create_app()`` builds it for the CLI, the tests and ``tools/screenshots.py``
(:mod:`malaria_tui.tui.grid_app` opens it on a grid it trains). TensorFlow is never imported
at start-up: the first frame paints, then a thread imports it while the top bar says
"TF loading…"; actions that need it are offered once it says "TF ready".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import on
from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.worker import Worker

from malaria_tui.engine.config import Config
from malaria_tui.engine.rundir import RunDir
from malaria_tui.tui.commands import MalariaCommands
from malaria_tui.tui.messages import EngineEvent, TFReady
from malaria_tui.tui.prebuild import PrebuildingApp
from malaria_tui.tui.predictor_cache import PredictorCache
from malaria_tui.tui.screen_table import SCREENS, screen_bindings
from malaria_tui.tui.screens.base import QUIT_TOOLTIP, BaseScreen
from malaria_tui.tui.terminal import (
    detect_graphics,
    ensure_terminal_stdin,
    native_stderr_diverted,
    route_stop_signals,
)
from malaria_tui.tui.tf_loading import import_tensorflow
from malaria_tui.tui.training_controller import TrainingController

TICK_SECONDS = 0.25


def _from_controller(name: str, doc: str) -> property:
    return property(lambda app: getattr(app.controller, name), doc=doc)


class MalariaApp(PrebuildingApp):
    """Dataset, augmentation, model, training, grids, evaluation, prediction and runs, in one app."""

    TITLE = "malaria-tui"
    CSS_PATH = "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]
    COMMANDS = PrebuildingApp.COMMANDS | {MalariaCommands}
    MODES = {entry.mode: entry.build for entry in SCREENS}
    BINDINGS = [
        *screen_bindings(),
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
        cv_dir: str | Path | None = None,
        initial: str | None = None,
        load_tf: bool = True,
        evaluate_run: RunDir | None = None,
        graphics: str | None = None,
        resume_run: RunDir | None = None,
        train_in: str = "process",
    ) -> None:
        if watch_run is not None and resume_run is not None:
            raise ValueError("a window either watches a run or resumes one, not both")
        start = initial or ("train" if watch_run or resume_run else "dataset")
        if start not in self.MODES:
            raise ValueError(f"unknown screen {start!r}; one of {', '.join(self.MODES)}")
        self.DEFAULT_MODE = start  # the first screen is built directly, never a blank default
        super().__init__()
        self.config: Config = config or Config()
        self.runs_dir = Path(runs_dir)
        self.grid_dir = Path(grid_dir) if grid_dir else None
        self.cv_dir = Path(cv_dir) if cv_dir else None
        self.load_tf = load_tf
        # "halfblock" (works everywhere, over SSH and in tmux) or "auto": Kitty/Sixel images via
        # textual-image for the large cell view when the terminal answers that it supports them.
        self.graphics = graphics or os.environ.get("MALARIA_TUI_GRAPHICS", "halfblock")
        self.tf_state = "loading" if load_tf else "off"
        self.tf_error = ""
        self.controller = TrainingController(self, train_in, watch_run)
        self.controller.current_run = evaluate_run or watch_run or resume_run
        if resume_run is not None:  # continued on the Train screen once TensorFlow is ready
            self.controller.queue_resume(resume_run)
        self.predictors = PredictorCache()
        self._drawn_version = -1
        self._tick_timer: Timer | None = None

    session = _from_controller("session", "The run trained, followed or watched, as drawn.")
    training = _from_controller("training", "A run (or grid) of this window is in progress.")
    trainer = _from_controller("trainer", "The trainer child process, in process mode.")
    detached_run = _from_controller("detached_run", "The run left training when the window quit.")
    interrupted_run = _from_controller("interrupted_run", "The run stopped at a checkpoint.")

    @property
    def current_run(self) -> RunDir | None:
        """The run the Evaluate and Predict screens open by default."""
        return self.controller.current_run

    @current_run.setter
    def current_run(self, run: RunDir | None) -> None:
        self.controller.current_run = run

    # --- start-up and shutdown ----------------------------------------------------------------

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run in the terminal, with TensorFlow's native log lines kept off the screen."""
        if not kwargs.get("headless"):
            ensure_terminal_stdin()
        if self.graphics == "auto":
            self.graphics = detect_graphics()
        with native_stderr_diverted(self.load_tf):
            return super().run(*args, **kwargs)

    def on_mount(self) -> None:
        route_stop_signals(self.action_interrupt)
        self.controller.poll()
        if not self.load_tf:
            self._resume_queued_run()
        self._tick_timer = self.set_interval(TICK_SECONDS, self._tick, name="ui-tick")
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        if self.load_tf:
            import_tensorflow(self)
        self.controller.start_queued_grid()
        self.prebuild_screens()

    def before_close(self) -> None:
        if self._tick_timer is not None:  # it reads self.screen, which closing empties
            self._tick_timer.stop()
        self.controller.shutdown()

    @on(TFReady)
    def _tf_ready(self, message: TFReady) -> None:
        self.tf_state = "failed" if message.error else "ready"
        self.tf_error = message.error
        if message.error:
            self.notify(
                f"TensorFlow could not be imported: {message.error}", severity="error", timeout=10
            )
        self.refresh_status()
        self.notify_shown_screen("on_tf_ready")
        self.refresh_bindings()
        self._resume_queued_run()

    def _resume_queued_run(self) -> None:
        if self.controller.start_queued_resume():
            self.action_show("train")
            screen = self.get_screen_of("train")
            if screen is not None and hasattr(screen, "redraw") and screen.is_mounted:
                screen.redraw()

    @property
    def tf_ready(self) -> bool:
        return self.tf_state == "ready"

    # --- screens ------------------------------------------------------------------------------

    def notify_shown_screen(self, hook: str) -> None:
        """Call ``hook`` on the screen shown now, only: every screen catches up in its
        ``on_screen_resume``, so the others (all built ahead) do no work, TensorFlow's included,
        until they are shown."""
        method = getattr(self.screen, hook, None)
        if isinstance(self.screen, BaseScreen) and method is not None:
            method()

    def refresh_status(self) -> None:
        if isinstance(self.screen, BaseScreen):
            self.screen.update_status()

    def _tick(self) -> None:
        self.controller.poll()
        if self.session.version != self._drawn_version:
            self._drawn_version = self.session.version
            self.refresh_status()
            screen = self.get_screen_of("train")
            if screen is not None and screen.is_current and hasattr(screen, "redraw"):
                screen.redraw()

    def action_show(self, mode: str) -> None:
        if isinstance(self.screen, ModalScreen):  # alt+digits are priority keys: not from a dialog
            return
        if mode in self.MODES and self.current_mode != mode:
            self.switch_mode(mode)
            self.call_after_refresh(self.refresh_status)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Keys":  # ours: a list that closes with escape (key ?)
                command = command._replace(help="List this screen's keys (also ? or F1)")
            yield command

    def action_show_help_panel(self) -> None:
        """The palette's "Keys": the same list as ``?`` (Textual's own panel neither closes
        with escape nor fits 80 columns)."""
        if isinstance(self.screen, BaseScreen):
            self.screen.action_show_keys()

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    # --- training: the controller's -----------------------------------------------------------

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        self.controller.handle_event(message.event)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.controller.worker_changed(event)

    def action_interrupt(self) -> None:
        self.controller.interrupt()

    async def action_quit(self) -> None:
        if self.controller.must_ask_to_quit():
            from malaria_tui.tui.screens.dialogs import QuitDialog

            dialog = QuitDialog(can_keep=self.controller.can_detach)
            self.push_screen(dialog, self.controller.quit_chosen)


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
