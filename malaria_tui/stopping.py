"""Graceful stop for headless jobs: the first Ctrl+C (or SIGTERM) asks for a checkpoint, the
second aborts at once. Shared by training and grid search."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading


@contextlib.contextmanager
def graceful_stop():
    """Yields a ``threading.Event`` that SIGINT/SIGTERM set; handlers are restored on exit."""
    stop = threading.Event()

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
