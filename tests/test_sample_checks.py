"""The sample checks (issue 19): novelty flags, mixture estimates, their files and honesty."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnaseq_saliency import evaluate_checks as me
from rnaseq_saliency import sample_checks as sc
from rnaseq_saliency.expression import ExpressionTable, write_expression
from rnaseq_saliency.settings import SampleCheckSettings
from rnaseq_saliency.tissues import organ_of

REPO = Path(__file__).resolve().parents[1]
# Two brain regions and two skins share an organ (SMTS); the rest are organs of their own.
TISSUES = [
    "brain_cortex",
    "brain_cerebellum",
    "skin_sun_exposed_lower_leg",
    "skin_not_sun_exposed_suprapubic",
    "liver",
    "muscle_skeletal",
    "whole_blood",
    "testis",
]
N_GENES = 400
N_PER_SPLIT = {"train": 30, "val": 25, "test": 25}
SETTINGS = SampleCheckSettings(novelty_rate=0.01, novelty_method="auto", mixture_rate=0.04, seed=0)


def tissue_profiles(seed: int = 1) -> dict[str, np.ndarray]:
    """Log-scale mean profiles; tissues of one organ share most of theirs."""
    rng = np.random.default_rng(seed)
    by_organ: dict[str, np.ndarray] = {}
    profiles = {}
    for tissue in TISSUES:
        organ = organ_of(tissue)
        if organ not in by_organ:
            by_organ[organ] = rng.normal(1.5, 1.5, N_GENES)
        profiles[tissue] = by_organ[organ] + rng.normal(0, 0.3, N_GENES)
    return profiles


def draw(profile: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.expm1(np.clip(profile + rng.normal(0, 0.25, (n, N_GENES)), 0, None)).astype(
        np.float32
    )


def make_split(seed: int = 0) -> dict[str, tuple[np.ndarray, list[str]]]:
    rng = np.random.default_rng(seed)
    profiles = tissue_profiles()
    out = {}
    for split, n in N_PER_SPLIT.items():
        blocks = [draw(profiles[t], n, rng) for t in TISSUES]
        out[split] = (np.vstack(blocks), [t for t in TISSUES for _ in range(n)])
    return out


def fit(data: dict[str, tuple[np.ndarray, list[str]]], **options) -> sc.SampleChecks:
    train, train_tissues = data["train"]
    logged = np.log1p(train)
    return sc.fit_sample_checks(
        train,
        train_tissues,
        *data["val"],
        gene_ids=[f"ENSG{i:011d}.1" for i in range(N_GENES)],
        scaling_mean=logged.mean(axis=0),
        scaling_std=np.maximum(logged.std(axis=0), 0.1),
        measure="tpm",
        **{**SETTINGS._asdict(), **options},
    )


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, list[str]]]:
    return make_split()


@pytest.fixture(scope="module")
def checks(data) -> sc.SampleChecks:
    return fit(data)


def test_novelty_flags_noise_flat_and_shuffled_profiles(data, checks) -> None:
    rng = np.random.default_rng(5)
    test, tissues = data["test"]
    noise = rng.lognormal(1.0, 2.0, (10, N_GENES)).astype(np.float32)
    flat = np.full((1, N_GENES), 10.0, dtype=np.float32)
    shuffled = np.stack([rng.permutation(row) for row in test[::40][:5]])
    odd = np.vstack([noise, flat, shuffled])
    table = sc.check_samples(checks, odd, [tissues[0]] * len(odd))
    assert table["novel"].all(), table["novelty_score"].tolist()


def test_real_held_out_samples_pass_at_about_the_validation_rate(data, checks) -> None:
    test, tissues = data["test"]
    table = sc.check_samples(checks, test, tissues)
    # Target 1% (200 test samples): a threshold fitted badly (e.g. on training scores, which
    # the PCA has seen) would flag far more.
    assert table["novel"].mean() <= 0.04
    val_flagged = checks.info["novelty_comparison"][checks.novelty_method]["validation_flagged"]
    assert val_flagged <= 0.04


def test_the_chosen_novelty_method_wins_the_validation_comparison(checks) -> None:
    comparison = checks.info["novelty_comparison"]
    assert set(comparison) == set(sc.NOVELTY_METHODS)
    assert checks.novelty_method == sc.choose_novelty_method(comparison)
    assert checks.novelty_threshold == comparison[checks.novelty_method]["threshold"]
    forced = sc.choose_novelty_method(
        {
            "pca_distance": {"outliers_flagged": 0.5, "auroc": 1.0},
            "local_outlier_factor": {"outliers_flagged": 0.9, "auroc": 0.8},
        }
    )
    assert forced == "local_outlier_factor"


def test_nnls_recovers_the_fractions_of_mixed_tissue_means(checks) -> None:
    liver, muscle = checks.tissues.index("liver"), checks.tissues.index("muscle_skeletal")
    for fraction in (0.05, 0.1, 0.3, 0.5):
        profile = (1 - fraction) * checks.reference[:, liver] + fraction * checks.reference[
            :, muscle
        ]
        estimate = sc.mixture_fractions(checks, profile[None, :].astype(np.float32))[0]
        assert estimate[muscle] == pytest.approx(fraction, abs=1e-3)
        assert estimate[liver] == pytest.approx(1 - fraction, abs=1e-3)
        assert estimate.sum() == pytest.approx(1.0)


def test_mixtures_of_held_out_samples_are_estimated_and_flagged(data, checks) -> None:
    test, tissues = data["test"]
    labels = np.asarray(tissues)
    blood, testis = test[labels == "whole_blood"][:10], test[labels == "testis"][:10]
    for fraction in (0.1, 0.3):
        mixed = np.stack(
            [me.mix(a, b, fraction, "tpm") for a, b in zip(blood, testis, strict=True)]
        )
        table = sc.check_samples(checks, mixed, ["whole_blood"] * len(mixed))
        assert table["foreign_organ"].eq("Testis").all()
        assert np.abs(table["foreign_fraction"] - fraction).mean() < 0.03
        assert table["possible_mixture"].all()
    clean = sc.check_samples(checks, test, tissues)
    assert clean["possible_mixture"].mean() <= 0.08


def test_tissues_of_one_organ_are_reported_never_flagged(data, checks) -> None:
    test, tissues = data["test"]
    labels = np.asarray(tissues)
    cortex = test[labels == "brain_cortex"][:10]
    cerebellum = test[labels == "brain_cerebellum"][:10]
    mixed = np.stack([me.mix(a, b, 0.5, "tpm") for a, b in zip(cortex, cerebellum, strict=True)])
    table = sc.check_samples(checks, mixed, ["brain_cortex"] * len(mixed))
    assert not table["possible_mixture"].any()
    shown = set(table["component_1"]) | set(table["component_2"])
    assert {"brain_cortex", "brain_cerebellum"} <= shown


def test_checks_round_trip_through_their_files(data, checks, tmp_path) -> None:
    sc.write_sample_checks(checks, tmp_path)
    again = sc.read_sample_checks(tmp_path)
    test, tissues = data["test"]
    pd.testing.assert_frame_equal(
        sc.check_samples(checks, test, tissues), sc.check_samples(again, test, tissues)
    )
    (tmp_path / sc.JSON_FILE).write_text('{"format": "other"}')
    with pytest.raises(sc.SampleChecksError, match=r"sample_checks\.json"):
        sc.read_sample_checks(tmp_path)


def write_split(root: Path, data, synthetic_shift: float = 0.0) -> tuple[list[Path], Path]:
    """Per-tissue expression files and samples.tsv as the workflow writes them."""
    rows, files = [], []
    gene_ids = [f"ENSG{i:011d}.1" for i in range(N_GENES)]
    for tissue in TISSUES:
        ids, blocks = [], []
        for split, (matrix, tissues) in data.items():
            keep = np.asarray(tissues) == tissue
            blocks.append(matrix[keep])
            ids += [f"{split}-{tissue}-{j}" for j in range(int(keep.sum()))]
            rows += [
                {"sample_id": i, "donor_id": i, "tissue": tissue, "split": split}
                for i in ids[-int(keep.sum()) :]
            ]
        path = root / f"{tissue}.parquet"
        write_expression(path, ExpressionTable(ids, ids, gene_ids, np.vstack(blocks)))
        files.append(path)
    pd.DataFrame(rows).to_csv(root / "samples.tsv", sep="\t", index=False)
    return files, root / "samples.tsv"


def test_nothing_fitted_sees_the_test_samples(data, tmp_path) -> None:
    """Replacing every test sample by noise changes no fitted array and no threshold."""
    train, _ = data["train"]
    logged = np.log1p(train)
    options = dict(
        gene_ids=[f"ENSG{i:011d}.1" for i in range(N_GENES)],
        scaling_mean=logged.mean(axis=0),
        scaling_std=np.maximum(logged.std(axis=0), 0.1),
        measure="tpm",
        settings=SETTINGS,
    )
    files, samples = write_split(tmp_path / "a", data)
    first = sc.fit_from_split(files, samples, **options)
    rng = np.random.default_rng(9)
    test, tissues = data["test"]
    changed = {**data, "test": (rng.lognormal(2, 2, test.shape).astype(np.float32), tissues)}
    files, samples = write_split(tmp_path / "b", changed)
    second = sc.fit_from_split(files, samples, **options)
    for name in sc._ARRAY_NAMES:
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)
    assert first.novelty_threshold == second.novelty_threshold
    assert first.mixture_threshold == second.mixture_threshold
    # ... while changing the validation samples moves the thresholds: they are set there.
    val, val_tissues = data["val"]
    moved = {
        **data,
        "val": (val * rng.lognormal(0, 0.5, val.shape).astype(np.float32), val_tissues),
    }
    files, samples = write_split(tmp_path / "c", moved)
    third = sc.fit_from_split(files, samples, **options)
    assert third.novelty_threshold != first.novelty_threshold


def test_mixture_evaluation_table(data, checks) -> None:
    test, tissues = data["test"]
    pairs = me.mixture_pairs(checks.tissues, checks.organs, 20, seed=3)
    assert len(pairs) == len(set(pairs)) == 20
    assert all(checks.organs[a] != checks.organs[b] for a, b in pairs)
    assert pairs == me.mixture_pairs(checks.tissues, checks.organs, 20, seed=3)
    table = me.evaluate_mixtures(
        checks,
        lambda raw: _nearest(checks, raw),
        test,
        tissues,
        n_pairs=20,
        fractions=(0.1, 0.3),
        seed=0,
    )
    assert list(table.columns) == me.MIXTURE_COLUMNS
    assert table["minor_fraction"].tolist() == [0.0, 0.1, 0.3]
    assert table.loc[2, "flagged_rate"] >= 0.9
    assert table.loc[1:, "mean_abs_error"].max() < 0.05
    assert table.loc[0, "flagged_rate"] <= 0.08


def _nearest(checks: sc.SampleChecks, raw: np.ndarray) -> list[str]:
    """A stand-in classifier: the largest NNLS component."""
    fractions = sc.mixture_fractions(checks, raw)
    return [checks.tissues[i] for i in fractions.argmax(axis=1)]


def test_every_new_output_column_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    columns = [*sc.PREDICTION_CHECK_COLUMNS, *me.MIXTURE_COLUMNS]
    missing = [c for c in columns if not re.search(rf"`{c}`", readme)]
    assert not missing, f"README.md does not document {missing}"


def test_predict_writes_the_checks_and_marks_a_novel_call(data, checks, tmp_path, caplog) -> None:
    """predict --model alone carries the checks: columns before missing_genes, a novel
    sample's call marked untrusted in the table and the log."""
    import logging

    from rnaseq_saliency import model as md
    from rnaseq_saliency.predict import run_predict

    architecture = md.resolve_architecture(N_GENES, len(TISSUES), hidden=(8, 8, 8))
    md.save_model(
        tmp_path / "model",
        md.network_from_architecture(architecture),
        architecture,
        md.Scaler(checks.scaling_mean, checks.scaling_std),
        checks.gene_ids,
        [f"G{i}" for i in range(N_GENES)],
        checks.tissues,
        config={"data": {"measure": "tpm"}},
    )
    sc.write_sample_checks(checks, tmp_path / "model")
    test, _ = data["test"]
    rng = np.random.default_rng(2)
    raw = np.vstack([test[:3], rng.lognormal(1, 2, (1, N_GENES))])
    table = pd.DataFrame(raw.T, index=checks.gene_ids, columns=["A", "B", "C", "NOISE"])
    table.index.name = "gene_id"
    table.to_csv(tmp_path / "input.tsv", sep="\t")
    with caplog.at_level(logging.WARNING):
        run_predict(
            tmp_path / "model",
            tmp_path / "input.tsv",
            tmp_path / "out/predictions.tsv",
            tmp_path / "out/top.tsv",
            tmp_path / "out/figures",
            method="gradient",
        )
    written = pd.read_csv(tmp_path / "out/predictions.tsv", sep="\t").set_index("sample_id")
    columns = list(written.columns)
    at = columns.index("missing_genes")
    assert columns[at - len(sc.PREDICTION_CHECK_COLUMNS) : at] == sc.PREDICTION_CHECK_COLUMNS
    assert bool(written.loc["NOISE", "novel"]) and not bool(written.loc["NOISE", "call_trusted"])
    assert not written.loc[["A", "B", "C"], "novel"].any()
    assert any(
        "NOISE: novel" in r.getMessage() and "not to be trusted" in r.getMessage()
        for r in caplog.records
    )


