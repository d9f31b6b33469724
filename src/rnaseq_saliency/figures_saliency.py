"""Saliency figures: one tissue's top genes across all tissues, and an overview of every tissue.

Both read a ranked top-genes table (in the workflow ``top_genes_per_tissue.tsv``, each tissue's
``saliency.top_n`` rows; the full ``top_genes.tsv`` works too) and the genes x tissues mean
matrix. Cells are drawn with ``imshow``, so cell (row i, column j) is centred on (j, i) and the
outline of a column is a Rectangle from x = j - 0.5 spanning every row; the functions return it
so that tests can check it sits on the right column.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rnaseq_saliency.plotting import pyplot, save_png

OUTLINE_COLOUR = "blue"
# Each tissue's top genes shown in the overview (capped by saliency.top_n): 3 x 54 tissues is
# about 160 rows, which still reads at 6 pt; more would need a figure nobody can scan.
OVERVIEW_GENES_PER_TISSUE = 3
_DPI = 150
_MISSING_COLOUR = "#d9d9d9"


@dataclass
class HeatmapFigure:
    """What was drawn: the figure and axes, the labels, and the tissue column's outline."""

    figure: Any  # matplotlib.figure.Figure (closed in pyplot; can still be shown or saved)
    ax: Any  # matplotlib.axes.Axes of the heatmap
    rows: list[str]  # gene symbols, top to bottom
    gene_ids: list[str]
    columns: list[str]  # tissues, left to right
    outlines: list[Any]  # matplotlib.patches.Rectangle: the own tissue's cells
    # With replicate models: "k/N" beside each row, k of the N replicates rank it in their top n.
    replicate_counts: list[str] = field(default_factory=list)


def _method_of(top_genes: pd.DataFrame) -> str:
    """The attribution method named by a top-genes table (``top_genes.tsv`` has a column)."""
    if "method" not in top_genes.columns:
        return "method not recorded"
    return ", ".join(sorted(set(top_genes["method"].dropna().astype(str)))) or "no maps"


def _label(gene_id: str, gene_name: str) -> str:
    return gene_name if isinstance(gene_name, str) and gene_name else gene_id


def _n_replicates(top_genes: pd.DataFrame) -> int:
    """How many replicate models a consensus top-genes table combines (0: one model's table)."""
    from rnaseq_saliency.saliency import replicate_rank_columns

    return len(replicate_rank_columns(top_genes))


def _what_is_ranked(top_genes: pd.DataFrame) -> str:
    n = _n_replicates(top_genes)
    return f"consensus mean saliency of {n} replicate models" if n else "mean saliency"


def _colour_label(top_genes: pd.DataFrame) -> str:
    what = "consensus mean saliency" if _n_replicates(top_genes) else "mean saliency"
    return f"{what} (per-sample min-max scaled)"


def replicate_counts(chosen: pd.DataFrame) -> list[str]:
    """``k/N`` per row of a tissue's top genes: k of the N replicates rank the gene in their
    own top n (the ``replicates_in_top_n`` column); [] for one model's table."""
    from rnaseq_saliency.saliency import IN_TOP_N_COLUMN

    n = _n_replicates(chosen)
    if not n or IN_TOP_N_COLUMN not in chosen.columns:
        return []
    return [f"{int(k)}/{n}" for k in chosen[IN_TOP_N_COLUMN]]


def tissue_top_genes(top_genes: pd.DataFrame, tissue: str, top_n: int) -> pd.DataFrame:
    """The ``top_n`` best-ranked rows of ``tissue`` in ``top_genes``, by rank."""
    if top_n < 1:
        raise ValueError(f"config key saliency.top_n: expected >= 1, got {top_n}")
    rows = top_genes.loc[top_genes["tissue"] == tissue].sort_values("rank", kind="stable")
    return rows.head(top_n)


def save_figure(figure: Any, out_png: str | os.PathLike[str]) -> None:
    """Save a saliency figure: tight bounding box, no "Software" (matplotlib version) entry,
    so that the same data gives the same bytes."""
    save_png(figure, out_png, dpi=_DPI, bbox_inches="tight", metadata={"Software": None})


