"""Rate limiting for batch events, so a fast loop cannot flood the log or the UI."""

from __future__ import annotations

import time


class Throttle:
    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._next = 0.0

    def due(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now >= self._next:
            self._next = now + self.interval
            return True
        return False
