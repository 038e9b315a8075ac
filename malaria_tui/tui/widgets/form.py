"""One config key as a labelled input: every edit is validated by the pydantic Config.

A refused value stays in the box, marked invalid, with the reason on the line below; the app's
config keeps its last valid value.
"""

from __future__ import annotations

import functools
import operator
import tomllib
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select, Static

from malaria_tui.engine import config as config_mod
from malaria_tui.engine.config import Config, flatten
from malaria_tui.engine.errors import ConfigError


def parse_literal(text: str) -> Any:
    """A TOML literal (``3``, ``1e-3``, ``true``, ``[1, 2]``), else the plain string."""
    raw = text.strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def with_value(config: Config, key: str, value: Any) -> Config:
    """``config`` with the dotted ``key`` set to ``value``, validated; raises ConfigError."""
    tree = config.to_dict()
    *parents, leaf = key.split(".")
    functools.reduce(operator.getitem, parents, tree)[leaf] = value
    return config_mod.build(tree, where="config")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def invalid_fields(app: object) -> list[tuple[str, str, str]]:
    """(config key, why it was refused, where: "Model screen, key 3") of every field, on every screen built
    so far, that holds a value the config refused: the config kept the last valid one, so a
    run started now would not use what the field shows."""
    from malaria_tui.tui.screen_table import SCREENS

    out: list[tuple[str, str, str]] = []
    get_screen = getattr(app, "get_screen_of", None)
    if get_screen is None:
        return out
    for entry in SCREENS:
        screen = get_screen(entry.mode)
        if screen is None or not screen.is_mounted:
            continue
        for field in screen.query(ConfigField):
            if field.error:
                out.append((field.key, field.error, f"{entry.title} screen, key {entry.key}"))
    return out


class ConfigField(Vertical):
    """``label [control]`` plus an error line; ``key`` is a dotted config key."""

    DEFAULT_CSS = """
    ConfigField { height: auto; width: 1fr; }
    ConfigField > Horizontal { height: 1; width: 1fr; }
    ConfigField > Horizontal > Label { width: 14; height: 1; color: $text-muted; }
    ConfigField > Horizontal > Input { width: 1fr; }
    ConfigField > Horizontal > Select { width: 1fr; }
    ConfigField > Horizontal > Checkbox { width: 1fr; }
    ConfigField > .field-error { display: none; color: $error; height: auto; padding-left: 2; }
    ConfigField.-invalid > .field-error { display: block; }
    ConfigField.-invalid > Horizontal > Label { color: $error; text-style: bold; }
    """

    class Applied(Message):
        """A value was accepted (``error`` empty) or refused."""

        def __init__(self, field: ConfigField, key: str, error: str) -> None:
            super().__init__()
            self.field, self.key, self.error = field, key, error

        @property
        def control(self) -> ConfigField:
            return self.field

    def __init__(
        self,
        key: str,
        label: str,
        *,
        options: list[str] | None = None,
        boolean: bool = False,
        width: int | None = None,
    ) -> None:
        super().__init__(id="f-" + key.replace(".", "-"))
        self.key = key
        self.label = label
        self.options = options
        self.boolean = boolean
        self.error = ""

    @property
    def current(self) -> Any:
        return flatten(self.app.config.to_dict()).get(self.key)  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        value = self.current
        with Horizontal():
            yield Label(self.label)
            if self.boolean:
                yield Checkbox("on" if value else "off", value=bool(value), compact=True)
            elif self.options is not None:
                yield Select(
                    [(o, o) for o in self.options],
                    value=value if value in self.options else Select.NULL,
                    allow_blank=value not in self.options,
                    compact=True,
                )
            else:
                yield Input(_show(value), compact=True, select_on_focus=False)
        yield Static("", classes="field-error", markup=False)

    def apply(self, value: Any) -> str:
        """Validate ``value`` for this key through the Config and keep it if valid."""
        error = ""
        if value == "" and not isinstance(self.current, str):
            error = "a value is needed"
        else:
            try:
                self.app.config = with_value(self.app.config, self.key, value)  # type: ignore[attr-defined]
            except ConfigError as e:
                error = str(e).removeprefix("config: ").removeprefix(f"{self.key}: ")
        self.error = error
        self.set_class(bool(error), "-invalid")
        self.query_one(".field-error", Static).update(error)
        for inp in self.query(Input):
            inp.set_class(bool(error), "-invalid")
        self.post_message(self.Applied(self, self.key, error))
        return error

    def set_text(self, text: str) -> str:
        """Type ``text`` as if by the user (used by tests and the palette)."""
        if self.options is not None or self.boolean:
            return self.apply(parse_literal(text) if self.boolean else text)
        self.query_one(Input).value = text
        return self.apply(parse_literal(text))

    def sync(self) -> None:
        """Show the config's value again (after it changed elsewhere); keeps a pending error."""
        if self.error:
            return
        value = self.current
        if self.boolean:
            box = self.query_one(Checkbox)
            with box.prevent(Checkbox.Changed):
                box.value = bool(value)
            box.label = "on" if value else "off"
        elif self.options is not None:
            sel = self.query_one(Select)
            if value in self.options and sel.value != value:
                with sel.prevent(Select.Changed):
                    sel.value = value
        else:
            inp = self.query_one(Input)
            if parse_literal(inp.value) != value:
                with inp.prevent(Input.Changed):
                    inp.value = _show(value)

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if parse_literal(event.value) == self.current and not self.error:
            return
        self.apply(parse_literal(event.value))

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is Select.NULL or event.value == self.current:
            return
        self.apply(event.value)

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        event.checkbox.label = "on" if event.value else "off"
        if event.value != self.current:
            self.apply(event.value)
