"""Classify new samples with a trained model and explain each call with its most salient genes.

Used by the ``predict`` rule and the ``rnaseq-saliency predict`` command; it reuses the trained
model (``rnaseq_saliency.model.load_model``) and never retrains.

Input (``read_input_matrix``), TPM or read counts as the model was trained (model.json's
``config.data.measure``), not log-transformed:

- a GCT 1.2 or 1.3 file (plain or gzip): GTEx per-tissue layout (``#1.3``,
  ``id Name Description samples...``) or whole-matrix layout (``#1.2``,
  ``Name Description samples...``), read by ``rnaseq_saliency.gct``;
- a TSV or CSV matrix (plain or gzip; the separator is a tab when the header line holds one,
  else a comma) with genes in rows and samples in columns. The first column holds the Ensembl
  gene ids (whatever its header), or the ``Name`` column when the header starts with GTEx's
  ``id``, ``Name``; the columns right after it headed ``Description``, ``gene_name``,
  ``gene_symbol`` or ``symbol`` are annotations and are ignored; every other column is a sample.

Gene matching: input and model genes match on the Ensembl id without its version
(``rnaseq_saliency.genes.match_key``), so a file written against another GENCODE release still
finds its genes; ``_PAR_Y`` copies stay distinct genes. Input genes the model does not use are
ignored. A model gene missing from the input is *filled with the training mean*: its raw value
is set to ``expm1(mean)``, where ``mean`` is the training mean of log1p expression, so that the
model's scaling (log1p, then ``(x - mean) / std``) maps it to 0 (up to float32 rounding, about
1e-7), the value an average training sample has. Filled genes are counted, flagged ``imputed`` in
the top-gene table and drawn grey in the figures; an attribution at a filled gene describes the
model, not the sample. More than ``max_missing_fraction`` of the model's genes missing is an
error: the input then is probably another id namespace (symbols, RefSeq) or gene set.

Outputs (``run_predict``):

- ``predictions.tsv``: one row per sample, input order: ``sample_id``, ``tissue_1``,
  ``probability_1``, ... up to ``tissue_3``/``probability_3`` (fewer for a model with fewer
  tissues; calibrated probabilities, softmax(logits / T) with the model's temperature T, best
  first, ties in model output order as ``evaluate`` breaks them), ``missing_genes`` (model
  genes filled with the training mean), ``figure`` (the file name of the sample's figure);
  with the sample checks stored beside the model (``rnaseq_saliency.sample_checks``), their
  columns come before ``missing_genes``: ``call_trusted`` (false for a novel sample),
  ``novelty_score``, ``novel``, ``component_1``/``fraction_1`` ... ``_3`` (the largest mixture
  components), ``foreign_organ``, ``foreign_fraction`` and ``possible_mixture``;
- ``saliency_top_genes.tsv``: per sample its ``top_n`` genes: ``sample_id``, ``predicted``,
  ``rank`` (1 = most salient), ``gene_id`` and ``gene_name`` (the model's), ``saliency`` (the
  map value in [0, 1] of the configured method, target = the predicted tissue, min-max scaled
  per sample as in ``rnaseq_saliency.saliency``), ``scaled_expression`` (the gene's model input:
  training standard deviations from the training mean of log1p expression), ``imputed``;
- ``figures/<sample>.png``: a bar chart of each sample's top genes. File names are the sample
  ids with characters other than letters, digits, ``.``, ``_``, ``-`` replaced by ``_`` (made
  unique ignoring case); the ``figure`` column gives each one.

Memory: the input is read whole (samples x genes float32): a GTEx per-tissue file (56,200 genes,
up to 803 samples) takes about 180 MB.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.genes import match_key
from rnaseq_saliency.settings import DEFAULT_SALIENCY, SaliencySettings

if TYPE_CHECKING:
    from rnaseq_saliency.model import TrainedModel

log = logging.getLogger(__name__)

TOP_TISSUES = 3
DEFAULT_MAX_MISSING_FRACTION = 0.05
DEFAULT_TOP_N = 20
SAMPLE_TOP_GENES_COLUMNS = [
    "sample_id",
    "predicted",
    "rank",
    "gene_id",
    "gene_name",
    "saliency",
    "scaled_expression",
    "imputed",
]
# Headers of symbol columns beside the id column in TSV/CSV input (compared in lower case).
ANNOTATION_HEADERS = ("description", "gene_name", "gene_symbol", "symbol")
_GZIP_MAGIC = b"\x1f\x8b"
_SHOWN_IDS = 5
# Median scaled input (training standard deviations) beyond which the input is probably another
# measure or already log-transformed: a sample like the training ones sits near 0, while read
# counts against a TPM model sit several log units (standard deviations) higher.
_SHIFT_WARNING = 1.0
_FIGURE_DPI = 150
_IMPUTED_COLOUR = "#bdbdbd"
_BAR_COLOUR = "#3b75af"


class PredictInputError(ValueError):
    """An input matrix that cannot be classified; the message names the file (and line)."""


@dataclass
class InputMatrix:
    """New samples as read: genes in file order, not yet matched to the model."""

    path: Path
    sample_ids: list[str]
    gene_ids: list[str]  # as written in the file (versioned or not)
    matrix: np.ndarray  # (n_samples, n_genes) float32, raw expression
    line_numbers: list[int] | None = None  # file line of each gene, where known


@dataclass
class Alignment:
    """Input expression in the model's gene order, with the model genes that were missing."""

    raw: np.ndarray  # (n_samples, n_model_genes) float32, missing genes at expm1(training mean)
    imputed: np.ndarray  # (n_model_genes,) bool: gene missing from the input
    n_input_genes: int
    n_unused: int  # input genes that are not among the model's

    @property
    def n_missing(self) -> int:
        return int(self.imputed.sum())

    @property
    def missing_fraction(self) -> float:
        return self.n_missing / max(self.imputed.size, 1)


