"""The two matplotlib steps every figure shares: choosing a backend and saving a PNG."""

from __future__ import annotations

import os
import sys
from typing import Any

from rnaseq_saliency.fileio import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot``, on the headless Agg backend unless pyplot is already loaded.

    Rule jobs have no display, so Agg is chosen before pyplot loads. Where pyplot is already
    loaded (a notebook's inline backend), switching it would stop the notebook's figures showing.
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure: Any, out_png: str | os.PathLike[str], **savefig_options: Any) -> None:
    """Save ``figure`` as a PNG at ``out_png`` atomically (never a half-written file)."""
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, format="png", **savefig_options)
