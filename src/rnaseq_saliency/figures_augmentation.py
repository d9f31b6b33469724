"""The augmentation figure: where synthetic samples fall relative to the real training samples.

A PCA of log1p expression is fitted on the real training samples only, so the axes describe real
biology; synthetic samples are then projected onto those axes. Left: the real training samples
(before augmentation); right: the same plus the synthetic ones (after), on shared axes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rnaseq_saliency.expression import ExpressionTable, read_expression

if TYPE_CHECKING:
    from matplotlib.lines import Line2D
    from sklearn.decomposition import PCA

log = logging.getLogger(__name__)


def synthetic_mask(table: ExpressionTable) -> np.ndarray:
    """Which rows are synthetic; a file without the column holds real rows only."""
    flags = table.extra.get("synthetic")
    if flags is None:
        return np.zeros(len(table.sample_ids), dtype=bool)
    return np.asarray(flags, dtype=bool)


def fit_real_pca(tables: Sequence[ExpressionTable], n_components: int = 2) -> PCA:
    """PCA of log1p expression fitted on the real (non-synthetic) rows of ``tables`` only."""
    from sklearn.decomposition import PCA

    real = [np.log1p(t.matrix[~synthetic_mask(t)].astype(np.float64)) for t in tables]
    matrix = np.concatenate(real) if real else np.zeros((0, 0))
    if matrix.shape[0] < n_components or matrix.shape[1] < n_components:
        raise ValueError(
            f"PCA with {n_components} components needs at least {n_components} real samples "
            f"and genes; got {matrix.shape[0]} samples x {matrix.shape[1]} genes"
        )
    # A fixed random_state: the randomized solver is chosen for large inputs.
    return PCA(n_components=n_components, random_state=0).fit(matrix)


def _read_tables(
    augmented_files: Sequence[str | os.PathLike[str]], tissues: Sequence[str]
) -> list[ExpressionTable]:
    """Read the augmented files, one per tissue; they must share their genes."""
    if len(augmented_files) != len(tissues):
        raise ValueError(
            f"{len(augmented_files)} augmented files but {len(tissues)} tissues: {list(tissues)}"
        )
    tables = [read_expression(path) for path in augmented_files]
    gene_sets = {tuple(t.gene_ids) for t in tables}
    if len(gene_sets) > 1:
        raise ValueError(f"augmented files {list(augmented_files)} have different genes")
    for tissue, table in zip(tissues, tables, strict=True):
        if not table.sample_ids:
            log.warning("%s: no training samples (dropped by the split); not plotted", tissue)
    return tables


def _real_pca_or_none(tables: Sequence[ExpressionTable]) -> PCA | None:
    """The real-sample PCA, or None (with a warning) when there are too few real samples."""
    try:
        return fit_real_pca(tables)
    except ValueError as error:
        log.warning("no PCA drawn: %s", error)
        return None


def _scatter_tissues(
    axes: Any,  # the two matplotlib Axes, before and after
    tissues: Sequence[str],
    tables: Sequence[ExpressionTable],
    pca: PCA | None,
    colours: Any,  # a matplotlib Colormap
) -> list[Line2D]:
    """Scatter each tissue's real rows (left) and real plus synthetic rows (right); returns
    one legend handle per tissue."""
    from matplotlib.lines import Line2D

    handles = []
    for index, (tissue, table) in enumerate(zip(tissues, tables, strict=True)):
        colour = colours(index % colours.N)
        is_synthetic = synthetic_mask(table)
        n_real, n_syn = int((~is_synthetic).sum()), int(is_synthetic.sum())
        label = f"{tissue} ({n_real} real, {n_syn} synthetic)" if n_real else f"{tissue} (dropped)"
        handles.append(Line2D([], [], marker="o", linestyle="", color=colour, label=label))
        if pca is None or not n_real:
            continue
        points = pca.transform(np.log1p(table.matrix.astype(np.float64)))
        real, synthetic = points[~is_synthetic], points[is_synthetic]
        axes[0].scatter(real[:, 0], real[:, 1], s=16, color=colour, alpha=0.8, linewidths=0)
        # Synthetic points underneath, so that the real ones stay visible where they overlap.
        axes[1].scatter(
            synthetic[:, 0], synthetic[:, 1], s=14, marker="x", color=colour, alpha=0.35, zorder=1
        )
        axes[1].scatter(
            real[:, 0], real[:, 1], s=16, color=colour, alpha=0.9, linewidths=0, zorder=2
        )
    return handles


def _label_axes(
    axes: Any, pca: PCA | None, method: str, n_real_total: int, n_syn_total: int
) -> None:
    """Titles, and axis labels with each component's share of the real-sample variance."""
    axes[0].set_title(f"Before: real training samples (n = {n_real_total})")
    axes[1].set_title(f"After {method} augmentation: {n_real_total} real + {n_syn_total} synthetic")
    if pca is not None:
        ratio = pca.explained_variance_ratio_ * 100
        for ax in axes:
            ax.set_xlabel(f"PC1 ({ratio[0]:.1f}% of real-sample variance)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(f"PC2 ({ratio[1]:.1f}% of real-sample variance)")
    else:
        for ax in axes:
            ax.text(0.5, 0.5, "too few real samples for a PCA", ha="center", transform=ax.transAxes)


def plot_pca_augmentation(
    augmented_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    method: str,
    out_png: str | os.PathLike[str],
) -> None:
    """Draw real training samples before and after augmentation on real-sample PCA axes.

    Args:
        augmented_files: ``results/augmented/<tissue>.parquet`` files (real and synthetic rows).
        tissues: their tissue labels, in the same order (legend labels and colours).
        method: the augmentation method, for the title.
        out_png: where the PNG goes (written atomically).
    """
    from matplotlib.lines import Line2D

    from rnaseq_saliency.plotting import pyplot, save_png

    plt = pyplot()

    tables = _read_tables(augmented_files, tissues)
    fig, axes = plt.subplots(1, 2, figsize=(13, 6), sharex=True, sharey=True)
    colours = plt.get_cmap("tab10")
    n_real_total = sum(int((~synthetic_mask(t)).sum()) for t in tables)
    n_syn_total = sum(int(synthetic_mask(t).sum()) for t in tables)
    pca = _real_pca_or_none(tables)
    handles = _scatter_tissues(axes, tissues, tables, pca, colours)
    _label_axes(axes, pca, method, n_real_total, n_syn_total)
    handles += [
        Line2D([], [], marker="o", linestyle="", color="0.3", label="real training sample"),
        Line2D([], [], marker="x", linestyle="", color="0.3", label="synthetic sample"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3), frameon=False)
    fig.suptitle(
        "PCA of log1p expression, fitted on real training samples only "
        "(validation and test samples are never augmented)"
    )
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    save_png(fig, out_png, dpi=120)
    plt.close(fig)
