"""Checks that the saliency maps mean something (rule ``saliency_validation``).

For each tissue, from its saliency file (the maps of its correctly classified held-out samples):

- **Differential expression.** One-vs-rest Welch t statistics on log1p expression of the
  *training* split's real samples (tissue vs every other kept tissue). ``de_overlap``: the
  fraction of the top-k salient genes (by mean saliency) among the top-k genes by t;
  ``de_spearman``: Spearman correlation of mean saliency and t over all genes. With signed maps
  (``abs: false``) genes are ranked by t (higher in the tissue first), with ``abs: true`` by
  |t|, matching what the map's sign can express.
- **Markers.** For tissues with a set in the GMT file (set name = tissue label), the
  hypergeometric p-value of seeing at least ``marker_overlap`` markers among the top-k salient
  genes, drawing k from the model's genes (the universe) of which ``n_markers`` are markers.
  Marker genes match on the unversioned Ensembl id, or on the symbol for entries that are not
  Ensembl ids.
- **Stability.** The tissue's samples are split into two random halves (seeded per tissue);
  ``stability_overlap`` is the top-k overlap of the two halves' mean maps.
- **Sanity (Adebayo et al. 2018, model randomisation).** The same maps (method, options,
  target class) from a copy of the network with every layer re-initialised (seeded), on up to
  ``RANDOM_CHECK_SAMPLES`` of the tissue's samples (drawn per tissue, seeded);
  ``random_spearman`` is the Spearman correlation of its mean map with the trained model's mean
  map over the same samples.
  Maps that explain the model must change when the model does: it should be near 0.

Overlaps are fractions of k. A last row, ``all_tissues_median``, holds the median of every
column over the tissues where it is defined (``n_samples`` and ``n_evaluated``: sums).
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rnaseq_saliency.datasets import tissue_of
from rnaseq_saliency.differential import read_de_table
from rnaseq_saliency.evaluate import read_predictions
from rnaseq_saliency.expression import ExpressionTable, read_expression
from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.genes import read_gmt, read_selected_genes
from rnaseq_saliency.saliency import (
    ModelLike,
    TissueSaliency,
    attribute,
    correct_samples,
    files_of_method,
    rank_genes,
    read_tissue_saliency,
)
from rnaseq_saliency.tissues import tissue_seed

log = logging.getLogger(__name__)

SUMMARY_ROW = "all_tissues_median"
# Samples per tissue in the randomised-model check: a mean map over 16 samples is stable enough
# for a correlation, and integrated gradients and SmoothGrad cost tens of passes per sample.
RANDOM_CHECK_SAMPLES = 16
VALIDATION_COLUMNS = [
    "tissue",
    "method",
    "abs",
    "n_samples",
    "n_evaluated",
    "de_overlap",
    "de_spearman",
    "n_markers",
    "marker_overlap",
    "marker_fraction",
    "marker_p",
    "stability_overlap",
    "random_spearman",
]
_VERSION = re.compile(r"\.\d+(?=(_PAR_Y)?$)")


# --------------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------------


def unversioned(gene_id: str) -> str:
    """``ENSG00000186092.4`` -> ``ENSG00000186092``; a ``_PAR_Y`` suffix is kept."""
    return _VERSION.sub("", gene_id.strip())


def marker_indices(
    markers: Sequence[str], gene_ids: Sequence[str], gene_names: Sequence[str]
) -> np.ndarray:
    """Indices of the model genes that are markers (by unversioned Ensembl id, else symbol)."""
    by_id = {unversioned(g): i for i, g in reversed(list(enumerate(gene_ids)))}
    by_name = {n: i for i, n in reversed(list(enumerate(gene_names))) if n}
    found: set[int] = set()
    for marker in markers:
        token = marker.strip()
        index = by_id.get(unversioned(token)) if token.startswith("ENS") else by_name.get(token)
        if index is not None:
            found.add(index)
    return np.array(sorted(found), dtype=np.int64)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores (ties in input order, NaN last)."""
    return rank_genes(np.asarray(scores, dtype=np.float64))[:k]


