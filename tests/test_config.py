from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rnaseq_saliency.config import ConfigError, validate_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def shipped_config() -> dict:
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_shipped_config_is_valid_and_complete() -> None:
    config = shipped_config()
    before = copy.deepcopy(config)
    validate_config(config, SCHEMA)
    # The shipped file spells out every key: validation adds no default to it.
    assert config == before


def test_schema_defaults_match_the_shipped_config() -> None:
    filled = validate_config({}, SCHEMA)
    assert filled == shipped_config()


def test_unknown_key_names_the_key_and_the_allowed_ones() -> None:
    config = shipped_config()
    config["train"]["learning_rate"] = 0.1
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    message = str(error.value)
    assert "config key train" in message
    assert "learning_rate" in message
    assert "lr" in message and "weight_decay" in message


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("data", "source", "ftp", "config key data.source: 'ftp' is not allowed"),
        ("data", "release", "v9", "expected one of ['v8', 'v10']"),
        ("augment", "min_samples", -1, "config key augment.min_samples"),
        ("augment", "min_samples", 2.5, "config key augment.min_samples"),
        ("train", "epochs", "ten", "config key train.epochs"),
        ("split", "test_fraction", 1.5, "config key split.test_fraction"),
        ("model", "hidden", [64, 32], "config key model.hidden"),
        ("data", "tissues", 3, "expected 'all' or a list of tissue labels"),
        ("train", "select_on", "accuracy", "config key train.select_on"),
        ("train", "label_smoothing", 1.0, "config key train.label_smoothing"),
        ("train", "label_smoothing", -0.1, "config key train.label_smoothing"),
        ("train", "input_dropout", 1.0, "config key train.input_dropout"),
        ("train", "input_dropout", "some", "config key train.input_dropout"),
    ],
)
def test_wrong_value_names_key_and_what_is_allowed(section, key, value, expected) -> None:
    config = shipped_config()
    config[section][key] = value
    with pytest.raises(ConfigError, match="config key") as error:
        validate_config(config, SCHEMA)
    assert expected in str(error.value)


def test_saliency_method_must_be_one_that_can_be_chosen_or_computed() -> None:
    config = shipped_config()
    config["split"]["val_fraction"] = 0
    with pytest.raises(ConfigError, match=r"saliency\.method: 'auto' chooses on validation"):
        validate_config(config, SCHEMA)
    config["saliency"]["method"] = "gradient"  # forced: no validation split needed
    validate_config(config, SCHEMA)
    config["saliency"]["methods"] = ["input_x_gradient", "integrated_gradients"]
    with pytest.raises(ConfigError, match=r"saliency\.method: 'gradient' is not computed"):
        validate_config(config, SCHEMA)
    config["saliency"]["methods"] = []
    with pytest.raises(ConfigError, match=r"saliency\.methods"):
        validate_config(config, SCHEMA)


def test_every_problem_is_reported_at_once() -> None:
    config = shipped_config()
    config["data"]["source"] = "ftp"
    config["train"]["epochs"] = 0
    with pytest.raises(ConfigError, match=r"2 problem\(s\)") as error:
        validate_config(config, SCHEMA)
    assert "data.source" in str(error.value) and "train.epochs" in str(error.value)


def test_every_key_is_documented_in_config_readme() -> None:
    readme = (REPO / "config/README.md").read_text()

    def keys(node: dict, prefix: str = ""):
        for name, value in node.items():
            path = f"{prefix}{name}"
            if isinstance(value, dict):
                yield from keys(value, path + ".")
            else:
                yield path

    missing = [key for key in keys(shipped_config()) if f"`{key}`" not in readme]
    assert missing == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("select_on", "loss"),
        ("select_on", "macro_f1"),
        ("label_smoothing", 0.0),
        ("label_smoothing", 0.3),
        ("input_dropout", 0.0),
        ("input_dropout", 0.5),
    ],
)
def test_training_choices_against_the_baseline_are_accepted(key: str, value: object) -> None:
    config = shipped_config()
    config["train"][key] = value
    assert validate_config(config, SCHEMA)["train"][key] == value


def test_new_training_keys_default_to_the_measured_choice() -> None:
    """The defaults BENCHMARKS.md ("Network vs baseline") measured, also when a config written
    before these keys leaves them out."""
    config = shipped_config()
    for key in ("select_on", "label_smoothing", "input_dropout", "patience"):
        del config["train"][key]
    train = validate_config(config, SCHEMA)["train"]
    assert (train["select_on"], train["label_smoothing"], train["input_dropout"]) == (
        "macro_f1",
        0.05,
        0.2,
    )
    assert train["patience"] == 10
