"""The terminal the TUI runs in: a real one on stdin, its graphics, TensorFlow's noise off it,
and the stop signals that do not come through it as keys."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from malaria_tui.engine.errors import UserError


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
    except Exception:  # any trouble means: use half-blocks
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


def route_stop_signals(handler: Callable[[], None]) -> None:
    """SIGINT and SIGTERM (``kill``, a service manager, a closed serve tab) call ``handler``.

    In the terminal a ctrl+c keystroke is a key (Textual's raw mode sends no signal); a
    signal from elsewhere would otherwise kill the app mid-step, or raise
    ``KeyboardInterrupt`` in the event loop, without a checkpoint. The running event loop
    restores the previous handlers when it closes; only the main thread can take signals.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handler)
