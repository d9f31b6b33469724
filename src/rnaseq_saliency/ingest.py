"""GTEx GCT files -> ``results/expression/{tissue}.parquet``, and what the attributes held.

Two layouts (``data.layout``):

- ``per_tissue``: one GTEx per-tissue GCT file per tissue (``ingest_tissue``); the file decides
  the tissue;
- ``matrix``: the whole-matrix GCT, every sample of every tissue in one file, read once,
  streaming (``ingest_matrix``); each sample's tissue is its SMTSD in the sample attributes file.

Either way the selected genes are read from the GCT stream in model input order, samples are
matched to the sample attributes file (which also gives their donor), and the result is written
with ``rnaseq_saliency.expression`` so that every later rule reads one contiguous float32
matrix. The two layouts give byte-identical Parquet files for the same samples and values.

``summarise_expression`` accounts for every row of the attributes file: the RNA-seq samples
kept, and the rows ignored and why (DNA assays, excluded samples, the CML cell line, tissues not
in ``data.tissues``), in ``results/expression/summary.tsv``.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from rnaseq_saliency.expression import ExpressionTable, write_expression
from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.gct import read_gct, read_gct_header
from rnaseq_saliency.genes import read_selected_genes
from rnaseq_saliency.gtex import donor_id
from rnaseq_saliency.tissues import smtsd_to_label, tissue_table

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
    _log_accounts(attributes.reset_index(), [tissue], {tissue: sample_ids})
    log.info(
        "%s: %d samples x %d genes of %s -> %s",
        tissue,
        len(sample_ids),
        len(gene_ids),
        gct_path,
        out_path,
    )


def _assign_matrix_samples(
    gct_path: str | os.PathLike[str],
    sample_ids: Sequence[str],
    attributes: pd.DataFrame,
    attributes_path: str | os.PathLike[str],
    tissues: Sequence[str],
) -> dict[str, list[str]]:
    """Each configured tissue's samples of a whole-matrix file, in file order, by SMTSD.

    Samples without an attributes row are dropped with a warning; samples of tissues not
    configured are left out (``summarise_expression`` counts them).
    """
    smtsd = attributes.set_index("SAMPID")["SMTSD"]
    unknown = [s for s in sample_ids if s not in smtsd.index]
    if unknown:
        log.warning(
            "%s: %d of %d samples are not in %s and are dropped: %s",
            gct_path,
            len(unknown),
            len(sample_ids),
            attributes_path,
            ", ".join(unknown[:20]) + (", ..." if len(unknown) > 20 else ""),
        )
    wanted = set(tissues)
    by_tissue: dict[str, list[str]] = {tissue: [] for tissue in tissues}
    for sample in sample_ids:
        if sample in smtsd.index and (label := smtsd_to_label(smtsd.at[sample])) in wanted:
            by_tissue[label].append(sample)
    empty = [tissue for tissue, samples in by_tissue.items() if not samples]
    if empty:
        raise ValueError(
            f"{gct_path}: no sample of tissue(s) {', '.join(empty)} (by SMTSD in "
            f"{attributes_path}); is the matrix from the same GTEx release, or remove them "
            "from config key data.tissues"
        )
    return by_tissue


def ingest_matrix(
    gct_path: str | os.PathLike[str],
    attributes_path: str | os.PathLike[str],
    genes_tsv: str | os.PathLike[str],
    out_paths: Mapping[str, str | os.PathLike[str]],
    threads: int = 2,
) -> None:
    """Write the selected genes of each tissue in ``out_paths`` from a whole-matrix GCT file.

    The matrix is read once, streaming, keeping only the selected genes of the samples whose
    SMTSD is one of the tissues (``read_gct``'s sample selection), so the peak memory is
    about the output matrix. Each tissue's file is written as ``ingest_tissue`` writes it,
    samples in the matrix's order.

    Raises:
        GctFormatError: for a malformed GCT file (naming file and line).
        ValueError: naming the file, for bad attributes or gene files, a sample id that is not
            GTEx-shaped, or a tissue none of whose samples is in the matrix.
    """
    genes = read_selected_genes(genes_tsv)
    gene_ids = genes["gene_id"].tolist()
    attributes = read_sample_attributes(attributes_path)
    header = read_gct_header(gct_path)
    by_tissue = _assign_matrix_samples(
        gct_path, header.sample_ids, attributes, attributes_path, list(out_paths)
    )
    selected = [sample for samples in by_tissue.values() for sample in samples]
    try:
        donor_ids = [donor_id(s) for s in selected]
    except ValueError as err:
        raise ValueError(f"{gct_path}: {err}") from err
    log.info(
        "%s: reading %d genes of %d of its %d samples (%d tissues)",
        gct_path,
        len(gene_ids),
        len(selected),
        len(header.sample_ids),
        len(by_tissue),
    )
    gct = read_gct(gct_path, gene_ids, threads=threads, sample_ids=selected)
    # Each tissue's rows are consecutive in the matrix: write views, no copies. Arrow
    # compresses without the GIL, so ``threads`` files are written at once.
    bounds = np.cumsum([0, *(len(samples) for samples in by_tissue.values())])
    tables = {
        tissue: ExpressionTable(
            sample_ids=samples,
            donor_ids=donor_ids[bounds[i] : bounds[i + 1]],
            gene_ids=gene_ids,
            matrix=gct.matrix[bounds[i] : bounds[i + 1]],
        )
        for i, (tissue, samples) in enumerate(by_tissue.items())
    }
    with ThreadPoolExecutor(threads, thread_name_prefix="ingest-write") as pool:
        for tissue in pool.map(lambda t: _write_tissue(out_paths[t], tables[t], t), tables):
            log.info(
                "%s: %d samples x %d genes -> %s",
                tissue,
                len(by_tissue[tissue]),
                len(gene_ids),
                out_paths[tissue],
            )
    _log_accounts(attributes, list(by_tissue), by_tissue)


def _write_tissue(path: str | os.PathLike[str], table: ExpressionTable, tissue: str) -> str:
    write_expression(path, table)
    return tissue


EXPRESSION_SUMMARY_COLUMNS = (
    "tissue",
    "smtsd",
    "samples",
    "attribute_rows",
    "ignored_rows",
    "ignored_why",
)
RNASEQ = "RNASEQ"
_FREEZE_MEANING = {
    "WGS": "whole-genome sequencing (DNA)",
    "WES": "whole-exome sequencing (DNA)",
    "OMNI": "genotyping array (DNA)",
    "EXCLUDE": "excluded from the release (QC)",
    "": "no assay freeze (SMAFRZE empty)",
}


def _why(freezes: Counter[str], not_in_file: int) -> str:
    parts = [
        f"{n} {freeze or 'no SMAFRZE'}: {_FREEZE_MEANING.get(freeze, 'not RNA-seq')}"
        for freeze, n in sorted(freezes.items())
    ]
    if not_in_file:
        parts.append(f"{not_in_file} RNA-seq: not in the expression file")
    return "; ".join(parts)


def summarise_expression(
    attributes_path: str | os.PathLike[str],
    expression_paths: Mapping[str, str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
) -> pd.DataFrame:
    """Account for every attributes row: kept samples per tissue, and ignored rows and why.

    One row per configured tissue (``samples`` kept in its expression file, ``attribute_rows``
    with its SMTSD, ``ignored_rows`` of those and ``ignored_why``), then one per other SMTSD
    of the attributes file (samples 0: a tissue not in ``data.tissues``, or one that has no
    GTEx expression files, such as the CML cell line). ``attribute_rows`` sums to the
    attributes file's row count. Written atomically as TSV; the totals go to the log.
    """
    attributes = read_sample_attributes(attributes_path)
    labels = attributes["SMTSD"].map(smtsd_to_label)
    gtex_labels = {t.label for t in tissue_table()}
    rows = []
    every_kept: set[str] = set()
    for tissue, path in expression_paths.items():
        kept = pq.read_table(path, columns=["sample_id"])["sample_id"].to_pylist()
        rows.append(_tissue_accounts(attributes, labels, tissue, kept))
        every_kept.update(kept)
    other = ~labels.isin(list(expression_paths))
    for smtsd, group in attributes[other].groupby("SMTSD", sort=True):
        label = smtsd_to_label(smtsd)
        reason = (
            "a tissue not in config key data.tissues"
            if label in gtex_labels
            else "no GTEx tissue expression file (a cell line or an unknown SMTSD)"
        )
        rows.append({
            "tissue": label if label in gtex_labels else "",
            "smtsd": smtsd,
            "samples": 0,
            "attribute_rows": len(group),
            "ignored_rows": len(group),
            "ignored_why": f"{len(group)} rows: {reason}",
        })  # fmt: skip
    summary = pd.DataFrame(rows, columns=list(EXPRESSION_SUMMARY_COLUMNS))
    with atomic_path(out_path) as tmp:
        summary.to_csv(tmp, sep="\t", index=False)
    _log_summary(attributes_path, attributes[~attributes["SAMPID"].isin(every_kept)], summary)
    return summary


def _log_accounts(
    attributes: pd.DataFrame, tissues: Sequence[str], kept: Mapping[str, Sequence[str]]
) -> None:
    """Log, per tissue, the attributes rows of that tissue that were not kept, and why."""
    labels = attributes["SMTSD"].map(smtsd_to_label)
    for tissue in tissues:
        row = _tissue_accounts(attributes, labels, tissue, kept[tissue])
        if row["ignored_rows"]:
            log.info(
                "%s: %d of its %d sample attributes rows ignored: %s",
                tissue,
                row["ignored_rows"],
                row["attribute_rows"],
                row["ignored_why"],
            )


def _freeze(attributes: pd.DataFrame) -> pd.Series:
    """Each row's SMAFRZE; a file without the column is taken as RNA-seq rows only."""
    if "SMAFRZE" in attributes:
        return attributes["SMAFRZE"]
    return pd.Series(RNASEQ, index=attributes.index)


def _tissue_accounts(
    attributes: pd.DataFrame, labels: pd.Series, tissue: str, kept: Sequence[str]
) -> dict:
    """One tissue's summary row: its samples kept, its attributes rows, which were ignored."""
    mine = labels == tissue
    in_file = attributes["SAMPID"][mine].isin(set(kept))
    freeze = _freeze(attributes)[mine]
    is_rnaseq = freeze == RNASEQ
    smtsd = attributes["SMTSD"][mine]
    return {
        "tissue": tissue,
        "smtsd": smtsd.iloc[0] if len(smtsd) else "",
        "samples": len(kept),
        "attribute_rows": int(mine.sum()),
        "ignored_rows": int((~in_file).sum()),
        "ignored_why": _why(
            Counter(freeze[~is_rnaseq & ~in_file]), int((is_rnaseq & ~in_file).sum())
        ),
    }


def _log_summary(
    attributes_path: str | os.PathLike[str], ignored: pd.DataFrame, summary: pd.DataFrame
) -> None:
    """The summary's totals; ``ignored`` holds the attributes rows that were not kept."""
    freeze = _freeze(ignored)
    kept = int(summary["samples"].sum())
    n_tissues = int((summary["samples"] > 0).sum())
    log.info(
        "%s: %d rows; kept %d RNA-seq samples of the expression files (%d tissues); "
        "ignored %d rows",
        attributes_path,
        len(ignored) + kept,
        kept,
        n_tissues,
        len(ignored),
    )
    for freeze_value, n in sorted(Counter(freeze[freeze != RNASEQ]).items()):
        meaning = _FREEZE_MEANING.get(freeze_value, "not RNA-seq")
        log.info("  ignored: %d rows with SMAFRZE %r (%s)", n, freeze_value, meaning)
    gtex_labels = {t.label for t in tissue_table()}
    unused = summary[(summary["samples"] == 0) & summary["tissue"].isin(gtex_labels)]
    unused = unused[unused["tissue"] != ""]
    if len(unused):
        log.info(
            "  ignored: %d rows of %d GTEx tissues not in config key data.tissues",
            unused["attribute_rows"].sum(),
            len(unused),
        )
    for row in summary[summary["tissue"] == ""].itertuples():
        log.info("  ignored: %s (%s)", row.ignored_why, row.smtsd)
