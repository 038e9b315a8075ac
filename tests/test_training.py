"""End to end on real cells: both loops, the run directory, interrupt + resume, evaluation."""

import json
import threading

import numpy as np
import pytest

from malaria_tui.engine import config
from malaria_tui.engine.errors import RunDirError
from malaria_tui.engine.events import to_json
from malaria_tui.engine.tfenv import tf as _tf
from malaria_tui.engine.training import checkpoints
from malaria_tui.engine.training.trainer import train
from tests.conftest import TINY

pytestmark = pytest.mark.slow  # every test here trains


def _cfg(cells, *more):
    return config.load(None, [*TINY, f'data.source="folder:{cells}"', "data.limit=0", *more])


@pytest.mark.parametrize(
    "loop, extra", [("custom", []), ("fit", ['data.cache="disk"', "train.tensorboard_images=true"])]
)
def test_one_epoch_writes_a_complete_run_directory(tmp_path, cells, loop, extra):
    events = []
    cfg = _cfg(cells, f'train.loop="{loop}"', *extra)
    run = train(cfg, runs_dir=tmp_path / "runs", on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert {"batch", "epoch_end", "checkpoint_saved", "evaluation_done"} <= set(kinds)
    # the log holds exactly what the callback saw (compared as JSON: an undefined rate is NaN)
    assert [json.dumps(to_json(e)) for e in run.events()] == [
        json.dumps(to_json(e)) for e in events
    ]
    assert run.status() == "completed"
    m = json.loads((run.eval_dir / "metrics.json").read_text())
    assert (
        m["test"]["n"] == events[0].n_test
        and m["test"]["tp"] + m["test"]["fn"] == m["test"]["n"] - m["test"]["tn"] - m["test"]["fp"]
    )
    assert set(m["thresholds"]) >= {"default", "sensitivity_target", "youden"}
    assert m["test_at_target"]["threshold"] == m["thresholds"]["sensitivity_target"]
    for f in ("confusion.csv", "roc.csv", "predictions.csv"):
        assert (run.eval_dir / f).stat().st_size > 0
    assert run.best_model.exists() and checkpoints.latest(run.checkpoints).epoch == 1
    assert any((run.tensorboard / "train").iterdir())
    saved = config.load(run.config_path)  # resolved: "auto" became what the data called for
    assert (saved.data.color, saved.data.split) == ("gray", "patient")
    assert saved.model_copy(update={"data": cfg.data}) == cfg
    assert not (run.path / "cache").exists()  # a disk cache is removed once the run is done
    if cfg.train.tensorboard_images:
        tags = {
            v.tag
            for f in (run.tensorboard / "val").iterdir()
            for e in _tf().compat.v1.train.summary_iterator(str(f))
            for v in e.summary.value
        }
        assert {"sample_predictions", "confusion_matrix", "auc", "loss"} <= tags
    epoch = next(e for e in events if e.kind == "epoch_end")
    assert {"loss", "accuracy", "auc", "tp"} <= set(epoch.train) and {"val_loss", "val_auc"} <= set(
        epoch.val
    )


def test_stop_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, cells):
    cfg = _cfg(
        cells, "train.epochs=2", "train.batch_events_per_second=1000", "train.tensorboard=false"
    )
    whole = train(cfg, runs_dir=tmp_path / "a")
    stop = threading.Event()

    def stop_in_second_epoch(ev):
        if ev.kind == "batch" and ev.epoch == 1 and ev.step == 1:
            stop.set()

    part = train(cfg, runs_dir=tmp_path / "b", on_event=stop_in_second_epoch, stop=stop)
    assert part.status() == "interrupted"
    pos = checkpoints.latest(part.checkpoints)
    assert (pos.epoch, pos.step) == (1, 1)
    resumed = []
    train(run=part, resume=True, on_event=resumed.append)
    assert resumed[0].kind == "run_started" and resumed[0].resumed and resumed[0].start_step == 1
    assert part.status() == "completed"
    a = json.loads((whole.eval_dir / "metrics.json").read_text())["test"]
    b = json.loads((part.eval_dir / "metrics.json").read_text())["test"]
    assert abs(a["auc"] - b["auc"]) < 0.02 and abs(a["accuracy"] - b["accuracy"]) < 0.05

    def last(run):
        return next(e for e in reversed(run.events()) if e.kind == "epoch_end")

    np.testing.assert_allclose(last(whole).val["val_loss"], last(part).val["val_loss"], rtol=0.05)
    with pytest.raises(RunDirError, match="already completed"):
        train(run=part, resume=True)