@dataclass
class PredictResult:
    """What ``predict_samples`` computed: the two tables and, per sample, its map."""

    predictions: pd.DataFrame
    top_genes: pd.DataFrame
    maps: np.ndarray  # (n_samples, n_model_genes) float32 in [0, 1]
    alignment: Alignment


# --------------------------------------------------------------------------------------------
# Reading the input
# --------------------------------------------------------------------------------------------


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as raw:
        return raw.read(2) == _GZIP_MAGIC


def _open_text(path: Path) -> IO[str]:
    """A text handle on a plain or gzip file (by content); a UTF-8 byte-order mark is dropped."""
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _first_line(path: Path) -> str | None:
    """The first line without its line ending; None for a file without any non-blank text."""
    try:
        with _open_text(path) as handle:
            first = handle.readline()
            if first.strip():
                return first.rstrip("\r\n")
            # A blank first line: the file is empty only if nothing else follows.
            for line in handle:
                if line.strip():
                    return first.rstrip("\r\n")
            return None
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise PredictInputError(f"{path}: truncated or corrupt gzip data: {err}") from err
    except UnicodeDecodeError as err:
        raise PredictInputError(f"{path}: not UTF-8 text: {err}") from err


def read_input_matrix(path: str | os.PathLike[str], threads: int = 1) -> InputMatrix:
    """Read new samples from a GCT or a TSV/CSV genes x samples matrix (layouts: module doc).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        PredictInputError: for an empty file, a file with no gene rows or no samples, repeated
            sample ids, a value that is not a finite number >= 0 (naming the line and sample),
            or corrupt gzip data.
        rnaseq_saliency.gct.GctFormatError: for a malformed GCT file, naming the line.
    """
    from rnaseq_saliency.gct import GCT_VERSIONS, read_gct

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    header = _first_line(path)
    if header is None:
        raise PredictInputError(
            f"{path}: the file is empty; expected a GCT file or a TSV/CSV matrix with genes in "
            "rows and samples in columns"
        )
    if header.rstrip("\t ") in GCT_VERSIONS:
        gct = read_gct(path, threads=threads)
        samples = InputMatrix(path, gct.sample_ids, gct.gene_ids, gct.matrix)
    else:
        samples = _read_delimited(path, header)
    if not samples.gene_ids:
        raise PredictInputError(f"{path}: no gene rows (only a header)")
    return samples


