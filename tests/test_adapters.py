"""Every Snakemake script adapter writes its job's error to the rule's log.

Each adapter is run as its rule's job would run it, with a ``snakemake`` object whose inputs,
outputs and params are paths that do not exist (the way these jobs fail on purpose: every
adapter then fails inside its package call, for its own reason). Its log must end with the rule
and the error. test_workflow.py does the same once through Snakemake with a corrupt input.
"""

from __future__ import annotations

import logging
import runpy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
ADAPTERS = sorted((REPO / "scripts").glob("*.py"))


class Missing(str):
    """Whatever a job asks of its inputs, outputs, params or config: a path that is not there.

    Attributes and items are more such paths, iteration gives one, and calling one gives an
    empty mapping (a settings object's ``_asdict()``).
    """

    def __getattr__(self, name: str) -> Missing:
        if name.startswith("__"):
            raise AttributeError(name)
        return Missing(f"{self}/{name}")

    def __getitem__(self, key: object) -> Missing:  # type: ignore[override]
        return Missing(f"{self}/{key}")

    def __iter__(self) -> Iterator[Missing]:  # type: ignore[override]
        yield Missing(f"{self}/0")

    def __call__(self, *args: object, **kwargs: object) -> dict:
        return {}


def missing_job(tmp_path: Path, rule: str) -> SimpleNamespace:
    root = tmp_path / "nowhere"
    return SimpleNamespace(
        rule=rule,
        log=[str(tmp_path / "logs" / f"{rule}.log")],
        input=Missing(f"{root}/input"),
        output=Missing(f"{root}/output"),
        params=Missing(f"{root}/params"),
        wildcards=Missing(f"{root}/wildcards"),
        config=Missing(f"{root}/config"),
        threads=1,
    )


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The adapters configure the root logger, as in a job's own process: undo that."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:], root.level = saved


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda path: path.stem)
def test_a_failing_job_leaves_its_error_at_the_end_of_its_log(
    adapter: Path, tmp_path: Path
) -> None:
    rule = adapter.stem
    job = missing_job(tmp_path, rule)
    with pytest.raises(Exception) as caught:
        runpy.run_path(str(adapter), init_globals={"snakemake": job})
    lines = Path(job.log[0]).read_text().rstrip("\n").splitlines()
    error = f"{type(caught.value).__name__}: {caught.value}".splitlines()[0]
    assert lines[-1].endswith(f"rule {rule} failed: {error}"), lines[-3:]
    assert any(line.startswith("Traceback") for line in lines)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda path: path.stem)
def test_each_adapter_is_one_package_call_inside_rule_log(adapter: Path) -> None:
    text = adapter.read_text()
    assert "with rule_log(snakemake)" in text, adapter.name
    assert "setup_logging" not in text and "except" not in text, adapter.name


def test_modules_of_the_many_small_jobs_do_not_import_torch() -> None:
    # 54 saliency, 54 heatmap and the table jobs each start a Python process: importing torch
    # costs about a second and a half each (BENCHMARKS.md, per-job overhead). They load it
    # only when they compute maps.
    import subprocess
    import sys

    modules = ["saliency", "figures_saliency", "evaluate", "history", "figures_training", "genes"]
    code = (
        "import sys\n"
        + "".join(f"import rnaseq_saliency.{name}\n" for name in modules)
        + "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
