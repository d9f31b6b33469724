"""Checks of a sample beside its tissue call: "none of these tissues" (novelty) and mixtures.

Both are fitted after training on the REAL training samples only (never the synthetic rows of
the augmented files, never a test sample), their thresholds are set on the real validation
samples, and they are stored with the model (``results/model/sample_checks.json`` and
``sample_checks.safetensors``; this module alone reads and writes them), so that
``predict --model results/model`` carries them. Nothing here touches the network: a check
needs only the raw expression of the model's genes and, for the mixture flag, the called tissue.

**Novelty.** Expression is scaled as the model scales it (log1p, then the model's per-gene
training mean and standard deviation, copied into the checks file) and projected on the first
principal components of the real training samples (scikit-learn ``PCA``). Two scores are fitted:

- ``pca_distance``: the root mean square distance per gene from the sample to the nearest
  tissue centroid, the centroid taken in the PCA space and the sample's part outside it (its
  PCA reconstruction residual) counted in full: a sample like no tissue is far from every
  centroid, and a profile no training sample resembles (noise, shuffled genes) has a large
  residual;
- ``local_outlier_factor``: scikit-learn's ``LocalOutlierFactor(novelty=True)`` on the PCA
  scores and the residual norm (the training features are stored; the detector is refitted,
  deterministically, when the checks are loaded).

Each score's threshold is the ``1 - novelty_rate`` quantile of a log-normal fitted to the
validation samples' scores (mean and standard deviation of the log score): every validation
sample contributes, where the empirical 99th percentile of a small validation split (a few
samples per tissue) rests on its two or three largest values. ``novelty_method: auto`` keeps the
score that flags the most synthetic outliers made from the validation samples (their genes
shuffled, a quarter of their genes shuffled, log-normal noise) at its threshold, then the higher
AUROC against the validation samples, then the first listed; the comparison is stored.

**Mixtures.** Each sample is fitted as a non-negative mixture of the training tissues' mean
profiles on linear expression (TPM; counts per million of the model's genes for
``data.measure: reads``) by weighted non-negative least squares (``scipy.optimize.nnls``); a
gene's weight is 1 / (1 + its within-tissue standard deviation among the training samples), so
that genes that vary within a tissue do not pose as another tissue. The coefficients, normalised
to sum 1, are the fractions. Fractions are summed per organ (GTEx's SMTS,
``rnaseq_saliency.tissues.organ_of``): tissues of one organ (brain regions, the two skins, the
heart chambers) share a profile and cannot be told apart as mixtures, so they are reported,
never flagged. A clean sample of some tissues carries a fraction of a related organ by itself
(colon sigmoid and esophagus muscularis are both mostly smooth muscle), so each tissue's
*baseline* is the 90th percentile of each organ's fraction among its real training samples;
a sample's *foreign fraction* is, over the organs other than its called tissue's, the largest
excess of the organ's fraction over the called tissue's baseline, and ``possible_mixture`` is
set when it exceeds the threshold: the ``1 - mixture_rate`` quantile of the validation samples'
foreign fractions (with their own tissue as the call), at least ``MIN_MIXTURE_THRESHOLD``. One
global threshold over all validation samples keeps it stable on a small validation split.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnaseq_saliency.fileio import atomic_path

log = logging.getLogger(__name__)

JSON_FILE = "sample_checks.json"
ARRAYS_FILE = "sample_checks.safetensors"
FORMAT = "rnaseq-saliency-sample-checks"
FORMAT_VERSION = 1
NOVELTY_METHODS = ("pca_distance", "local_outlier_factor")
MAX_COMPONENTS = 50
LOF_NEIGHBORS = 20
BASELINE_QUANTILE = 0.9
# Below 2% a fraction is within what the fit of a clean sample wanders by: never a mixture.
MIN_MIXTURE_THRESHOLD = 0.02
N_COMPONENTS_SHOWN = 3
# The checks' columns, in order (predict's predictions.tsv, evaluate_checks' sample_checks.tsv);
# documented in README.md.
CHECK_COLUMNS = [
    "novelty_score",
    "novel",
    *[
        f"{kind}_{i}"
        for i in range(1, N_COMPONENTS_SHOWN + 1)
        for kind in ("component", "fraction")
    ],
    "foreign_organ",
    "foreign_fraction",
    "possible_mixture",
]
_ARRAY_NAMES = (
    "scaling_mean",
    "scaling_std",
    "pca_mean",
    "pca_components",
    "centroids",
    "lof_features",
    "reference",
    "weights",
    "baseline",
)


class SampleChecksError(ValueError):
    """A sample-checks file that cannot be used; the message names the file."""


@dataclass
class SampleChecks:
    """The fitted checks (see the module doc); arrays are in the model's gene order."""

    gene_ids: list[str]
    tissues: list[str]  # reference tissues, in the order of ``reference``'s columns
    organs: list[str]  # the organ (SMTS) of each tissue
    organ_names: list[str]  # distinct organs, the columns of ``baseline``
    measure: str
    novelty_method: str
    novelty_threshold: float
    mixture_threshold: float
    scaling_mean: np.ndarray  # (genes,) float32: the model's log1p training mean
    scaling_std: np.ndarray  # (genes,) float32
    pca_mean: np.ndarray  # (genes,)
    pca_components: np.ndarray  # (k, genes)
    centroids: np.ndarray  # (tissues, k): each tissue's mean PCA score
    lof_features: np.ndarray  # (real training samples, k + 1)
    reference: np.ndarray  # (genes, tissues): mean linear expression of each tissue
    weights: np.ndarray  # (genes,): the NNLS weight of each gene
    baseline: np.ndarray  # (tissues, organs): 90th percentile organ fraction of clean samples
    info: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def organ_index(self) -> np.ndarray:
        """The column of ``baseline`` of each tissue's organ."""
        position = {organ: i for i, organ in enumerate(self.organ_names)}
        return np.asarray([position[organ] for organ in self.organs], dtype=np.int64)

    @cached_property
    def detector(self) -> Any:
        """The fitted ``LocalOutlierFactor`` (refitted on the stored features, deterministic)."""
        from sklearn.neighbors import LocalOutlierFactor

        neighbors = min(LOF_NEIGHBORS, max(self.lof_features.shape[0] - 1, 1))
        return LocalOutlierFactor(n_neighbors=neighbors, novelty=True).fit(self.lof_features)


