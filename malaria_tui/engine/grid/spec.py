"""The ``[grid]`` section: which config keys vary, over which values, and how trials are ranked.

A grid file is an ordinary run config plus a ``[grid]`` table::

    [grid]
    sample = 6            # optional: N random trials (seeded) instead of the whole product
    seed = 7              # optional: defaults to the config's seed
    max_trials = 200      # a larger grid is refused before anything trains
    metric = "val_auc"    # what ranks the trials (validation split only)
    mode = "max"          # optional: "min" for losses, fp and fn, else "max"

    [grid.values]
    "optimizer.learning_rate" = [1e-3, 3e-3]
    "model.dropout" = [0.2, 0.4]

Everything is validated here, before a grid directory exists: every trial's config is built
through :func:`malaria_tui.engine.config.build`, so an unknown key or a value of the wrong type
is one line naming the file and the key.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import random
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from malaria_tui.engine import config as cfgmod
from malaria_tui.engine.config import Config
from malaria_tui.engine.errors import ConfigError

GRID = "grid"
TRAIN_METRICS = (
    "loss",
    "accuracy",
    "custom_accuracy",
    "precision",
    "recall",
    "auc",
    "tp",
    "tn",
    "fp",
    "fn",
)
METRICS = tuple(f"val_{m}" for m in TRAIN_METRICS) + TRAIN_METRICS
# Short labels for trial folder names (anything else: the key's last part).
LABELS = {
    "data.cv_fold": "fold",
    "optimizer.learning_rate": "lr",
    "optimizer.schedule": "",
    "model.name": "",
    "model.dropout": "drop",
    "model.dense_units": "units",
    "data.batch_size": "bs",
    "data.image_size": "px",
    "loss.name": "",
    "train.epochs": "ep",
}
ALIASES = {"lr": "learning_rate", "bs": "batch_size", "units": "dense_units", "size": "image_size"}


class GridSettings(BaseModel):
    """The ``[grid]`` table (``values`` is checked separately, key by key)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sample: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    max_trials: int = Field(200, ge=1)
    metric: str = "val_auc"
    mode: Literal["max", "min"] | None = None
    values: dict[str, Any] = {}


@dataclass(frozen=True)
class Trial:
    """One point of the grid: ``index`` counts from 1; ``name`` is its folder under ``trials/``."""

    index: int
    name: str
    params: dict[str, Any]  # varied key -> value, as validated (e.g. 1 -> 1.0 for a float key)
    config: Config


@dataclass(frozen=True)
class GridSpec:
    base: Config
    keys: tuple[str, ...]  # the varied keys, in file order
    values: dict[str, list]  # key -> the listed values (validated, file order)
    metric: str
    mode: str  # "max" | "min"
    seed: int
    sample: int | None
    max_trials: int
    total: int  # size of the full Cartesian product
    trials: tuple[Trial, ...]
    source: str = "config"  # the file it came from, for messages

    def settings(self) -> dict[str, Any]:
        """The resolved ``[grid]`` table (seed and mode filled in)."""
        out: dict[str, Any] = {
            "seed": self.seed,
            "max_trials": self.max_trials,
            "metric": self.metric,
            "mode": self.mode,
        }
        if self.sample is not None:
            out["sample"] = self.sample
        out["values"] = {k: list(v) for k, v in self.values.items()}
        return out

    def to_toml(self) -> str:
        """Base config (every key) plus the resolved ``[grid]``: reloads to the same trials."""
        return tomli_w.dumps(self.base.to_dict() | {GRID: self.settings()})


# --- loading -----------------------------------------------------------------------------------


def load(path: str | Path, overrides: Sequence[str] = ()) -> GridSpec:
    """The grid in ``path``; ``overrides`` are ``--set`` strings, base keys or ``grid.*`` ones
    (``grid.sample=4``, ``grid.values.model.dropout=[0.1,0.3]``)."""
    tree = cfgmod.read_toml(path)
    return from_tree(tree, overrides, where=str(path))


