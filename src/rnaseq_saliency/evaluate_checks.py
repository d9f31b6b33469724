"""The sample checks on held-out samples, and how well they find synthetic mixtures of them.

Rule ``evaluate_checks`` (a rule of its own rather than part of ``evaluate``, so that a change of
the checks' settings reruns neither evaluate nor the saliency maps that read its predictions).
This is evaluation, so test samples are used here, and only here: nothing fitted sees them (the
checks and the model were fitted on training samples, their thresholds on validation samples).

``results/evaluation/sample_checks.tsv`` (``HELD_OUT_COLUMNS``): every real validation and test
sample with its tissue, split, the model's call (``predicted``) and the checks' columns
(``rnaseq_saliency.sample_checks.PREDICTION_CHECK_COLUMNS``), flags as ``true``/``false``.

For a seeded sample of ordered pairs (major, minor) of tissues from different organs (SMTS),
each pair draws one test sample of each tissue and mixes them on linear expression, TPM as is
(read counts after scaling both samples to their mean library size), at each minor fraction f:
``(1 - f) * major + f * minor``. The mixture goes through the model as any input (its call is
the network's) and through ``rnaseq_saliency.sample_checks.check_samples``.

``results/evaluation/mixtures.tsv`` (``MIXTURE_COLUMNS``), one row per minor fraction and a
first row ``minor_fraction`` 0 for the clean test samples themselves:
``n_samples``; ``flagged_rate`` (the fraction flagged ``possible_mixture``: the detection rate,
and on the clean row the false-flag rate); ``mean_abs_error`` (mean |estimated - true| minor
fraction, the estimate being the minor tissue's organ's summed fraction; empty on the clean
row); ``novel_rate`` (the fraction flagged ``novel``); ``minor_called_rate`` (the fraction
whose call is the minor tissue's organ, as the issue saw a 10% liver mixture called liver).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.sample_checks import (
    PREDICTION_CHECK_COLUMNS,
    SampleChecks,
    check_samples,
    mixture_fractions,
    organ_fractions,
    with_checks,
)

log = logging.getLogger(__name__)

HELD_OUT_COLUMNS = ["sample_id", "tissue", "split", "predicted", *PREDICTION_CHECK_COLUMNS]
MIXTURE_COLUMNS = [
    "minor_fraction",
    "n_samples",
    "flagged_rate",
    "mean_abs_error",
    "novel_rate",
    "minor_called_rate",
]


def mixture_pairs(
    tissues: Sequence[str], organs: Sequence[str], n_pairs: int, seed: int
) -> list[tuple[int, int]]:
    """A seeded sample of ``n_pairs`` ordered pairs (major, minor) of indices into ``tissues``
    whose organs differ (all of them when there are fewer)."""
    candidates = [
        (a, b) for a in range(len(tissues)) for b in range(len(tissues)) if organs[a] != organs[b]
    ]
    if not candidates:
        raise ValueError("mixtures: the test samples come from fewer than two organs")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(candidates), size=min(n_pairs, len(candidates)), replace=False)
    return [candidates[i] for i in sorted(chosen)]


def mix(major: np.ndarray, minor: np.ndarray, fraction: float, measure: str) -> np.ndarray:
    """``(1 - fraction) * major + fraction * minor`` on linear expression; read counts are first
    scaled to the two samples' mean library size, so ``fraction`` is a fraction of reads."""
    major = np.asarray(major, dtype=np.float64)
    minor = np.asarray(minor, dtype=np.float64)
    if measure == "reads":
        size = (major.sum() + minor.sum()) / 2
        major = major * size / max(major.sum(), 1e-12)
        minor = minor * size / max(minor.sum(), 1e-12)
    return ((1 - fraction) * major + fraction * minor).astype(np.float32)


