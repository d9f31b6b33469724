"""Per-tissue augmentation of the training set: synthetic samples up to a minimum count.

Only a tissue's training samples (``split == "train"`` in ``results/split/samples.tsv``) are read,
copied or used as sources; validation and test samples never reach this module's output.

Methods
-------
``noise``
    The earlier model's technique: a synthetic sample is a real sample multiplied gene-wise by
    ``|N(1, noise_sigma)|`` on the expression scale (TPM or reads), so zeros stay zero and each
    gene keeps its sign.
``smote``
    SMOTE (Chawla et al. 2002) within the tissue's training samples, on ``log1p`` expression: a
    synthetic sample lies on the segment between a source sample and one of its ``k`` nearest
    training neighbours (Euclidean, in log1p space), at a uniform random position; it is
    back-transformed with ``expm1`` and clipped at 0.
``none``
    The training samples only.

Why SMOTE is written out here rather than called through ``imblearn.over_sampling.SMOTE``:
imbalanced-learn draws every source uniformly *with* replacement and does not report which
neighbour each synthetic row came from, while this workflow draws sources without replacement (or
cycles through all of them evenly) and records both parents in ``source_sample_id``. So the
neighbours come from scikit-learn's ``NearestNeighbors`` and the interpolation follows the
definition imbalanced-learn implements (``x + u * (x_nn - x)``, ``u ~ U[0, 1)``, neighbour drawn
uniformly from the ``k`` nearest, the sample itself excluded); ``tests/test_augment.py`` checks
that imbalanced-learn's own SMOTE on the same data makes only points on these segments.

Sources: when fewer synthetic rows are needed than there are real samples, distinct sources are
drawn at random (without replacement); otherwise every real sample is used ``q`` times and a
random distinct subset once more, so that counts differ by at most one. Synthetic rows are named
``<source>_syn<k>`` (the k-th synthetic row from that source, from 1) and carry the source's
donor id. Randomness comes from ``seed`` and the tissue label through a stable hash, so tissues
get different streams and the same configuration gives byte-identical files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from numbers import Integral
from typing import NamedTuple

import numpy as np

from rnaseq_saliency.datasets import read_samples
from rnaseq_saliency.expression import ExpressionTable, read_expression, write_expression
from rnaseq_saliency.tissues import tissue_seed

log = logging.getLogger(__name__)

METHODS = ("noise", "smote", "none")


def check_min_samples(min_samples: object) -> int:
    """``augment.min_samples`` as an int; a negative or non-integer value is an error."""
    if isinstance(min_samples, bool) or not isinstance(min_samples, Integral):
        raise ValueError(
            f"config key augment.min_samples: expected a whole number, got {min_samples!r}"
        )
    if min_samples < 0:
        raise ValueError(f"config key augment.min_samples: must be >= 0, got {min_samples}")
    return int(min_samples)


def source_schedule(
    n_real: int, n_new: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Which real sample each synthetic row comes from, and which copy of it the row is.

    Returns ``(sources, copies)``, both of length ``n_new``: row indices into the real samples,
    and the 1-based count of rows made from that source so far. Full rounds through all real
    samples come first, then a random distinct subset for the remainder.
    """
    if n_new == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if n_real <= 0:
        raise ValueError("cannot make synthetic samples without real samples")
    full_rounds, remainder = divmod(n_new, n_real)
    sources = [np.arange(n_real)] * full_rounds
    sources.append(np.sort(rng.choice(n_real, size=remainder, replace=False)))
    copies = [np.full(n_real, r + 1) for r in range(full_rounds)]
    copies.append(np.full(remainder, full_rounds + 1))
    return np.concatenate(sources).astype(np.int64), np.concatenate(copies).astype(np.int64)


