"""Split samples into training, validation and test sets, stratified by tissue and grouped by donor.

The split comes first and augmentation touches the training set only, so the test set holds real
samples only. With ``group_by="donor"`` no donor has samples in two splits: GTEx donors give
samples of up to ~30 tissues, and a model that has seen a donor's liver could recognise the
donor's individual signature in its lung, so the test set measures generalisation to new people.

How a split is made
-------------------
1. Tissues with fewer than :data:`MIN_SAMPLES` samples are dropped (with a logged warning). With
   donor grouping, a tissue whose samples all come from one donor is dropped too: no donor-grouped
   split can give it both a training and a test sample (``group_by="none"`` keeps it).
2. scikit-learn's :class:`~sklearn.model_selection.StratifiedGroupKFold` assigns whole donors to
   folds while balancing each fold's tissue mix. ``test_fraction`` is written as a fraction of
   folds ``m / n`` (n <= 20; 0.2 -> 1 of 5 folds, 0.3 -> 3 of 10), and the first ``m`` folds are
   the test set. The same is done for validation on the remaining samples, with fraction
   ``val_fraction / (1 - test_fraction)`` of what is left.
3. The splitter balances proportions, but a tissue with a handful of donors can end up with no
   test or no training sample. A repair step then moves whole donors: it gives every kept tissue
   at least one training and one test sample, taking donors from the validation set first (val
   carries no guarantee) and never moving a donor that is the only training or test donor of
   another tissue. If no such donor exists (for example three tissues whose donors form a
   triangle, {1,2}, {2,3}, {1,3}, which two sets cannot separate), the most constrained tissue
   left is dropped with a warning, and the repair continues on the rest.

Every kept tissue therefore has at least one training and one test sample, and no donor is in two
splits; :func:`split_samples` checks both before it returns. Validation may be empty for tissues
with few donors.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from rnaseq_saliency.datasets import SAMPLES_COLUMNS, tissue_of, write_samples
from rnaseq_saliency.fileio import atomic_path

log = logging.getLogger(__name__)

MIN_SAMPLES = (
    3  # one training and one test sample, and one more so that a tissue is not all-or-none
)
GROUP_BY = ("donor", "none")
SUMMARY_COLUMNS = [
    "tissue",
    "n_samples",
    "n_donors",
    "n_train",
    "n_val",
    "n_test",
    "kept",
    "note",
]
# Folds per split at most: fractions are matched to m/n with n <= this (0.15 -> 3/20).
MAX_FOLDS = 20
# The splits every kept tissue must have a sample in.
GUARANTEED = ("test", "train")


def collect_samples(expression_files: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """The samples of per-tissue expression files: columns ``sample_id``, ``donor_id``, ``tissue``.

    Reads only the two id columns of each Parquet file, never the expression matrix. The tissue
    is the file's name (``results/expression/liver.parquet`` -> ``liver``).
    """
    frames = []
    for path in expression_files:
        table = pq.read_table(path, columns=["sample_id", "donor_id"])
        sample_ids = table.column("sample_id").to_pylist()
        donor_ids = table.column("donor_id").to_pylist()
        if any(s is None or s == "" for s in sample_ids):
            raise ValueError(f"{path}: column sample_id has empty values")
        if any(d is None or d == "" for d in donor_ids):
            raise ValueError(f"{path}: column donor_id has empty values")
        frames.append(
            pd.DataFrame(
                {"sample_id": sample_ids, "donor_id": donor_ids, "tissue": tissue_of(path)},
                dtype=str,
            )
        )
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in ("sample_id", "donor_id", "tissue")})
    return pd.concat(frames, ignore_index=True)


def _check_arguments(test_fraction: float, val_fraction: float, group_by: str, seed: int) -> None:
    if not 0 < test_fraction < 1:
        raise ValueError(f"split.test_fraction must lie in (0, 1), got {test_fraction!r}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"split.val_fraction must lie in [0, 1), got {val_fraction!r}")
    if test_fraction + val_fraction >= 1:
        raise ValueError(
            f"split.test_fraction + split.val_fraction must be below 1 to leave training "
            f"samples, got {test_fraction} + {val_fraction}"
        )
    if group_by not in GROUP_BY:
        raise ValueError(f"split.group_by must be one of {GROUP_BY}, got {group_by!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"split.seed must be a non-negative integer, got {seed!r}")


def _check_samples(samples: pd.DataFrame, tissues: Sequence[str]) -> pd.DataFrame:
    missing = [c for c in ("sample_id", "donor_id", "tissue") if c not in samples.columns]
    if missing:
        raise ValueError(f"samples table lacks column(s) {missing}")
    samples = samples[["sample_id", "donor_id", "tissue"]]
    empty = [c for c in samples.columns if samples[c].isna().any() or (samples[c] == "").any()]
    if empty:
        raise ValueError(f"samples table has empty values in column(s) {empty}")
    samples = samples.astype(str).reset_index(drop=True)
    duplicated = samples.loc[samples["sample_id"].duplicated(), "sample_id"].unique().tolist()
    if duplicated:
        raise ValueError(f"sample id(s) appear more than once: {duplicated[:10]}")
    unknown = sorted(set(samples["tissue"]) - set(tissues))
    if unknown:
        raise ValueError(f"samples of tissue(s) {unknown}, which are not configured: {tissues}")
    if len(set(tissues)) != len(tissues):
        raise ValueError(f"tissues repeat in {list(tissues)}")
    return samples


def _fold_plan(fraction: float) -> tuple[int, int]:
    """``fraction`` as (folds, folds to take): 0.2 -> (5, 1), 0.3 -> (10, 3), 0.125 -> (8, 1)."""
    approx = Fraction(fraction).limit_denominator(MAX_FOLDS)
    if approx <= 0:
        approx = Fraction(1, MAX_FOLDS)
    if approx >= 1:
        approx = Fraction(MAX_FOLDS - 1, MAX_FOLDS)
    return approx.denominator, approx.numerator


def _held_out(y: np.ndarray, groups: np.ndarray, fraction: float, random_state: int) -> np.ndarray:
    """A boolean mask of about ``fraction`` of the rows, whole groups, stratified by ``y``."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    mask = np.zeros(len(y), dtype=bool)
    if len(y) == 0:
        return mask
    n_splits, n_take = _fold_plan(fraction)
    n_groups = len(np.unique(groups))
    largest_class = int(np.unique(y, return_counts=True)[1].max())
    # StratifiedGroupKFold needs at least n_splits groups and one class with n_splits members;
    # small inputs get fewer, coarser folds (the repair step still guarantees the minimum).
    limit = min(n_groups, largest_class)
    if limit < 2:
        return mask
    if n_splits > limit:
        n_splits = limit
        n_take = min(max(1, round(fraction * n_splits)), n_splits - 1)
        log.info("few donors or samples: holding out %d of %d folds", n_take, n_splits)
    if n_groups == len(y):
        # One sample per group (group_by: none): StratifiedKFold makes the same kind of folds,
        # and StratifiedGroupKFold's greedy loop over groups took ~40 s here on 17,382 samples.
        kfold = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        splits = kfold.split(np.zeros(len(y)), y)
    else:
        group_kfold = StratifiedGroupKFold(
            n_splits=n_splits, shuffle=True, random_state=random_state
        )
        splits = group_kfold.split(np.zeros(len(y)), y, groups)
    with warnings.catch_warnings():
        # Tiny tissues have fewer samples than folds by design; the repair step handles them.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, test_index) in enumerate(splits):
            if fold >= n_take:
                break
            mask[test_index] = True
    return mask


