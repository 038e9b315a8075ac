"""One grid trial trained in its own process, so several train at once (``--parallel N``).

    python -m malaria_tui.engine.grid.trial_process TRIAL_DIR

The child trains the trial's run directory as the in-process grid would (``resume=True``:
from scratch on a folder holding only ``config.toml``, from its checkpoint otherwise;
``score_test=False``: the test split stays unseen) and writes its events to the run's
``events.jsonl``, where the parent reads them, as the app follows a run. Its own output goes
to ``TRIAL_DIR/train.log``. SIGINT or SIGTERM saves a resumable checkpoint; the child also
gets SIGTERM if the worker that started it dies, so a killed worker leaves no orphan training
on (Linux). Exit codes: 0 finished, 1 the loss became NaN/Inf or training crashed, 2 bad
input, 130 stopped at a checkpoint.

The app's single runs have their own child (``tui/trainer_process.py``), which adds a
detachable window and a headless log; this one is the engine's, with no front end at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from malaria_tui.engine import rundir as rd
from malaria_tui.engine.events import Event

LOG = "train.log"
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to send this child SIGTERM when the worker that started it dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class TrialProcess:
    """The parent's handle on one trial's process: start it, read its new events, stop it."""

    def __init__(self, run: rd.RunDir, popen: subprocess.Popen, slot: int) -> None:
        self.run = run
        self.popen = popen
        self.slot = slot
        self.reader = rd.EventReader(run.events_path)
        self.reader.read_new()  # events of earlier attempts are already in the grid's table
        self.stop_requested = False

    @classmethod
    def start(cls, run: rd.RunDir, slot: int, env: dict[str, str]) -> TrialProcess:
        with open(run.path / LOG, "ab") as log:
            popen = subprocess.Popen(  # our own module, run by this interpreter
                [sys.executable, "-m", __name__, str(run.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # Ctrl+C reaches the worker, which stops us in order
                close_fds=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        return cls(run, popen, slot)

    def new_events(self) -> list[Event]:
        return self.reader.read_new()

    def exit_code(self) -> int | None:
        return self.popen.poll()

    def stop(self) -> None:
        """Ask for a resumable checkpoint and an exit (what Ctrl+C does to a headless run)."""
        if self.popen.poll() is None and not self.stop_requested:
            self.stop_requested = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGINT)

    def failure_reason(self) -> str:
        """The child's own one-line error from its log, or how it ended."""
        try:
            with open(self.run.path / LOG, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            lines = []
        for line in reversed(lines):
            if line.startswith("malaria-tui: "):
                return line.removeprefix("malaria-tui: ").strip()
        code = self.popen.returncode
        if code is not None and code < 0:
            return f"the trial process was killed by {signal.Signals(-code).name}"
        return f"the trial process exited with code {code}"


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set ``stop``, from a thread: a handler that called ``stop.set()`` itself
    could run again inside that call (a second signal, e.g. a scheduler's SIGTERM after the
    dying worker's) and deadlock on the Event's own lock. The handler only appends to a list."""
    seen: list[int] = []

    def watch() -> None:
        while not seen:
            time.sleep(0.1)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: seen.append(signum))
    threading.Thread(target=watch, name="stop-on-signal", daemon=True).start()


def main(argv: list[str]) -> int:
    stop = threading.Event()
    _stop_on_signals(stop)  # before any slow import
    from malaria_tui.engine.errors import TrainingFailed, UserError, one_line
    from malaria_tui.engine.tfenv import divert_native_stderr
    from malaria_tui.engine.training.trainer import train

    divert_native_stderr()
    run = rd.RunDir(Path(argv[0]).resolve())
    try:
        train(run=run, resume=True, stop=stop, score_test=False)
    except TrainingFailed as e:
        print(f"malaria-tui: {e}", file=sys.stderr, flush=True)
        return FAILED
    except UserError as e:
        print(f"malaria-tui: {e}", file=sys.stderr, flush=True)
        return USAGE
    except Exception as e:  # the parent reads this line into the grid's table
        print(f"malaria-tui: {one_line(e)}", file=sys.stderr, flush=True)
        return FAILED
    return INTERRUPTED if run.status() == "interrupted" else OK


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
