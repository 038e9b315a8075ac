"""Exit codes of every command, headless or not (a scheduler acts on them)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # training failed (e.g. NaN loss), or a runtime fault
    USAGE = 2  # usage, config or data error: one line says what to change
    INTERRUPTED = 130  # stopped by Ctrl+C or a signal, after a resumable checkpoint
