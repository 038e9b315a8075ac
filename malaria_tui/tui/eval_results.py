"""What the Evaluate screen reads and scores: the engine's own ``eval/`` reader and metrics.

Nothing is computed here, so the screen shows at a threshold exactly what ``metrics.json`` and
``malaria-tui evaluate`` report (undefined rates are NaN in all three).
"""

from __future__ import annotations

from malaria_tui.engine.evaluation.eval_dir import (
    EvalData,
    Prediction,
    load,
    misclassified,
    roc_curve,
)
from malaria_tui.engine.evaluation.measures import Confusion as AtThreshold
from malaria_tui.engine.evaluation.measures import confusion as at_threshold

__all__ = [
    "AtThreshold",
    "EvalData",
    "Prediction",
    "at_threshold",
    "load",
    "misclassified",
    "roc_curve",
]
