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


@dataclass
class _Item:
    """One entry of the bar: a key (or a group's keys) and its label."""

    keys: list[tuple[str, str, bool, str]]  # (key, key display, enabled, tooltip)
    label: str
    rank: int  # the lower, the sooner it is dropped when the line is too narrow
    group: bool = False

    def width(self, with_label: bool = True) -> int:
        keys = sum(cell_len(shown) for _k, shown, _on, _tip in self.keys)
        label = f" {self.label} " if self.label and with_label else " "
        return (1 if self.group else 0) + keys + cell_len(label)


# What goes first when the bar is too narrow: keys that cannot be used now (dimmed), then the
# screens group's label ("Screens"), then keys of the focused widget (enter on a grid), quit
# (q), and the screen's own keys from the last to the first. The screens' digits, leaving a
# field, the keys list (?) and the palette always stay; ? lists whatever was dropped.
RANK_WIDGET, RANK_QUIT, RANK_SCREEN, RANK_KEEP = 0, 1, 2, 1000
ALWAYS_LAST = ("show_keys",)  # drawn at the right, before the palette


class KeyBar(Widget, can_focus=False):
    """The active screen's bindings (``show=True``), then the keys list and the command palette
    key at the right; it drops the least needed keys (all listed by ``?``) rather than cut."""

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

    def _items(self) -> tuple[list[_Item], list[_Item]]:
        """The items on the left, in order, and those drawn at the right (keys list, palette)."""
        app = self.app
        screen = self.screen
        active = screen.active_bindings
        by_action: defaultdict[str, list] = defaultdict(list)
        for node, binding, enabled, tooltip in active.values():
            if binding.show:
                by_action[binding.action].append((node, binding, enabled, tooltip))
        items: list[_Item] = []
        right: list[_Item] = []
        for group, runs in groupby(by_action.values(), lambda run: run[0][1].group):
            runs = list(runs)
            if group is not None and len(runs) > 1:
                keys = [
                    (b.key, app.get_key_display(b), on, tip or b.description)
                    for _n, b, on, tip in (run[0] for run in runs)
                ]
                items.append(_Item(keys, group.description, RANK_KEEP, group=True))
                continue
            for node, b, on, tip in (run[0] for run in runs):
                item = _Item([(b.key, app.get_key_display(b), on, tip)], b.description, 0)
                if b.action in ALWAYS_LAST:
                    item.rank = RANK_KEEP
                    right.append(item)
                    continue
                if b.action == "leave_field":
                    item.rank = RANK_KEEP
                elif b.action == "app.quit":
                    item.rank = RANK_QUIT
                elif node is screen or node is app:
                    item.rank = RANK_SCREEN
                else:
                    item.rank = RANK_WIDGET
                items.append(item)
        # leaving a field first, where the eye looks when typing stops working as keys
        items.sort(key=lambda item: 0 if item.keys[0][0] == "escape" else 1)
        screen_items = [i for i in items if i.rank == RANK_SCREEN]
        for n, item in enumerate(screen_items):  # the screen's later keys go first
            item.rank = RANK_SCREEN + len(screen_items) - n
        if app.ENABLE_COMMAND_PALETTE and app.COMMAND_PALETTE_BINDING in active:
            _node, b, on, tip = active[app.COMMAND_PALETTE_BINDING]
            key = (b.key, app.get_key_display(b), on, tip or b.description)
            right.append(_Item([key], b.description, RANK_KEEP))
        return items, right

    @staticmethod
    def _fit(items: list[_Item], right: list[_Item], width: int) -> tuple[list[_Item], bool, bool]:
        """The items that fit in ``width`` (dropping the lowest ranks first), whether group
        labels are kept, and whether the right-hand labels are kept."""

        def total(shown: list[_Item], group_labels: bool, right_labels: bool) -> int:
            left = sum(i.width(group_labels or not i.group) for i in shown)
            tail = sum(i.width(right_labels) for i in right)  # "▏? keys ^p palette"
            return left + tail  # each left item ends with a blank column

        shown = list(items)
        droppable = sorted((i for i in items if i.rank < RANK_KEEP), key=lambda i: i.rank)
        # keys that cannot be used now (dimmed) go before the group's label...
        for drop in [i for i in droppable if not any(on for _k, _s, on, _t in i.keys)]:
            if total(shown, True, True) <= width:
                return shown, True, True
            shown.remove(drop)
        # ...and the label before the keys that can
        for drop in [i for i in droppable if i in shown]:
            if total(shown, True, True) <= width:
                return shown, True, True
            if total(shown, False, True) <= width:
                return shown, False, True
            shown.remove(drop)
        if total(shown, True, True) <= width:
            return shown, True, True
        if total(shown, False, True) <= width:
            return shown, False, True
        return shown, False, False

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

        def add_item(item: _Item, with_label: bool) -> None:
            if item.group:
                add(" ", text_style)
            for key, shown, enabled, tooltip in item.keys:
                add(shown, key_style, key, enabled, tooltip)
            add(f" {item.label} " if item.label and with_label else " ", text_style)

        width = self.size.width
        items, right = self._items()
        shown, group_labels, right_labels = self._fit(items, right, width)
        for item in shown:
            add_item(item, group_labels or not item.group)
        if right:
            tail = sum(i.width(right_labels) for i in right)  # "▏? keys ^p palette"
            add(" " * max(width - x - tail, 0), text_style)
            add("▏", self.get_visual_style("keybar--rule"))
            for n, item in enumerate(right):
                for key, shown_key, enabled, tooltip in item.keys:
                    add(shown_key, key_style, key, enabled, tooltip)
                label = f" {item.label}" if right_labels and item.label else ""
                add(label + (" " if n < len(right) - 1 else ""), text_style)
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