def _draw_matrix(ax: Any, values: np.ndarray, plt: Any) -> Any:
    cmap = plt.get_cmap("viridis").with_extremes(bad=_MISSING_COLOUR)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high <= low:
        high = low + 1e-6
    return ax.imshow(
        np.ma.masked_invalid(values),
        aspect="auto",
        cmap=cmap,
        vmin=low,
        vmax=high,
        interpolation="nearest",
    )


def _placeholder(
    tissue: str, out_png: str | os.PathLike[str] | None, message: str
) -> HeatmapFigure:
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(6, 2))
    ax.set_axis_off()
    ax.set_title(f"Saliency: {tissue}")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    if out_png is not None:
        save_figure(figure, out_png)
    plt.close(figure)
    return HeatmapFigure(figure, ax, [], [], [], [])


def plot_tissue_heatmap(
    mean_matrix: pd.DataFrame,
    top_genes: pd.DataFrame,
    tissue: str,
    top_n: int,
    out_png: str | os.PathLike[str] | None = None,
) -> HeatmapFigure:
    """Heatmap of ``tissue``'s ``top_n`` genes (rows) by mean saliency across all tissues.

    Columns are every tissue of ``mean_matrix`` in its order, with ``tissue``'s own column
    outlined in blue; rows are labelled with gene symbols (the id where a gene has none), most
    salient first. Colours span the shown values (mean of per-sample [0, 1] maps); tissues
    without maps are grey. A tissue without maps gets a figure that says so.

    Written to ``out_png`` unless it is None (the notebook's use, ``rnaseq_saliency.explore``).
    The figure is closed either way (out of pyplot's registry), but can still be shown or saved.
    """
    plt = pyplot()
    from matplotlib.patches import Rectangle

    columns = [str(c) for c in mean_matrix.columns]
    if tissue not in columns:
        raise ValueError(f"{tissue!r} is not a column of the mean saliency matrix")
    chosen = tissue_top_genes(top_genes, tissue, top_n)
    if chosen.empty:
        return _placeholder(
            tissue, out_png, "No saliency maps: no correctly classified held-out samples."
        )
    gene_ids = chosen["gene_id"].tolist()
    missing = [g for g in gene_ids if g not in mean_matrix.index]
    if missing:
        raise ValueError(f"gene(s) {missing[:3]} of the top genes are not in the mean matrix")
    rows = [_label(g, n) for g, n in zip(gene_ids, chosen["gene_name"], strict=True)]
    counts = replicate_counts(chosen)
    values = mean_matrix.loc[gene_ids, columns].to_numpy(dtype=np.float64)
    width = min(4.0 + 0.22 * len(columns), 30.0)
    height = 2.5 + 0.28 * len(rows)
    figure, ax = plt.subplots(figsize=(width, height))
    image = _draw_matrix(ax, values, plt)
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    labels = (
        [f"{row}  {count}" for row, count in zip(rows, counts, strict=True)] if counts else rows
    )
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    own = columns.index(tissue)
    outline = Rectangle(
        (own - 0.5, -0.5),
        1.0,
        len(rows),
        fill=False,
        edgecolor=OUTLINE_COLOUR,
        linewidth=2.5,
        clip_on=False,
    )
    ax.add_patch(outline)
    ax.get_xticklabels()[own].set_color(OUTLINE_COLOUR)
    ax.get_xticklabels()[own].set_fontweight("bold")
    ax.set_xlabel("tissue (mean saliency of its correctly classified held-out samples)")
    ax.set_ylabel(
        f"gene (k/N: k of the N replicates rank it in their own top {top_n})" if counts else "gene"
    )
    ax.set_title(
        f"{tissue}: top {len(rows)} genes by {_what_is_ranked(chosen)} ({_method_of(chosen)}), "
        "across all tissues"
    )
    colourbar = figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    colourbar.set_label(_colour_label(chosen))
    if out_png is not None:
        save_figure(figure, out_png)
    plt.close(figure)
    return HeatmapFigure(figure, ax, rows, gene_ids, columns, [outline], counts)