class _Repair:
    """Moves whole groups (donors) so that every tissue has a training and a test group."""

    def __init__(
        self,
        group_split: dict[str, str],
        tissue_groups: dict[str, list[str]],
        group_sizes: dict[str, int],
        priority: list[str],
        unit: str,
    ) -> None:
        self.unit = unit  # "donor" or "sample", for the notes
        self.group_split = group_split
        self.tissue_groups = tissue_groups
        self.group_sizes = group_sizes
        self.priority = priority  # most constrained tissues first
        self.group_tissues: dict[str, set[str]] = {g: set() for g in group_split}
        for tissue, groups in tissue_groups.items():
            for group in groups:
                self.group_tissues[group].add(tissue)
        self.notes: dict[str, list[str]] = {t: [] for t in tissue_groups}
        self.dropped: dict[str, str] = {}

    def _n_in(self, tissue: str, split: str) -> int:
        return sum(self.group_split[g] == split for g in self.tissue_groups[tissue])

    def _violations(self) -> list[tuple[str, str]]:
        return [
            (tissue, split)
            for tissue in self.priority
            if tissue in self.tissue_groups
            for split in GUARANTEED
            if self._n_in(tissue, split) == 0
        ]

    def _harmless_move(self, tissue: str, need: str) -> str | None:
        """The best group of ``tissue`` to move into ``need`` without breaking another tissue."""
        candidates = []
        for group in self.tissue_groups[tissue]:
            current = self.group_split[group]
            if current == need:
                continue
            if current in GUARANTEED and any(
                self._n_in(other, current) == 1 for other in self.group_tissues[group]
            ):
                continue  # it is the only `current` group of some tissue (maybe this one)
            # Validation carries no guarantee, so take from it first; then the smallest group,
            # which disturbs the achieved fractions least; the id breaks ties reproducibly.
            candidates.append((current != "val", self.group_sizes[group], group))
        return min(candidates)[2] if candidates else None

    def run(self) -> None:
        while violations := self._violations():
            moved = False
            for tissue, need in violations:
                if self._n_in(tissue, need) > 0:
                    continue  # an earlier move in this pass fixed it
                group = self._harmless_move(tissue, need)
                if group is None:
                    continue
                source = self.group_split[group]
                self.group_split[group] = need
                moved = True
                self.notes[tissue].append(
                    f"moved {self.unit} {group} ({self.group_sizes[group]} sample(s)) "
                    f"from {source} to {need} to give the tissue a {need} sample"
                )
                log.info("%s: %s", tissue, self.notes[tissue][-1])
            if not moved:
                tissue, need = violations[0]
                self._drop(tissue, need)

    def _drop(self, tissue: str, need: str) -> None:
        groups = self.tissue_groups.pop(tissue)
        for group in groups:
            self.group_tissues[group].discard(tissue)
        self.priority.remove(tissue)
        self.dropped[tissue] = (
            f"dropped: no {need} sample can be found for it without taking the only training "
            f"or test {self.unit} of another tissue "
            f"({len(groups)} {self.unit}(s): {', '.join(groups)})"
        )
        log.warning("%s: %s", tissue, self.dropped[tissue])


