"""The TUI's pure-Python parts: bounded history, the session fold, threshold maths."""

from __future__ import annotations

import math

import numpy as np

from malaria_tui.engine import events as ev
from malaria_tui.engine.evaluation import measures
from malaria_tui.tui.history import BoundedSeries, downsample
from malaria_tui.tui.training_session import TrainingSession


def test_bounded_series_keeps_memory_flat_and_shape():
    s = BoundedSeries(max_points=64)
    for i in range(100_000):
        s.append(float(i), float(i))
    xs, ys = s.points()
    assert len(xs) <= 65
    assert xs[0] < 2_000 and xs[-1] > 98_000  # still spans the whole run
    assert all(abs(x - y) < 1e-9 for x, y in zip(xs, ys, strict=True))  # means of y=x stay on y=x


def test_bounded_series_ignores_non_finite():
    s = BoundedSeries()
    s.append(0.0, math.nan)
    s.append(1.0, math.inf)
    s.append(2.0, 1.0)
    assert s.points() == ([2.0], [1.0])


def test_downsample_limits_points_and_keeps_last():
    xs = list(range(1000))
    dx, dy = downsample(xs, xs, 50)
    assert len(dx) == 50
    assert dx[-1] == 999 and dy[-1] == 999
    assert downsample([1, 2], [3, 4], 50) == ([1, 2], [3, 4])


def test_session_folds_events_like_the_trainer_sends_them():
    s = TrainingSession()
    t = 1000.0
    s.apply(
        ev.RunStarted(
            run_dir="/r/x",
            config={"model": {"name": "lenet"}},
            n_train=10,
            n_val=2,
            n_test=2,
            steps_per_epoch=4,
            epochs=2,
            time=t,
        )
    )
    for step in range(1, 5):
        s.apply(
            ev.BatchEnd(
                epoch=0,
                step=step,
                steps=4,
                metrics={"loss": 1.0 / step, "auc": 0.5, "tp": 3},
                images_per_sec=50.0,
                global_step=step,
                time=t + step,
            )
        )
    assert s.status == "running" and s.global_step == 4
    assert s.eta_seconds is not None and 3.0 <= s.eta_seconds <= 5.0  # 4 steps left at 1 step/s
    s.apply(
        ev.EpochEnd(
            epoch=0,
            epochs=2,
            train={"loss": 0.5},
            val={"val_loss": 0.6, "val_auc": 0.7},
            seconds=4,
            images_per_sec=50,
            time=t + 5,
        )
    )
    assert s.epoch_val["auc"].points() == ([1.0], [0.7])
    assert "tp" not in s.metric_names and s.metric_names[0] == "loss"
    s.apply(
        ev.RunFinished(
            status="completed", epochs_done=2, best={"monitor": "val_auc", "value": 0.7}, time=t + 9
        )
    )
    assert s.status == "completed" and not s.active
    assert "best val_auc 0.7000" in s.log[-1].text


def test_threshold_metrics():
    labels = np.array([1, 1, 1, 0, 0, 0])
    probs = np.array([0.9, 0.6, 0.3, 0.4, 0.2, 0.7])
    at = measures.confusion(labels, probs, 0.5)
    assert (at.tp, at.fn, at.tn, at.fp) == (2, 1, 2, 1)
    assert at.sensitivity == 2 / 3 and at.specificity == 2 / 3
    hi = measures.confusion(labels, probs, 0.95)
    assert hi.tp == 0 and math.isnan(hi.ppv) and hi.npv == 0.5