@pytest.mark.parametrize("loop_name", ["custom", "fit"])
def test_nan_loss_stops_the_loop_with_a_reason(cells, loop_name):
    """A NaN reaching the loss (here: real cells with one batch poisoned) fails at that step."""
    from malaria_tui.engine import optim
    from malaria_tui.engine.data import pipeline
    from malaria_tui.engine.errors import TrainingFailed
    from malaria_tui.engine.models.registry import build_model
    from malaria_tui.engine.training.custom_loop import CustomLoop
    from malaria_tui.engine.training.fit_loop import FitLoop

    tf = _tf()
    cfg = _cfg(cells)
    prepared = pipeline.prepare(cfg)
    poisoned = (
        prepared.train_epoch(0)
        .enumerate()
        .map(lambda i, xy: (tf.where(i == 1, xy[0] * float("nan"), xy[0]), xy[1]))
    )
    model = build_model(cfg)
    cls = CustomLoop if loop_name == "custom" else FitLoop
    loop = cls(model, optim.build_optimizer(cfg.optimizer, 4, 1), optim.build_loss(cfg.loss), 0.5)
    # the poisoned batch (step 2) or, when the loss clips it, the step after it with NaN weights
    with pytest.raises(TrainingFailed, match=r"loss became nan at step [23];"):
        loop.train_epoch(poisoned, 0, lambda step, logs: False)


@pytest.mark.parametrize("loop_name", ["custom", "fit"])
def test_steps_per_execution_trains_the_same_steps_and_reports_each_call(cells, loop_name):
    """k steps per compiled call: the same weights as one step per call (same batches, same
    order), the step count stays exact over a partial last call, and the stop flag is read
    once per call."""
    from malaria_tui.engine import optim
    from malaria_tui.engine.data import pipeline
    from malaria_tui.engine.models.registry import build_model
    from malaria_tui.engine.training.custom_loop import CustomLoop
    from malaria_tui.engine.training.fit_loop import FitLoop

    cfg = _cfg(cells, "data.batch_size=8")
    prepared = pipeline.prepare(cfg)
    steps = prepared.steps_per_epoch
    many = next(k for k in (3, 4, 5) if steps % k)  # so the last call is partial
    weights, seen = {}, {}
    for k in (1, many):
        model = build_model(cfg)
        opt = optim.build_optimizer(cfg.optimizer, steps, 1)
        cls = CustomLoop if loop_name == "custom" else FitLoop
        loop = cls(model, opt, optim.build_loss(cfg.loss), 0.5, steps_per_execution=k)
        calls = []
        logs, done, stopped = loop.train_epoch(
            prepared.train_epoch(0), 0, lambda s, f, calls=calls: calls.append(s) or False
        )
        assert (done, stopped) == (steps, False)
        seen[k] = calls
        weights[k] = model.get_weights()
    assert seen[1] == list(range(1, steps + 1))
    assert seen[many] == [*range(many, steps, many), steps]
    for a, b in zip(weights[1], weights[many], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_search_trial_resumed_by_hand_still_leaves_the_test_split_unseen(tmp_path, cells):
    """Grid trials train with ``score_test=False``; ``malaria-tui resume`` on one must not score
    the test split either (tuning would otherwise have seen it)."""
    cfg = _cfg(cells, "train.batch_events_per_second=1000", "train.tensorboard=false")
    stop = threading.Event()

    def stop_at_first_batch(ev):
        if ev.kind == "batch":
            stop.set()

    run = train(cfg, runs_dir=tmp_path, on_event=stop_at_first_batch, stop=stop, score_test=False)
    assert run.status() == "interrupted"
    events = []
    train(run=run, resume=True, on_event=events.append)  # score_test defaults to True
    assert run.status() == "completed"
    assert events[0].kind == "run_started" and not events[0].score_test
    metrics = json.loads((run.eval_dir / "metrics.json").read_text())
    assert "val" in metrics and "test" not in metrics and "test_at_target" not in metrics


@pytest.mark.parametrize("loop_name", ["custom", "fit"])
def test_weight_averaging_validates_and_saves_the_average_and_trains_on(tmp_path, cells, loop_name):
    """``optimizer.ema``: the best checkpoint holds the moving average, the resumable state
    keeps the raw weights and the average (in the optimizer) apart."""
    from malaria_tui.engine import optim
    from malaria_tui.engine.models.loading import load_keras
    from malaria_tui.engine.models.registry import build_model

    cfg = _cfg(cells, "optimizer.ema=0.9", f'train.loop="{loop_name}"', "train.tensorboard=false")
    run = train(cfg, runs_dir=tmp_path)
    best = load_keras(run.best_model)
    model = build_model(cfg)
    opt = optim.build_optimizer(cfg.optimizer, 4, 1)
    checkpoints.restore_state(run.checkpoints, model, opt, checkpoints.latest(run.checkpoints))
    assert int(opt.iterations) > 1
    raw = [v.numpy() for v in model.trainable_variables]
    average = [v.numpy() for v in opt._model_variables_moving_average]
    saved = [v.numpy() for v in best.trainable_variables]
    for a, s in zip(average, saved, strict=True):
        np.testing.assert_array_equal(a, s)
    assert any(not np.allclose(r, a) for r, a in zip(raw, average, strict=True))
