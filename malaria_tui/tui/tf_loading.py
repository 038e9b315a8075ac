"""TensorFlow imported in the background after the app's first frame, so that frame is quick.

A daemon thread, not a Textual worker: a worker runs in asyncio's default executor, which the
event loop joins on exit, so quitting in the first seconds would wait for an import nobody
needs any more.
"""

from __future__ import annotations

import threading

from textual.app import App

from malaria_tui.tui.messages import TFReady


def import_tensorflow(app: App) -> None:
    """Import TensorFlow in a thread, then post :class:`TFReady` (with the error, if any)."""

    def run() -> None:
        try:
            from malaria_tui.engine import tfenv

            tfenv.tf()
        except Exception as e:  # shown in the top bar; the UI keeps working
            message = TFReady(f"{type(e).__name__}: {e}")
        else:
            message = TFReady()
        if app.is_running and app.return_code is None:
            app.post_message(message)

    threading.Thread(target=run, name="import TensorFlow", daemon=True).start()
