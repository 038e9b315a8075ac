"""The best value of ``train.monitor`` so far, and early stopping on it.

Its state (``best``, ``bad_epochs``) is saved in every resumable checkpoint, so a resumed run
keeps the same best model and stops after the same epoch as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class Monitor:
    metric: str  # e.g. val_auc: a key of the validation logs, or of the training logs
    mode: str = "max"  # max | min: which way is better
    patience: int = 0  # epochs without improvement before stopping; 0 never stops
    best: float | None = None
    bad_epochs: int = 0

    def value(self, *logs: Mapping[str, float]) -> float | None:
        """The metric from the first of ``logs`` that has it; None when none does."""
        return next((d[self.metric] for d in logs if self.metric in d), None)

    def update(self, value: float) -> bool:
        """Count one epoch's ``value``; True when it is the best so far (the first always is)."""
        improved = (
            self.best is None
            or (self.mode == "max" and value > self.best)
            or (self.mode != "max" and value < self.best)
        )
        if improved:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return bool(self.patience) and self.bad_epochs >= self.patience
