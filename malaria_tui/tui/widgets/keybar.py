"""The key bar at the bottom of every screen: one widget instead of Textual's ``Footer``.

``Footer`` builds a widget per key and recomposes them whenever the bindings change (on every
screen switch and focus move). Under full training load that was half the cost of a keypress
that changes screens (``bench/tui_vs_headless.py``). This bar draws the same keys, grouped the
same way, as one line of text: a click runs the key under the pointer, hovering shows its tooltip.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import groupby

from rich.cells import cell_len
from textual import events
from textual.content import Content
from textual.widget import Widget


@dataclass(frozen=True)
class _Key:
    key: str  # the key pressed when the span is clicked
    start: int  # first and last+1 column of the span
    end: int
    enabled: bool
    tooltip: str


class KeyBar(Widget, can_focus=False):
    """The active screen's bindings (``show=True``), then the command palette key at the right."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--disabled", "keybar--rule"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        width: 1fr;
        color: $footer-foreground;
        background: $footer-background;
        & > .keybar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
        & > .keybar--description { color: $footer-description-foreground; background: $footer-description-background; }
        & > .keybar--disabled { text-style: dim; }
        & > .keybar--rule { color: $foreground 20%; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._keys: list[_Key] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen) -> None:
        self.refresh()

    def _items(self) -> tuple[list[tuple[list[tuple[str, str, bool, str]], str]], tuple | None]:
        """Groups of (key, key display, enabled, tooltip) with their label; the palette key."""
        app = self.app
        active = self.screen.active_bindings
        by_action: defaultdict[str, list] = defaultdict(list)
        for _node, binding, enabled, tooltip in active.values():
            if binding.show:
                by_action[binding.action].append((binding, enabled, tooltip))
        items = []
        for group, runs in groupby(by_action.values(), lambda run: run[0][0].group):
            runs = list(runs)
            if group is not None and len(runs) > 1:
                keys = [
                    (b.key, app.get_key_display(b), on, tip or b.description)
                    for b, on, tip in (run[0] for run in runs)
                ]
                items.append((keys, group.description))
            else:
                for b, on, tip in (run[0] for run in runs):
                    items.append(([(b.key, app.get_key_display(b), on, tip)], b.description))
        palette = None
        if app.ENABLE_COMMAND_PALETTE and app.COMMAND_PALETTE_BINDING in active:
            _node, b, on, tip = active[app.COMMAND_PALETTE_BINDING]
            palette = (b.key, app.get_key_display(b), on, tip or b.description, b.description)
        return items, palette

    def render(self) -> Content:
        key_style = self.get_visual_style("keybar--key")
        text_style = self.get_visual_style("keybar--description")
        dim = self.get_visual_style("keybar--disabled")
        parts: list[tuple[str, object]] = []
        keys: list[_Key] = []
        x = 0

        def add(text: str, style, key: str | None = None, enabled=True, tooltip="") -> None:
            nonlocal x
            if key is not None:
                keys.append(_Key(key, x, x + cell_len(text), enabled, tooltip))
            parts.append((text, style if enabled else style + dim))
            x += cell_len(text)

        items, palette = self._items()
        for group_keys, label in items:
            if len(group_keys) > 1:
                add(" ", text_style)
            for key, shown, enabled, tooltip in group_keys:
                add(shown, key_style, key, enabled, tooltip)
            if label:
                add(f" {label} ", text_style)
            else:
                add(" ", text_style)
        width = self.size.width
        if palette:
            key, shown, enabled, tooltip, label = palette
            tail = 1 + cell_len(shown) + 1 + cell_len(label)  # "▏^p palette"
            add(" " * max(width - x - tail, 1), text_style)
            add("▏", self.get_visual_style("keybar--rule"))
            add(shown, key_style, key, enabled, tooltip)
            add(f" {label}", text_style)
        self._keys = keys
        return Content.assemble(*parts)

    def _key_at(self, x: int) -> _Key | None:
        return next((k for k in self._keys if k.start <= x < k.end), None)

    def on_click(self, event: events.Click) -> None:
        key = self._key_at(event.x)
        if key is None:
            return
        event.stop()
        if key.enabled:
            self.app.simulate_key(key.key)
        else:
            self.app.bell()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        key = self._key_at(event.x)
        self.tooltip = key.tooltip if key and key.tooltip else None

    def on_leave(self, _event: events.Leave) -> None:
        self.tooltip = None
