"""notebooks/Saliency.ipynb: stored without outputs, and executed end to end on the demo results.

The execution test runs the small demo workflow of ``tests/test_workflow.py`` (its config and
snakemake helper, loaded from its path), only up to the files the notebook reads, then runs
every cell with nbclient in the ``python3`` kernel (jupyter_client starts it with this
interpreter, so with the venv's packages). Its values go in a cell inserted after the one
tagged ``parameters``, as papermill does; any cell that raises fails the test.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "Saliency.ipynb"
# What the notebook reads: the top_genes rule's outputs (which need every tissue's maps) and
# the evaluation; the heatmaps, overview and validation rules are not needed.
TARGETS = (
    "results/saliency/top_genes.tsv",
    "results/saliency/mean_saliency.parquet",
    "results/evaluation/summary.json",
)
N_FIGURES = 3  # tissue heatmap, gene across tissues, sample against its tissue


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


strip_notebook = load_module("strip_notebook", REPO / "tools" / "strip_notebook.py")


def parameters_cell(notebook: nbformat.NotebookNode) -> int:
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{NOTEBOOK}: expected one cell tagged 'parameters', got {tagged}"
    return tagged[0]


def test_committed_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{NOTEBOOK} has outputs: run python tools/strip_notebook.py {NOTEBOOK}"
            )
    assert strip_notebook.main(["--check", str(NOTEBOOK)]) == 0


def test_strip_notebook_removes_outputs_and_keeps_sources(tmp_path: Path) -> None:
    path = tmp_path / "run.ipynb"
    cell = nbformat.v4.new_code_cell("1 + 1", metadata={"tags": ["parameters"]})
    cell.execution_count = 3
    cell.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)
    ]
    cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    assert strip_notebook.main(["--check", str(path)]) == 1
    assert strip_notebook.main([str(path)]) == 0
    (stripped,) = nbformat.read(path, as_version=4).cells
    assert stripped.outputs == [] and stripped.execution_count is None
    assert stripped.source == "1 + 1" and stripped.metadata == {"tags": ["parameters"]}
    assert strip_notebook.main(["--check", str(path)]) == 0


def test_default_parameters_point_at_the_demo_results() -> None:
    from rnaseq_saliency.tissues import all_labels

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    values: dict[str, object] = {}
    exec(notebook.cells[parameters_cell(notebook)].source, values)  # plain assignments only
    # Jupyter runs a notebook in its own folder: from notebooks/, the repository's results/.
    assert (NOTEBOOK.parent / str(values["results_dir"])).resolve() == REPO / "results"
    assert {values["tissue"], values["tissue_b"]} <= set(all_labels())
    assert isinstance(values["top_n"], int) and values["top_n"] >= 1
    assert isinstance(values["sample_index"], int) and isinstance(values["gene"], str)


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workflow = load_module("workflow_helpers", REPO / "tests" / "test_workflow.py")
    workdir = tmp_path_factory.mktemp("notebook_run")
    (workdir / "config.yaml").write_text(yaml.safe_dump(workflow.SMALL_CONFIG))
    workflow.snakemake(workdir, *TARGETS)
    return workdir / "results"


@pytest.mark.workflow
def test_notebook_runs_end_to_end_on_the_demo_results(demo_results: Path) -> None:
    from nbclient import NotebookClient

    top = pd.read_csv(demo_results / "saliency/top_genes.tsv", sep="\t")
    # A pancreas gene of this run, in lower case: the lookup is by symbol, case-insensitive.
    gene = top.loc[top["tissue"] == "pancreas", "gene_name"].iloc[2].lower()
    parameters = {
        "results_dir": str(demo_results),
        "tissue": "pancreas",
        "gene": gene,
        "tissue_b": "liver",
        "sample_index": -1,
        "top_n": 5,
    }
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    injected = nbformat.v4.new_code_cell(
        "\n".join(f"{name} = {value!r}" for name, value in parameters.items()),
        metadata={"tags": ["injected-parameters"]},
    )
    notebook.cells.insert(parameters_cell(notebook) + 1, injected)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        # The kernel's working directory, as in Jupyter: the notebook's folder.
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    kinds = [sorted(o.get("data", {})) or o["output_type"] for o in outputs]
    assert len(images) == N_FIGURES, f"expected {N_FIGURES} figures among the outputs {kinds}"
    printed = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert " test samples of " in printed
    assert "pancreas and liver share" in printed
    samples_line = next(line for line in printed.splitlines() if "against the mean of" in line)
    assert "pancreas sample(s)" in samples_line
