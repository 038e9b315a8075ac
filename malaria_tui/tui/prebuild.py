"""Every screen built ahead, one at a time after the first frame, so a first visit is a switch.

A screen's first visit composes and styles its widgets, slow enough to feel, and slower still
while training keeps the cores busy. Built ahead at start-up, with a pause between two screens
so keys are still read, a first visit costs no more than any other switch.

This is the one module that reaches into Textual's private attributes: it builds a screen as
``App._init_mode`` does, and at exit waits for screens still mounting. A Textual upgrade that
moves them breaks here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc

from textual import events
from textual.app import App
from textual.screen import Screen

PREBUILD_GAP_SECONDS = 0.1  # between two screens built ahead, so keys are still read between
MOUNT_WAIT_SECONDS = 5.0  # at exit, for a screen still mounting (it never takes that long)


class PrebuildingApp(App[None]):
    """An app whose ``MODES`` screens all exist soon after start-up, shown or not."""

    def __init__(self) -> None:
        super().__init__()
        self._prebuild_stopped = False  # set when shutting down: no more screens built ahead
        self._exit_task: asyncio.Future | None = None

    def prebuild_screens(self) -> None:
        """Build the screens not shown yet, one per pause (call it after the first frame)."""
        self.set_timer(PREBUILD_GAP_SECONDS, self._prebuild_next_screen)

    def get_screen_of(self, mode: str) -> Screen | None:
        """The screen of ``mode`` once it exists (shown, or built ahead), else None."""
        stack = self._screen_stacks.get(mode)
        return stack[0] if stack else None

    def before_close(self) -> None:
        """Shutting down begins: stop what reads the screens (closing empties them)."""

    def _prebuild_next_screen(self) -> None:
        """``App._init_mode`` minus ``ScreenResume``, which ``switch_mode`` posts on the real
        visit, and minus a restyle of every screen: the new screen's widgets are styled as they
        mount, after its CSS is loaded, so it is marked current with the app's CSS (a theme
        change since then still restyles it when shown)."""
        mode = next((m for m in self.MODES if m not in self._screen_stacks), None)
        quitting = self._prebuild_stopped or self._exit or not self.is_running
        if mode is None and not quitting:
            # the screens live as long as the app: out of every full collection's walk, as
            # TensorFlow's objects are (tfenv.tf), so no collection pauses a keypress
            gc.freeze()
        if mode is None or quitting:  # shutting down closes the screens it finds: add none
            return
        screen, _mounted = self._get_screen(self.MODES[mode]())
        self._load_screen_css(screen)
        screen._css_update_count = self._css_update_count
        # its size now, so the breakpoint classes (-narrow, -short...) are set before it shows
        screen.post_message(events.Resize(self.size, self.size))
        self._screen_stacks[mode] = [screen]
        self.set_timer(PREBUILD_GAP_SECONDS, self._prebuild_next_screen)

    def _mounting(self) -> list[Screen]:
        return [
            s for st in self._screen_stacks.values() for s in st if not s._mounted_event.is_set()
        ]

    async def _screens_mounted(self) -> None:
        """Stop building screens ahead and let those still mounting finish."""
        self._prebuild_stopped = True
        self.before_close()
        for screen in self._mounting():  # registered, so its task runs even if not started yet
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(screen._mounted_event.wait(), MOUNT_WAIT_SECONDS)

    def exit(self, result=None, return_code: int = 0, message=None) -> None:
        """Exit, once no screen built ahead is still mounting.

        Textual mounts nothing once ``exit()`` was called, so a screen composed after it would
        have no widgets and its ``on_mount`` would raise (a traceback on a quick ``q``).
        """
        if self._prebuild_stopped or not self._mounting():
            self._prebuild_stopped = True
            super().exit(result, return_code, message)
            return

        async def when_mounted() -> None:
            await self._screens_mounted()
            super(PrebuildingApp, self).exit(result, return_code, message)

        self._exit_task = asyncio.ensure_future(when_mounted())

    async def _shutdown(self) -> None:
        """``run_test`` shuts down without ``exit()``: the same wait first."""
        await self._screens_mounted()
        await super()._shutdown()
