"""Run configuration: one validated tree, loaded from TOML, overridden by ``--set``, saved per run.

Pydantic gives precise per-key errors ("train.epochs: must be >= 1"), which the front ends print
as one line. Field defaults *are* ``configs/default.toml`` (a test keeps the two equal).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from malaria_tui.engine.errors import ConfigError

Prob = Annotated[float, Field(ge=0.0, le=1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class DataConfig(_Section):
    """Where images come from and how they are split and batched."""

    source: str = "sample"
    image_size: int = Field(50, ge=32, le=1024)
    split: Literal["auto", "patient", "image"] = "auto"
    fractions: list[Annotated[float, Field(ge=0.0, le=1.0)]] = [0.8, 0.1, 0.1]
    batch_size: int = Field(64, ge=1, le=8192)
    limit: int = Field(0, ge=0)
    # shards: TFRecord files under the run's cache/ for data larger than memory (data/shards.py)
    cache: Literal["memory", "disk", "shards", "none"] = "memory"
    shards: int = Field(16, ge=1, le=100_000)  # cache = shards: files per split
    shuffle_buffer: int = Field(10_000, ge=1)  # cache = shards: examples held for shuffling
    color: Literal["auto", "gray", "rgb"] = "auto"
    # tf.data autotuning. Off: its tuning thread held the end of about a third of the epochs
    # on this CPU box for ~10 s (the iterator's destructor waits for it); pipeline.py says more.
    autotune: bool = False
    # Patient-level cross-validation (``malaria-tui cv`` sets these per fold): the test split
    # is set aside as usual, the rest cut into cv_folds folds by patient; this run trains on
    # the other folds (with its own validation part) and fold cv_fold (1..cv_folds) is held
    # out. cv_folds = 0: no cross-validation.
    cv_folds: int = Field(0, ge=0, le=50)
    cv_fold: int = Field(0, ge=0)
    # A reviewed-label overlay (``malaria-tui review``): CSV of path, sha256, given label,
    # decision (keep | relabel | exclude), time. "" = the labels as the folders give them.
    label_overrides: str = ""

    @model_validator(mode="after")
    def _cross_validation(self) -> DataConfig:
        if self.cv_folds == 1:
            raise ValueError("data.cv_folds must be 0 (no cross-validation) or at least 2")
        if self.cv_folds and not 1 <= self.cv_fold <= self.cv_folds:
            raise ValueError(
                f"data.cv_fold must be 1 to data.cv_folds ({self.cv_folds}), not {self.cv_fold}"
            )
        return self

    @model_validator(mode="after")
    def _fractions_sum(self) -> DataConfig:
        if len(self.fractions) != 3:
            raise ValueError("data.fractions needs three numbers: [train, val, test]")
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ValueError(f"data.fractions must sum to 1 (they sum to {sum(self.fractions):g})")
        if min(self.fractions) <= 0.0:
            raise ValueError(
                "data.fractions must all be > 0 (train, val and test each need images)"
            )
        return self


class ToggleAug(_Section):
    enabled: bool = True
    probability: Prob = 0.5


class RotationAug(ToggleAug):
    max_degrees: float = Field(180.0, ge=0.0, le=180.0)


class StrengthAug(ToggleAug):
    strength: float = Field(0.2, ge=0.0, le=1.0)


class MixAug(ToggleAug):
    enabled: bool = False
    alpha: float = Field(0.2, gt=0.0, le=10.0)


class AugmentConfig(_Section):
    """Training-split augmentation; each one on/off with its strength and probability."""

    rotation: RotationAug = RotationAug(probability=1.0)
    flip_horizontal: ToggleAug = ToggleAug()
    flip_vertical: ToggleAug = ToggleAug()
    contrast: StrengthAug = StrengthAug(strength=0.2, probability=0.5)
    brightness: StrengthAug = StrengthAug(strength=0.1, probability=0.5)
    mixup: MixAug = MixAug()
    cutmix: MixAug = MixAug(alpha=1.0)


class ModelConfig(_Section):
    name: str = "cellnet"
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    l2: float = Field(1e-4, ge=0.0, le=1.0)
    dense_units: int = Field(128, ge=1, le=8192)
    width: int = Field(24, ge=4, le=512)
    weights: Literal["none", "imagenet"] = "none"


class LossConfig(_Section):
    name: Literal["focal", "bce"] = "bce"
    alpha: Prob = 0.5
    gamma: float = Field(2.0, ge=0.0, le=10.0)
    label_smoothing: Prob = 0.0

    @model_validator(mode="after")
    def _focal_gamma_positive(self) -> LossConfig:
        # Keras' focal factor (1 - p)**gamma has a NaN gradient at gamma 0 (0 * log 0):
        # measured, a run died at step 108. Gamma 0 is plain cross-entropy anyway.
        if self.name == "focal" and self.gamma == 0:
            raise ValueError(
                'loss.gamma must be > 0 for focal loss (at 0 it is cross-entropy: use loss.name = "bce")'
            )
        return self


class OptimizerConfig(_Section):
    name: Literal["adam"] = "adam"
    learning_rate: float = Field(2e-3, gt=0.0, le=10.0)
    schedule: Literal["constant", "cosine", "exponential"] = "cosine"
    decay_rate: float = Field(0.9, gt=0.0, le=1.0)
    warmup_epochs: int = Field(1, ge=0)
    # Exponential moving average of the weights (0 = off): validation, the best checkpoint and
    # evaluation use the averaged weights, training continues on the raw ones.
    ema: float = Field(0.0, ge=0.0, lt=1.0)


class TrainConfig(_Section):
    loop: Literal["custom", "fit"] = "custom"
    epochs: int = Field(22, ge=1, le=100_000)
    monitor: str = "val_auc"
    monitor_mode: Literal["max", "min"] = "max"
    early_stopping: int = Field(0, ge=0)
    batch_events_per_second: float = Field(4.0, gt=0.0, le=1000.0)
    tensorboard: bool = True
    tensorboard_images: bool = True
    keep_checkpoints: int = Field(2, ge=1)
    # Where to compute (engine/training/strategy.py, docs/gpu.md). With more than one replica
    # data.batch_size is per replica: each step uses a global batch of batch_size x replicas.
    strategy: Literal["auto", "default", "mirrored", "multi_worker"] = "auto"
    mixed_precision: bool = False  # mixed_float16 on GPU (loss scaling), mixed_bfloat16 on CPU
    jit_compile: bool | str = "auto"  # XLA: "auto" (on when a GPU is visible) | true | false
    # Training steps per compiled call (both loops): raise it (e.g. 16) on a fast GPU, where
    # Python's per-step overhead shows; the stop flag and batch events then come per call.
    steps_per_execution: int = Field(1, ge=1, le=1000)

    @field_validator("jit_compile")
    @classmethod
    def _jit_auto_or_bool(cls, v: bool | str) -> bool | str:
        if isinstance(v, str) and v != "auto":
            raise ValueError("must be auto, true or false")
        return v


class EvalConfig(_Section):
    threshold: Prob = 0.5
    target_sensitivity: Prob = 0.95
    operating_point: Literal["sensitivity_target", "youden", "default"] = "sensitivity_target"
    tta: bool = True  # average the 8 flips/rotations when scoring val and test (+0.0007 val AUC)


class Config(_Section):
    seed: int = Field(42, ge=0, le=2**31 - 1)
    name: str = "run"
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())


def _format_error(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if not key.isprintable():
        key = repr(key)
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key; check the spelling (see configs/default.toml for every key)"
    elif (
        "input" in first
        and first["type"] not in ("missing",)
        and not isinstance(first["input"], dict)
    ):
        msg = f"{msg} (got {first['input']!r})"
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    msg = " ".join(msg.removeprefix("Value error, ").split())
    if msg.startswith(key + "."):
        return f"{where}: {msg}{tail}"
    return f"{where}: {key}: {msg}{tail}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` with the value read as a TOML literal, else as a plain string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: the key is empty")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def _apply(tree: dict, path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {'.'.join(path)}: {part} is not a section")
    node[path[-1]] = value


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; expected a TOML config") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None


def build(
    tree: dict[str, Any] | None = None, overrides: Sequence[str] = (), where: str = "config"
) -> Config:
    tree = dict(tree or {})
    overridden = set()
    for text in overrides:
        path, value = parse_override(text)
        _apply(tree, path, value)
        overridden.add(tuple(path))
    try:
        return Config.model_validate(tree)
    except ValidationError as e:
        loc = tuple(str(p) for p in e.errors()[0]["loc"])
        src = (
            "--set"
            if any(loc[: len(o)] == o or o[: len(loc)] == loc for o in overridden)
            else where
        )
        raise ConfigError(_format_error(e, src)) from None


def load(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """The config for a run: defaults, then the file (if any), then ``--set`` overrides."""
    tree = read_toml(path) if path else {}
    return build(tree, overrides, where=str(path) if path else "config")


def diff(a: Config, b: Config) -> dict[str, tuple[Any, Any]]:
    """Flat ``key -> (a, b)`` for every key whose value differs (for comparing runs)."""
    fa, fb = flatten(a.to_dict()), flatten(b.to_dict())
    return {
        k: (fa.get(k), fb.get(k)) for k in sorted(fa.keys() | fb.keys()) if fa.get(k) != fb.get(k)
    }


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


DEFAULT_NAME = "run"
# Short names for the keys people vary most; any other key is named by its last part.
_SHORT = {
    "optimizer.learning_rate": "lr",
    "model.dropout": "do",
    "model.width": "w",
    "model.l2": "l2",
    "model.dense_units": "units",
    "train.epochs": "ep",
    "data.image_size": "px",
    "data.batch_size": "bs",
    "optimizer.schedule": "",
    "loss.name": "",
    "train.loop": "",
    "seed": "seed",
    "data.cv_fold": "fold",
}
_IGNORED = (
    "name",
    "data.source",
    "data.limit",
    "data.cache",
    "train.tensorboard_images",
    "data.cv_folds",
    "data.label_overrides",  # named "reviewed" instead of by its path
)


def run_name(config: Config, max_parts: int = 4) -> str:
    """The run directory's name: ``config.name`` when one was given, else the model and what
    differs from the defaults, e.g. ``cellnet-lr0.003-do0.4``, so a list of runs says which
    is which."""
    if config.name != DEFAULT_NAME:
        return config.name
    changed = diff(Config(), config)
    parts = [config.model.name]
    order = list(_SHORT)
    for key in sorted(changed, key=lambda k: (order.index(k) if k in _SHORT else len(order), k)):
        if key in _IGNORED or key == "model.name" or len(parts) > max_parts:
            continue
        value = changed[key][1]
        if isinstance(value, bool):
            *_, section, last = ["", *key.split(".")]
            what = section if last == "enabled" else last
            text = what if value else "no" + what
        else:
            short = _SHORT.get(key, key.rsplit(".", 1)[-1])
            text = f"{short}{value:g}" if isinstance(value, float) else f"{short}{value}"
        parts.append("".join(c if c.isalnum() or c in "._" else "_" for c in text))
    if config.data.label_overrides:
        parts.append("reviewed")
    return "-".join(parts)
