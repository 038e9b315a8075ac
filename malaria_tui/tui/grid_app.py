"""The app opened on a hyper-parameter grid that it trains (``malaria-tui grid`` without --no-ui).

The grid trains in a worker thread of the app, through its training controller, as a run
started on the Train screen in thread mode would: the HParams screen shows ``grid.csv`` as it
fills, the Train screen the trial in progress, and quitting stops the grid at a resumable
checkpoint like any run of the window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from malaria_tui.tui.app import MalariaApp


def create_grid_app(
    spec: Any,
    grid_dir: str | Path | None,
    runs_dir: str | Path,
    resumed: bool,
    placement: Any = None,
    shard: tuple[int, int] | None = None,
    test_best: bool = True,
    **kwargs: Any,
) -> MalariaApp:
    """The app on the HParams screen, set to train the grid after its first frame (a new grid
    directory under ``runs_dir`` when ``grid_dir`` is None); ``placement`` and ``shard`` as for
    ``search.run_in_dir``; ``kwargs`` as for create_app."""
    from malaria_tui.engine.grid import search

    path = Path(grid_dir) if grid_dir is not None else search.create_grid_dir(runs_dir, spec)
    app = MalariaApp(spec.base, path.parent, grid_dir=path, initial="hparams", **kwargs)
    app.controller.queue_grid(spec, path, resumed, placement, shard, test_best)
    return app


def run_grid_app(
    spec: Any, grid_dir: str | Path | None, runs_dir: str | Path, resumed: bool, **how: Any
) -> Any:
    """Train a hyper-parameter grid in a worker thread while the app shows it (``how``:
    ``placement``, ``shard``, ``test_best`` as for :func:`create_grid_app`).

    Quitting while it trains (``q``, ctrl+c, a signal) stops it at a resumable checkpoint
    before the window closes. Returns what ``search.run_in_dir`` returned (``status``
    "interrupted" when stopped) or raises what it raised.
    """
    app = create_grid_app(spec, grid_dir, runs_dir, resumed, **how)
    app.run()
    return app.controller.grid_outcome()