def _too_small(
    samples: pd.DataFrame,
    tissues: list[str],
    n_samples: dict[str, int],
    n_donors: dict[str, int],
    group_by: str,
) -> dict[str, str]:
    """Tissues that cannot give both a training and a test sample, with why (logged)."""
    dropped: dict[str, str] = {}
    for tissue in tissues:
        count = int(n_samples.get(tissue, 0))
        if count < MIN_SAMPLES:
            dropped[tissue] = (
                f"dropped: {count} sample(s), fewer than the {MIN_SAMPLES} a tissue needs "
                "(at least one for training and one for testing)"
            )
        elif group_by == "donor" and n_donors[tissue] < 2:
            donor = samples.loc[samples["tissue"] == tissue, "donor_id"].iloc[0]
            dropped[tissue] = (
                f"dropped: all {count} samples come from one donor ({donor}), so a donor-grouped "
                "split cannot give it both training and test samples (split.group_by: none "
                "would keep it)"
            )
    for tissue, note in dropped.items():
        log.warning("%s: %s", tissue, note)
    return dropped


def _draw_split(
    labels: np.ndarray,
    groups: np.ndarray,
    test_fraction: float,
    val_fraction: float,
    seed: int,
) -> np.ndarray:
    """Each row's split from the seeded splitter, before any repair: test first, then
    validation from the rest."""
    # Two independent streams from one seed, so that the validation split does not reuse the
    # test split's shuffle.
    test_state, val_state = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    split = np.full(len(labels), "train", dtype=object)
    in_test = _held_out(labels, groups, test_fraction, test_state)
    split[in_test] = "test"
    if val_fraction > 0:
        rest = np.flatnonzero(~in_test)
        in_val = _held_out(
            labels[rest], groups[rest], val_fraction / (1 - test_fraction), val_state
        )
        split[rest[in_val]] = "val"
    return split