def _split_header(path: Path, header: str) -> tuple[str, list[str]]:
    separator = "\t" if "\t" in header else ","
    fields = next(csv.reader([header], delimiter=separator))
    if len(fields) > 2 and not fields[-1].strip():
        # A trailing separator (some writers pad lines) names no column; data lines padded
        # the same way leave an empty extra field, which the reader tolerates.
        fields.pop()
    if len(fields) < 2:
        raise PredictInputError(
            f"{path}:1: the header has one column; expected a tab- or comma-separated header "
            "with a gene id column and one column per sample (or a GCT file, line 1 '#1.2' or "
            "'#1.3')"
        )
    return separator, [field.strip() for field in fields]


def _columns(path: Path, fields: list[str]) -> tuple[int, list[int]]:
    """The index of the gene id column and those of the sample columns."""
    id_column = 1 if [f.lower() for f in fields[:2]] == ["id", "name"] else 0
    first_sample = id_column + 1
    while first_sample < len(fields) and fields[first_sample].lower() in ANNOTATION_HEADERS:
        first_sample += 1
    sample_columns = list(range(first_sample, len(fields)))
    if not sample_columns:
        raise PredictInputError(
            f"{path}:1: no sample columns after the gene id and annotation columns {fields}"
        )
    names = [fields[i] for i in sample_columns]
    if any(not name for name in names):
        raise PredictInputError(f"{path}:1: the header has an empty sample id")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PredictInputError(f"{path}:1: duplicate sample id(s): {', '.join(repeated)}")
    return id_column, sample_columns


def _read_delimited(path: Path, header: str) -> InputMatrix:
    separator, fields = _split_header(path, header)
    id_column, sample_columns = _columns(path, fields)
    # Values are parsed as numbers in one C pass; only when that fails is the file read again
    # as text to name the first bad cell. Blank lines are kept (and dropped below) so that the
    # row index gives the line number: line = index + 2.
    options: dict[str, Any] = {
        "sep": separator,
        "header": None,
        "skiprows": 1,
        # Named columns: otherwise pandas counts them on the first data line, which may be
        # blank. One more than the header has, to catch a line with one field too many
        # (pandas refuses lines with more itself).
        "names": list(range(len(fields) + 1)),
        "skip_blank_lines": False,
        "na_filter": True,
    }
    try:
        with _open_text(path) as handle:
            table = pd.read_csv(
                handle,
                dtype={
                    **{c: str for c in range(len(fields) + 1)},
                    **{c: np.float64 for c in sample_columns},
                },
                keep_default_na=True,
                **options,
            )
    except pd.errors.EmptyDataError:
        raise PredictInputError(f"{path}: no gene rows (only a header)") from None
    except (ValueError, TypeError) as err:
        if isinstance(err, pd.errors.ParserError):
            raise PredictInputError(f"{path}: {err}") from err
        raise _diagnose_delimited(path, fields, id_column, sample_columns, options) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise PredictInputError(f"{path}: truncated or corrupt gzip data: {err}") from err
    extra = table[len(fields)].fillna("").astype(str).str.strip() != ""
    if extra.any():
        raise PredictInputError(
            f"{path}:{table.index[np.flatnonzero(extra.to_numpy())[0]] + 2}: more fields than "
            f"the {len(fields)} of the header (line 1)"
        )
    ids = table[id_column].fillna("").astype(str).str.strip()
    values = table[sample_columns].to_numpy(dtype=np.float64)
    blank = (ids == "").to_numpy() & np.isnan(values).all(axis=1)
    ids, values = ids[~blank], values[~blank]
    lines = (table.index[~blank] + 2).tolist()
    empty_ids = np.flatnonzero((ids == "").to_numpy())
    if empty_ids.size:
        raise PredictInputError(f"{path}:{lines[empty_ids[0]]}: empty gene id")
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf: refused
        as_float32 = values.astype(np.float32)
    bad = ~np.isfinite(as_float32) | (as_float32 < 0)
    if bad.any():
        gene, sample = np.argwhere(bad)[0]  # the first in file order
        value = float(values[gene, sample])
        problem = "is empty or not a number" if np.isnan(value) else f"{value:g} is not allowed"
        sample_id = fields[sample_columns[sample]]
        raise PredictInputError(
            f"{path}:{lines[gene]}: gene {ids.iloc[gene]}, sample {sample_id}: value {problem}; "
            "expression values must be finite numbers >= 0"
        )
    gene_ids = ids.tolist()
    seen: dict[str, int] = {}
    for gene_id, line in zip(gene_ids, lines, strict=True):
        first = seen.setdefault(gene_id, line)
        if first != line:
            raise PredictInputError(
                f"{path}:{line}: gene id {gene_id} repeats (first at line {first})"
            )
    return InputMatrix(
        path,
        [fields[c] for c in sample_columns],
        gene_ids,
        np.ascontiguousarray(as_float32.T),
        lines,
    )


