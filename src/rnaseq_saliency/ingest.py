"""One GTEx per-tissue GCT file -> ``results/expression/{tissue}.parquet``.

The selected genes are read from the GCT stream in model input order, samples are matched to
the sample attributes file (which also gives their donor), and the result is written with
``rnaseq_saliency.expression`` so that every later rule reads one contiguous float32 matrix.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter

import numpy as np
import pandas as pd

from rnaseq_saliency.expression import ExpressionTable, write_expression
from rnaseq_saliency.gct import read_gct
from rnaseq_saliency.genes import read_selected_genes
from rnaseq_saliency.gtex import donor_id
from rnaseq_saliency.tissues import smtsd_to_label

log = logging.getLogger(__name__)

REQUIRED_ATTRIBUTES = ("SAMPID", "SMTSD")
OPTIONAL_ATTRIBUTES = ("SMTS", "SMAFRZE")


def read_sample_attributes(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the columns we use of a GTEx sample attributes file (63 columns, 22,951 rows in v8).

    Returns a DataFrame of strings with ``SAMPID``, ``SMTSD`` and, when present, ``SMTS`` and
    ``SMAFRZE``, indexed by nothing in particular. Missing values are empty strings.

    Raises:
        ValueError: naming the file, when ``SAMPID`` or ``SMTSD`` is missing or a SAMPID repeats.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
    missing = [c for c in REQUIRED_ATTRIBUTES if c not in header]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing} of a GTEx sample attributes file; "
            f"its header starts {header[:6]}"
        )
    wanted = [c for c in (*REQUIRED_ATTRIBUTES, *OPTIONAL_ATTRIBUTES) if c in header]
    # Tab-separated without quoting: a stray quote in a free-text column must not swallow rows.
    attributes = pd.read_csv(
        path,
        sep="\t",
        usecols=wanted,
        dtype=str,
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
    )
    repeated = attributes["SAMPID"][attributes["SAMPID"].duplicated()].tolist()
    if repeated:
        raise ValueError(f"{path}: SAMPID repeats: {', '.join(repeated[:10])}")
    return attributes[wanted]


def _compact_rows(matrix: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``matrix[keep]`` without a second copy of the matrix: move kept rows up, return a view.

    Rows only ever move to a lower index, so each is copied before it could be overwritten.
    """
    kept = np.flatnonzero(keep)
    for target, source in enumerate(kept):
        if target != source:
            matrix[target] = matrix[source]
    return matrix[: kept.size]


def ingest_tissue(
    gct_path: str | os.PathLike[str],
    attributes_path: str | os.PathLike[str],
    genes_tsv: str | os.PathLike[str],
    tissue: str,
    out_path: str | os.PathLike[str],
    threads: int = 1,
) -> None:
    """Write the selected genes of one tissue's GCT file to an expression Parquet file.

    ``threads`` is handed to ``read_gct``: the rule's Snakemake threads (1 unless it asks).

    Samples missing from the attributes file are dropped with a warning and a count; samples
    whose SMTSD maps to another label than ``tissue`` are kept with a warning (the per-tissue
    file decides the tissue). The output is written atomically: on any error nothing is left
    at ``out_path``.

    Raises:
        GctFormatError: for a malformed GCT file (naming file and line).
        ValueError: naming the file, for bad attributes or gene files, a sample id that is not
            GTEx-shaped, or a GCT file none of whose samples is in the attributes file.
    """
    genes = read_selected_genes(genes_tsv)
    gene_ids = genes["gene_id"].tolist()
    gct = read_gct(gct_path, gene_ids, threads=threads)
    attributes = read_sample_attributes(attributes_path).set_index("SAMPID")

    known = np.fromiter((s in attributes.index for s in gct.sample_ids), bool, len(gct.sample_ids))
    if not known.all():
        dropped = [s for s, k in zip(gct.sample_ids, known, strict=True) if not k]
        log.warning(
            "%s: %d of %d samples are not in %s and are dropped: %s",
            gct_path,
            len(dropped),
            len(gct.sample_ids),
            attributes_path,
            ", ".join(dropped[:20]) + (", ..." if len(dropped) > 20 else ""),
        )
    if not known.any():
        raise ValueError(
            f"{gct_path}: none of its {len(gct.sample_ids)} samples is in {attributes_path}; "
            "are both from the same GTEx release?"
        )
    sample_ids = [s for s, k in zip(gct.sample_ids, known, strict=True) if k]
    matrix = gct.matrix if known.all() else _compact_rows(gct.matrix, known)

    labels = Counter(smtsd_to_label(attributes.at[s, "SMTSD"]) for s in sample_ids)
    other = {label: n for label, n in labels.items() if label != tissue}
    if other:
        log.warning(
            "%s: %d samples are labelled another tissue than %r in %s (kept): %s",
            gct_path,
            sum(other.values()),
            tissue,
            attributes_path,
            ", ".join(f"{label or '<empty SMTSD>'} ({n})" for label, n in sorted(other.items())),
        )
    try:
        donor_ids = [donor_id(s) for s in sample_ids]
    except ValueError as err:
        raise ValueError(f"{gct_path}: {err}") from err

    write_expression(
        out_path,
        ExpressionTable(
            sample_ids=sample_ids, donor_ids=donor_ids, gene_ids=gene_ids, matrix=matrix
        ),
    )
    log.info(
        "%s: %d samples x %d genes of %s -> %s",
        tissue,
        len(sample_ids),
        len(gene_ids),
        gct_path,
        out_path,
    )
