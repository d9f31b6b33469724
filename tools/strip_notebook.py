"""Strip a notebook's outputs before committing it, or check that it is stripped.

    python tools/strip_notebook.py notebooks/Saliency.ipynb          # strip in place
    python tools/strip_notebook.py --check notebooks/Saliency.ipynb  # exit 1 if not stripped

Notebooks are stored without outputs: results belong to a run, not to the repository, and
outputs (images above all) make every diff unreadable. Removed: each code cell's outputs and
execution count, and the per-cell ``execution`` timing metadata that JupyterLab can record.
Cell sources, tags (``parameters``) and the notebook's kernel metadata are kept.
``tests/test_notebook.py`` runs the check, so an unstripped notebook fails the test suite.
Needs the package and ``nbformat`` (in the ``test`` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from rnaseq_saliency.fileio import atomic_path

VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled")


def strip(notebook: nbformat.NotebookNode) -> bool:
    """Remove outputs, execution counts and volatile cell metadata; True if anything changed."""
    changed = False
    for cell in notebook.cells:
        for key in VOLATILE_CELL_METADATA:
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
        if cell.cell_type != "code":
            continue
        if cell.outputs or cell.execution_count is not None:
            cell.outputs = []
            cell.execution_count = None
            changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="report, do not rewrite")
    args = parser.parse_args(argv)
    unstripped = []
    for path in args.notebooks:
        notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        if not strip(notebook):
            continue
        unstripped.append(path)
        if not args.check:
            nbformat.validate(notebook)
            with atomic_path(path) as tmp:
                nbformat.write(notebook, tmp)
            print(f"stripped {path}")
    if args.check and unstripped:
        for path in unstripped:
            print(f"{path}: has outputs; run python tools/strip_notebook.py {path}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