def _diagnose_delimited(
    path: Path, fields: list[str], id_column: int, sample_columns: list[int], options: dict
) -> PredictInputError:
    """The error naming the first cell that is not a number (a slow path, errors only)."""
    with _open_text(path) as handle:
        text = pd.read_csv(handle, dtype=str, keep_default_na=False, **options)
    for column in sample_columns:
        cells = text[column].fillna("").astype(str).str.strip()
        numbers = pd.to_numeric(cells, errors="coerce")
        wrong = numbers.isna() & (cells != "")
        if wrong.any():
            row = int(np.flatnonzero(wrong.to_numpy())[0])
            return PredictInputError(
                f"{path}:{text.index[row] + 2}: gene {text[id_column].iloc[row]}, sample "
                f"{fields[column]}: value {cells.iloc[row]!r} is not a number; expression values "
                "must be finite numbers >= 0"
            )
    return PredictInputError(f"{path}: values that do not parse as numbers")


# --------------------------------------------------------------------------------------------
# Matching genes to the model
# --------------------------------------------------------------------------------------------


def _shown(ids: Sequence[str]) -> str:
    return ", ".join(ids[:_SHOWN_IDS]) + (", ..." if len(ids) > _SHOWN_IDS else "")


def align_to_model(
    samples: InputMatrix,
    model_gene_ids: Sequence[str],
    training_mean: np.ndarray,
    max_missing_fraction: float = DEFAULT_MAX_MISSING_FRACTION,
) -> Alignment:
    """Put the input's genes in model order, filling missing genes with the training mean.

    ``training_mean`` is the model's per-gene mean of log1p expression (``TrainedModel.mean``);
    a missing gene gets ``expm1(mean)``, which the model's scaling maps to 0. Genes match on
    ``match_key`` (id without version, ``_PAR_Y`` kept).

    Raises:
        PredictInputError: when two input ids are the same gene (two versions of one id), or
            when more than ``max_missing_fraction`` of the model's genes are missing.
    """
    if not 0.0 <= max_missing_fraction <= 1.0:
        raise ValueError(
            f"config key predict.max_missing_fraction: expected a fraction in [0, 1], got "
            f"{max_missing_fraction!r}"
        )
    model_keys = [match_key(gene_id) for gene_id in model_gene_ids]
    if len(set(model_keys)) != len(model_keys):
        raise ValueError("the model's gene ids repeat once their versions are dropped")
    position = {key: i for i, key in enumerate(model_keys)}
    first_of_key: dict[str, int] = {}
    input_rows: list[int] = []
    model_columns: list[int] = []
    for row, gene_id in enumerate(samples.gene_ids):
        key = match_key(gene_id)
        earlier = first_of_key.setdefault(key, row)
        if earlier != row:
            where = (
                f"{samples.path}:{samples.line_numbers[row]}"
                if samples.line_numbers
                else f"{samples.path}"
            )
            raise PredictInputError(
                f"{where}: gene ids {samples.gene_ids[earlier]} and {gene_id} are the same gene "
                "once their versions are dropped; keep one of them"
            )
        column = position.get(key)
        if column is not None:
            input_rows.append(row)
            model_columns.append(column)
    n_model = len(model_keys)
    imputed = np.ones(n_model, dtype=bool)
    imputed[model_columns] = False
    n_missing = int(imputed.sum())
    if n_missing > max_missing_fraction * n_model:
        missing_ids = [model_gene_ids[i] for i in np.flatnonzero(imputed)]
        raise PredictInputError(
            f"{samples.path}: {n_missing} of the model's {n_model} genes "
            f"({n_missing / n_model:.1%}) are not in the input, more than the "
            f"{max_missing_fraction:.1%} allowed (predict.max_missing_fraction, "
            f"--max-missing-fraction). Genes match on their Ensembl id without version; "
            f"missing: {_shown(missing_ids)}; the input's first ids: {_shown(samples.gene_ids)}"
        )
    mean = np.asarray(training_mean, dtype=np.float32)
    fill = np.expm1(mean).astype(np.float32)
    raw = np.empty((len(samples.sample_ids), n_model), dtype=np.float32)
    raw[:] = fill
    raw[:, model_columns] = samples.matrix[:, input_rows]
    return Alignment(
        raw=raw,
        imputed=imputed,
        n_input_genes=len(samples.gene_ids),
        n_unused=len(samples.gene_ids) - len(input_rows),
    )