def test_figure_title_says_novel_and_mixture() -> None:
    from rnaseq_saliency.predict import figure_note

    assert figure_note({"tissue_1": "liver"}) == ""
    assert "NOVEL" in figure_note({"novel": True, "possible_mixture": False})
    note = figure_note(
        {
            "novel": False,
            "possible_mixture": True,
            "foreign_fraction": 0.12,
            "foreign_organ": "Testis",
        }
    )
    assert note == "possible mixture: 12% Testis"


def test_held_out_table_round_trips_with_every_split(data, checks, tmp_path) -> None:
    from types import SimpleNamespace

    rows = {
        split: SimpleNamespace(
            matrix=data[split][0],
            tissues=data[split][1],
            sample_ids=[f"{split}{i}" for i in range(len(data[split][1]))],
        )
        for split in ("val", "test")
    }
    table = me.held_out_checks(checks, lambda raw: _nearest(checks, raw), rows)
    assert list(table.columns) == me.HELD_OUT_COLUMNS
    assert table["split"].value_counts().to_dict() == {"val": 200, "test": 200}
    me.write_held_out(table, tmp_path / "sample_checks.tsv")
    again = me.read_held_out(tmp_path / "sample_checks.tsv")
    pd.testing.assert_series_equal(again["novel"], table["novel"])
    assert (again["call_trusted"] == ~again["novel"]).all()
