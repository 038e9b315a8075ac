"""Graceful stop for headless jobs: the first Ctrl+C (or SIGTERM) asks for a checkpoint, the
second aborts at once. Shared by training and grid search."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading


@contextlib.contextmanager
def graceful_stop(stop: threading.Event | None = None):
    """Yields a ``threading.Event`` (``stop``, or a new one) that SIGINT/SIGTERM set; handlers
    are restored on exit."""
    stop = stop or threading.Event()

    def on_signal(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(
            "\nstopping: saving a resumable checkpoint (press Ctrl+C again to abort now)",
            file=sys.stderr,
            flush=True,
        )

    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_headless(job, make_sink, failure: str, hint=lambda sink: None, stop=None):
    """Run ``job(stop, sink)`` under :func:`graceful_stop` with TensorFlow's C++ noise hidden.

    ``make_sink()`` builds the progress printer once stderr is diverted. Returns
    ``(result, stopped)``; ``result`` is None when a runtime fault ended the job, after one
    line on stderr (``malaria-tui: <failure>: <reason>``) and ``hint(sink)``, if any (how to
    resume). The sink is closed first so that line is not overdrawn.
    ``UserError`` passes through: the caller turns it into exit code 2. Shared by training,
    grid search and the TUI's trainer process (which passes a ``stop`` set before this runs).
    """
    from malaria_tui.engine import tfenv
    from malaria_tui.engine.errors import TrainingFailed, UserError
    from malaria_tui.engine.faults import explain_fault

    tfenv.divert_native_stderr()
    sink = make_sink()
    with graceful_stop(stop) as stop:
        try:
            return job(stop, sink), stop.is_set()
        except UserError:
            raise
        except Exception as e:  # a runtime fault: one line, details with --verbose
            sink.close()
            reason = str(e) if isinstance(e, TrainingFailed) else explain_fault(e)
            print(f"malaria-tui: {failure}: {reason}", file=sys.stderr)
            if text := hint(sink):
                print(text, file=sys.stderr)
            if tfenv._verbose and not isinstance(e, TrainingFailed):
                raise
            return None, stop.is_set()
        finally:
            sink.close()
