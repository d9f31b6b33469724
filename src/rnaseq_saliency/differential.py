"""A model-free reference ranking: one-vs-rest differential expression on the training split.

Rule ``de_statistic`` writes ``results/saliency/de_statistic.parquet``: per gene and tissue the
Welch t statistic of log1p expression, the tissue's *training* samples against every other
tissue's training samples (augmented rows and held-out samples never enter). It is what a
biologist would rank genes by without a model, and two checks read it: the faithfulness curves
(``faithfulness``, the margin drop when a tissue's top-k DE genes are deleted) and
``saliency_validation`` (the overlap of the salient genes with the top DE genes).

Layout: a table indexed by ``gene_id`` (model input order), one float64 column per tissue
(NaN for a tissue with fewer than two training samples).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rnaseq_saliency.datasets import read_samples, tissue_of
from rnaseq_saliency.expression import read_expression
from rnaseq_saliency.fileio import read_gene_matrix, write_gene_matrix
from rnaseq_saliency.genes import read_selected_genes

log = logging.getLogger(__name__)


@dataclass
class GroupMoments:
    """Per-group count, sum and sum of squares per gene (float64), accumulated in blocks."""

    n_genes: int

    def __post_init__(self) -> None:
        self.count: dict[str, int] = {}
        self.sum: dict[str, np.ndarray] = {}
        self.sumsq: dict[str, np.ndarray] = {}

    def add(self, group: str, values: np.ndarray) -> None:
        block = np.asarray(values, dtype=np.float64)
        if group not in self.count:
            self.count[group] = 0
            self.sum[group] = np.zeros(self.n_genes)
            self.sumsq[group] = np.zeros(self.n_genes)
        self.count[group] += block.shape[0]
        self.sum[group] += block.sum(axis=0)
        self.sumsq[group] += np.square(block).sum(axis=0)


def _mean_var(n: float, total: np.ndarray, squares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = total / n
    # Sum-of-squares variance is fine here: log1p values are O(10) and sums are float64.
    var = np.maximum(squares - n * np.square(mean), 0.0) / (n - 1)
    return mean, var


def one_vs_rest_t(moments: GroupMoments, group: str) -> np.ndarray:
    """Welch t statistic per gene of ``group`` vs all other groups; NaN if either has < 2 rows.

    A gene with zero variance in both groups gets t = 0 when the means are equal and +-inf
    otherwise (a perfect separator ranks first).
    """
    n_in = moments.count.get(group, 0)
    n_all = sum(moments.count.values())
    n_out = n_all - n_in
    if n_in < 2 or n_out < 2:
        return np.full(moments.n_genes, np.nan)
    total = sum(moments.sum.values())
    squares = sum(moments.sumsq.values())
    mean_in, var_in = _mean_var(n_in, moments.sum[group], moments.sumsq[group])
    mean_out, var_out = _mean_var(n_out, total - moments.sum[group], squares - moments.sumsq[group])
    diff = mean_in - mean_out
    scale = np.sqrt(var_in / n_in + var_out / n_out)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff / scale
    # Equal means with no spread: no difference. (diff != 0 with no spread stays +-inf.)
    t[(scale == 0) & (diff == 0)] = 0.0
    return t


def de_table(
    expression_files: Sequence[str | os.PathLike[str]],
    samples: pd.DataFrame,
    gene_ids: Sequence[str],
    tissues: Sequence[str],
) -> pd.DataFrame:
    """Genes x tissues one-vs-rest t statistics from the training split's real samples.

    One expression file is in memory at a time. Every other training sample is the "rest",
    whatever its tissue, so a tissue's t does not depend on which tissues are listed.
    """
    moments = GroupMoments(len(gene_ids))
    train = samples.loc[samples["split"] == "train"]
    train_ids = {t: set(ids) for t, ids in train.groupby("tissue")["sample_id"]}
    for path in expression_files:
        wanted = train_ids.get(tissue_of(path), set())
        if not wanted:
            continue
        table = read_expression(path)
        if table.gene_ids != list(gene_ids):
            raise ValueError(f"{path}: its genes differ from the selected genes")
        rows = [i for i, s in enumerate(table.sample_ids) if s in wanted]
        if rows:
            moments.add(tissue_of(path), np.log1p(table.matrix[rows].astype(np.float64)))
    columns = {tissue: one_vs_rest_t(moments, tissue) for tissue in tissues}
    return pd.DataFrame(columns, index=pd.Index(list(gene_ids), name="gene_id"))


def de_ranking_score(t_statistic: np.ndarray, abs: bool) -> np.ndarray:
    """What a DE ranking sorts by: t (higher in the tissue first) for signed maps, |t| for
    ``saliency.abs: true`` maps, matching what the map's sign can express."""
    return np.abs(t_statistic) if abs else np.asarray(t_statistic, dtype=np.float64)


def write_de_table(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    write_gene_matrix(path, table)


def read_de_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    return read_gene_matrix(path, "a DE statistic table")


def de_statistic_of(
    path: str | os.PathLike[str], tissue: str, gene_ids: Sequence[str]
) -> np.ndarray:
    """One tissue's t statistics from ``path``, checked against the model's genes."""
    table = read_de_table(path)
    if list(table.index) != list(gene_ids):
        raise ValueError(f"{path}: its genes differ from the model's; rerun rule de_statistic")
    if tissue not in table.columns:
        raise ValueError(f"{path}: no column for tissue {tissue!r}; rerun rule de_statistic")
    return table[tissue].to_numpy(dtype=np.float64)


def run_de_statistic(
    expression_files: Sequence[str | os.PathLike[str]],
    samples_path: str | os.PathLike[str],
    genes_path: str | os.PathLike[str],
    tissues: Sequence[str],
    out_path: str | os.PathLike[str],
) -> pd.DataFrame:
    """The ``de_statistic`` rule."""
    gene_ids = read_selected_genes(genes_path)["gene_id"].tolist()
    table = de_table(expression_files, read_samples(samples_path), gene_ids, tissues)
    write_de_table(out_path, table)
    defined = int(table.notna().any().sum())
    log.info("one-vs-rest t statistics of %d genes for %d tissue(s)", len(gene_ids), defined)
    return table