# ----------------------------------------------------------------------------- scores


def scale(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The model's input scaling: ``(log1p(raw) - mean) / std``, float32."""
    return ((np.log1p(np.asarray(raw, dtype=np.float32)) - mean) / std).astype(np.float32)


def pca_features(checks: SampleChecks, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA scores (n, k) and squared reconstruction residuals (n,) of raw expression."""
    centred = scale(raw, checks.scaling_mean, checks.scaling_std) - checks.pca_mean
    scores = centred @ checks.pca_components.T
    residual = centred - scores @ checks.pca_components
    return scores, np.einsum("ij,ij->i", residual, residual, dtype=np.float64)


def pca_distance(
    scores: np.ndarray, residual2: np.ndarray, centroids: np.ndarray, n_genes: int
) -> np.ndarray:
    """RMS distance per gene to the nearest centroid: sqrt((min_c |z - c|^2 + residual^2) / g)."""
    z = scores.astype(np.float64)
    squared = (
        np.einsum("ij,ij->i", z, z)[:, None]
        - 2 * z @ centroids.T
        + np.einsum("ij,ij->i", centroids, centroids)[None, :]
    )
    nearest = np.maximum(squared.min(axis=1), 0.0)
    return np.sqrt((nearest + residual2) / max(n_genes, 1))


def _lof_input(scores: np.ndarray, residual2: np.ndarray) -> np.ndarray:
    return np.column_stack([scores, np.sqrt(residual2)]).astype(np.float64)


def novelty_scores(checks: SampleChecks, raw: np.ndarray, method: str | None = None) -> np.ndarray:
    """The novelty score of each sample (higher: less like the training samples)."""
    method = method or checks.novelty_method
    scores, residual2 = pca_features(checks, raw)
    if method == "pca_distance":
        return pca_distance(scores, residual2, checks.centroids, len(checks.gene_ids))
    if method == "local_outlier_factor":
        return -checks.detector.score_samples(_lof_input(scores, residual2))
    raise ValueError(f"novelty method {method!r}: expected one of {list(NOVELTY_METHODS)}")


def linear_profile(raw: np.ndarray, measure: str) -> np.ndarray:
    """Linear expression for the mixture fit: TPM as is; reads as counts per million of the
    model's genes (library-size normalised)."""
    profile = np.asarray(raw, dtype=np.float64)
    if measure == "reads":
        totals = profile.sum(axis=1, keepdims=True)
        profile = profile / np.where(totals > 0, totals, 1.0) * 1e6
    return profile


def nnls_fractions(reference: np.ndarray, weights: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """Weighted NNLS of each profile (n, genes) on the reference columns (genes, tissues),
    normalised to sum 1 per sample (all zero for a sample the fit gives nothing)."""
    from scipy.optimize import nnls

    design = reference * weights[:, None]
    fractions = np.zeros((profiles.shape[0], reference.shape[1]), dtype=np.float64)
    for i, profile in enumerate(profiles):
        fractions[i] = nnls(design, profile * weights, maxiter=50 * reference.shape[1])[0]
    totals = fractions.sum(axis=1, keepdims=True)
    return fractions / np.where(totals > 0, totals, 1.0)


def mixture_fractions(checks: SampleChecks, raw: np.ndarray) -> np.ndarray:
    """Each sample's fraction of every reference tissue (n, tissues), summing to 1."""
    return nnls_fractions(checks.reference, checks.weights, linear_profile(raw, checks.measure))


def organ_fractions(fractions: np.ndarray, organ_index: np.ndarray, n_organs: int) -> np.ndarray:
    """Tissue fractions (n, tissues) summed per organ (n, organs)."""
    membership = np.zeros((len(organ_index), n_organs))
    membership[np.arange(len(organ_index)), organ_index] = 1.0
    return fractions @ membership


def foreign_fraction(
    by_organ: np.ndarray, called: np.ndarray, baseline: np.ndarray, organ_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, over the organs other than the called tissue's (``called``: tissue indices):
    the largest excess of an organ's fraction over the called tissue's baseline, and that
    organ's column. With a single organ nothing is foreign (excess 0, column of that organ)."""
    n = len(called)
    excess = by_organ - baseline[called]
    excess[np.arange(n), organ_index[called]] = -np.inf
    if excess.shape[1] == 1:
        return np.zeros(n), np.zeros(n, dtype=np.int64)
    which = excess.argmax(axis=1)
    return excess[np.arange(n), which], which


def check_samples(checks: SampleChecks, raw: np.ndarray, called: Sequence[str]) -> pd.DataFrame:
    """The ``CHECK_COLUMNS`` of each sample (raw expression in the checks' gene order, one
    called tissue per sample; a called tissue without a reference profile is its own organ
    and gets no baseline)."""
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 2 or raw.shape[1] != len(checks.gene_ids):
        raise ValueError(
            f"sample checks: expression of shape {raw.shape}; expected {len(checks.gene_ids)} "
            "genes in the model's order"
        )
    novelty = novelty_scores(checks, raw)
    fractions = mixture_fractions(checks, raw)
    by_organ = organ_fractions(fractions, checks.organ_index, len(checks.organ_names))
    called_index = _tissue_indices(checks, called)
    excess, organ = foreign_fraction(by_organ, called_index, checks.baseline, checks.organ_index)
    table = pd.DataFrame({"novelty_score": novelty, "novel": novelty > checks.novelty_threshold})
    order = np.argsort(-fractions, axis=1, kind="stable")[:, :N_COMPONENTS_SHOWN]
    names = np.asarray(checks.tissues, dtype=object)
    rows = np.arange(raw.shape[0])
    for i in range(N_COMPONENTS_SHOWN):
        shown = order[:, i] if i < order.shape[1] else np.zeros(len(rows), dtype=np.int64)
        table[f"component_{i + 1}"] = names[shown]
        table[f"fraction_{i + 1}"] = fractions[rows, shown] if i < order.shape[1] else 0.0
    table["foreign_organ"] = np.asarray(checks.organ_names, dtype=object)[organ]
    table["foreign_fraction"] = by_organ[rows, organ]
    table["possible_mixture"] = excess > checks.mixture_threshold
    return table[CHECK_COLUMNS]


def _tissue_indices(checks: SampleChecks, called: Sequence[str]) -> np.ndarray:
    position = {tissue: i for i, tissue in enumerate(checks.tissues)}
    unknown = sorted(set(called) - set(position))
    if unknown:
        raise ValueError(
            f"sample checks: called tissue(s) {unknown} have no reference profile; the checks "
            "were fitted for another model"
        )
    return np.asarray([position[tissue] for tissue in called], dtype=np.int64)


# ----------------------------------------------------------------------------- fitting


def lognormal_threshold(scores: np.ndarray, rate: float) -> float:
    """The ``1 - rate`` quantile of a log-normal fitted to positive ``scores`` (module doc)."""
    from scipy.stats import norm

    logs = np.log(np.maximum(np.asarray(scores, dtype=np.float64), 1e-12))
    spread = float(logs.std(ddof=1)) if logs.size > 1 else 0.0
    return float(np.exp(logs.mean() + norm.ppf(1 - rate) * spread))


def synthetic_outliers(raw: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Profiles like no tissue, made from real samples ``raw``: every gene shuffled, a quarter
    of the genes shuffled, and log-normal noise with the samples' log-scale mean and spread."""
    rng = np.random.default_rng(seed)
    raw = np.asarray(raw, dtype=np.float32)
    shuffled = np.stack([rng.permutation(row) for row in raw])
    partial = raw.copy()
    n_genes = raw.shape[1]
    for row in partial:
        genes = rng.choice(n_genes, size=max(n_genes // 4, 2), replace=False)
        row[genes] = row[rng.permutation(genes)]
    logged = np.log1p(raw)
    noise = np.expm1(rng.normal(logged.mean(), logged.std(), size=(max(len(raw) // 4, 5), n_genes)))
    return {
        "shuffled": shuffled,
        "partly_shuffled": partial,
        "noise": noise.astype(np.float32),
    }


def _compare_novelty(
    checks: SampleChecks, val_raw: np.ndarray, rate: float, seed: int
) -> dict[str, dict[str, float]]:
    """Per method: its threshold on the validation samples, their flagged fraction, and the
    synthetic outliers' detection rate and AUROC against the validation samples."""
    from sklearn.metrics import roc_auc_score

    outliers = np.concatenate(list(synthetic_outliers(val_raw, seed).values()))
    comparison = {}
    for method in NOVELTY_METHODS:
        clean = novelty_scores(checks, val_raw, method)
        odd = novelty_scores(checks, outliers, method)
        threshold = lognormal_threshold(clean, rate)
        labels = np.r_[np.zeros(len(clean)), np.ones(len(odd))]
        comparison[method] = {
            "threshold": threshold,
            "validation_flagged": float((clean > threshold).mean()),
            "outliers_flagged": float((odd > threshold).mean()),
            "auroc": float(roc_auc_score(labels, np.r_[clean, odd])),
        }
    return comparison


def choose_novelty_method(comparison: dict[str, dict[str, float]]) -> str:
    """The most outliers flagged, then the higher AUROC, then the first in NOVELTY_METHODS."""
    return max(
        NOVELTY_METHODS,
        key=lambda m: (
            comparison[m]["outliers_flagged"],
            comparison[m]["auroc"],
            -NOVELTY_METHODS.index(m),
        ),
    )


def _fit_pca(
    train_raw: np.ndarray, tissues: list[str], train_tissues: Sequence[str], mean, std, seed: int
) -> dict[str, np.ndarray]:
    from sklearn.decomposition import PCA

    scaled = scale(train_raw, mean, std)
    k = max(1, min(MAX_COMPONENTS, scaled.shape[0] - 1, scaled.shape[1]))
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(scaled)
    components = pca.components_.astype(np.float32)
    centred = scaled - pca.mean_.astype(np.float32)
    scores = centred @ components.T
    residual = centred - scores @ components
    residual2 = np.einsum("ij,ij->i", residual, residual, dtype=np.float64)
    labels = np.asarray(train_tissues, dtype=object)
    centroids = np.stack([scores[labels == t].mean(axis=0, dtype=np.float64) for t in tissues])
    return {
        "pca_mean": pca.mean_.astype(np.float32),
        "pca_components": components,
        "centroids": centroids,
        "lof_features": _lof_input(scores, residual2),
    }


def _fit_reference(
    train_raw: np.ndarray, tissues: list[str], train_tissues: Sequence[str], measure: str
) -> tuple[np.ndarray, np.ndarray]:
    """Each tissue's mean linear profile (genes, tissues) and the genes' NNLS weights."""
    profile = linear_profile(train_raw, measure)
    labels = np.asarray(train_tissues, dtype=object)
    reference = np.stack([profile[labels == t].mean(axis=0) for t in tissues], axis=1)
    position = {t: i for i, t in enumerate(tissues)}
    own = reference[:, [position[t] for t in train_tissues]].T
    within_sd = np.sqrt(np.mean(np.square(profile - own), axis=0))
    return reference, 1.0 / (1.0 + within_sd)


def _fit_mixtures(
    checks: SampleChecks,
    train_raw: np.ndarray,
    train_tissues: Sequence[str],
    val_raw: np.ndarray,
    val_tissues: Sequence[str],
    rate: float,
) -> dict[str, Any]:
    """Fill the baseline (training samples) and the threshold (validation samples)."""
    n_organs = len(checks.organ_names)
    own = _tissue_indices(checks, train_tissues)
    by_organ = organ_fractions(mixture_fractions(checks, train_raw), checks.organ_index, n_organs)
    checks.baseline = np.stack(
        [
            np.quantile(by_organ[own == i], BASELINE_QUANTILE, axis=0)
            if (own == i).any()
            else np.zeros(n_organs)
            for i in range(len(checks.tissues))
        ]
    )
    val_own = _tissue_indices(checks, val_tissues)
    val_by_organ = organ_fractions(mixture_fractions(checks, val_raw), checks.organ_index, n_organs)
    excess, _ = foreign_fraction(val_by_organ, val_own, checks.baseline, checks.organ_index)
    quantile = float(np.quantile(excess, 1 - rate)) if excess.size else 0.0
    checks.mixture_threshold = max(quantile, MIN_MIXTURE_THRESHOLD)
    return {
        "threshold_quantile": quantile,
        "validation_flagged": float((excess > checks.mixture_threshold).mean()),
    }


def fit_sample_checks(
    train_raw: np.ndarray,
    train_tissues: Sequence[str],
    val_raw: np.ndarray,
    val_tissues: Sequence[str],
    *,
    gene_ids: Sequence[str],
    scaling_mean: np.ndarray,
    scaling_std: np.ndarray,
    measure: str,
    novelty_rate: float = 0.01,
    novelty_method: str = "auto",
    mixture_rate: float = 0.04,
    seed: int = 0,
) -> SampleChecks:
    """Fit the checks on REAL training samples; set the thresholds on validation samples.

    ``train_raw``/``val_raw``: raw expression (samples, genes) in ``gene_ids`` order;
    ``scaling_mean``/``scaling_std``: the model's scaling. Neither may hold synthetic rows or
    test samples: the caller reads them from the split table (``run_fit``).
    """
    from rnaseq_saliency.tissues import organ_of

    if len(val_tissues) == 0:
        raise ValueError("sample checks: no validation samples to set the thresholds on")
    if novelty_method not in ("auto", *NOVELTY_METHODS):
        raise ValueError(
            f"config key sample_checks.novelty_method: {novelty_method!r} is not one of "
            f"{['auto', *NOVELTY_METHODS]}"
        )
    tissues = sorted(set(train_tissues))
    organs = [organ_of(t) for t in tissues]
    mean = np.asarray(scaling_mean, dtype=np.float32)
    std = np.asarray(scaling_std, dtype=np.float32)
    reference, weights = _fit_reference(train_raw, tissues, train_tissues, measure)
    checks = SampleChecks(
        gene_ids=list(gene_ids),
        tissues=tissues,
        organs=organs,
        organ_names=sorted(set(organs)),
        measure=measure,
        novelty_method="pca_distance",
        novelty_threshold=math.inf,
        mixture_threshold=math.inf,
        scaling_mean=mean,
        scaling_std=std,
        reference=reference,
        weights=weights,
        baseline=np.zeros((len(tissues), len(set(organs)))),
        **_fit_pca(train_raw, tissues, train_tissues, mean, std, seed),
    )
    comparison = _compare_novelty(checks, val_raw, novelty_rate, seed)
    chosen = choose_novelty_method(comparison) if novelty_method == "auto" else novelty_method
    checks.novelty_method = chosen
    checks.novelty_threshold = comparison[chosen]["threshold"]
    mixture = _fit_mixtures(checks, train_raw, train_tissues, val_raw, val_tissues, mixture_rate)
    checks.info = {
        "n_training_samples": len(train_tissues),
        "n_validation_samples": len(val_tissues),
        "n_components": int(checks.pca_components.shape[0]),
        "novelty_rate": novelty_rate,
        "novelty_method_setting": novelty_method,
        "novelty_comparison": comparison,
        "mixture_rate": mixture_rate,
        "mixture": mixture,
        "seed": seed,
    }
    _log_fit(checks)
    return checks


def _log_fit(checks: SampleChecks) -> None:
    for method, row in checks.info["novelty_comparison"].items():
        log.info(
            "novelty %s: threshold %.4g flags %.1f%% of the validation samples and %.1f%% of "
            "the synthetic outliers (AUROC %.4f)",
            method,
            row["threshold"],
            100 * row["validation_flagged"],
            100 * row["outliers_flagged"],
            row["auroc"],
        )
    log.info(
        "novelty score: %s (%s), threshold %.4g; mixture threshold %.4f over each tissue's "
        "baseline (flags %.1f%% of the validation samples)",
        checks.novelty_method,
        checks.info["novelty_method_setting"],
        checks.novelty_threshold,
        checks.mixture_threshold,
        100 * checks.info["mixture"]["validation_flagged"],
    )


# ----------------------------------------------------------------------------- files


def write_sample_checks(checks: SampleChecks, model_dir: str | os.PathLike[str]) -> None:
    """Write ``sample_checks.json`` and ``sample_checks.safetensors`` into ``model_dir``."""
    from safetensors.numpy import save_file

    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        name: np.ascontiguousarray(getattr(checks, name), dtype=np.float64) for name in _ARRAY_NAMES
    }
    with atomic_path(directory / ARRAYS_FILE) as tmp:
        save_file(arrays, str(tmp))
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gene_ids": checks.gene_ids,
        "tissues": checks.tissues,
        "organs": checks.organs,
        "organ_names": checks.organ_names,
        "measure": checks.measure,
        "novelty_method": checks.novelty_method,
        "novelty_threshold": checks.novelty_threshold,
        "mixture_threshold": checks.mixture_threshold,
        "info": checks.info,
    }
    with atomic_path(directory / JSON_FILE) as tmp:
        tmp.write_text(json.dumps(metadata, indent=2) + "\n")


def read_sample_checks(model_dir: str | os.PathLike[str]) -> SampleChecks:
    """Read the checks written by ``write_sample_checks`` (safetensors and JSON: no pickle)."""
    from safetensors.numpy import load_file

    directory = Path(model_dir)
    json_path, arrays_path = directory / JSON_FILE, directory / ARRAYS_FILE
    for path in (json_path, arrays_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such file; the workflow's rule sample_checks writes {JSON_FILE} and "
                f"{ARRAYS_FILE} beside the model"
            )
    metadata = json.loads(json_path.read_text(encoding="utf-8"))
    if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
        raise SampleChecksError(f"{json_path}: not a version {FORMAT_VERSION} {FORMAT} file")
    arrays = load_file(str(arrays_path))
    missing = [name for name in _ARRAY_NAMES if name not in arrays]
    if missing:
        raise SampleChecksError(f"{arrays_path}: missing array(s) {missing}")
    float32 = {"scaling_mean", "scaling_std", "pca_mean", "pca_components"}
    checks = SampleChecks(
        **{key: metadata[key] for key in ("gene_ids", "tissues", "organs", "organ_names")},
        measure=str(metadata["measure"]),
        novelty_method=str(metadata["novelty_method"]),
        novelty_threshold=float(metadata["novelty_threshold"]),
        mixture_threshold=float(metadata["mixture_threshold"]),
        info=metadata.get("info", {}),
        **{
            name: arrays[name].astype(np.float32 if name in float32 else np.float64)
            for name in _ARRAY_NAMES
        },
    )
    if checks.reference.shape != (len(checks.gene_ids), len(checks.tissues)):
        raise SampleChecksError(f"{arrays_path}: its arrays and the lists of {json_path} disagree")
    return checks


def check_genes(checks: SampleChecks, gene_ids: Sequence[str], what: str) -> None:
    """Refuse checks fitted on other genes than ``gene_ids`` (the model's)."""
    if list(gene_ids) != checks.gene_ids:
        raise SampleChecksError(
            f"{what}: the sample checks were fitted on other genes than the model's; rerun rule "
            "sample_checks for this model"
        )


def fit_from_split(
    expression_files: Sequence[str | os.PathLike[str]],
    samples_tsv: str | os.PathLike[str],
    *,
    gene_ids: Sequence[str],
    scaling_mean: np.ndarray,
    scaling_std: np.ndarray,
    measure: str,
    settings: Any,
) -> SampleChecks:
    """``fit_sample_checks`` on the split table's real ``train`` samples (thresholds on its
    ``val`` samples), read from the per-tissue expression files: never a synthetic row (those
    live in the augmented files) nor a test sample.

    ``settings``: ``rnaseq_saliency.settings.SampleCheckSettings``.
    """
    from rnaseq_saliency.datasets import load_split_rows, read_samples

    samples = read_samples(samples_tsv)
    train = load_split_rows(expression_files, samples, "train")
    val = load_split_rows(expression_files, samples, "val")
    for rows, split in ((train, "training"), (val, "validation")):
        if rows.gene_ids != list(gene_ids):
            raise ValueError(
                f"{samples_tsv}: the {split} samples' expression files hold other genes than "
                "the model"
            )
    if not val.sample_ids:
        raise ValueError(
            f"{samples_tsv}: no validation samples; the sample checks set their thresholds on "
            "them (set split.val_fraction above 0)"
        )
    log.info(
        "fitting the sample checks on %d real training samples; thresholds on %d validation "
        "samples",
        len(train.sample_ids),
        len(val.sample_ids),
    )
    return fit_sample_checks(
        train.matrix,
        train.tissues,
        val.matrix,
        val.tissues,
        gene_ids=gene_ids,
        scaling_mean=scaling_mean,
        scaling_std=scaling_std,
        measure=measure,
        novelty_rate=settings.novelty_rate,
        novelty_method=settings.novelty_method,
        mixture_rate=settings.mixture_rate,
        seed=settings.seed,
    )


def run_fit(
    model_dir: str | os.PathLike[str],
    expression_files: Sequence[str | os.PathLike[str]],
    samples_tsv: str | os.PathLike[str],
    settings: Any,
) -> SampleChecks:
    """Rule ``sample_checks``: ``fit_from_split`` with the model's genes and scaling; the checks
    are written beside the model."""
    from rnaseq_saliency.model import load_model

    model = load_model(model_dir)
    checks = fit_from_split(
        expression_files,
        samples_tsv,
        gene_ids=model.gene_ids,
        scaling_mean=model.mean,
        scaling_std=model.std,
        measure=str(model.metadata.get("config", {}).get("data", {}).get("measure", "tpm")),
        settings=settings,
    )
    write_sample_checks(checks, model_dir)
    return checks


# ----------------------------------------------------------------------------- callers

# What predict and evaluate_checks write per sample, in order: ``call_trusted`` is False for a
# novel sample, whose tissue call is not to be trusted.
PREDICTION_CHECK_COLUMNS = ["call_trusted", *CHECK_COLUMNS]


def with_checks(
    predictions: pd.DataFrame,
    checks: SampleChecks,
    raw: np.ndarray,
    called: Sequence[str],
    before: str | None = None,
) -> pd.DataFrame:
    """``predictions`` with ``PREDICTION_CHECK_COLUMNS`` inserted before column ``before``
    (at the end when None); ``raw`` holds the same samples in the same order."""
    table = check_samples(checks, raw, called)
    table.insert(0, "call_trusted", ~table["novel"].to_numpy(dtype=bool))
    table.index = predictions.index
    at = list(predictions.columns).index(before) if before else len(predictions.columns)
    columns = list(predictions.columns)
    merged = pd.concat([predictions, table], axis=1)
    return merged[columns[:at] + PREDICTION_CHECK_COLUMNS + columns[at:]]


def log_flagged(predictions: pd.DataFrame, call_column: str, limit: int = 20) -> None:
    """A warning line per flagged sample (at most ``limit``, then a count)."""
    flagged = predictions.loc[predictions["novel"] | predictions["possible_mixture"]]
    for row in flagged.head(limit).itertuples(index=False):
        call = getattr(row, call_column)
        if row.novel:
            log.warning(
                "%s: novel (novelty score %.3g): like none of the training tissues; the call %s "
                "is not to be trusted",
                row.sample_id,
                row.novelty_score,
                call,
            )
        if row.possible_mixture:
            log.warning(
                "%s: possible mixture: called %s, with %.0f%% %s (%s %.0f%%, %s %.0f%%, ...)",
                row.sample_id,
                call,
                100 * row.foreign_fraction,
                row.foreign_organ,
                row.component_1,
                100 * row.fraction_1,
                row.component_2,
                100 * row.fraction_2,
            )
    if len(flagged) > limit:
        log.warning("... and %d more flagged samples (predictions.tsv)", len(flagged) - limit)