def noise_samples(
    real: np.ndarray, sources: np.ndarray, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """``real[sources]`` multiplied gene-wise by ``|N(1, sigma)|`` factors (float32)."""
    factors = rng.standard_normal((len(sources), real.shape[1]), dtype=np.float32)
    factors *= np.float32(sigma)
    factors += np.float32(1.0)
    np.abs(factors, out=factors)
    return (real[sources] * factors).astype(np.float32, copy=False)


def _neighbours(log_real: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest other samples of each sample, nearest first: (n_real, k) indices."""
    from sklearn.neighbors import NearestNeighbors

    n_real = len(log_real)
    nearest = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(log_real)
    found = nearest.kneighbors(log_real, return_distance=False)
    # Drop each sample itself. With exact duplicates it need not come first (or at all), so
    # look for it; where it is missing, drop the farthest neighbour instead.
    is_self = found == np.arange(n_real)[:, None]
    keep = ~is_self
    keep[~is_self.any(axis=1), -1] = False
    return found[keep].reshape(n_real, k)


def smote_samples(
    real: np.ndarray, sources: np.ndarray, k_neighbors: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """SMOTE rows in log1p space from each source towards a random one of its k nearest neighbours.

    ``k_neighbors`` is capped at ``n_real - 1``; ``real`` needs at least two rows. Returns the
    synthetic rows (float32, expression scale, >= 0) and each row's second parent (row index).
    """
    n_real = len(real)
    if n_real < 2:
        raise ValueError("SMOTE needs at least two real samples")
    k = min(k_neighbors, n_real - 1)
    log_real = np.log1p(real.astype(np.float64))
    neighbours = _neighbours(log_real, k)
    partners = neighbours[sources, rng.integers(0, k, size=len(sources))]
    gaps = rng.random(len(sources))[:, None]
    start = log_real[sources]
    synthetic = np.expm1(start + gaps * (log_real[partners] - start))
    np.clip(synthetic, 0.0, None, out=synthetic)
    return synthetic.astype(np.float32), partners


def _empty_like(table: ExpressionTable) -> ExpressionTable:
    # Typed empty columns, so that an empty file has the same schema as a full one
    # (an empty Python list would become a Parquet column of type null).
    return ExpressionTable(
        sample_ids=[],
        donor_ids=[],
        gene_ids=list(table.gene_ids),
        matrix=np.zeros((0, len(table.gene_ids)), dtype=np.float32),
        extra={
            "synthetic": np.zeros(0, dtype=bool),  # type: ignore[dict-item]
            "source_sample_id": np.array([], dtype=str),  # type: ignore[dict-item]
        },
    )


def _check_settings(
    method: str, min_samples: object, noise_sigma: float, smote_k_neighbors: object
) -> int:
    """Check the ``augment`` settings; returns ``min_samples`` as an int."""
    if method not in METHODS:
        raise ValueError(f"config key augment.method: {method!r} is not one of {METHODS}")
    min_samples = check_min_samples(min_samples)
    if not noise_sigma > 0:
        raise ValueError(f"config key augment.noise_sigma: must be > 0, got {noise_sigma!r}")
    if isinstance(smote_k_neighbors, bool) or not isinstance(smote_k_neighbors, Integral):
        raise ValueError(
            f"config key augment.smote_k_neighbors: expected a whole number, "
            f"got {smote_k_neighbors!r}"
        )
    if smote_k_neighbors < 1:
        raise ValueError(
            f"config key augment.smote_k_neighbors: must be >= 1, got {smote_k_neighbors}"
        )
    return min_samples


def _training_row_indices(
    table: ExpressionTable, train_sample_ids: Iterable[str], tissue: str
) -> list[int]:
    """The rows of ``table`` that are the tissue's training samples, in ``table`` order."""
    train_ids = list(train_sample_ids)
    wanted = set(train_ids)
    if len(wanted) != len(train_ids):
        raise ValueError(f"{tissue}: training sample ids repeat")
    missing = sorted(wanted - set(table.sample_ids))
    if missing:
        raise ValueError(
            f"{tissue}: {len(missing)} training sample(s) are not in the expression file, "
            f"e.g. {missing[:5]}; was samples.tsv made from other expression files?"
        )
    return [i for i, sample in enumerate(table.sample_ids) if sample in wanted]


class _Synthetic(NamedTuple):
    """Synthetic rows, the ``source_sample_id`` of each, and the method that made them."""

    matrix: np.ndarray
    origins: list[str]
    method: str


def _synthesise(
    real: np.ndarray,
    real_ids: list[str],
    sources: np.ndarray,
    method: str,
    noise_sigma: float,
    smote_k_neighbors: int,
    rng: np.random.Generator,
    tissue: str,
) -> _Synthetic:
    """Make one synthetic row per entry of ``sources`` with ``method``.

    SMOTE falls back to noise when there is a single real sample to interpolate from.
    """
    used = method
    if method == "smote" and len(sources) and len(real) < 2:
        log.warning(
            "%s: SMOTE needs two training samples and there is one; using noise instead", tissue
        )
        used = "noise"
    if used == "smote":
        synthetic, partners = smote_samples(real, sources, smote_k_neighbors, rng)
        origins = [f"{real_ids[s]};{real_ids[p]}" for s, p in zip(sources, partners, strict=True)]
    else:
        synthetic = noise_samples(real, sources, noise_sigma, rng)
        origins = [real_ids[s] for s in sources]
    return _Synthetic(synthetic, origins, used)


def augment_tissue(
    table: ExpressionTable,
    train_sample_ids: Iterable[str],
    method: str,
    min_samples: int,
    noise_sigma: float = 0.5,
    smote_k_neighbors: int = 5,
    seed: int = 0,
    tissue: str = "",
) -> ExpressionTable:
    """The tissue's training rows plus synthetic rows up to ``min_samples`` rows in all.

    Args:
        table: the tissue's expression file (all its samples, any split).
        train_sample_ids: the tissue's training samples; every one must be in ``table``. Other
            rows of ``table`` (validation, test) are ignored.
        method: ``noise``, ``smote`` or ``none``.
        min_samples: the training row count to reach; a tissue with at least this many real
            training samples gets no synthetic rows.
        noise_sigma: the standard deviation of the ``noise`` method's factors.
        smote_k_neighbors: SMOTE's k, capped at the number of real training samples minus one.
        seed, tissue: the random stream is derived from both (see :func:`tissue_seed`).

    Returns:
        The real training rows (in ``table`` order), then the synthetic rows, with extra columns
        ``synthetic`` (bool) and ``source_sample_id`` (own id for real rows; the source, or
        ``a;b`` for SMOTE's two parents). No training rows gives an empty table with the same
        genes.
    """
    min_samples = _check_settings(method, min_samples, noise_sigma, smote_k_neighbors)
    rows = _training_row_indices(table, train_sample_ids, tissue)
    if not rows:
        log.warning("%s: no training samples (dropped by the split); writing no rows", tissue)
        return _empty_like(table)

    real = table.matrix[rows]
    real_ids = [table.sample_ids[i] for i in rows]
    real_donors = [table.donor_ids[i] for i in rows]
    n_real = len(rows)
    n_new = 0 if method == "none" else max(0, min_samples - n_real)
    rng = np.random.default_rng(tissue_seed(seed, tissue))
    sources, copies = source_schedule(n_real, n_new, rng)
    synthetic = _synthesise(
        real, real_ids, sources, method, noise_sigma, smote_k_neighbors, rng, tissue
    )
    names = [f"{real_ids[s]}_syn{c}" for s, c in zip(sources, copies, strict=True)]
    clashes = sorted(set(names) & set(table.sample_ids))
    if clashes:
        raise ValueError(f"{tissue}: synthetic sample ids clash with real ones: {clashes[:5]}")
    log.info(
        "%s: %d real training samples, %d synthetic (%s), %d in all (min_samples %d)",
        tissue,
        n_real,
        n_new,
        synthetic.method if n_new else "none needed",
        n_real + n_new,
        min_samples,
    )
    return ExpressionTable(
        sample_ids=real_ids + names,
        donor_ids=real_donors + [real_donors[s] for s in sources],
        gene_ids=list(table.gene_ids),
        matrix=np.concatenate([real, synthetic.matrix]) if n_new else np.ascontiguousarray(real),
        extra={
            "synthetic": [False] * n_real + [True] * n_new,
            "source_sample_id": real_ids + synthetic.origins,
        },
    )


def augment_file(
    expression_path: str | os.PathLike[str],
    samples_path: str | os.PathLike[str],
    tissue: str,
    out_path: str | os.PathLike[str],
    *,
    method: str,
    min_samples: int,
    noise_sigma: float,
    smote_k_neighbors: int,
    seed: int,
) -> None:
    """Augment one tissue's training samples (from samples.tsv) and write the Parquet file."""
    samples = read_samples(samples_path)
    mine = samples.loc[samples["tissue"] == tissue]
    train_ids = mine.loc[mine["split"] == "train", "sample_id"].tolist()
    augmented = augment_tissue(
        read_expression(expression_path),
        train_ids,
        method=method,
        min_samples=min_samples,
        noise_sigma=noise_sigma,
        smote_k_neighbors=smote_k_neighbors,
        seed=seed,
        tissue=tissue,
    )
    # A cheap second line of defence for the promise the evaluation rests on.
    held_out = set(mine.loc[mine["split"] != "train", "sample_id"])
    sources = {s for field in augmented.extra["source_sample_id"] for s in str(field).split(";")}
    leaked = sorted(held_out & (set(augmented.sample_ids) | sources))
    if leaked:
        raise RuntimeError(f"{tissue}: validation/test samples reached augmentation: {leaked[:5]}")
    write_expression(out_path, augmented)
