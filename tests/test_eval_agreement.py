"""What ``malaria-tui evaluate --json`` reports and what the Evaluate screen shows at a threshold
are one computation: equal on any labels, probabilities and threshold, undefined rates (NaN)
included, e.g. when a class has no cells."""

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from malaria_tui.engine.evaluation import measures, score_run

SHOWN = ("n", "threshold", "tp", "tn", "fp", "fn", "sensitivity", "specificity", "ppv", "npv")
SHOWN += ("accuracy",)

probability = st.floats(0.0, 1.0, allow_nan=False)
cells = st.lists(st.tuples(st.sampled_from([0, 1]), probability), max_size=40)


def _same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b


@settings(max_examples=300, deadline=None)
@given(cells=cells, threshold=probability, one_class=st.sampled_from([None, 0, 1]))
def test_evaluate_json_and_the_evaluate_screen_agree(cells, threshold, one_class):
    if one_class is not None:  # the other class has no cells at all
        cells = [(one_class, p) for _, p in cells]
    y = np.array([c for c, _ in cells], dtype=int)
    p = np.array([q for _, q in cells], dtype=float)
    # the CLI prints the report as JSON; NaN survives the round trip as NaN
    reported = json.loads(json.dumps(score_run.report(y, p, threshold, {"youden": threshold})))
    shown = measures.confusion(y.astype(np.int8), p, threshold)
    for key in SHOWN:
        assert _same(reported[key], getattr(shown, key)), (key, reported[key], getattr(shown, key))
    assert _same(reported["at"]["youden"]["sensitivity"], shown.sensitivity)
    if not len(y):
        undefined = ["sensitivity", "specificity", "ppv", "npv", "accuracy", "f1", "auc"]
    elif one_class is not None:  # no Uninfected: no specificity; no Parasitized: no sensitivity
        undefined = ["specificity" if one_class else "sensitivity", "auc"]
    else:
        undefined = []
    assert all(math.isnan(reported[k]) for k in undefined)
