"""Tests for the train/val/test split: donor grouping, stratification, tiny tissues, seeds."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnaseq_saliency.datasets import read_samples
from rnaseq_saliency.expression import ExpressionTable, write_expression
from rnaseq_saliency.split import (
    SUMMARY_COLUMNS,
    _fold_plan,
    _Repair,
    collect_samples,
    split_samples,
    write_split,
)

BIG = ["liver", "lung", "muscle_skeletal", "whole_blood"]


def gtex_like(n_donors: int = 80, seed: int = 0, per_tissue: int = 50) -> pd.DataFrame:
    """Donors with samples in several tissues, one sample per donor and tissue (as in GTEx)."""
    rng = np.random.default_rng(seed)
    rows = []
    for tissue in BIG:
        for d in sorted(rng.choice(n_donors, size=per_tissue, replace=False)):
            rows.append((f"GTEX-D{d:03d}-{tissue}", f"GTEX-D{d:03d}", tissue))
    return pd.DataFrame(rows, columns=["sample_id", "donor_id", "tissue"])


def with_tissue(samples: pd.DataFrame, tissue: str, donors: list[str]) -> pd.DataFrame:
    """``samples`` plus one sample of ``tissue`` per entry of ``donors`` (repeats allowed)."""
    extra = pd.DataFrame(
        {
            "sample_id": [f"{d}-{tissue}-{i}" for i, d in enumerate(donors)],
            "donor_id": donors,
            "tissue": tissue,
        }
    )
    return pd.concat([samples, extra], ignore_index=True)


def assert_invariants(assignments: pd.DataFrame, summary: pd.DataFrame) -> None:
    per_donor = assignments.groupby("donor_id")["split"].nunique()
    assert (per_donor == 1).all(), per_donor[per_donor > 1]
    for tissue in summary.loc[summary["kept"], "tissue"]:
        splits = set(assignments.loc[assignments["tissue"] == tissue, "split"])
        assert {"train", "test"} <= splits, (tissue, splits)
    assert set(assignments["tissue"]) == set(summary.loc[summary["kept"], "tissue"])


def test_no_donor_in_two_splits_and_every_sample_once() -> None:
    samples = gtex_like()
    assignments, summary = split_samples(samples, BIG, 0.2, 0.1, "donor", 0)
    assert_invariants(assignments, summary)
    assert sorted(assignments["sample_id"]) == sorted(samples["sample_id"])
    assert list(assignments.columns) == ["sample_id", "donor_id", "tissue", "split"]
    assert set(assignments["split"]) == {"train", "val", "test"}


def test_stratification_roughly_holds() -> None:
    samples = gtex_like(n_donors=300, per_tissue=200)
    assignments, summary = split_samples(samples, BIG, 0.2, 0.1, "donor", 3)
    shares = pd.crosstab(assignments["tissue"], assignments["split"], normalize="index")
    assert shares["test"].between(0.14, 0.26).all(), shares
    assert shares["val"].between(0.05, 0.15).all(), shares
    overall = assignments["split"].value_counts(normalize=True)
    assert overall["test"] == pytest.approx(0.2, abs=0.03)
    assert overall["val"] == pytest.approx(0.1, abs=0.03)
    assert (summary["n_train"] + summary["n_val"] + summary["n_test"] == summary["n_samples"]).all()


def test_fractions_other_than_one_over_n() -> None:
    samples = gtex_like(n_donors=300, per_tissue=200)
    assignments, _ = split_samples(samples, BIG, 0.3, 0.15, "donor", 0)
    overall = assignments["split"].value_counts(normalize=True)
    assert overall["test"] == pytest.approx(0.3, abs=0.03)
    assert overall["val"] == pytest.approx(0.15, abs=0.03)


@pytest.mark.parametrize(
    ("fraction", "plan"), [(0.2, (5, 1)), (0.3, (10, 3)), (0.1 / 0.8, (8, 1)), (0.15, (20, 3))]
)
def test_fold_plan(fraction: float, plan: tuple[int, int]) -> None:
    assert _fold_plan(fraction) == plan


def test_val_fraction_zero_gives_no_validation() -> None:
    assignments, summary = split_samples(gtex_like(), BIG, 0.2, 0.0, "donor", 0)
    assert "val" not in set(assignments["split"])
    assert (summary["note"] == "").all()


@pytest.mark.parametrize("n", [1, 2])
def test_tissue_with_fewer_than_three_samples_is_dropped(
    n: int, caplog: pytest.LogCaptureFixture
) -> None:
    samples = with_tissue(gtex_like(), "kidney_medulla", [f"GTEX-K{i}" for i in range(n)])
    tissues = [*BIG, "kidney_medulla"]
    with caplog.at_level(logging.WARNING, logger="rnaseq_saliency"):
        assignments, summary = split_samples(samples, tissues, 0.2, 0.1, "donor", 0)
    row = summary.set_index("tissue").loc["kidney_medulla"]
    assert not row["kept"]
    assert row["n_samples"] == n
    assert row[["n_train", "n_val", "n_test"]].sum() == 0
    assert f"{n} sample(s), fewer than the 3" in row["note"]
    assert "kidney_medulla" not in set(assignments["tissue"])
    assert any("kidney_medulla" in r.message and r.levelname == "WARNING" for r in caplog.records)


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("seed", range(6))
def test_tissue_with_three_or_four_samples_gets_train_and_test(n: int, seed: int) -> None:
    # One of the donors also gives big-tissue samples, so a repair move can affect other tissues.
    donors = ["GTEX-D000", *(f"GTEX-K{i}" for i in range(n - 1))]
    samples = with_tissue(gtex_like(seed=seed), "kidney_medulla", donors)
    tissues = [*BIG, "kidney_medulla"]
    assignments, summary = split_samples(samples, tissues, 0.2, 0.1, "donor", seed)
    assert_invariants(assignments, summary)
    row = summary.set_index("tissue").loc["kidney_medulla"]
    assert row["kept"]
    assert row["n_train"] >= 1 and row["n_test"] >= 1
    assert row["n_train"] + row["n_val"] + row["n_test"] == n


def test_repair_happens_and_is_noted() -> None:
    # With 3 samples and a 1-in-5 test fold, some seeds leave the tissue without a test sample.
    notes = []
    for seed in range(12):
        samples = with_tissue(gtex_like(seed=seed), "bladder", ["GTEX-B1", "GTEX-B2", "GTEX-B3"])
        assignments, summary = split_samples(samples, [*BIG, "bladder"], 0.2, 0.1, "donor", seed)
        assert_invariants(assignments, summary)
        notes.append(summary.set_index("tissue").loc["bladder", "note"])
    assert any("moved donor GTEX-B" in note for note in notes), notes


def test_tiny_tissue_from_one_donor_is_dropped_with_donor_grouping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = with_tissue(gtex_like(), "bladder", ["GTEX-ONE"] * 4)
    tissues = [*BIG, "bladder"]
    with caplog.at_level(logging.WARNING, logger="rnaseq_saliency"):
        assignments, summary = split_samples(samples, tissues, 0.2, 0.1, "donor", 0)
    row = summary.set_index("tissue").loc["bladder"]
    assert not row["kept"]
    assert "one donor (GTEX-ONE)" in row["note"]
    assert "bladder" not in set(assignments["tissue"])
    assert any("GTEX-ONE" in r.message for r in caplog.records if r.levelname == "WARNING")
    # Without donor grouping the same tissue is kept, split by sample.
    assignments, summary = split_samples(samples, tissues, 0.2, 0.1, "none", 0)
    row = summary.set_index("tissue").loc["bladder"]
    assert row["kept"] and row["n_train"] >= 1 and row["n_test"] >= 1


def test_group_by_none_splits_samples_of_one_donor_apart() -> None:
    samples = gtex_like()
    assignments, _ = split_samples(samples, BIG, 0.2, 0.1, "none", 0)
    assert (assignments.groupby("donor_id")["split"].nunique() > 1).any()
    for tissue in BIG:
        assert {"train", "test"} <= set(assignments.loc[assignments["tissue"] == tissue, "split"])


def test_triangle_of_donors_cannot_be_satisfied_and_one_tissue_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a: donors {1, 2}, b: {2, 3}, c: {1, 3}. Train/test must separate each pair, which no
    # assignment of three donors to two sets does; one tissue has to go.
    samples = gtex_like()
    for tissue, donors in {"a": [1, 1, 2], "b": [2, 2, 3], "c": [3, 3, 1]}.items():
        samples = with_tissue(samples, tissue, [f"GTEX-T{d}" for d in donors])
    tissues = [*BIG, "a", "b", "c"]
    for seed in range(4):
        with caplog.at_level(logging.WARNING, logger="rnaseq_saliency"):
            assignments, summary = split_samples(samples, tissues, 0.2, 0.1, "donor", seed)
        assert_invariants(assignments, summary)
        triangle = summary.set_index("tissue").loc[["a", "b", "c"]]
        assert (~triangle["kept"]).sum() == 1, triangle
        assert triangle.loc[~triangle["kept"], "note"].str.contains("without taking").all()
        assert summary.set_index("tissue").loc[BIG, "kept"].all()


def test_repair_never_takes_the_only_train_donor_of_another_tissue() -> None:
    # t has no test donor. Donor "a" is small and sorts first, but it is u's only training
    # donor, so moving it would fix t and break u: the repair must move "b" instead.
    group_split = {"a": "train", "b": "train", "u_test": "test"}
    tissue_groups = {"t": ["a", "b"], "u": ["a", "u_test"]}
    repair = _Repair(group_split, tissue_groups, {"a": 1, "b": 5, "u_test": 1}, ["t", "u"], "donor")
    repair.run()
    assert group_split == {"a": "train", "b": "test", "u_test": "test"}
    assert not repair.dropped
    assert "moved donor b" in repair.notes["t"][0]


def test_repair_takes_from_validation_first() -> None:
    # t has no training donor; "v" (val, big) and "s" (test, small) could both go. Validation
    # carries no guarantee, so "v" moves.
    group_split = {"v": "val", "s": "test", "s2": "test"}
    repair = _Repair(
        group_split, {"t": ["s", "s2", "v"]}, {"v": 9, "s": 1, "s2": 1}, ["t"], "donor"
    )
    repair.run()
    assert group_split == {"v": "train", "s": "test", "s2": "test"}


def test_summary_has_one_row_per_configured_tissue_in_config_order() -> None:
    samples = with_tissue(gtex_like(), "bladder", ["GTEX-B1"])
    tissues = ["whole_blood", "bladder", "liver", "uterus", "lung", "muscle_skeletal"]
    assignments, summary = split_samples(samples, tissues, 0.2, 0.1, "donor", 0)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["tissue"]) == tissues
    uterus = summary.set_index("tissue").loc["uterus"]
    assert uterus["n_samples"] == 0 and not uterus["kept"]
    # Samples follow the config's tissue order too.
    order = assignments["tissue"].drop_duplicates().tolist()
    assert order == ["whole_blood", "liver", "lung", "muscle_skeletal"]


def test_different_seed_gives_different_split() -> None:
    samples = gtex_like()
    first, _ = split_samples(samples, BIG, 0.2, 0.1, "donor", 0)
    second, _ = split_samples(samples, BIG, 0.2, 0.1, "donor", 1)
    again, _ = split_samples(samples.sample(frac=1, random_state=5), BIG, 0.2, 0.1, "donor", 0)
    assert not first["split"].equals(second["split"])
    # The input's row order does not matter, only the seed.
    merged = first.merge(again, on="sample_id")
    assert (merged["split_x"] == merged["split_y"]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_fraction": 0.6, "val_fraction": 0.4}, "below 1"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"group_by": "subject"}, "group_by"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_samples(gtex_like(), BIG, **kwargs)


def test_bad_samples_are_rejected() -> None:
    samples = gtex_like()
    with pytest.raises(ValueError, match="not configured"):
        split_samples(samples, BIG[:2])
    with pytest.raises(ValueError, match="more than once"):
        split_samples(pd.concat([samples, samples.iloc[:1]]), BIG)
    with pytest.raises(ValueError, match="lacks column"):
        split_samples(samples.drop(columns="donor_id"), BIG)
    with pytest.raises(ValueError, match="empty values in column"):
        split_samples(samples.assign(donor_id=samples["donor_id"].where(samples.index > 0)), BIG)


def write_expression_files(directory: Path, samples: pd.DataFrame) -> list[Path]:
    paths = []
    for tissue, block in samples.groupby("tissue", sort=False):
        path = directory / f"{tissue}.parquet"
        n = len(block)
        write_expression(
            path,
            ExpressionTable(
                sample_ids=block["sample_id"].tolist(),
                donor_ids=block["donor_id"].tolist(),
                gene_ids=["ENSG1", "ENSG2"],
                matrix=np.ones((n, 2), dtype=np.float32),
            ),
        )
        paths.append(path)
    return paths


def test_collect_samples_reads_ids_from_expression_files(tmp_path: Path) -> None:
    samples = gtex_like()
    paths = write_expression_files(tmp_path, samples)
    collected = collect_samples(paths)
    pd.testing.assert_frame_equal(
        collected.reset_index(drop=True), samples.reset_index(drop=True), check_dtype=False
    )


def test_write_split_same_seed_byte_identical_and_different_seed_differs(tmp_path: Path) -> None:
    samples = with_tissue(gtex_like(), "bladder", ["GTEX-B1", "GTEX-B2"])
    paths = write_expression_files(tmp_path, samples)
    tissues = [*BIG, "bladder"]
    outputs = {}
    for name, seed in [("a", 0), ("b", 0), ("c", 7)]:
        out = tmp_path / name
        write_split(
            paths,
            tissues,
            out / "samples.tsv",
            out / "summary.tsv",
            test_fraction=0.2,
            val_fraction=0.1,
            group_by="donor",
            seed=seed,
        )
        outputs[name] = ((out / "samples.tsv").read_bytes(), (out / "summary.tsv").read_bytes())
    assert outputs["a"] == outputs["b"]
    assert outputs["a"][0] != outputs["c"][0]
    # The files follow the contract the downstream loaders check.
    written = read_samples(tmp_path / "a" / "samples.tsv")
    assert "bladder" not in set(written["tissue"])
    summary = pd.read_csv(
        tmp_path / "a" / "summary.tsv", sep="\t", dtype=str, keep_default_na=False
    )
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary.set_index("tissue")["kept"].to_dict() == {
        **dict.fromkeys(BIG, "true"),
        "bladder": "false",
    }


def test_write_split_rejects_files_that_do_not_match_tissues(tmp_path: Path) -> None:
    paths = write_expression_files(tmp_path, gtex_like())
    with pytest.raises(ValueError, match="do not match"):
        write_split(
            paths[:2],
            BIG,
            tmp_path / "s.tsv",
            tmp_path / "m.tsv",
            test_fraction=0.2,
            val_fraction=0.1,
            group_by="donor",
            seed=0,
        )
