"""The settings objects and the map of which config keys each rule reads, held to the rules.

Static side: every rule's ``params:`` hold settings objects (and wildcard values) only, the ones
``RULE_SETTINGS`` lists; each settings class reads exactly its ``KEYS``; every documented key is
read by some rule, or listed as a runtime or structural key. The dynamic side (dry runs after a
finished run) is in test_workflow.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from rnaseq_saliency import settings as s

REPO = Path(__file__).resolve().parents[1]
# Rules of the sweep (sweep.enabled) keep their own settings: their Paramspace paths carry the
# swept values, and sweep_summary writes the training sections into best_config.yaml.
SWEEP_RULES = {
    "sweep_augment",
    "sweep_train",
    "sweep_validate",
    "sweep_summary",
    "sweep_figure",
    "sweep_evaluate_best",
}
SETTINGS_PARAM = re.compile(r"^(\w+)=(\w+)\.from_config\(config\),$")
WILDCARD_PARAM = re.compile(r"^(\w+)=lambda wildcards: wildcards\.(\w+),$")


def default_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def rule_params() -> Iterator[tuple[str, list[str]]]:
    """Each rule of workflow/rules/*.smk with the lines of its ``params:`` block."""
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        lines = smk.read_text().splitlines()
        for i, line in enumerate(lines):
            match = re.match(r"^(\s*)rule (\w+):", line)
            if not match:
                continue
            indent = len(match.group(1))
            params: list[str] = []
            inside = None
            for body in lines[i + 1 :]:
                if body.strip() and len(body) - len(body.lstrip()) <= indent:
                    break
                depth = len(body) - len(body.lstrip())
                if body.strip() == "params:":
                    inside = depth
                elif inside is not None and body.strip() and depth <= inside:
                    inside = None
                elif inside is not None and body.strip():
                    params.append(body.strip())
            yield match.group(2), params


def documented_keys() -> list[str]:
    readme = (REPO / "config/README.md").read_text()
    return re.findall(r"^\| `([a-z_]+(?:\.[a-z_]+)+)` \|", readme, flags=re.MULTILINE)


class RecordingConfig(Mapping):
    """A read-only view of a config that records every dotted key read through it."""

    def __init__(self, data: Mapping[str, Any], seen: set[str], prefix: str = "") -> None:
        self._data, self._seen, self._prefix = data, seen, prefix

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        path = f"{self._prefix}{key}"
        if isinstance(value, Mapping):
            return RecordingConfig(value, self._seen, f"{path}.")
        self._seen.add(path)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_every_param_is_a_settings_object_or_a_wildcard_and_matches_the_map() -> None:
    found: dict[str, tuple[str, ...]] = {}
    for rule, params in rule_params():
        if rule in SWEEP_RULES:
            continue
        classes = []
        for line in params:
            settings = SETTINGS_PARAM.match(line)
            assert settings or WILDCARD_PARAM.match(line), (
                f"rule {rule}: param {line!r} is neither a settings object built from the "
                "config nor a wildcard value"
            )
            if settings:
                classes.append(settings.group(2))
        if classes:
            found[rule] = tuple(classes)
    declared = {rule: tuple(c.__name__ for c in cls) for rule, cls in s.RULE_SETTINGS.items()}
    assert found == declared


@pytest.mark.parametrize(
    "settings_class",
    sorted({c for classes in s.RULE_SETTINGS.values() for c in classes}, key=lambda c: c.__name__),
    ids=lambda c: c.__name__,
)
def test_settings_read_exactly_their_keys(settings_class: type) -> None:
    seen: set[str] = set()
    settings = settings_class.from_config(RecordingConfig(default_config(), seen))
    assert seen == set(settings_class.KEYS)
    # A tuple: Snakemake's params trigger records its repr (it ignores other objects), and the
    # repr shows the values, so two configs with the same values compare equal.
    assert isinstance(settings, tuple)
    again = settings_class.from_config(default_config())
    assert repr(again) == repr(settings) and again == settings
    assert all(str(value) in repr(settings) for value in settings)


def test_every_documented_key_is_read_by_a_rule_or_listed_with_its_reason() -> None:
    read = {key for rule in s.RULE_SETTINGS for key in s.rule_keys(rule)}
    documented = documented_keys()
    assert len(documented) > 50
    unaccounted = [
        key
        for key in documented
        if key not in read
        and key not in s.RUNTIME_KEYS
        and key not in s.STRUCTURAL_KEYS
        and not key.startswith("sweep.")
    ]
    assert unaccounted == []
    listed = read | set(s.RUNTIME_KEYS) | set(s.STRUCTURAL_KEYS)
    assert sorted(listed - set(documented)) == []


def test_train_reads_no_data_demo_split_or_augment_key() -> None:
    # The "wide" half of the issue: such edits reach training through its input files only.
    assert [
        key for key in s.rule_keys("train") if key.split(".")[0] in ("demo", "split", "augment")
    ] == []
    assert [key for key in s.rule_keys("train") if key.startswith("data.")] == ["data.measure"]


def test_evaluate_test_opt_one_and_two_are_the_same_settings() -> None:
    config = default_config()
    two = {**config, "evaluate": {"test_opt": 2}}
    zero = {**config, "evaluate": {"test_opt": 0}}
    assert s.EvaluateSettings.from_config(two) == s.EvaluateSettings.from_config(config)
    assert s.EvaluateSettings.from_config(zero) != s.EvaluateSettings.from_config(config)
    settings = s.EvaluateSettings.from_config(config)
    assert (settings.test_opt(config), settings.test_opt(two)) == (1, 2)
    assert s.EvaluateSettings.from_config(zero).test_opt(two) == 0


def test_training_settings_give_the_sections_model_json_records() -> None:
    settings = s.TrainingSettings.from_config(default_config())
    assert settings.section("model") == default_config()["model"]
    # train.replicates decides which training jobs exist; no one model's settings hold it.
    train = {k: v for k, v in default_config()["train"].items() if k != "replicates"}
    assert settings.section("train") == train
    assert settings.run_config()["data"] == {"measure": "tpm"}


def test_pca_tissues_follow_the_run_tissues() -> None:
    config = {**default_config(), "data": {**default_config()["data"], "tissues": ["lung"]}}
    assert s.PcaFigureSettings.from_config(config).tissues == ("lung",)
    config["data"]["tissues"] = ["lung", "liver"]
    assert s.PcaFigureSettings.from_config(config).tissues == ("liver",)


def test_missing_key_names_it() -> None:
    with pytest.raises(KeyError, match=r"config key saliency\.top_n: missing"):
        s.TopGenesSettings.from_config({"saliency": {}})
