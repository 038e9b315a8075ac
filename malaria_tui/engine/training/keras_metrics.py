"""Metrics, all with Parasitized (label 1) as the positive class.

``CustomAccuracy`` is the notebook's hand-written metric: a ``keras.metrics.Metric`` subclass
whose decision threshold is configurable. Soft labels (Mix-Up, CutMix) are rounded to 0/1
before counting, so training metrics stay meaningful with mixing on.
"""

from __future__ import annotations

from typing import Any

import keras

from malaria_tui.engine.tfenv import Tensor

METRIC_NAMES = ["custom_accuracy", "accuracy", "precision", "recall", "auc", "tp", "tn", "fp", "fn"]


@keras.saving.register_keras_serializable(package="malaria_tui")
class CustomAccuracy(keras.metrics.Metric):
    def __init__(
        self, threshold: float = 0.5, name: str = "custom_accuracy", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.threshold = float(threshold)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(
        self, y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None
    ) -> None:
        ops = keras.ops
        y_true = ops.reshape(ops.cast(ops.round(y_true), "float32"), (-1,))
        y_hat = ops.reshape(ops.cast(ops.greater_equal(y_pred, self.threshold), "float32"), (-1,))
        hits = ops.cast(ops.equal(y_true, y_hat), "float32")
        if sample_weight is not None:
            w = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            hits, n = hits * w, ops.sum(w)
        else:
            n = ops.cast(ops.shape(hits)[0], "float32")
        self.correct.assign_add(ops.sum(hits))
        self.count.assign_add(n)

    def result(self) -> Tensor:
        return keras.ops.divide_no_nan(self.correct, self.count)

    def reset_state(self) -> None:
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


class _Rounded:
    """Mixin: round soft labels before the stock metric sees them."""

    def update_state(
        self, y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None
    ) -> Any:
        stock: Any = super()  # the stock metric this is mixed into (see _rounded)
        return stock.update_state(keras.ops.round(y_true), y_pred, sample_weight)


def _rounded(cls: type) -> type:
    """A registered subclass of a stock metric that rounds soft labels (serializable)."""
    name = f"Rounded{cls.__name__}"
    if name not in _ROUNDED:
        sub = type(name, (_Rounded, cls), {"__module__": __name__})
        _ROUNDED[name] = keras.saving.register_keras_serializable(package="malaria_tui")(sub)
    return _ROUNDED[name]


_ROUNDED: dict[str, type] = {}


def build_metrics(threshold: float = 0.5) -> list[Any]:
    """Fresh metric objects (names as in METRIC_NAMES), usable by ``compile`` and the custom loop."""
    m = keras.metrics
    return [
        CustomAccuracy(threshold),
        _rounded(m.BinaryAccuracy)(name="accuracy", threshold=threshold),
        _rounded(m.Precision)(name="precision", thresholds=threshold),
        _rounded(m.Recall)(name="recall", thresholds=threshold),
        _rounded(m.AUC)(name="auc", num_thresholds=500),
        _rounded(m.TruePositives)(name="tp", thresholds=threshold),
        _rounded(m.TrueNegatives)(name="tn", thresholds=threshold),
        _rounded(m.FalsePositives)(name="fp", thresholds=threshold),
        _rounded(m.FalseNegatives)(name="fn", thresholds=threshold),
    ]
