"""A command run in a real pseudo-terminal of a given size, read as a person reads it.

The app needs a terminal; this gives it one (80x24 by default) without tmux, reads what it
draws and types keys into it, so tests run ``malaria-tui`` and ``malaria-tui watch`` exactly
as typed.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]")


class Terminal:
    def __init__(self, argv: list[str], cols: int = 80, rows: int = 24, **kw):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, **kw.pop("env", {})},
            start_new_session=True,
            **kw,
        )
        os.close(slave)
        self.fd = master
        self.raw = b""

    def text(self) -> str:
        """Everything drawn so far, escape sequences removed."""
        return ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                self.raw += os.read(self.fd, 65536)
            except OSError:  # the child closed the terminal
                time.sleep(timeout)

    def wait_for(self, needle: str, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.text():
                return self.text()
            if self.proc.poll() is not None:
                self._read(0.2)
                break
            self._read(0.2)
        if needle in self.text():
            return self.text()
        raise AssertionError(
            f"{needle!r} not shown within {timeout}s; screen:\n{self.text()[-3000:]}"
        )

    def press(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def wait_exit(self, timeout: float = 60) -> int:
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self._read(0.2)
        if self.proc.poll() is None:
            self.close()
            raise AssertionError(f"still running after {timeout}s; screen:\n{self.text()[-3000:]}")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        os.close(self.fd)
