"""Models for prediction and Grad-CAM, loaded once and kept while their file is unchanged.

Loading a Keras model takes seconds; the Predict screen and the Grad-CAM of a cell ask for
the same few models over and over, from worker threads.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

KEEP = 3  # models in memory at most


class PredictorCache:
    def __init__(self) -> None:
        self._loaded: dict[str, tuple[tuple, Any]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._loaded)

    def load(self, source: str | Path) -> Any:
        """``engine.inference.predictor.load(source)``, or the copy loaded before while the
        model file (a run's ``checkpoints/best.keras``) kept its time and size; raises
        ``UserError``. Safe from any thread."""
        from malaria_tui.engine.inference import predictor

        path = Path(source).expanduser()
        try:
            key = str(path.resolve())
            probe = path / "checkpoints" / "best.keras" if path.is_dir() else path
            stamp = (probe.stat().st_mtime_ns, probe.stat().st_size) if probe.exists() else ()
        except OSError:
            key, stamp = str(path), ()
        with self._lock:
            hit = self._loaded.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
            loaded = predictor.load(path)
            self._loaded[key] = (stamp, loaded)
            while len(self._loaded) > KEEP:
                self._loaded.pop(next(iter(self._loaded)))
            return loaded
