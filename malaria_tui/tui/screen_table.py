"""The app's screens in one table: number key, mode name, titles, and where each class lives.

The app's modes and key bindings, the top bar's tabs and the command palette all read it, so
a screen is added, renamed or renumbered here only. A screen's module is imported the first
time the screen is built, which keeps start-up light.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from textual.binding import Binding
from textual.screen import Screen


@dataclass(frozen=True)
class ScreenEntry:
    key: str  # the number key that shows it
    mode: str  # the app's mode name, also the screen's MODE
    title: str
    short: str  # the tab's label when the top line is narrow
    module: str  # under malaria_tui.tui.screens
    cls: str

    def build(self) -> Screen:
        module = importlib.import_module(f"malaria_tui.tui.screens.{self.module}")
        return getattr(module, self.cls)()


SCREENS: tuple[ScreenEntry, ...] = (
    ScreenEntry("1", "dataset", "Dataset", "Data", "dataset", "DatasetScreen"),
    ScreenEntry("2", "augment", "Augment", "Aug", "augment", "AugmentScreen"),
    ScreenEntry("3", "model", "Model", "Model", "model", "ModelScreen"),
    ScreenEntry("4", "train", "Train", "Train", "train", "TrainScreen"),
    ScreenEntry("5", "hparams", "HParams", "HPar", "hparams", "HParamsScreen"),
    ScreenEntry("6", "evaluate", "Evaluate", "Eval", "evaluate", "EvaluateScreen"),
    ScreenEntry("7", "predict", "Predict", "Pred", "predict", "PredictScreen"),
    ScreenEntry("8", "runs", "Runs", "Runs", "runs", "RunsScreen"),
    ScreenEntry("9", "review", "Review", "Rev", "review", "ReviewScreen"),
)


def screen_bindings() -> list[Binding]:
    """The number keys, one per screen, shown as one group in the key bar, and ``alt+1``..``8``,
    which switch screens from anywhere, even while a text field has the focus (over SSH, alt+1
    arrives as ESC 1, which Textual reads as alt+1). The key bar shows the alt keys only while
    a field takes the digits (``alt+123456789``)."""
    group = Binding.Group("Screens", compact=True)
    digits = [
        Binding(
            e.key,
            f"show('{e.mode}')",
            e.title,
            id=f"screen.{e.mode}",
            group=group,
            tooltip=f"Show the {e.title} screen",
        )
        for e in SCREENS
    ]
    alts = [
        Binding(
            f"alt+{e.key}",
            f"show('{e.mode}')",
            e.title,
            id=f"screen.{e.mode}.alt",
            group=group,
            key_display=f"alt+{e.key}" if i == 0 else e.key,
            tooltip=f"Show the {e.title} screen (alt+{e.key} works inside a text field too)",
            priority=True,
        )
        for i, e in enumerate(SCREENS)
    ]
    return digits + alts
