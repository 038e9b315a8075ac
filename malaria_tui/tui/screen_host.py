"""What screens and widgets may use of the app, as a Protocol.

They reach the app through this, never by importing the app module, which imports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from malaria_tui.engine.config import Config
    from malaria_tui.engine.rundir import RunDir
    from malaria_tui.tui.predictor_cache import PredictorCache
    from malaria_tui.tui.training_controller import TrainingController
    from malaria_tui.tui.training_session import TrainingSession


class ScreenHost(Protocol):
    config: Config  # replaced, validated, by the config fields (widgets.form)
    runs_dir: Path
    grid_dir: Path | None
    cv_dir: Path | None  # the cross-validation the Review screen shows (None: the newest)
    graphics: str  # "halfblock" or "native" (Kitty/Sixel images)
    tf_state: str  # loading | ready | failed | off
    tf_error: str
    controller: TrainingController
    predictors: PredictorCache

    @property
    def tf_ready(self) -> bool: ...
    @property
    def session(self) -> TrainingSession: ...
    @property
    def training(self) -> bool: ...
    @property
    def current_run(self) -> RunDir | None: ...
    @current_run.setter
    def current_run(self, run: RunDir | None) -> None: ...

    def action_show(self, mode: str) -> None: ...