def _repaired(
    groups: np.ndarray,
    labels: np.ndarray,
    split: np.ndarray,
    order: dict[str, int],
    unit: str,
) -> tuple[dict[str, str], _Repair]:
    """Each group's split after moving groups so that every tissue has training and test
    groups, and the repair that did it (its notes and the tissues it had to drop)."""
    group_split = dict(zip(groups.tolist(), split.tolist(), strict=True))
    tissue_groups = {
        tissue: sorted(set(block.tolist()))
        for tissue, block in pd.Series(groups).groupby(labels, sort=False)
    }
    group_sizes = pd.Series(groups).value_counts().to_dict()
    # Tissues with the fewest donors have the fewest ways to be fixed: repair them first.
    priority = sorted(tissue_groups, key=lambda t: (len(tissue_groups[t]), order[t]))
    repair = _Repair(group_split, tissue_groups, group_sizes, priority, unit)
    repair.run()
    return group_split, repair


def _summary_table(
    tissues: list[str],
    assignments: pd.DataFrame,
    dropped: dict[str, str],
    repair_notes: dict[str, list[str]],
    n_samples: dict[str, int],
    n_donors: dict[str, int],
    val_fraction: float,
    unit: str,
) -> pd.DataFrame:
    """One row per configured tissue: its counts per split, whether it was kept, and notes."""
    counts = assignments.groupby(["tissue", "split"]).size()
    rows = []
    for tissue in tissues:
        is_kept = tissue not in dropped
        n = {s: int(counts.get((tissue, s), 0)) for s in ("train", "val", "test")}
        notes = [dropped[tissue]] if not is_kept else list(repair_notes.get(tissue, []))
        if is_kept and val_fraction > 0 and n["val"] == 0:
            notes.append(f"no validation sample (too few {unit}s)")
        rows.append(
            {
                "tissue": tissue,
                "n_samples": int(n_samples.get(tissue, 0)),
                "n_donors": int(n_donors.get(tissue, 0)),
                "n_train": n["train"],
                "n_val": n["val"],
                "n_test": n["test"],
                "kept": is_kept,
                "note": "; ".join(notes),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def split_samples(
    samples: pd.DataFrame,
    tissues: Sequence[str],
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    group_by: str = "donor",
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign every sample of a kept tissue to ``train``, ``val`` or ``test``.

    Args:
        samples: one row per sample, columns ``sample_id``, ``donor_id``, ``tissue``.
        tissues: the configured tissues, in config order (the summary's row order and the
            model's class order).
        test_fraction, val_fraction: shares of each tissue's samples for the test and validation
            sets (approximate: whole donors move, and fractions are matched to m of n <= 20 folds).
        group_by: ``donor`` (no donor in two splits) or ``none`` (samples split independently).
        seed: seeds the splitter; the same seed and input give the same split.

    Returns:
        ``assignments``: columns ``sample_id``, ``donor_id``, ``tissue``, ``split``, samples of
        kept tissues only, in tissue order and then input order.
        ``summary``: one row per configured tissue: ``tissue``, ``n_samples``, ``n_donors``,
        ``n_train``, ``n_val``, ``n_test``, ``kept`` (bool), ``note`` (why a tissue was dropped,
        or what the repair step did; empty otherwise).
    """
    _check_arguments(test_fraction, val_fraction, group_by, seed)
    tissues = list(tissues)
    samples = _check_samples(samples, tissues)
    order = {tissue: i for i, tissue in enumerate(tissues)}
    samples = samples.iloc[
        np.argsort(samples["tissue"].map(order).to_numpy(), kind="stable")
    ].reset_index(drop=True)
    n_samples = samples.groupby("tissue").size().to_dict()
    n_donors = samples.groupby("tissue")["donor_id"].nunique().to_dict()
    dropped = _too_small(samples, tissues, n_samples, n_donors, group_by)

    kept = samples.loc[~samples["tissue"].isin(dropped)].reset_index(drop=True)
    groups = (kept["donor_id"] if group_by == "donor" else kept["sample_id"]).to_numpy()
    labels = kept["tissue"].to_numpy()
    split = _draw_split(labels, groups, test_fraction, val_fraction, seed)
    unit = "donor" if group_by == "donor" else "sample"
    group_split, repair = _repaired(groups, labels, split, order, unit)
    dropped.update(repair.dropped)

    kept = kept.assign(split=[group_split[g] for g in groups.tolist()])
    kept = kept.loc[~kept["tissue"].isin(dropped)].reset_index(drop=True)
    assignments = kept[SAMPLES_COLUMNS]
    _check_guarantees(assignments, group_by)
    summary = _summary_table(
        tissues, assignments, dropped, repair.notes, n_samples, n_donors, val_fraction, unit
    )
    _log_summary(assignments, summary)
    return assignments, summary


def _check_guarantees(assignments: pd.DataFrame, group_by: str) -> None:
    """Fail loudly if the split broke a promise (a bug, never a property of the data)."""
    if group_by == "donor":
        per_donor = assignments.groupby("donor_id")["split"].nunique()
        shared = per_donor[per_donor > 1].index.tolist()
        if shared:
            raise RuntimeError(f"donor(s) in two splits: {shared[:10]}")
    for tissue, block in assignments.groupby("tissue"):
        lacking = [s for s in GUARANTEED if not (block["split"] == s).any()]
        if lacking:
            raise RuntimeError(f"kept tissue {tissue} has no {' or '.join(lacking)} sample")


def _log_summary(assignments: pd.DataFrame, summary: pd.DataFrame) -> None:
    total = len(assignments)
    shares = assignments["split"].value_counts()
    log.info(
        "split %d samples of %d kept tissue(s) (%d dropped): %s",
        total,
        int(summary["kept"].sum()),
        int((~summary["kept"]).sum()),
        ", ".join(
            f"{s} {int(shares.get(s, 0))} ({shares.get(s, 0) / max(total, 1):.1%})"
            for s in ("train", "val", "test")
        ),
    )


def _write_tsv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, lineterminator="\n")


def write_split(
    expression_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    samples_out: str | os.PathLike[str],
    summary_out: str | os.PathLike[str],
    *,
    test_fraction: float,
    val_fraction: float,
    group_by: str,
    seed: int,
) -> None:
    """Split the samples of the per-tissue expression files; write samples.tsv and summary.tsv.

    ``kept`` is written as ``true`` / ``false``.
    """
    file_tissues = [tissue_of(path) for path in expression_files]
    if sorted(file_tissues) != sorted(tissues):
        raise ValueError(
            f"expression files {file_tissues} do not match the configured tissues {list(tissues)}"
        )
    samples = collect_samples(expression_files)
    assignments, summary = split_samples(
        samples,
        tissues,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        group_by=group_by,
        seed=seed,
    )
    summary = summary.assign(kept=summary["kept"].map({True: "true", False: "false"}))
    write_samples(assignments, samples_out)
    _write_tsv(summary, summary_out)
