"""Typed messages the app posts to itself (safe to post from the training thread)."""

from __future__ import annotations

from textual.message import Message

from malaria_tui.engine.events import Event


class EngineEvent(Message):
    """One engine event, from a trainer (its process or thread) or a followed ``events.jsonl``."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class TFReady(Message):
    """The background TensorFlow import finished (``error`` is empty on success)."""

    def __init__(self, error: str = "") -> None:
        super().__init__()
        self.error = error


class RunSelected(Message):
    """The run the Evaluate/Train screens show changed."""