def topk_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Fraction of the top-k of ``a`` that is also in the top-k of ``b``."""
    if k < 1:
        raise ValueError(f"config key saliency.validation_top_k: expected >= 1, got {k}")
    k = min(k, len(a))
    return len(set(top_k(a, k).tolist()) & set(top_k(b, k).tolist())) / k


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation over the genes where both are finite; NaN if either is constant."""
    from scipy.stats import spearmanr

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def hypergeom_p(overlap: int, universe: int, n_markers: int, k: int) -> float:
    """P(X >= overlap) for X hypergeometric: k draws from ``universe`` with ``n_markers`` hits."""
    from scipy.stats import hypergeom

    return float(hypergeom.sf(overlap - 1, universe, n_markers, k))


def split_half_overlap(maps: np.ndarray, k: int, seed: int) -> float:
    """Top-k overlap of the mean maps of two random halves of the samples (NaN if < 2)."""
    n = maps.shape[0]
    if n < 2:
        return float("nan")
    order = np.random.default_rng(seed).permutation(n)
    first, second = order[: n // 2], order[n // 2 :]
    return topk_overlap(maps[first].mean(axis=0), maps[second].mean(axis=0), k)


def randomised_network(network: Any, seed: int) -> Any:
    """A copy of ``network`` with every layer's parameters re-initialised (seeded).

    Uses each module's own ``reset_parameters`` (torch's default initialisation) under a forked
    random state, so the caller's generator is untouched. A network with parameters outside
    such modules is refused: it could not be fully randomised.
    """
    import torch

    clone = copy.deepcopy(network)
    reset: set[int] = set()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in clone.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
                reset.update(id(p) for p in module.parameters(recurse=False))
    left = [name for name, p in clone.named_parameters() if id(p) not in reset]
    if left:
        raise ValueError(f"cannot re-initialise parameter(s) {left[:3]}: no reset_parameters()")
    return clone


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


def _marker_columns(
    mean: np.ndarray, markers: np.ndarray | None, k: int
) -> tuple[float, float, float, float]:
    if markers is None:
        return (float("nan"),) * 4
    chosen = set(top_k(mean, k).tolist())
    hits = len(chosen & set(markers.tolist()))
    p = hypergeom_p(hits, len(mean), len(markers), k) if len(markers) else float("nan")
    return float(len(markers)), float(hits), hits / k, p


def validate_tissue(
    result: TissueSaliency,
    t_statistic: np.ndarray,
    random_check: tuple[np.ndarray, np.ndarray] | None,
    markers: np.ndarray | None,
    top_k_genes: int,
    seed: int,
) -> dict[str, Any]:
    """One row of validation.tsv from a tissue's maps and the precomputed comparisons."""
    k = min(top_k_genes, len(result.gene_ids))
    signed = not result.info.get("abs", False)
    de_score = t_statistic if signed else np.abs(t_statistic)
    row: dict[str, Any] = {
        "tissue": result.tissue,
        "method": result.info.get("method", ""),
        "abs": bool(result.info.get("abs", False)),
        "n_samples": result.n_samples,
        "n_evaluated": int(result.info.get("n_evaluated", result.n_samples)),
    }
    nan = float("nan")
    if result.n_samples == 0:
        row.update(dict.fromkeys(VALIDATION_COLUMNS[5:], nan))
        if markers is not None:
            row["n_markers"] = float(len(markers))
        return row
    defined = np.isfinite(de_score).any()
    row["de_overlap"] = topk_overlap(result.mean, de_score, k) if defined else nan
    row["de_spearman"] = spearman(result.mean, de_score)
    n_markers, hits, fraction, p = _marker_columns(result.mean, markers, k)
    row.update(n_markers=n_markers, marker_overlap=hits, marker_fraction=fraction, marker_p=p)
    row["stability_overlap"] = split_half_overlap(result.maps, k, tissue_seed(seed, result.tissue))
    row["random_spearman"] = spearman(*random_check) if random_check is not None else nan
    return row


def summary_row(table: pd.DataFrame) -> dict[str, Any]:
    """Medians over tissues (NaN skipped); sample counts summed."""
    row: dict[str, Any] = {"tissue": SUMMARY_ROW}
    if len(table):
        row["method"] = table["method"].iloc[0]
        row["abs"] = bool(table["abs"].iloc[0])
    for column in VALIDATION_COLUMNS[3:]:
        values = pd.to_numeric(table[column], errors="coerce")
        if column in ("n_samples", "n_evaluated"):
            row[column] = int(values.sum())
        else:
            row[column] = float(values.median()) if values.notna().any() else float("nan")
    return row


def _read_checked_maps(
    saliency_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    model: ModelLike,
    predictions: pd.DataFrame | None,
) -> list[TissueSaliency]:
    """Read one method's saliency files; refuse one that is stale or holds other samples."""
    results = []
    for path, tissue in zip(saliency_files, tissues, strict=True):
        result = read_tissue_saliency(path)
        if result.tissue != tissue:
            raise ValueError(f"{path}: holds the maps of {result.tissue!r}, expected {tissue!r}")
        if result.gene_ids != list(model.gene_ids):
            raise ValueError(f"{path}: its genes differ from the model's")
        if predictions is not None and result.n_samples:
            expected, _, _ = correct_samples(predictions, tissue)
            stray = sorted(set(result.sample_ids) - set(expected))
            if stray:
                raise ValueError(f"{path}: sample {stray[0]} is not a correct prediction")
        results.append(result)
    return results


def random_check_rows(n_samples: int, seed: int, tissue: str) -> np.ndarray:
    """Which of a tissue's mapped samples the randomised-model check uses: all, or
    ``RANDOM_CHECK_SAMPLES`` of them drawn at random (seeded per tissue), in their order."""
    if n_samples <= RANDOM_CHECK_SAMPLES:
        return np.arange(n_samples)
    rng = np.random.default_rng(tissue_seed(seed, tissue))
    return np.sort(rng.choice(n_samples, RANDOM_CHECK_SAMPLES, replace=False))


def _random_model_check(
    random_network: Any,
    model: ModelLike,
    table: ExpressionTable,
    result: TissueSaliency,
    seed: int,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The trained and the randomised model's mean maps over the checked samples
    (``random_check_rows``), the latter computed with the method and options the tissue's file
    records."""
    position = {s: i for i, s in enumerate(table.sample_ids)}
    missing = [s for s in result.sample_ids if s not in position]
    if missing:
        raise ValueError(f"{result.tissue}: sample {missing[0]} of the saliency maps is missing")
    checked = random_check_rows(result.n_samples, seed, result.tissue)
    ids = [result.sample_ids[i] for i in checked]
    scaled = model.scale(table.matrix[[position[s] for s in ids]])
    maps = attribute(
        random_network,
        scaled,
        method=str(result.info.get("method", "gradient")),
        target=list(model.tissues).index(result.tissue),
        abs=bool(result.info.get("abs", False)),
        batch_size=batch_size,
        seed=int(result.info.get("seed", seed)),
        **dict(result.info.get("options", {})),
    )
    return result.maps[checked].mean(axis=0), maps.mean(axis=0)


def _random_checks(
    results: Sequence[TissueSaliency],
    model: ModelLike,
    expression_files: Sequence[str | os.PathLike[str]],
    seed: int,
    batch_size: int,
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Each (method, tissue)'s ``_random_model_check``: one pass over the expression files,
    one tissue's matrix in memory at a time."""
    random_network = randomised_network(model.network, seed)
    by_tissue: dict[str, list[TissueSaliency]] = {}
    for result in results:
        if result.n_samples and result.tissue in model.tissues:
            by_tissue.setdefault(result.tissue, []).append(result)
    means: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for path in expression_files:
        wanted = by_tissue.get(tissue_of(path), [])
        if not wanted:
            continue
        table = read_expression(path)
        if table.gene_ids != list(model.gene_ids):
            raise ValueError(f"{path}: its genes differ from the model's")
        for result in wanted:
            key = (str(result.info.get("method", "")), result.tissue)
            means[key] = _random_model_check(random_network, model, table, result, seed, batch_size)
    return means


def saliency_validation(
    maps_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    model: ModelLike,
    expression_files: Sequence[str | os.PathLike[str]],
    de_statistic: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    marker_sets: dict[str, list[str]] | None = None,
    top_k_genes: int = 20,
    seed: int = 0,
    batch_size: int = 512,
) -> pd.DataFrame:
    """The validation table: per method (the folder of its files, ``saliency.maps_path``), a
    row per tissue of ``tissues`` and a summary row.

    ``de_statistic`` is the ``differential`` table (genes x tissues t statistics); the
    randomised model's maps use each file's method and options. ``predictions``, when given,
    must list every file's samples as correct in its split.
    """
    methods = list(dict.fromkeys(os.path.basename(os.path.dirname(p)) for p in maps_files))
    results = [
        result
        for method in methods
        for result in _read_checked_maps(
            files_of_method(maps_files, method), tissues, model, predictions
        )
    ]
    random_checks = _random_checks(results, model, expression_files, seed, batch_size)
    gene_names = list(model.gene_names)
    rows_out = []
    for result in results:
        markers = None
        if marker_sets is not None and result.tissue in marker_sets:
            markers = marker_indices(marker_sets[result.tissue], model.gene_ids, gene_names)
        t_statistic = (
            de_statistic[result.tissue].to_numpy(dtype=np.float64)
            if result.tissue in de_statistic.columns
            else np.full(len(model.gene_ids), np.nan)
        )
        method = str(result.info.get("method", ""))
        rows_out.append(
            validate_tissue(
                result,
                t_statistic,
                random_checks.get((method, result.tissue)),
                markers,
                top_k_genes,
                seed,
            )
        )
    table = pd.DataFrame(rows_out, columns=VALIDATION_COLUMNS)
    blocks = []
    for method, rows in table.groupby("method", sort=False):
        summary = summary_row(rows)
        _log_headline(rows, summary, top_k_genes, str(method))
        blocks.extend([rows, pd.DataFrame([summary])])
    return pd.concat(blocks, ignore_index=True)[VALIDATION_COLUMNS]


def _log_headline(table: pd.DataFrame, summary: dict[str, Any], k: int, method: str) -> None:
    significant = int((pd.to_numeric(table["marker_p"], errors="coerce") < 0.05).sum())
    with_markers = int(pd.to_numeric(table["marker_p"], errors="coerce").notna().sum())
    log.info(
        "saliency validation of %s (top %d, median over tissues): DE overlap %.2f, DE "
        "Spearman %.2f, marker fraction %.2f (p < 0.05 in %d of %d tissues with markers), "
        "split-half stability %.2f, randomised-model Spearman %.2f",
        method,
        k,
        summary["de_overlap"],
        summary["de_spearman"],
        summary["marker_fraction"],
        significant,
        with_markers,
        summary["stability_overlap"],
        summary["random_spearman"],
    )
    if np.isfinite(summary["random_spearman"]) and abs(summary["random_spearman"]) > 0.5:
        log.warning(
            "%s maps of a randomised model correlate with the trained model's (median "
            "Spearman %.2f): they may reflect the input more than the model (Adebayo et al. "
            "2018)",
            method,
            summary["random_spearman"],
        )


def write_validation(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", na_rep="NA")


def read_validation(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``validation.tsv`` (``write_validation``)."""
    table = pd.read_csv(
        path,
        sep="\t",
        dtype={"tissue": str, "method": str},
        keep_default_na=False,
        na_values=["NA"],
    )
    missing = [c for c in VALIDATION_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {VALIDATION_COLUMNS}")
    return table


def run_validation(
    maps_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    model_dir: str | os.PathLike[str],
    predictions_path: str | os.PathLike[str],
    expression_files: Sequence[str | os.PathLike[str]],
    de_path: str | os.PathLike[str],
    genes_path: str | os.PathLike[str],
    marker_sets_path: str | os.PathLike[str] | None,
    out_path: str | os.PathLike[str],
    top_k_genes: int = 20,
    seed: int = 0,
    batch_size: int = 512,
) -> pd.DataFrame:
    """The ``saliency_validation`` rule: read everything, validate, write validation.tsv."""
    from rnaseq_saliency.model import load_model

    model = load_model(model_dir)
    gene_ids = read_selected_genes(genes_path)["gene_id"].tolist()
    if gene_ids != list(model.gene_ids):
        raise ValueError(f"{genes_path}: the selected genes differ from the model's")
    de_statistic = read_de_table(de_path)
    if list(de_statistic.index) != gene_ids:
        raise ValueError(f"{de_path}: its genes differ from the model's; rerun rule de_statistic")
    marker_sets = read_gmt(marker_sets_path) if marker_sets_path else None
    if marker_sets is not None:
        unknown = sorted(set(marker_sets) - set(tissues))
        if unknown:
            log.info("%s: %d set(s) name no configured tissue", marker_sets_path, len(unknown))
    table = saliency_validation(
        maps_files,
        tissues,
        model,
        expression_files,
        de_statistic,
        read_predictions(predictions_path),
        marker_sets,
        top_k_genes,
        seed,
        batch_size,
    )
    write_validation(out_path, table)
    return table
