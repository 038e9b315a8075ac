"""Metric maths against NumPy / scikit-learn, Parasitized positive."""

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score

from malaria_tui.engine.evaluation import measures
from malaria_tui.engine.training.keras_metrics import CustomAccuracy, build_metrics

RNG = np.random.default_rng(0)
Y = RNG.integers(0, 2, 400)
P = np.clip(Y * 0.35 + RNG.random(400) * 0.65, 0, 1)


def test_custom_accuracy_uses_its_threshold():
    for th in (0.3, 0.5, 0.7):
        m = CustomAccuracy(threshold=th)
        m.update_state(Y[:, None].astype("float32"), P[:, None].astype("float32"))
        assert abs(float(m.result()) - np.mean((th <= P) == Y)) < 1e-6


def test_stock_metrics_round_soft_labels():
    metrics = {m.name: m for m in build_metrics(0.5)}
    soft = np.where(Y == 1, 0.8, 0.2).astype("float32")[:, None]
    for m in metrics.values():
        m.update_state(soft, P[:, None].astype("float32"))
    tn, fp, fn, tp = confusion_matrix(Y, P >= 0.5).ravel()
    assert [float(metrics[k].result()) for k in ("tp", "tn", "fp", "fn")] == [tp, tn, fp, fn]


def test_binary_metrics_match_sklearn():
    m = measures.binary_metrics(Y, P, 0.5)
    tn, fp, fn, tp = confusion_matrix(Y, P >= 0.5).ravel()
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (tp, tn, fp, fn)
    assert abs(m["auc"] - roc_auc_score(Y, P)) < 1e-12
    assert (
        abs(m["sensitivity"] - tp / (tp + fn)) < 1e-12
        and abs(m["specificity"] - tn / (tn + fp)) < 1e-12
    )


def test_threshold_for_target_sensitivity_is_the_most_specific_that_reaches_it():
    t = measures.threshold_for_sensitivity(Y, P, 0.95)
    assert measures.binary_metrics(Y, P, t)["sensitivity"] >= 0.95
    assert measures.binary_metrics(Y, P, t + 1e-6)["sensitivity"] < 0.95
    j = measures.threshold_youden(Y, P)
    assert 0 <= j <= 1


def test_patient_level_lists_worst_patient_first():
    groups = ["A"] * 4 + ["B"] * 4
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.1, 0.9, 0.2, 0.8])
    out = measures.patient_level(groups, y, p, 0.5)
    assert (
        out["rows"][0]["group"] == "B"
        and out["worst_accuracy"] == 0.0
        and out["mean_accuracy"] == 0.5
    )


def test_auc_shares_are_each_cells_wrongly_ranked_pairs_and_sum_to_the_shortfall():
    p = np.round(P, 2)  # ties count half, as in AUC
    shares = measures.auc_shares(Y, p)
    pos, neg = p[Y == 1], p[Y == 0]
    pairwise = (neg[None, :] > pos[:, None]) + 0.5 * (neg[None, :] == pos[:, None])
    pairs = pairwise.size
    assert np.allclose(shares[Y == 1], pairwise.sum(axis=1) / pairs)
    assert np.allclose(shares[Y == 0], pairwise.sum(axis=0) / pairs)
    shortfall = 1 - roc_auc_score(Y, p)
    assert abs(shares[Y == 1].sum() - shortfall) < 1e-12
    assert abs(shares[Y == 0].sum() - shortfall) < 1e-12
    assert not measures.auc_shares(np.ones(3), [0.1, 0.5, 0.9]).any()  # one class: no pairs


def test_roc_points_are_scikit_learns_curve_without_scikit_learn():
    import warnings

    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(1)
    for n, decimals in [(400, 2), (7, 1), (30, 0), (1, 3)]:
        y, p = rng.integers(0, 2, n), np.round(rng.random(n), decimals)  # ties, one class too
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns where a rate is undefined
            fpr, tpr, thr = roc_curve(y, p)
        ref = np.stack([fpr, tpr, np.minimum(thr, 1.0)], axis=1)
        np.testing.assert_array_equal(np.array(measures.roc_points(y, p)), ref)
    assert measures.roc_points([], []) == []


def test_a_rate_without_cells_to_count_is_undefined_not_zero():
    no_parasitized = measures.binary_metrics([0, 0, 0], [0.1, 0.7, 0.2], 0.5)
    assert np.isnan(no_parasitized["sensitivity"]) and np.isnan(no_parasitized["auc"])
    assert no_parasitized["specificity"] == 2 / 3 and no_parasitized["f1"] == 0.0
    nobody_called = measures.binary_metrics(Y, P, 1.1)
    assert np.isnan(nobody_called["ppv"]) and nobody_called["sensitivity"] == 0.0
    nothing = measures.binary_metrics([], [], 0.5)
    assert nothing["n"] == 0 and all(
        np.isnan(nothing[k]) for k in ("accuracy", "sensitivity", "specificity", "f1")
    )
    assert np.isnan(measures.patient_level([], [], [], 0.5)["mean_accuracy"])