def _row(
    checks: SampleChecks,
    raw: np.ndarray,
    called: Sequence[str],
    fraction: float,
    minor_tissues: Sequence[str] | None,
) -> dict[str, Any]:
    table = check_samples(checks, raw, called)
    row: dict[str, Any] = {
        "minor_fraction": fraction,
        "n_samples": len(called),
        "flagged_rate": float(table["possible_mixture"].mean()),
        "mean_abs_error": np.nan,
        "novel_rate": float(table["novel"].mean()),
        "minor_called_rate": np.nan,
    }
    if minor_tissues is not None:
        by_organ = organ_fractions(
            mixture_fractions(checks, raw), checks.organ_index, len(checks.organ_names)
        )
        position = {tissue: i for i, tissue in enumerate(checks.tissues)}
        minor_organ = checks.organ_index[[position[t] for t in minor_tissues]]
        estimate = by_organ[np.arange(len(called)), minor_organ]
        row["mean_abs_error"] = float(np.abs(estimate - fraction).mean())
        called_organ = checks.organ_index[[position[t] for t in called]]
        row["minor_called_rate"] = float((called_organ == minor_organ).mean())
    return row


def evaluate_mixtures(
    checks: SampleChecks,
    classify: Callable[[np.ndarray], Sequence[str]],
    test_raw: np.ndarray,
    test_tissues: Sequence[str],
    *,
    n_pairs: int,
    fractions: Sequence[float],
    seed: int,
) -> pd.DataFrame:
    """The ``MIXTURE_COLUMNS`` table (module doc). ``classify`` maps raw expression to the
    model's called tissues; ``test_raw`` is in the checks' gene order."""
    labels = np.asarray(test_tissues, dtype=object)
    present = [t for t in checks.tissues if (labels == t).any()]
    organs = [checks.organs[checks.tissues.index(t)] for t in present]
    pairs = mixture_pairs(present, organs, n_pairs, seed)
    rng = np.random.default_rng([seed, 1])
    rows_of = {t: np.flatnonzero(labels == t) for t in present}
    drawn = [(rng.choice(rows_of[present[a]]), rng.choice(rows_of[present[b]])) for a, b in pairs]
    rows = [_row(checks, test_raw, list(classify(test_raw)), 0.0, None)]
    minor = [present[b] for _, b in pairs]
    for fraction in fractions:
        mixed = np.stack(
            [mix(test_raw[i], test_raw[j], fraction, checks.measure) for i, j in drawn]
        )
        rows.append(_row(checks, mixed, list(classify(mixed)), float(fraction), minor))
    table = pd.DataFrame(rows, columns=MIXTURE_COLUMNS)
    log.info(
        "%d pairs of tissues from different organs; clean test samples flagged: %.1f%%",
        len(pairs),
        100 * table["flagged_rate"].iloc[0],
    )
    for row in table.iloc[1:].itertuples(index=False):
        log.info(
            "minor fraction %.0f%%: %.1f%% flagged, mean absolute error %.1f points",
            100 * row.minor_fraction,
            100 * row.flagged_rate,
            100 * row.mean_abs_error,
        )
    return table