def from_tree(
    tree: dict[str, Any], overrides: Sequence[str] = (), where: str = "config"
) -> GridSpec:
    tree = copy.deepcopy(tree)
    grid_tree = tree.pop(GRID, None)
    # (key path, value, the --set text) of each override, for the base config or for [grid]
    base_overrides: list[tuple[list[str], Any, str]] = []
    grid_overrides: list[tuple[list[str], Any, str]] = []
    for text in overrides:
        path, value = cfgmod.parse_override(text)
        (grid_overrides if path[0] == GRID else base_overrides).append((path, value, text))
    if grid_tree is None and not grid_overrides:
        raise ConfigError(
            f"{where}: no [grid] section; add [grid.values] with a list of values per key "
            "(see configs/grid.toml)"
        )
    if grid_tree is not None and not isinstance(grid_tree, dict):
        raise ConfigError(f"{where}: grid must be a table ([grid]), not {grid_tree!r}")
    grid_tree = dict(grid_tree or {})
    values = grid_tree.setdefault("values", {})
    if isinstance(values, dict):
        grid_tree["values"] = dict(values)
    for path, value, text in grid_overrides:
        if len(path) >= 3 and path[1] == "values" and isinstance(grid_tree["values"], dict):
            grid_tree["values"][".".join(path[2:])] = value
        elif len(path) == 2:
            grid_tree[path[1]] = value
        else:
            raise ConfigError(
                f"--set {text!r}: use grid.KEY=VALUE or grid.values.SECTION.KEY=[values]"
            )
    base = cfgmod.build(tree, [t for _, _, t in base_overrides], where=where)
    return _resolve(base, grid_tree, where)


