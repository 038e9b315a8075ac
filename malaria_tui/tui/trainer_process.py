"""Training in a child process that a window follows through the run directory.

Why a process and not only a thread: the trainer runs Python for long stretches (tracing,
data preparation, the end-of-run evaluation) and, in the window's own process, holds the GIL
then, so keypresses wait. A child process also outlives the window: quitting can leave the run
training headless (as ``malaria-tui --no-ui`` would), and a dropped SSH session does not end it.

This is the parent's side: :meth:`TrainerProcess.start` makes the run directory (so it is
known at once), starts ``python -m malaria_tui.cli.trainer_child RUN_DIR [--resume]`` in its own
session with its output in ``RUN_DIR/train.log``, and :meth:`TrainerProcess.follow` hands
every line the child appends to ``events.jsonl`` to a callback: the same typed events as a
live trainer. Stopping sends SIGINT, which the child turns into a resumable checkpoint, as
headless runs do.

No Textual, no TensorFlow and no command line here: the child is a headless run of the
command line's, started by module name, so the app that imports this never imports the CLI.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from malaria_tui.engine import rundir as rd
from malaria_tui.engine.config import run_name
from malaria_tui.engine.events import TERMINAL_KINDS, Event, LogMessage, RunFailed

CHILD = "malaria_tui.cli.trainer_child"  # the module the child runs
LOG = "train.log"
POLL_SECONDS = 0.1
_OWN_FILES = {rd.CONFIG, rd.EVENTS, rd.LOCK, LOG}  # all a run that never started can hold


class TrainerProcess:
    """One run trained by a child process; follow it, stop it, or leave it running."""

    def __init__(self, run: rd.RunDir, popen: subprocess.Popen, fresh: bool, offset: int = 0):
        self.run = run
        self.popen = popen
        self.fresh = fresh
        self.offset = offset  # events before it belong to earlier sessions of a resumed run
        self.stop_requested = False

    @classmethod
    def start(cls, config=None, runs_dir: str | Path = "runs", resume: rd.RunDir | None = None):
        """Start training ``config`` in a new run under ``runs_dir``, or continue ``resume``."""
        if resume is None:
            run, fresh, offset = rd.create(runs_dir, run_name(config), config.to_toml()), True, 0
        else:  # follow from the end of the last whole line: a torn one is ended by the child
            run, fresh = resume, False
            skip = rd.EventReader(run.events_path)
            skip.read_new()
            offset = skip.offset
        args = [sys.executable, "-m", CHILD, str(run.path)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(run.path / LOG, "ab") as log:
            popen = subprocess.Popen(  # our own module, run by this interpreter
                [*args, "--resume"] if resume is not None else args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # no terminal signals: it may outlive this window
                close_fds=True,
            )
        if fresh:  # "running" at once in the Runs screen and to `watch`, not "stale"
            rd.write_lock(run, popen.pid)
        return cls(run, popen, fresh, offset)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> bool:
        """Ask for a resumable checkpoint and an exit (SIGINT, as Ctrl+C in a headless run)."""
        if not self.alive or self.stop_requested:
            return False
        self.stop_requested = True
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    def follow(
        self,
        on_event: Callable[[Event], None],
        detach: threading.Event | None = None,
        stop: threading.Event | None = None,
    ) -> int | None:
        """Call ``on_event`` for each new event until the child exits; returns its exit code.

        Setting ``stop`` asks the child for a checkpoint (:meth:`stop`), from any thread.
        Returns None at once when ``detach`` is set: the child goes on alone. A child that died
        without a final event (killed, or failed before it could write one) gets a
        ``RunFailed`` with the reason from its log, unless a stop was asked before training
        began; a fresh run that never started leaves no directory behind.
        """
        reader = rd.EventReader(self.run.events_path)
        reader.offset = self.offset
        started = ended = False
        while True:
            exited = self.popen.poll() is not None
            for event in reader.read_new():
                started = started or event.kind == "run_started"
                ended = event.kind in TERMINAL_KINDS or (ended and event.kind != "run_started")
                on_event(event)
            if exited:
                break
            if stop is not None and stop.is_set():
                self.stop()
            if detach is None:
                time.sleep(POLL_SECONDS)
            elif detach.wait(POLL_SECONDS):
                return None
        code = self.popen.returncode
        if not ended:
            if self.stop_requested and not started:
                on_event(LogMessage(level="warning", message="stopped before training began"))
            else:
                on_event(RunFailed(reason=self.failure_reason(code)))
        if self.fresh and not started:
            self._remove_unstarted()
        return code

    def failure_reason(self, code: int | None) -> str:
        """The child's own one-line error from its log, or how it ended."""
        lines = [line.strip() for line in self.log_tail().splitlines() if line.strip()]
        for line in reversed(lines):
            if line.startswith("malaria-tui: "):
                return line.removeprefix("malaria-tui: ")
        if code is not None and code < 0:
            return f"the trainer process was killed by {signal.Signals(-code).name}"
        last = f": {lines[-1]}" if lines else ""
        return f"the trainer process exited with code {code}{last}"

    def log_tail(self, size: int = 4096) -> str:
        try:
            with open(self.run.path / LOG, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - size))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _remove_unstarted(self) -> None:
        """A fresh run that failed before training (bad data, say) leaves no clutter: the
        reason was already shown. Anything else in the folder means keep it."""
        names = {p.name for p in self.run.path.iterdir()} if self.run.path.is_dir() else set()
        if names <= _OWN_FILES:
            shutil.rmtree(self.run.path, ignore_errors=True)
