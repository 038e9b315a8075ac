"""The best-so-far / early-stopping bookkeeping of a run, without a model."""

from malaria_tui.engine.training.monitor import Monitor


def test_first_value_is_best_then_only_strict_improvements_count():
    m = Monitor("val_auc", "max", patience=2)
    assert [m.update(v) for v in (0.7, 0.7, 0.8, 0.75)] == [True, False, True, False]
    assert (m.best, m.bad_epochs, m.should_stop) == (0.8, 1, False)
    assert not m.update(0.79) and m.should_stop  # two epochs without improvement


def test_min_mode_and_no_patience_never_stops():
    m = Monitor("val_loss", "min")
    assert [m.update(v) for v in (0.5, 0.6, 0.4, 0.9, 0.9, 0.9)] == [
        True,
        False,
        True,
        False,
        False,
        False,
    ]
    assert m.best == 0.4 and m.bad_epochs == 3 and not m.should_stop


def test_resumed_state_continues_where_it_was_saved():
    m = Monitor("val_auc", "max", patience=3, best=0.9, bad_epochs=2)
    assert not m.update(0.85) and m.should_stop
    assert Monitor("val_auc", best=0.9).update(0.91)


def test_value_comes_from_validation_logs_first_then_training_logs():
    m = Monitor("val_auc")
    assert m.value({"val_auc": 0.6}, {"val_auc": 0.9}) == 0.6
    assert m.value({"val_loss": 0.1}, {"val_auc": 0.9}) == 0.9
    assert m.value({"val_loss": 0.1}, {"loss": 0.2}) is None
