"""Keypress latency in a running app: from the key event to the new screen's first paint.

``Pilot.press`` waits for the app to go idle (up to a second, twice) after each key, which a
busy app never does, so it measures Pilot, not the app. Here the key event is posted as the
terminal driver would post it, and the clock stops when the app hands the driver the first
frame of the new screen (``App._display``, called in headless runs too).
"""

from __future__ import annotations

import asyncio
import time


async def switch(app, key: str, mode: str, timeout: float = 5.0) -> float:
    """Seconds from posting ``key`` to the first frame of ``mode``'s screen (``timeout`` if never)."""
    from textual import events

    painted: list[float] = []
    display = app._display

    def spy(screen, renderable):
        if renderable is not None and app.current_mode == mode and screen is app.screen:
            painted.append(time.perf_counter())
        return display(screen, renderable)

    app._display = spy
    t = time.perf_counter()
    try:
        app.post_message(events.Key(key, key))
        while not painted and time.perf_counter() - t < timeout:
            await asyncio.sleep(0.001)
    finally:
        del app._display  # back to the class's method
    return (painted[0] if painted else time.perf_counter()) - t
