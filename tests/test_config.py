import tomllib

import pytest

from malaria_tui.engine import config
from malaria_tui.engine.errors import ConfigError
from tests.conftest import REPO


def test_default_toml_is_the_builtin_default():
    on_disk = tomllib.loads((REPO / "configs" / "default.toml").read_text())
    assert config.build(on_disk).to_dict() == config.Config().to_dict()


@pytest.mark.parametrize("name", ["default", "quick", "full", "grid"])
def test_shipped_configs_validate(name):
    path = REPO / "configs" / f"{name}.toml"
    tree = tomllib.loads(path.read_text())
    tree.pop("grid", None)  # the grid section belongs to the grid command
    config.build(tree, where=str(path))


def test_overrides_are_typed_toml_literals():
    c = config.load(
        None,
        [
            "train.epochs=3",
            "optimizer.learning_rate=1e-3",
            'model.name="lenet"',
            "data.source=folder:/x",
        ],
    )
    assert (c.train.epochs, c.optimizer.learning_rate, c.model.name, c.data.source) == (
        3,
        1e-3,
        "lenet",
        "folder:/x",
    )


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.epochz=1", "train.epochz: unknown key"),
        ('train.epochs="ten"', "train.epochs: Input should be a valid integer"),
        ("train.epochs=0", "train.epochs: Input should be greater than or equal to 1"),
        ("data.image_size=16", "data.image_size: Input should be greater than or equal to 32"),
        ("data.fractions=[0.5, 0.2, 0.2]", "data.fractions must sum to 1"),
        ('train.loop="keras"', "train.loop: Input should be 'custom' or 'fit'"),
        ("noequals", "expected KEY=VALUE"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(override, needle):
    with pytest.raises(ConfigError) as e:
        config.load(None, [override])
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_focal_gamma_zero_is_refused_in_one_line_but_unused_gamma_is_not():
    """Keras's focal loss has NaN gradients at gamma 0 (a real run died at step 108)."""
    with pytest.raises(ConfigError) as e:
        config.load(None, ['loss.name="focal"', "loss.gamma=0"])
    assert str(e.value) == (
        '--set: loss.gamma must be > 0 for focal loss (at 0 it is cross-entropy: use loss.name = "bce")'
    )
    assert config.load(None, ['loss.name="bce"', "loss.gamma=0"]).loss.gamma == 0


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3")
    with pytest.raises(ConfigError, match=r"bad.toml: invalid TOML"):
        config.load(bad)
    with pytest.raises(ConfigError, match=r"missing.toml: config file not found"):
        config.load(tmp_path / "missing.toml")
    typo = tmp_path / "typo.toml"
    typo.write_text("[model]\nnmae = 'lenet'\n")
    with pytest.raises(ConfigError, match=r"typo.toml: model.nmae: unknown key"):
        config.load(typo)


def test_toml_round_trip_and_diff():
    a = config.load(None, ["train.epochs=3"])
    b = config.build(tomllib.loads(a.to_toml()))
    assert a == b
    assert config.diff(a, config.Config()) == {"train.epochs": (3, config.Config().train.epochs)}


def test_runs_without_a_name_are_named_by_model_and_what_differs():
    from malaria_tui.engine.config import load, run_name

    assert run_name(load(None, [])) == "cellnet"
    assert (
        run_name(load(None, ["optimizer.learning_rate=0.003", "model.dropout=0.4"]))
        == "cellnet-lr0.003-do0.4"
    )
    assert run_name(load(None, ["augment.mixup.enabled=true"])) == "cellnet-mixup"
    assert run_name(load(None, ['model.name="lenet"', 'name="mine"'])) == "mine"
    long = run_name(
        load(
            None,
            [f"model.{k}" for k in ("dropout=0.1", "width=8", "l2=0")]
            + ["train.epochs=2", "seed=1", "data.image_size=40"],
        )
    )
    assert long.count("-") == 4 and "/" not in long  # at most four differences named