# --------------------------------------------------------------------------------------------
# Predictions and maps
# --------------------------------------------------------------------------------------------


def top_tissues(proba: np.ndarray, k: int = TOP_TISSUES) -> np.ndarray:
    """Indices (n_samples, min(k, n_tissues)) of the most probable tissues, best first.

    Ties go to the tissue earlier in model output order, as ``argmax`` (and ``evaluate``)
    breaks them.
    """
    order = np.argsort(-np.asarray(proba, dtype=np.float64), axis=1, kind="stable")
    return order[:, : min(k, order.shape[1])]


def figure_names(sample_ids: Sequence[str]) -> list[str]:
    """A PNG file name per sample: its id with unsafe characters as ``_``, unique ignoring case."""
    names: list[str] = []
    taken: set[str] = set()
    for sample_id in sample_ids:
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", sample_id).lstrip(".") or "sample"
        candidate, suffix = stem, 1
        # Case-insensitive file systems (macOS, Windows) would merge "A.png" and "a.png".
        while candidate.lower() in taken:
            suffix += 1
            candidate = f"{stem}_{suffix}"
        taken.add(candidate.lower())
        names.append(f"{candidate}.png")
    return names


def _warn_if_shifted(scaled: np.ndarray, imputed: np.ndarray, model: TrainedModel) -> None:
    observed = scaled[:, ~imputed]
    if observed.size == 0:
        return
    shift = float(np.median(np.median(observed, axis=1)))
    if abs(shift) > _SHIFT_WARNING:
        measure = model.metadata.get("config", {}).get("data", {}).get("measure", "unknown")
        log.warning(
            "the input's median gene sits %.1f training standard deviations from the training "
            "mean: is it %s, not log-transformed, as the model was trained (measure: %s)?",
            shift,
            "TPM" if measure == "tpm" else "read counts" if measure == "reads" else measure,
            measure,
        )


def _align_and_log(
    samples: InputMatrix, model: TrainedModel, max_missing_fraction: float
) -> Alignment:
    """``align_to_model``, logging how many genes were missing and how many were used."""
    alignment = align_to_model(samples, model.gene_ids, model.mean, max_missing_fraction)
    if alignment.n_missing:
        log.warning(
            "%d of the model's %d genes (%.2f%%) are not in %s: filled with the training mean",
            alignment.n_missing,
            len(model.gene_ids),
            100 * alignment.missing_fraction,
            samples.path,
        )
    log.info(
        "%s: %d samples; %d of %d input genes used, %d not among the model's",
        samples.path,
        len(samples.sample_ids),
        alignment.n_input_genes - alignment.n_unused,
        alignment.n_input_genes,
        alignment.n_unused,
    )
    return alignment


def _predictions_table(
    sample_ids: list[str],
    tissues: np.ndarray,
    proba: np.ndarray,
    best: np.ndarray,
    n_missing: int,
) -> pd.DataFrame:
    """One row per sample: its top tissues with their probabilities, and its figure name."""
    rows = np.arange(len(sample_ids))
    predictions = pd.DataFrame({"sample_id": sample_ids})
    for rank in range(best.shape[1]):
        predictions[f"tissue_{rank + 1}"] = tissues[best[:, rank]]
        predictions[f"probability_{rank + 1}"] = proba[rows, best[:, rank]].astype(np.float64)
    predictions["missing_genes"] = n_missing
    predictions["figure"] = figure_names(sample_ids)
    return predictions