def _resolve(base: Config, grid_tree: dict, where: str) -> GridSpec:
    here = f"{where}: grid"
    raw_values = grid_tree.get("values")
    if not isinstance(raw_values, dict):
        raise ConfigError(
            f'{here}.values must be a table of key = [values], e.g. "model.dropout" = [0.2, 0.4]'
        )
    try:
        settings = GridSettings.model_validate(grid_tree)
    except ValidationError as e:
        raise ConfigError(_settings_error(e, here)) from None
    if not raw_values:
        raise ConfigError(
            f'{here}.values is empty; list values for at least one key, e.g. "model.dropout" = [0.2, 0.4]'
        )
    metric = settings.metric
    if metric not in METRICS:
        near = difflib.get_close_matches(metric, METRICS, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(
            f"{here}.metric: {metric!r} is not a metric; {hint}use one of "
            f"{', '.join(METRICS[:10])} (validation) or the same without val_ (training)"
        )
    mode = settings.mode or ("min" if metric.endswith(("loss", "fp", "fn")) else "max")
    base_dict = base.to_dict()
    leaves = cfgmod.flatten(base_dict)
    values: dict[str, list] = {}
    for key, vals in raw_values.items():
        _check_key(key, leaves, here)
        values[key] = _check_values(key, vals, base_dict, here)
    keys = tuple(values)
    total = math.prod(len(v) for v in values.values())
    seed = base.seed if settings.seed is None else settings.seed
    sizes = " x ".join(str(len(values[k])) for k in keys)
    if settings.sample is not None:
        if settings.sample > total:
            raise ConfigError(
                f"{here}.sample = {settings.sample}, but the grid has only {total} trial"
                f"{'s' if total > 1 else ''} ({sizes}); lower it or remove it to run them all"
            )
        n = settings.sample
        picks: Sequence[int] = sorted(random.Random(seed).sample(range(total), n))
    else:
        n = total
        picks = range(total)
    if n > settings.max_trials:
        what = f"grid.sample = {n}" if settings.sample is not None else f"{n} trials ({sizes})"
        raise ConfigError(
            f"{here}: {what} is more than grid.max_trials = {settings.max_trials}; "
            "set grid.sample = N for N random trials, or raise grid.max_trials"
        )
    labels = _labels(keys)
    width = max(2, len(str(n)))
    trials = []
    for i, flat_index in enumerate(picks, start=1):
        combo = _combination(flat_index, [values[k] for k in keys])
        tree = copy.deepcopy(base_dict)
        for key, value in zip(keys, combo, strict=True):
            _set(tree, key, value)
        name = f"{i:0{width}d}-{_describe(labels, keys, combo)}"
        tree["name"] = f"{base.name}-{name}"
        cfg = cfgmod.build(tree, where=f"{here}.values (trial {name})")
        flat = cfgmod.flatten(cfg.to_dict())
        trials.append(Trial(i, name, {k: flat[k] for k in keys}, cfg))
    return GridSpec(
        base=base,
        keys=keys,
        values=values,
        metric=metric,
        mode=mode,
        seed=seed,
        sample=settings.sample,
        max_trials=settings.max_trials,
        total=total,
        trials=tuple(trials),
        source=where,
    )


def _settings_error(e: ValidationError, here: str) -> str:
    first = e.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return (
            f"{here}.{key}: unknown key; [grid] takes sample, seed, max_trials, metric, mode "
            "and a [grid.values] table"
        )
    got = f" (got {first['input']!r})" if "input" in first else ""
    return f"{here}.{key}: {first['msg']}{got}"


def _check_key(key: str, leaves: dict[str, Any], here: str) -> None:
    if key == "name":
        raise ConfigError(
            f'{here}.values: "name" cannot vary (each trial is named after its values)'
        )
    if key in leaves:
        return
    if any(k.startswith(key + ".") for k in leaves):
        example = next(k for k in leaves if k.startswith(key + "."))
        raise ConfigError(
            f'{here}.values: "{key}" is a section; list values for one of its keys, e.g. "{example}"'
        )
    last = key.rsplit(".", 1)[-1]
    same_leaf = [k for k in leaves if k.rsplit(".", 1)[-1] == ALIASES.get(last, last)]
    near = same_leaf or difflib.get_close_matches(key, list(leaves), n=1, cutoff=0.6)
    hint = f' (did you mean "{near[0]}"?)' if near else ""
    raise ConfigError(
        f'{here}.values: "{key}": unknown config key{hint}; keys are dotted, as in '
        '"optimizer.learning_rate" (see configs/default.toml for every key)'
    )


def _check_values(key: str, vals: Any, base_dict: dict, here: str) -> list:
    if not isinstance(vals, list):
        raise ConfigError(
            f'{here}.values: "{key}" must be a list of values, e.g. [{json.dumps(vals)}] (got {vals!r})'
        )
    if not vals:
        raise ConfigError(f'{here}.values: "{key}" is an empty list; give at least one value')
    seen: list = []
    for v in vals:
        if any(_same(v, s) for s in seen):
            raise ConfigError(f'{here}.values: "{key}" lists {v!r} twice')
        seen.append(v)
        tree = copy.deepcopy(base_dict)
        _set(tree, key, v)
        cfgmod.build(tree, where=f"{here}.values")  # names the key, the value and its problem
    return list(vals)


def _same(a: Any, b: Any) -> bool:
    return (
        type(a) is type(b)
        and a == b
        or (isinstance(a, int | float) and isinstance(b, int | float) and a == b)
    )


def _set(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = copy.deepcopy(value)


def _combination(flat_index: int, lists: list[list]) -> list:
    """The ``flat_index``-th element of ``itertools.product(*lists)``, without building it."""
    out = []
    for vals in reversed(lists):
        flat_index, i = divmod(flat_index, len(vals))
        out.append(vals[i])
    return out[::-1]


def product(spec: GridSpec) -> list[tuple]:
    """Every combination, in trial order (small grids; for tests and previews)."""
    return list(itertools.product(*(spec.values[k] for k in spec.keys)))


def _labels(keys: tuple[str, ...]) -> dict[str, str]:
    """Short labels for folder names: lr, drop, contrast, mixup_p, ... (unique per grid)."""
    aug_leaf = {
        "enabled": "",
        "strength": "",
        "max_degrees": "",
        "probability": "_p",
        "alpha": "_a",
    }
    labels = {}
    for k in keys:
        parts = k.split(".")
        if k in LABELS:
            labels[k] = LABELS[k]
        elif parts[0] == "augment" and len(parts) == 3 and parts[2] in aug_leaf:
            labels[k] = parts[1] + aug_leaf[parts[2]]
        else:
            labels[k] = parts[-1]
    for k in keys:
        if labels[k] and any(o != k and labels[o] == labels[k] for o in keys):
            labels[k] = "_".join(k.split(".")[-2:])
    return labels


def _part(label: str, value: Any) -> str:
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, float):
        return f"{label}{value:g}"
    elif isinstance(value, int):
        return f"{label}{value}"
    elif isinstance(value, list):
        text = "_".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    else:
        text = str(value)
    return f"{label}-{text}" if label else text


def _describe(labels: dict[str, str], keys: tuple[str, ...], combo: list) -> str:
    text = "_".join(_part(labels[k], v) for k, v in zip(keys, combo, strict=True))
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)
    return safe[:60].rstrip("-_.") or "trial"


def read(path: str | Path) -> GridSpec:
    """A grid directory's own ``grid.toml`` (the resolved spec)."""
    path = Path(path)
    try:
        tree = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: unreadable grid file: {e}") from None
    return from_tree(tree, where=str(path))
