"""Saliency across replicate models: each replicate's maps, their consensus, and how stable a
tissue's ranking is when the same network is retrained with another seed.

With ``train.replicates: N > 1`` the workflow holds N models trained on the same split and rows,
replicate ``r`` with seed ``train.seed + r`` (replicate 0 is ``results/model/``, replicates 1..
``results/model/replicates/{r}/``). The attribution method is chosen **once**, on replicate 0's
validation evidence (rule ``choose_method``, ``results/saliency/chosen_method.json``); rule
``replicate_saliency`` then computes only that method's maps for each replicate r >= 1 over the
same samples as replicate 0's maps (the tissue's correctly classified held-out samples of
``predictions.tsv``, selected by ``saliency.correct_samples``), in the maps format of
``rnaseq_saliency.saliency``, at ``replicate_maps_path(r, tissue)``.

**Consensus** (``consensus_saliency``): the mean of the normalised attributions. Every per-sample
map is min-max scaled to [0, 1] (the saliency definition), so each replicate contributes on the
same scale whatever its gradients' size; the consensus map of a tissue is the mean over all
replicates' maps of the same samples, i.e. the mean over replicates of each replicate's mean map,
and the consensus ranking orders genes by it. We prefer it to the mean rank because it keeps the
gaps: a gene far ahead in every replicate stays far ahead, while ranks spread the thousands of
near-tied genes of the tail as evenly as the few genes that matter; and the heatmaps' colours,
the table's ``mean`` and the ranking are then one number, as with one model.

**Retraining stability** (``retraining_stability``): over all pairs of replicates, the mean
Jaccard index of their top ``saliency.top_n`` genes (the list the report shows) and the mean
Spearman correlation of their full rankings of every gene. This is retraining noise (another
seed of initialisation, dropout and batch order on the same data), unlike the split-half
``stability_overlap`` of ``saliency_validation``, which is sampling noise within one model.

``results/saliency/replicate_stability.tsv`` (``write_stability``): one row per tissue, then a
row ``all_tissues_median``, with the columns of ``STABILITY_COLUMNS``.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.saliency import (
    TissueSaliency,
    assemble_top_genes,
    make_tissue_saliency,
    rank_column,
    rank_genes,
    ranked_block,
    read_checked_maps,
    read_top_genes,
    replicate_rank_columns,
)
from rnaseq_saliency.settings import DEFAULT_SALIENCY, SaliencySettings

log = logging.getLogger(__name__)

REPLICATES_DIR = "results/saliency/replicates"
STABILITY_COLUMNS = ["tissue", "n_replicates", "top_n", "jaccard_top_n", "spearman"]
SUMMARY_ROW = "all_tissues_median"


def replicate_maps_path(replicate: int, tissue: str, root: str = REPLICATES_DIR) -> str:
    """Where rule ``replicate_saliency`` writes replicate ``replicate``'s maps of ``tissue``."""
    return f"{root}/{replicate}/{tissue}.parquet"


def files_by_replicate(
    paths: Sequence[str | os.PathLike[str]], tissues: Sequence[str]
) -> list[list[str]]:
    """The replicate maps files (laid out as ``replicate_maps_path``), one list per replicate in
    increasing replicate order, each in ``tissues`` order; every tissue must be there."""
    found: dict[int, dict[str, str]] = {}
    for path in map(str, paths):
        replicate, name = os.path.basename(os.path.dirname(path)), os.path.basename(path)
        if not replicate.isdigit() or not name.endswith(".parquet"):
            raise ValueError(f"{path}: not a replicate maps file ({REPLICATES_DIR}/{{r}}/...)")
        found.setdefault(int(replicate), {})[name.removesuffix(".parquet")] = path
    grouped = []
    for replicate in sorted(found):
        missing = [t for t in tissues if t not in found[replicate]]
        if missing:
            raise ValueError(f"replicate {replicate}: no maps of tissue(s) {missing}")
        grouped.append([found[replicate][t] for t in tissues])
    return grouped


# --------------------------------------------------------------------------------------------
# Consensus and stability: pure functions
# --------------------------------------------------------------------------------------------


def consensus_saliency(results: Sequence[TissueSaliency]) -> TissueSaliency:
    """The replicates' consensus of one tissue: per sample, the mean of the replicates' maps.

    Every replicate must hold the maps of the same tissue, genes and samples (in one order).
    The consensus map of a sample is the mean of its replicate maps (each in [0, 1]); the
    tissue's ``mean`` is then the mean over replicates of their mean maps, and ``median`` and
    ``sd`` are over samples, as for one model. One replicate's consensus is that replicate.
    """
    if not results:
        raise ValueError("no replicate maps to combine")
    first = results[0]
    for index, other in enumerate(results[1:], start=1):
        for what in ("tissue", "gene_ids", "sample_ids"):
            if getattr(other, what) != getattr(first, what):
                raise ValueError(
                    f"{first.tissue}: replicate {index}'s maps differ from replicate 0's in "
                    f"their {what} (stale maps? rerun the workflow)"
                )
    # In float64, so that the mean of identical float32 maps is those maps, bit for bit.
    maps = np.mean([result.maps.astype(np.float64) for result in results], axis=0)
    info = {**first.info, "replicates": len(results)}
    return make_tissue_saliency(first.tissue, first.gene_ids, first.sample_ids, maps, info)