def _top_genes_table(
    model: TrainedModel,
    sample_ids: list[str],
    predicted: np.ndarray,
    maps: np.ndarray,
    scaled: np.ndarray,
    imputed: np.ndarray,
    top_n: int,
) -> pd.DataFrame:
    """The ``top_n`` most salient genes of each sample, ``SAMPLE_TOP_GENES_COLUMNS`` in order."""
    from rnaseq_saliency.saliency import rank_genes

    n_top = min(top_n, len(model.gene_ids))
    ids = np.asarray(model.gene_ids, dtype=object)
    names = np.asarray(model.gene_names, dtype=object)
    blocks = []
    for i, sample_id in enumerate(sample_ids):
        order = rank_genes(maps[i])[:n_top]
        blocks.append(
            pd.DataFrame(
                {
                    "sample_id": sample_id,
                    "predicted": predicted[i],
                    "rank": np.arange(1, n_top + 1),
                    "gene_id": ids[order],
                    "gene_name": names[order],
                    "saliency": maps[i, order].astype(np.float64),
                    "scaled_expression": scaled[i, order].astype(np.float64),
                    "imputed": imputed[order],
                }
            )
        )
    top_genes = (
        pd.concat(blocks, ignore_index=True)
        if blocks
        else pd.DataFrame({column: [] for column in SAMPLE_TOP_GENES_COLUMNS})
    )
    return top_genes[SAMPLE_TOP_GENES_COLUMNS]


def predict_samples(
    model: TrainedModel,
    samples: InputMatrix,
    *,
    top_n: int = DEFAULT_TOP_N,
    method: str = "gradient",
    abs: bool = False,  # config key saliency.abs, as in rnaseq_saliency.saliency
    max_missing_fraction: float = DEFAULT_MAX_MISSING_FRACTION,
    batch_size: int = 512,
    seed: int = 0,
    checks: Any = None,
    **options: Any,
) -> PredictResult:
    """Top tissues and the top ``top_n`` salient genes of each sample (tables: module doc).

    The maps are ``rnaseq_saliency.saliency.attribute`` of ``method`` (with ``options``, e.g.
    ``n_steps`` for integrated gradients) with each sample's predicted tissue as the target.
    ``checks`` (``rnaseq_saliency.sample_checks.SampleChecks``) adds the novelty and mixture
    columns before ``missing_genes`` and logs a warning per flagged sample.
    """
    from rnaseq_saliency.saliency import attribute

    if top_n < 1:
        raise ValueError(f"top_n: expected >= 1 genes per sample, got {top_n}")
    alignment = _align_and_log(samples, model, max_missing_fraction)
    scaled = model.scale(alignment.raw)
    _warn_if_shifted(scaled, alignment.imputed, model)
    proba = model.predict_proba(alignment.raw)
    best = top_tissues(proba)
    tissues = np.asarray(model.tissues, dtype=object)
    predictions = _predictions_table(samples.sample_ids, tissues, proba, best, alignment.n_missing)
    if checks is not None:
        from rnaseq_saliency.sample_checks import check_genes, log_flagged, with_checks

        check_genes(checks, model.gene_ids, "predict")
        called = predictions["tissue_1"].tolist()
        predictions = with_checks(predictions, checks, alignment.raw, called, "missing_genes")
        log_flagged(predictions, "tissue_1")

    maps = attribute(
        model.network,
        scaled,
        method=method,
        target=best[:, 0],
        abs=abs,
        batch_size=batch_size,
        seed=seed,
        **options,
    )
    top_genes = _top_genes_table(
        model, samples.sample_ids, tissues[best[:, 0]], maps, scaled, alignment.imputed, top_n
    )
    return PredictResult(predictions, top_genes, maps, alignment)


# --------------------------------------------------------------------------------------------
# Files and figures
# --------------------------------------------------------------------------------------------


