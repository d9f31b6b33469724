"""Assemble model-ready matrices from the per-tissue expression files and the split table.

Each loader reads the files once and fills one preallocated float32 array, so that a
GTEx-sized training set (about 32,000 rows x 19,291 genes, 2.5 GB) is held in memory once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from rnaseq_saliency.expression import read_expression, read_gene_ids
from rnaseq_saliency.fileio import atomic_path

SPLITS = ("train", "val", "test")
SAMPLES_COLUMNS = ["sample_id", "donor_id", "tissue", "split"]


@dataclass
class LabelledRows:
    """Expression rows with their tissue labels, in file order."""

    matrix: np.ndarray  # (n_rows, n_genes) float32, raw expression (TPM or reads)
    tissues: list[str]
    sample_ids: list[str]
    gene_ids: list[str]
    synthetic: np.ndarray  # (n_rows,) bool; all False for real rows


def tissue_of(path: str | os.PathLike[str]) -> str:
    """The tissue label of a per-tissue file: ``results/expression/liver.parquet`` -> ``liver``."""
    return Path(path).name.removesuffix(".parquet")


def read_samples(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``results/split/samples.tsv`` and check its columns and split names."""
    samples = pd.read_csv(path, sep="\t", dtype=str)
    missing = [c for c in SAMPLES_COLUMNS if c not in samples.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {SAMPLES_COLUMNS}")
    unknown = sorted(set(samples["split"]) - set(SPLITS))
    if unknown:
        raise ValueError(f"{path}: unknown split value(s) {unknown}; expected {SPLITS}")
    return samples


def write_samples(samples: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``results/split/samples.tsv`` (``read_samples`` reads it back), atomically."""
    missing = [c for c in SAMPLES_COLUMNS if c not in samples.columns]
    if missing:
        raise ValueError(f"samples table: missing column(s) {missing}; expected {SAMPLES_COLUMNS}")
    with atomic_path(path) as tmp:
        samples.to_csv(tmp, sep="\t", index=False, lineterminator="\n")


def _check_genes(path: str | os.PathLike[str], gene_ids: list[str], expected: list[str]) -> None:
    if gene_ids != expected:
        raise ValueError(f"{path}: its genes differ from those of the other expression files")


def load_split_rows(
    expression_files: Sequence[str | os.PathLike[str]],
    samples: pd.DataFrame,
    split: str,
) -> LabelledRows:
    """The real samples of one split (``train``, ``val`` or ``test``), across all tissue files."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    wanted = samples.loc[samples["split"] == split]
    wanted_by_tissue = {t: set(ids) for t, ids in wanted.groupby("tissue")["sample_id"]}
    gene_ids: list[str] | None = None
    blocks: list[tuple[np.ndarray, list[str], str]] = []
    for path in expression_files:
        tissue = tissue_of(path)
        ids = wanted_by_tissue.get(tissue)
        if not ids:
            continue
        table = read_expression(path)
        if gene_ids is None:
            gene_ids = table.gene_ids
        _check_genes(path, table.gene_ids, gene_ids)
        keep = np.fromiter((s in ids for s in table.sample_ids), dtype=bool)
        blocks.append(
            (
                table.matrix[keep],
                [s for s, k in zip(table.sample_ids, keep, strict=True) if k],
                tissue,
            )
        )
    if gene_ids is None:
        gene_ids = read_gene_ids(expression_files[0]) if expression_files else []
    n_rows = sum(len(ids) for _, ids, _ in blocks)
    matrix = np.empty((n_rows, len(gene_ids)), dtype=np.float32)
    tissues: list[str] = []
    sample_ids: list[str] = []
    start = 0
    for block, ids, tissue in blocks:
        matrix[start : start + len(ids)] = block
        start += len(ids)
        sample_ids.extend(ids)
        tissues.extend([tissue] * len(ids))
    return LabelledRows(matrix, tissues, sample_ids, gene_ids, np.zeros(n_rows, dtype=bool))


def load_training_rows(augmented_files: Sequence[str | os.PathLike[str]]) -> LabelledRows:
    """All rows of the augmented training files (real and synthetic), in one float32 matrix."""
    counts = [pq.read_metadata(path).num_rows for path in augmented_files]
    gene_ids = read_gene_ids(augmented_files[0]) if augmented_files else []
    matrix = np.empty((sum(counts), len(gene_ids)), dtype=np.float32)
    tissues: list[str] = []
    sample_ids: list[str] = []
    synthetic = np.zeros(sum(counts), dtype=bool)
    start = 0
    for path, count in zip(augmented_files, counts, strict=True):
        if count == 0:
            continue
        table = read_expression(path)
        _check_genes(path, table.gene_ids, gene_ids)
        matrix[start : start + count] = table.matrix
        synthetic[start : start + count] = np.asarray(
            table.extra.get("synthetic", [False] * count), dtype=bool
        )
        sample_ids.extend(table.sample_ids)
        tissues.extend([tissue_of(path)] * count)
        start += count
    return LabelledRows(matrix, tissues, sample_ids, gene_ids, synthetic)