def gene_ranks(scores: np.ndarray) -> np.ndarray:
    """Each gene's rank (1 = highest score) in the order of ``saliency.rank_genes``."""
    order = rank_genes(np.asarray(scores))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks


def jaccard(a: set[int], b: set[int]) -> float:
    """|a & b| / |a | b|; 1 for two empty sets."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def retraining_stability(ranks: np.ndarray, top_n: int) -> tuple[float, float]:
    """Mean pairwise Jaccard of the top ``top_n`` and mean pairwise Spearman of full rankings.

    ``ranks`` is (n_replicates, n_genes): each replicate's rank of every gene (1 = top). Over
    all pairs of replicates: the Jaccard index of the genes each ranks ``top_n`` or better, and
    Spearman's rho of the two rank vectors. NaN for both with fewer than two replicates.
    """
    from scipy.stats import spearmanr

    if top_n < 1:
        raise ValueError(f"config key saliency.top_n: expected >= 1, got {top_n}")
    ranks = np.asarray(ranks)
    if ranks.ndim != 2:
        raise ValueError(f"expected (n_replicates, n_genes) ranks, got shape {ranks.shape}")
    pairs = list(itertools.combinations(range(ranks.shape[0]), 2))
    if not pairs:
        return float("nan"), float("nan")
    tops = [set(np.flatnonzero(row <= top_n).tolist()) for row in ranks]
    overlaps = [jaccard(tops[i], tops[j]) for i, j in pairs]
    if ranks.shape[1] < 2:
        return float(np.mean(overlaps)), float("nan")
    rhos = [float(spearmanr(ranks[i], ranks[j]).statistic) for i, j in pairs]
    return float(np.mean(overlaps)), float(np.mean(rhos))


# --------------------------------------------------------------------------------------------
# The consensus top-genes table (rule top_genes with replicates)
# --------------------------------------------------------------------------------------------


def consensus_top_genes(
    files_by_replicate: Sequence[Sequence[str | os.PathLike[str]]],
    tissues: Sequence[str],
    gene_ids: Sequence[str],
    gene_names: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``saliency.top_genes_table`` of the replicates' consensus, with each replicate's rank.

    ``files_by_replicate[r]`` are replicate r's maps files in ``tissues`` order (replicate 0:
    rule saliency's maps of the chosen method). The table's ``rank``, ``mean`` and ``sd`` are
    the consensus's; ``rank_replicate_{r}`` is replicate r's own rank of the gene; the matrix
    holds the consensus means.
    """
    for files in files_by_replicate:
        if len(files) != len(tissues):
            raise ValueError(f"{len(files)} saliency files for {len(tissues)} tissues")
    ids = np.asarray(list(gene_ids), dtype=object)
    names = np.asarray(list(gene_names), dtype=object)
    index = {gene: i for i, gene in enumerate(gene_ids)}
    means: dict[str, np.ndarray] = {}
    blocks: list[pd.DataFrame] = []
    for position, tissue in enumerate(tissues):
        results = [read_checked_maps(f[position], tissue, gene_ids) for f in files_by_replicate]
        combined = consensus_saliency(results)
        means[tissue] = combined.mean
        if combined.n_samples == 0:
            log.warning("%s: no saliency maps (no correctly classified samples)", tissue)
            continue
        block = ranked_block(combined, ids, names)
        rows = block["gene_id"].map(index).to_numpy()
        for replicate, result in enumerate(results):
            block[rank_column(replicate)] = gene_ranks(result.mean)[rows]
        blocks.append(block)
    log.info("consensus of %d replicates' maps", len(files_by_replicate))
    return assemble_top_genes(blocks, means, gene_ids)


# --------------------------------------------------------------------------------------------
# Retraining stability per tissue (rule replicate_stability)
# --------------------------------------------------------------------------------------------


def stability_table(top_genes: pd.DataFrame, tissues: Sequence[str], top_n: int) -> pd.DataFrame:
    """One row per tissue (``tissues`` order; NaN for one without maps) of
    ``retraining_stability`` over the ``rank_replicate_*`` columns of a consensus top-genes
    table, then the ``all_tissues_median`` row."""
    columns = replicate_rank_columns(top_genes)
    if len(columns) < 2:
        raise ValueError(
            "the top-genes table has no per-replicate ranks (rank_replicate_0, ...): retraining "
            "stability needs train.replicates > 1"
        )
    rows: list[dict[str, Any]] = []
    for tissue in tissues:
        block = top_genes.loc[top_genes["tissue"] == tissue, columns]
        jaccard_top, rho = retraining_stability(block.to_numpy().T, top_n)
        rows.append(
            {"tissue": tissue, "jaccard_top_n": jaccard_top, "spearman": rho}
            if len(block)
            else {"tissue": tissue, "jaccard_top_n": np.nan, "spearman": np.nan}
        )
    table = pd.DataFrame(rows)
    summary = {"tissue": SUMMARY_ROW, **table[["jaccard_top_n", "spearman"]].median().to_dict()}
    table = pd.concat([table, pd.DataFrame([summary])], ignore_index=True)
    table["n_replicates"] = len(columns)
    table["top_n"] = top_n
    return table[STABILITY_COLUMNS]


