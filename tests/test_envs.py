"""The conda environments that rules name: valid YAML, exact pins, inside pyproject's ranges."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
# conda-forge names of the packages that pyproject.toml names differently.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "matplotlib-base": "matplotlib",
    "seaborn-base": "seaborn",
}


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return {requirement.name.lower(): requirement for requirement in requirements}


def conda_pins(path: Path) -> dict[str, str]:
    environment = yaml.safe_load(path.read_text())
    pins = {}
    for entry in environment["dependencies"]:
        assert isinstance(entry, str), f"{path.name}: unexpected entry {entry!r}"
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)=([0-9][^=\s]*)", entry)
        assert match, f"{path.name}: {entry!r} is not pinned as name=version"
        pins[match.group(1)] = match.group(2)
    return pins


def test_there_are_environment_files() -> None:
    assert {p.name for p in ENV_FILES} >= {"data.yaml", "torch.yaml"}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_every_package_is_pinned_inside_the_pyproject_range(path: Path) -> None:
    requirements = pyproject_requirements()
    pins = conda_pins(path)
    assert pins.pop("python").startswith("3.1")
    for conda_name, version in pins.items():
        name = CONDA_TO_PYPI.get(conda_name, conda_name)
        assert name in requirements, f"{path.name}: {conda_name} is not a dependency in pyproject"
        assert Version(version) in requirements[name].specifier, (
            f"{path.name}: {conda_name}={version} is outside pyproject's {requirements[name]}"
        )


def test_every_rule_names_an_existing_environment() -> None:
    named = set()
    for rule_file in (REPO / "workflow" / "rules").glob("*.smk"):
        named.update(re.findall(r'conda:\s*\n\s*"([^"]+)"', rule_file.read_text()))
    assert named, "no conda: directives found"
    for relative in named:
        assert (REPO / "workflow" / "rules" / relative).resolve().is_file(), relative
