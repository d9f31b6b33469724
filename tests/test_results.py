"""The owners table of results files (rnaseq_saliency.results) against the rules and modules."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from rnaseq_saliency.results import OWNERS

REPO = Path(__file__).resolve().parents[1]


def declared_paths() -> set[str]:
    """Every ``results/...`` path the rules write, wildcards and sweep patterns as ``{}``."""
    text = "\n".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    paths = set(re.findall(r'f?"(results/[^"]+)"', text))
    normalised = {re.sub(r"\{\{?[^{}]*\}?\}", "{}", path) for path in paths}
    # multiext("results/model/model", ".safetensors", ".json") names two files listed below.
    return normalised - {"results/model/model"}


def test_every_results_path_of_the_rules_has_one_owner() -> None:
    paths = declared_paths()
    assert len(paths) > 30
    assert sorted(paths - set(OWNERS)) == []


@pytest.mark.parametrize("path", sorted(OWNERS))
def test_owner_modules_define_the_named_reader_and_writer(path: str) -> None:
    owner = OWNERS[path]
    module = importlib.import_module(f"rnaseq_saliency.{owner.module}")
    for name in filter(None, (owner.writer, owner.reader)):
        assert callable(getattr(module, name, None)), f"{path}: {owner.module}.{name}"