def _write_tsv(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    table = table.copy()
    for column in table.columns:
        if table[column].dtype == bool:
            table[column] = np.where(table[column], "true", "false")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", lineterminator="\n")


def write_sample_predictions(predictions: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    _write_tsv(predictions, path)


def write_sample_top_genes(top_genes: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write the top-gene table; ``imputed`` as lowercase ``true``/``false``."""
    _write_tsv(top_genes, path)


def plot_sample_top_genes(
    sample_genes: pd.DataFrame,
    sample_id: str,
    predicted: str,
    probability: float,
    method: str,
    abs: bool,
    out_png: str | os.PathLike[str],
    runner_up: tuple[str, float] | None = None,
    note: str = "",
) -> None:
    """A horizontal bar chart of one sample's top genes (most salient on top); imputed in grey.

    ``runner_up`` (the second tissue and its probability) goes into the title: a close second
    is what a mixed or swapped sample looks like. ``note`` (the sample checks' verdict, e.g.
    a novel sample's untrusted call) is a second title line.
    """
    from rnaseq_saliency.figures_saliency import save_figure
    from rnaseq_saliency.plotting import pyplot

    plt = pyplot()
    labels = [
        name if isinstance(name, str) and name else gene_id
        for gene_id, name in zip(sample_genes["gene_id"], sample_genes["gene_name"], strict=True)
    ]
    imputed = sample_genes["imputed"].to_numpy(dtype=bool)
    n = len(labels)
    figure, ax = plt.subplots(figsize=(6, 1.2 + 0.25 * max(n, 1)))
    positions = np.arange(n)[::-1]  # rank 1 at the top
    bars = ax.barh(
        positions,
        sample_genes["saliency"].to_numpy(dtype=float),
        color=[_IMPUTED_COLOUR if flag else _BAR_COLOUR for flag in imputed],
    )
    for bar, flag in zip(bars, imputed, strict=True):
        if flag:
            bar.set_hatch("//")
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_xlim(0, 1.02)
    what = f"{method}{', absolute' if abs else ''}"
    ax.set_xlabel(f"saliency for {predicted} ({what}; min-max scaled per sample)")
    title = f"{sample_id}: predicted {predicted} (p = {probability:.3f})"
    if runner_up is not None:
        title += f"; next {runner_up[0]} ({runner_up[1]:.3f})"
    if note:
        title += f"\n{note}"
    ax.set_title(title, fontsize=10)
    if imputed.any():
        from matplotlib.patches import Patch

        ax.legend(
            handles=[Patch(facecolor=_IMPUTED_COLOUR, hatch="//", label="not in the input")],
            loc="best",
            fontsize=7,
        )
    ax.spines[["top", "right"]].set_visible(False)
    save_figure(figure, out_png)
    plt.close(figure)


def _replace_directory(staged: Path, target: Path) -> None:
    """Put ``staged`` at ``target``; an earlier ``target`` (stale figures) is removed."""
    old: Path | None = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old)


def write_figures(
    result: PredictResult,
    figures_dir: str | os.PathLike[str],
    method: str,
    abs: bool,
) -> list[Path]:
    """One PNG per sample into ``figures_dir``, replacing what was there, all or nothing."""
    target = Path(figures_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        by_sample = dict(tuple(result.top_genes.groupby("sample_id", sort=False)))
        predictions = result.predictions
        has_runner_up = "tissue_2" in predictions.columns
        for row in predictions.to_dict("records"):
            plot_sample_top_genes(
                by_sample[row["sample_id"]],
                row["sample_id"],
                row["tissue_1"],
                row["probability_1"],
                method,
                abs,
                staged / row["figure"],
                (row["tissue_2"], row["probability_2"]) if has_runner_up else None,
                figure_note(row),
            )
        staged.chmod(0o777 & ~_umask())
        _replace_directory(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return [target / name for name in result.predictions["figure"]]


def figure_note(row: dict[str, Any]) -> str:
    """The sample checks' verdict for a sample's figure title ("" without checks or flags)."""
    notes = []
    if row.get("novel"):
        notes.append("NOVEL: unlike every training tissue, call not to be trusted")
    if row.get("possible_mixture"):
        notes.append(
            f"possible mixture: {100 * row['foreign_fraction']:.0f}% {row['foreign_organ']}"
        )
    return "; ".join(notes)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def resolve_method(method: str | os.PathLike[str], model_dir: str | os.PathLike[str]) -> str:
    """The saliency method named by ``method``: a method name; the path of a
    ``chosen_method.json``; or ``auto``, the workflow's choice beside the model
    (``results/saliency/chosen_method.json`` for ``results/model``), else ``gradient``."""
    from rnaseq_saliency.faithfulness import read_chosen_method
    from rnaseq_saliency.saliency import METHODS

    if str(method) in METHODS:
        return str(method)
    if str(method) == "auto":
        beside = Path(model_dir).parent / "saliency" / "chosen_method.json"
        if beside.is_file():
            chosen = read_chosen_method(beside)
            log.info("saliency method %s, as chosen by the workflow (%s)", chosen, beside)
            return chosen
        # The documented fallback (--help), so not a warning: a model directory copied out
        # of its workflow is explained by the original definition.
        log.info(
            "no %s beside the model: explaining with gradient (the original definition)", beside
        )
        return "gradient"
    if not Path(method).is_file():
        raise ValueError(
            f"saliency method {str(method)!r}: expected one of {list(METHODS)}, auto, or the "
            "path of a chosen_method.json (results/saliency/chosen_method.json)"
        )
    chosen = read_chosen_method(method)
    if chosen not in METHODS:
        raise ValueError(f"{method}: method {chosen!r} is not one of {list(METHODS)}")
    return chosen


def _sample_checks_of(model_dir: str | os.PathLike[str]) -> Any:
    """The sample checks stored with the model; None (logged) for a model without them."""
    from rnaseq_saliency.sample_checks import JSON_FILE, read_sample_checks

    if not (Path(model_dir) / JSON_FILE).is_file():
        # A documented fallback (a model trained before the checks existed), so not a warning.
        log.info(
            "no %s in %s: predictions come without the novelty and mixture checks (the "
            "workflow's rule sample_checks fits them)",
            JSON_FILE,
            model_dir,
        )
        return None
    return read_sample_checks(model_dir)


def run_predict(
    model_dir: str | os.PathLike[str],
    input_path: str | os.PathLike[str] | None,
    predictions_path: str | os.PathLike[str],
    top_genes_path: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str],
    *,
    top_n: int = DEFAULT_TOP_N,
    max_missing_fraction: float = DEFAULT_MAX_MISSING_FRACTION,
    method: str | os.PathLike[str] = "auto",
    saliency: SaliencySettings = DEFAULT_SALIENCY,
    threads: int | None = None,
    figures: bool = True,
) -> PredictResult:
    """The ``predict`` rule and command: load the model and input, predict, explain, write.

    ``figures`` False (the command's ``--no-figures``) writes no per-sample figure (and leaves
    the ``figure`` column empty): the tables hold every number the figures draw.

    ``method`` is what ``resolve_method`` takes; ``saliency`` says how the method runs (the
    workflow's ``saliency`` settings: sign, batch size, options).
    ``input_path`` None (config key ``predict.input`` not set) is an error saying so.
    """
    if not input_path:
        raise ValueError(
            "config key predict.input: not set; name a GCT or TSV/CSV file of samples to "
            "classify before asking for results/predict/"
        )
    import torch

    from rnaseq_saliency.ensemble import load_classifier

    if threads:
        torch.set_num_threads(int(threads))
    # The ensemble of the replicates when model_dir holds ensemble.json, else the one model.
    model = load_classifier(model_dir)
    samples = read_input_matrix(input_path, threads=int(threads or 1))
    checks = _sample_checks_of(model_dir)
    chosen = resolve_method(method, model_dir)
    options = saliency.options_of(chosen)
    result = predict_samples(
        model,
        samples,
        top_n=top_n,
        method=chosen,
        abs=saliency.abs,
        max_missing_fraction=max_missing_fraction,
        batch_size=saliency.batch_size,
        seed=saliency.seed,
        checks=checks,
        **options,
    )
    if figures:
        write_figures(result, figures_dir, chosen, saliency.abs)
    else:
        result.predictions["figure"] = ""
    write_sample_top_genes(result.top_genes, top_genes_path)
    write_sample_predictions(result.predictions, predictions_path)
    counts = result.predictions["tissue_1"].value_counts()
    log.info(
        "predicted %d samples: %s",
        len(result.predictions),
        ", ".join(f"{tissue} {n}" for tissue, n in counts.items()),
    )
    return result
