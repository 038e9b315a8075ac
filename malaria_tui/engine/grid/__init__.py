"""Hyper-parameter search: grid and seeded random trials, TensorBoard HParams, resumable.

- :mod:`.spec` parses and validates the ``[grid]`` section into trials (before anything trains);
- :mod:`.search` runs them, one run directory per trial, and tests the best one once;
- :mod:`.summary` writes ``grid.csv`` / ``grid.jsonl``; :mod:`.hparams` the TensorBoard side.
"""

from malaria_tui.engine.grid.search import (
    BestTested,
    GridEnded,
    GridResult,
    GridStarted,
    TrialEnded,
    TrialStarted,
    open_grid,
    resume_grid,
    run_grid,
)
from malaria_tui.engine.grid.spec import GridSpec, Trial, from_tree, load

__all__ = [
    "BestTested",
    "GridEnded",
    "GridResult",
    "GridSpec",
    "GridStarted",
    "Trial",
    "TrialEnded",
    "TrialStarted",
    "from_tree",
    "load",
    "open_grid",
    "resume_grid",
    "run_grid",
]