def write_mixtures(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``mixtures.tsv`` (``read_mixtures`` reads it back)."""
    missing = [c for c in MIXTURE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"mixtures table: missing column(s) {missing}")
    with atomic_path(path) as tmp:
        table[MIXTURE_COLUMNS].to_csv(
            tmp, sep="\t", index=False, float_format="%.6g", lineterminator="\n"
        )


def read_mixtures(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``mixtures.tsv``, checking its columns."""
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in MIXTURE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {MIXTURE_COLUMNS}")
    return table


def plot_mixtures(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Detection rate and mean absolute error against the minor fraction; the clean samples'
    false-flag rate as a dashed line."""
    from rnaseq_saliency.plotting import pyplot, save_png

    plt = pyplot()
    mixed = table.loc[table["minor_fraction"] > 0]
    percent = 100 * mixed["minor_fraction"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(percent, 100 * mixed["flagged_rate"], marker="o", label="mixtures flagged")
    left.axhline(
        100 * table["flagged_rate"].iloc[0],
        linestyle="--",
        color="grey",
        label="clean test samples flagged",
    )
    left.set(xlabel="minor fraction (%)", ylabel="flagged possible_mixture (%)", ylim=(-2, 102))
    left.legend(fontsize=8, loc="center right")
    right.plot(percent, 100 * mixed["mean_abs_error"], marker="o", color="#c0504d")
    right.set(xlabel="minor fraction (%)", ylabel="mean |estimated - true| (points)")
    right.set_ylim(bottom=0)
    n = int(mixed["n_samples"].max()) if len(mixed) else 0
    figure.suptitle(f"Synthetic mixtures of held-out test samples ({n} tissue pairs)", fontsize=10)
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    save_png(figure, path)
    plt.close(figure)


def held_out_checks(
    checks: SampleChecks,
    classify: Callable[[np.ndarray], Sequence[str]],
    rows_by_split: dict[str, Any],
) -> pd.DataFrame:
    """The ``HELD_OUT_COLUMNS`` table of the real samples of each split (``LabelledRows``)."""
    blocks = []
    for split, rows in rows_by_split.items():
        if not rows.sample_ids:
            continue
        called = list(classify(rows.matrix))
        table = pd.DataFrame(
            {
                "sample_id": rows.sample_ids,
                "tissue": rows.tissues,
                "split": split,
                "predicted": called,
            }
        )
        blocks.append(with_checks(table, checks, rows.matrix, called))
        log.info(
            "%s samples: %.1f%% novel, %.1f%% possible mixtures (of %d)",
            split,
            100 * blocks[-1]["novel"].mean(),
            100 * blocks[-1]["possible_mixture"].mean(),
            len(called),
        )
    if not blocks:
        return pd.DataFrame({column: [] for column in HELD_OUT_COLUMNS})
    return pd.concat(blocks, ignore_index=True)[HELD_OUT_COLUMNS]


def write_held_out(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``sample_checks.tsv`` (``read_held_out`` reads it back); flags as true/false."""
    table = table[HELD_OUT_COLUMNS].copy()
    for column in ("call_trusted", "novel", "possible_mixture"):
        table[column] = np.where(table[column].astype(bool), "true", "false")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", lineterminator="\n")


def read_held_out(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``sample_checks.tsv``; the flags become bool columns."""
    table = pd.read_csv(path, sep="\t", keep_default_na=False)
    missing = [c for c in HELD_OUT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {HELD_OUT_COLUMNS}")
    for column in ("call_trusted", "novel", "possible_mixture"):
        table[column] = table[column].astype(str).str.lower().map({"true": True, "false": False})
        if table[column].isna().any():
            raise ValueError(f"{path}: column {column!r} holds values other than true/false")
        table[column] = table[column].astype(bool)
    return table


def run_evaluate_checks(
    model_dir: str | os.PathLike[str],
    expression_files: Sequence[str | os.PathLike[str]],
    samples_tsv: str | os.PathLike[str],
    held_out_path: str | os.PathLike[str],
    table_path: str | os.PathLike[str],
    figure_path: str | os.PathLike[str],
    settings: Any,
    *,
    threads: int | None = None,
) -> pd.DataFrame:
    """Rule ``evaluate_checks``: the checks stored with the model on the validation and test
    samples (``sample_checks.tsv``), and on mixtures of test samples (table and figure).

    ``settings``: ``rnaseq_saliency.settings.MixtureEvaluationSettings``.
    """
    import torch

    from rnaseq_saliency.datasets import load_split_rows, read_samples
    from rnaseq_saliency.ensemble import load_classifier
    from rnaseq_saliency.sample_checks import check_genes, read_sample_checks

    if threads:
        torch.set_num_threads(int(threads))
    # The calls the checks stand beside are evaluate's and predict's: the replicates' ensemble.
    model = load_classifier(model_dir)
    checks = read_sample_checks(model_dir)
    check_genes(checks, model.gene_ids, str(model_dir))
    samples = read_samples(samples_tsv)
    rows_by_split = {
        split: load_split_rows(expression_files, samples, split) for split in ("val", "test")
    }
    write_held_out(held_out_checks(checks, model.predict, rows_by_split), held_out_path)
    test = rows_by_split["test"]
    if not test.sample_ids:
        raise ValueError(f"{samples_tsv}: no test samples to mix")
    table = evaluate_mixtures(
        checks,
        model.predict,
        test.matrix,
        test.tissues,
        n_pairs=settings.pairs,
        fractions=settings.fractions,
        seed=settings.seed,
    )
    write_mixtures(table, table_path)
    plot_mixtures(table, figure_path)
    return table