def write_stability(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table[STABILITY_COLUMNS].to_csv(tmp, sep="\t", index=False, float_format="%.4f")


def read_stability(path: str | os.PathLike[str]) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype={"tissue": str})
    missing = [c for c in STABILITY_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {STABILITY_COLUMNS}")
    return table


def plot_stability(table: pd.DataFrame, out_png: str | os.PathLike[str]) -> Any:
    """Per tissue (rows, most stable first), the two stability measures as dots, each panel with
    its all-tissue median as a dashed line."""
    from rnaseq_saliency.figures_saliency import save_figure
    from rnaseq_saliency.plotting import pyplot

    plt = pyplot()
    tissues = table.loc[table["tissue"] != SUMMARY_ROW].sort_values(
        ["jaccard_top_n", "spearman"], ascending=False, na_position="last", kind="stable"
    )
    median = table.loc[table["tissue"] == SUMMARY_ROW].iloc[0]
    n_replicates, top_n = int(table["n_replicates"].iloc[0]), int(table["top_n"].iloc[0])
    figure, axes = plt.subplots(
        1, 2, figsize=(9, 1.5 + 0.22 * len(tissues)), sharey=True, squeeze=True
    )
    positions = np.arange(len(tissues))
    for ax, column, label in (
        (axes[0], "jaccard_top_n", f"mean pairwise Jaccard of the top {top_n}"),
        (axes[1], "spearman", "mean pairwise Spearman of the full rankings"),
    ):
        ax.scatter(tissues[column], positions, color="tab:blue", zorder=2)
        if np.isfinite(median[column]):
            ax.axvline(median[column], color="grey", linestyle="--", zorder=1)
        ax.set_xlim(min(0.0, float(np.nanmin([0.0, *tissues[column]]))), 1.02)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, tissues["tissue"], fontsize=7)
    axes[0].invert_yaxis()
    figure.suptitle(
        f"Retraining stability of each tissue's saliency ranking across {n_replicates} "
        "replicate models (dashed: median over tissues)"
    )
    figure.tight_layout()
    save_figure(figure, out_png)
    plt.close(figure)
    return figure


def run_replicate_stability(
    top_genes_path: str | os.PathLike[str],
    tissues: Sequence[str],
    top_n: int,
    table_path: str | os.PathLike[str],
    figure_path: str | os.PathLike[str],
) -> pd.DataFrame:
    """The ``replicate_stability`` rule: the table and the figure from the consensus top genes."""
    table = stability_table(read_top_genes(top_genes_path), tissues, top_n)
    write_stability(table_path, table)
    plot_stability(table, figure_path)
    median = table.iloc[-1]
    log.info(
        "retraining stability over %d replicates: median Jaccard of the top %d %.3f, "
        "median Spearman %.3f",
        int(median["n_replicates"]),
        top_n,
        median["jaccard_top_n"],
        median["spearman"],
    )
    return table


# --------------------------------------------------------------------------------------------
# One replicate's maps (rule replicate_saliency)
# --------------------------------------------------------------------------------------------


def run_replicate_saliency(
    model_dir: str | os.PathLike[str],
    predictions_path: str | os.PathLike[str],
    expression_path: str | os.PathLike[str],
    chosen_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    tissue: str,
    replicate: int,
    settings: SaliencySettings = DEFAULT_SALIENCY,
    threads: int | None = None,
) -> TissueSaliency:
    """The ``replicate_saliency`` rule: replicate ``replicate``'s maps of ``tissue`` by the
    chosen method only, over the samples rule ``saliency`` explains (same selection, same
    options and seed), written in the maps format."""
    import torch

    from rnaseq_saliency.evaluate import read_predictions
    from rnaseq_saliency.expression import read_expression
    from rnaseq_saliency.faithfulness import read_chosen_method
    from rnaseq_saliency.model import load_model
    from rnaseq_saliency.saliency import tissue_saliency, write_tissue_saliency

    if threads:
        torch.set_num_threads(int(threads))
    method = read_chosen_method(chosen_path)
    result = tissue_saliency(
        load_model(model_dir),
        read_expression(expression_path),
        read_predictions(predictions_path),
        tissue,
        method=method,
        abs=settings.abs,
        batch_size=settings.batch_size,
        seed=settings.seed,
        **settings.options_of(method),
    )
    result.info["replicate"] = int(replicate)
    write_tissue_saliency(out_path, result)
    log.info("replicate %d: %s maps of %s", replicate, method, tissue)
    return result
