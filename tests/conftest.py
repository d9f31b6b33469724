"""Shared test settings."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root (where the Snakefile lives)."""
    return REPO


@pytest.fixture(scope="module")
def bench_importable() -> Iterator[Path]:
    """``bench/`` on sys.path for one test module, so that its scripts import by name.

    On the path, not loaded from a file: make_gtex_scale's spawned pool workers import it by
    name too.
    """
    bench = REPO / "bench"
    sys.path.insert(0, str(bench))
    try:
        yield bench
    finally:
        sys.path.remove(str(bench))