def overview_genes(
    top_genes: pd.DataFrame, tissues: list[str], per_tissue: int
) -> list[tuple[str, str, str]]:
    """(tissue, gene_id, gene label) of each tissue's top ``per_tissue`` genes, first come first.

    A gene already shown for an earlier tissue is not repeated; the later tissue then shows
    fewer rows of its own.
    """
    seen: set[str] = set()
    chosen: list[tuple[str, str, str]] = []
    for tissue in tissues:
        rows = tissue_top_genes(top_genes, tissue, per_tissue)
        for gene_id, name in zip(rows["gene_id"], rows["gene_name"], strict=True):
            if gene_id not in seen:
                seen.add(gene_id)
                chosen.append((tissue, gene_id, _label(gene_id, name)))
    return chosen


def plot_overview(
    mean_matrix: pd.DataFrame,
    top_genes: pd.DataFrame,
    top_n: int,
    out_png: str | os.PathLike[str],
    per_tissue: int = OVERVIEW_GENES_PER_TISSUE,
) -> HeatmapFigure:
    """One heatmap of every tissue's top ``min(top_n, per_tissue)`` genes across all tissues.

    Rows are grouped by the tissue whose top gene they are (tissues in ``mean_matrix`` order),
    each group's own tissue cells outlined in blue, so that tissue-specific saliency shows as
    a blue-framed diagonal of bright cells. Each row is labelled ``GENE (tissue)``.
    """
    plt = pyplot()
    from matplotlib.patches import Rectangle

    columns = [str(c) for c in mean_matrix.columns]
    chosen = overview_genes(top_genes, columns, min(top_n, per_tissue))
    if not chosen:
        return _placeholder("all tissues", out_png, "No saliency maps for any tissue.")
    gene_ids = [gene for _, gene, _ in chosen]
    rows = [f"{label} ({tissue})" for tissue, _, label in chosen]
    values = mean_matrix.loc[gene_ids, columns].to_numpy(dtype=np.float64)
    width = min(5.0 + 0.2 * len(columns), 30.0)
    height = 3.0 + 0.13 * len(rows)
    figure, ax = plt.subplots(figsize=(width, height))
    image = _draw_matrix(ax, values, plt)
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=6)
    ax.set_yticks(range(len(rows)), rows, fontsize=5 if len(rows) > 60 else 7)
    outlines = []
    start = 0
    for index in range(1, len(chosen) + 1):
        if index == len(chosen) or chosen[index][0] != chosen[start][0]:
            own = columns.index(chosen[start][0])
            outline = Rectangle(
                (own - 0.5, start - 0.5),
                1.0,
                index - start,
                fill=False,
                edgecolor=OUTLINE_COLOUR,
                linewidth=1.2,
            )
            ax.add_patch(outline)
            outlines.append(outline)
            start = index
    ax.set_xlabel("tissue")
    ax.set_ylabel("gene (tissue whose top gene it is)")
    ax.set_title(
        f"Top {min(top_n, per_tissue)} genes by {_what_is_ranked(top_genes)} "
        f"({_method_of(top_genes)}) of each tissue, across all tissues"
    )
    colourbar = figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    colourbar.set_label(_colour_label(top_genes))
    save_figure(figure, out_png)
    plt.close(figure)
    return HeatmapFigure(figure, ax, rows, gene_ids, columns, outlines)


def run_tissue_heatmap(
    top_genes_path: str | os.PathLike[str],
    mean_matrix_path: str | os.PathLike[str],
    tissue: str,
    top_n: int,
    out_png: str | os.PathLike[str],
) -> HeatmapFigure:
    """The ``saliency_heatmap`` rule."""
    from rnaseq_saliency.saliency import read_mean_matrix, read_top_genes

    return plot_tissue_heatmap(
        read_mean_matrix(mean_matrix_path), read_top_genes(top_genes_path), tissue, top_n, out_png
    )


def run_overview(
    top_genes_path: str | os.PathLike[str],
    mean_matrix_path: str | os.PathLike[str],
    top_n: int,
    out_png: str | os.PathLike[str],
) -> HeatmapFigure:
    """The ``saliency_overview`` rule."""
    from rnaseq_saliency.saliency import read_mean_matrix, read_top_genes

    return plot_overview(
        read_mean_matrix(mean_matrix_path), read_top_genes(top_genes_path), top_n, out_png
    )
