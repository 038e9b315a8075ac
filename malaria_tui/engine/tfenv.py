"""Import TensorFlow on demand, quietly, once.

Front ends call :func:`tf` only when they need it, so ``--help`` and the TUI's first frame
never wait for the multi-second import. C++ log noise is hidden unless ``verbose``.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, TypeAlias

# TensorFlow and Keras ship no type information mypy can use: their objects are ``Any``, and
# these names say which kind of object an ``Any`` holds.
Tensor: TypeAlias = Any  # a tf.Tensor (or anything tf.convert_to_tensor takes)
Dataset: TypeAlias = Any  # a tf.data.Dataset
KerasModel: TypeAlias = Any  # a keras.Model
Strategy: TypeAlias = Any  # a tf.distribute.Strategy
Shape: TypeAlias = Sequence[Any]  # a Keras shape: ints, None where unknown (the batch)

_lock = threading.Lock()
_verbose = False


def set_verbose(verbose: bool) -> None:
    global _verbose
    _verbose = verbose


def quiet_env() -> None:
    """Environment that silences TF's C++ logs; must be set before the first import."""
    if not _verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


_frozen = False  # gc.freeze() done after TensorFlow's import


def tf() -> Any:
    """The ``tensorflow`` module, imported (once) with logging tamed.

    The first call also freezes the garbage collector's view of every object alive then
    (``gc.freeze``), whoever imported TensorFlow first (``import keras`` does too): TensorFlow
    and Keras bring hundreds of thousands of long-lived objects that never become garbage, and
    every full collection would walk them all, pausing the TUI's event loop (a keypress) or
    the training thread.
    """
    global _frozen
    with _lock:
        quiet_env()
        import tensorflow as _tf

        if not _frozen:
            gc.freeze()
            _frozen = True
            _limit_threads(_tf)

        if not _verbose:
            _tf.get_logger().setLevel(logging.ERROR)
            try:
                from absl import logging as absl_logging

                absl_logging.set_verbosity(absl_logging.ERROR)
            except ImportError:  # pragma: no cover
                pass
        return _tf


THREADS_ENV = "MALARIA_TUI_THREADS"  # set by a parallel grid: the CPU cores this process may use


def _limit_threads(tf_module: Any) -> None:
    """Keep to ``$MALARIA_TUI_THREADS`` cores, so trials running side by side on one CPU
    split its cores instead of each starting a thread per core and all of them fighting."""
    try:
        n = int(os.environ.get(THREADS_ENV, "0"))
    except ValueError:
        return
    if n > 0:
        tf_module.config.threading.set_intra_op_parallelism_threads(n)
        tf_module.config.threading.set_inter_op_parallelism_threads(min(n, 2))


def divert_native_stderr(log_path: str | os.PathLike | None = None) -> None:
    """Send file descriptor 2 (where TF's C++ code logs) to ``log_path`` or /dev/null.

    Python's own ``sys.stderr`` is re-pointed at a duplicate of the original descriptor, so the
    program's messages still reach the terminal while native noise does not. Idempotent.
    """
    import sys

    if (
        _verbose
        or getattr(divert_native_stderr, "_done", False)
        or sys.stderr is not sys.__stderr__
    ):
        return  # verbose, done already, or Python's stderr is already redirected (e.g. under pytest)
    try:
        saved = os.dup(2)
        target = os.open(log_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, 2)
        os.close(target)
    except OSError:  # pragma: no cover - no fd 2 at all (some daemons)
        return
    sys.stderr = os.fdopen(saved, "w", buffering=1, encoding="utf-8", errors="replace")
    divert_native_stderr._done = True  # type: ignore[attr-defined]  # read by tui/terminal.py
