"""Tests for per-tissue augmentation of the training set and the PCA augmentation figure."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from rnaseq_saliency.augment import (
    augment_file,
    augment_tissue,
    check_min_samples,
    source_schedule,
)
from rnaseq_saliency.config import ConfigError, validate_config
from rnaseq_saliency.expression import ExpressionTable, read_expression, write_expression
from rnaseq_saliency.figures_augmentation import fit_real_pca, plot_pca_augmentation
from rnaseq_saliency.tissues import tissue_seed

N_GENES = 40


def make_table(n: int, seed: int = 0, prefix: str = "S", n_genes: int = N_GENES) -> ExpressionTable:
    """``n`` samples of TPM-like data (log-normal, some exact zeros), each from its own donor."""
    rng = np.random.default_rng(seed)
    matrix = rng.lognormal(mean=2.0, sigma=1.5, size=(n, n_genes)).astype(np.float32)
    matrix[rng.random((n, n_genes)) < 0.1] = 0.0
    return ExpressionTable(
        sample_ids=[f"{prefix}{i:03d}" for i in range(n)],
        donor_ids=[f"D{prefix}{i:03d}" for i in range(n)],
        gene_ids=[f"ENSG{i:05d}" for i in range(n_genes)],
        matrix=matrix,
    )


def real_rows(table: ExpressionTable) -> np.ndarray:
    return ~np.asarray(table.extra["synthetic"], dtype=bool)


def augment(table: ExpressionTable, method: str, min_samples: int, **kwargs) -> ExpressionTable:
    kwargs.setdefault("tissue", "liver")
    return augment_tissue(table, table.sample_ids, method, min_samples, **kwargs)


@pytest.mark.parametrize("method", ["noise", "smote"])
@pytest.mark.parametrize(("n_real", "min_samples"), [(5, 23), (7, 9), (2, 11)])
def test_minimum_count_holds_and_real_rows_come_first_unchanged(
    method: str, n_real: int, min_samples: int
) -> None:
    table = make_table(n_real)
    out = augment(table, method, min_samples)
    assert len(out.sample_ids) == min_samples
    assert out.sample_ids[:n_real] == table.sample_ids
    assert np.array_equal(out.matrix[:n_real], table.matrix)
    assert out.extra["synthetic"] == [False] * n_real + [True] * (min_samples - n_real)
    assert out.extra["source_sample_id"][:n_real] == table.sample_ids
    assert out.matrix.dtype == np.float32
    assert (out.matrix >= 0).all()
    assert len(set(out.sample_ids)) == len(out.sample_ids)
    assert out.gene_ids == table.gene_ids


@pytest.mark.parametrize("min_samples", [0, 4, 10])
def test_min_samples_at_or_below_the_count_adds_nothing(min_samples: int) -> None:
    table = make_table(10)
    out = augment(table, "noise", min_samples)
    assert out.sample_ids == table.sample_ids
    assert not any(out.extra["synthetic"])


def test_none_method_keeps_the_training_rows_only() -> None:
    table = make_table(6)
    out = augment_tissue(table, table.sample_ids[:4], "none", 600, tissue="liver")
    assert out.sample_ids == table.sample_ids[:4]
    assert out.extra["synthetic"] == [False] * 4
    assert np.array_equal(out.matrix, table.matrix[:4])


def test_fewer_needed_than_real_samples_draws_distinct_sources() -> None:
    table = make_table(10)
    out = augment(table, "noise", 14)
    sources = out.extra["source_sample_id"][10:]
    assert len(sources) == 4 and len(set(sources)) == 4
    assert all(name.endswith("_syn1") for name in out.sample_ids[10:])


def test_more_needed_than_real_samples_cycles_through_all_evenly() -> None:
    table = make_table(4)
    out = augment(table, "noise", 14)  # 10 synthetic from 4 sources: 3, 3, 2, 2
    counts = Counter(out.extra["source_sample_id"][4:])
    assert set(counts) == set(table.sample_ids)
    assert sorted(counts.values()) == [2, 2, 3, 3]
    for name, source in zip(out.sample_ids[4:], out.extra["source_sample_id"][4:], strict=True):
        assert name.startswith(f"{source}_syn")
    assert {f"{table.sample_ids[0]}_syn{k}" for k in (1, 2)} <= set(out.sample_ids)


def test_source_schedule_is_even_for_many_sizes() -> None:
    rng = np.random.default_rng(0)
    for n_real, n_new in [(1, 5), (3, 3), (5, 2), (7, 600), (600, 7)]:
        sources, copies = source_schedule(n_real, n_new, rng)
        counts = np.bincount(sources, minlength=n_real)
        assert counts.sum() == n_new
        assert counts.max() - counts.min() <= 1
        # copies count up per source: 1, 2, ... in order of appearance.
        seen: Counter[int] = Counter()
        for source, copy in zip(sources.tolist(), copies.tolist(), strict=True):
            seen[source] += 1
            assert copy == seen[source]


def test_synthetic_rows_carry_their_source_donor() -> None:
    table = make_table(3)
    for method in ("noise", "smote"):
        out = augment(table, method, 8)
        donor_of = dict(zip(table.sample_ids, table.donor_ids, strict=True))
        for donor, source in zip(out.donor_ids, out.extra["source_sample_id"], strict=True):
            assert donor == donor_of[source.split(";")[0]]


def test_noise_is_multiplicative_on_the_expression_scale() -> None:
    table = make_table(20, n_genes=500)
    out = augment(table, "noise", 40, noise_sigma=0.5)
    scaled = ExpressionTable(
        table.sample_ids, table.donor_ids, table.gene_ids, table.matrix * np.float32(8.0)
    )
    out_scaled = augment(scaled, "noise", 40, noise_sigma=0.5)
    # Same factors for the same seed and tissue: scaling the input scales the output.
    np.testing.assert_allclose(out_scaled.matrix[20:], out.matrix[20:] * 8.0, rtol=1e-6)
    index = {s: i for i, s in enumerate(table.sample_ids)}
    sources = table.matrix[[index[s] for s in out.extra["source_sample_id"][20:]]]
    synthetic = out.matrix[20:]
    assert (synthetic[sources == 0] == 0).all()
    ratios = synthetic[sources > 0] / sources[sources > 0]
    # E|N(1, 0.5)| = 1.0085; sd of |N(1, 0.5)| is about 0.49, so 0.02 is four standard errors.
    assert ratios.min() >= 0
    assert ratios.mean() == pytest.approx(1.0085, abs=0.02)
    assert ratios.std() == pytest.approx(0.49, abs=0.03)


def test_noise_with_tiny_sigma_copies_the_source() -> None:
    table = make_table(5)
    out = augment(table, "noise", 10, noise_sigma=1e-4)
    np.testing.assert_allclose(out.matrix[5:], table.matrix, rtol=1e-3)


def _segment_position(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Least-squares t with x = a + t (b - a), and the largest residual."""
    direction = b - a
    t = float(direction @ (x - a) / (direction @ direction))
    return t, float(np.abs(a + t * direction - x).max())


def test_smote_rows_lie_between_two_real_neighbours_on_log_scale() -> None:
    table = make_table(12)
    k = 3
    out = augment(table, "smote", 50, smote_k_neighbors=k)
    log_real = np.log1p(table.matrix.astype(np.float64))
    index = {s: i for i, s in enumerate(table.sample_ids)}
    distances = np.linalg.norm(log_real[:, None] - log_real[None], axis=2)
    for row, origin in zip(out.matrix[12:], out.extra["source_sample_id"][12:], strict=True):
        first, second = origin.split(";")
        a, b = index[first], index[second]
        assert a != b
        t, residual = _segment_position(log_real[a], log_real[b], np.log1p(row.astype(np.float64)))
        assert -1e-6 <= t <= 1 + 1e-6
        assert residual < 1e-4
        # The second parent is among the source's k nearest other samples.
        order = [j for j in np.argsort(distances[a], kind="stable") if j != a]
        assert b in order[:k]


def test_smote_k_is_capped_at_the_number_of_other_samples() -> None:
    table = make_table(3)
    out = augment(table, "smote", 30, smote_k_neighbors=10)
    parents = {tuple(o.split(";")) for o in out.extra["source_sample_id"][3:]}
    assert all(a != b for a, b in parents)
    # With 3 samples and k capped at 2, each source pairs with both others somewhere in 27 rows.
    assert len(parents) == 6


def test_smote_with_one_training_sample_falls_back_to_noise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = make_table(1)
    with caplog.at_level(logging.WARNING, logger="rnaseq_saliency"):
        out = augment(table, "smote", 5)
    assert len(out.sample_ids) == 5
    assert out.extra["source_sample_id"][1:] == ["S000"] * 4
    assert any("using noise instead" in r.message for r in caplog.records)


def test_imblearn_smote_makes_points_on_the_same_segments() -> None:
    """Our SMOTE follows imbalanced-learn's definition: same neighbours, same segments.

    imbalanced-learn oversamples a minority class, so the tissue's samples get a far-away
    dummy majority class; every point it makes must lie on a (sample, k-nearest) segment.
    """
    from imblearn.over_sampling import SMOTE

    from rnaseq_saliency.augment import _neighbours

    k = 3
    log_real = np.log1p(make_table(9).matrix.astype(np.float64))
    dummy = np.full((30, N_GENES), 100.0)
    x = np.concatenate([log_real, dummy])
    y = np.array([1] * 9 + [0] * 30)
    x_new, y_new = SMOTE(k_neighbors=k, random_state=0).fit_resample(x, y)
    made = x_new[len(x) :]
    assert (y_new[len(x) :] == 1).all() and len(made) == 21
    neighbours = _neighbours(log_real, k)
    for point in made:
        best = min(
            _segment_position(log_real[a], log_real[b], point)[1]
            for a in range(9)
            for b in neighbours[a]
        )
        assert best < 1e-8


def test_validation_and_test_samples_are_never_used(tmp_path: Path) -> None:
    table = make_table(10)
    expression = tmp_path / "liver.parquet"
    write_expression(expression, table)
    splits = ["train"] * 4 + ["val"] * 3 + ["test"] * 3
    samples = pd.DataFrame(
        {
            "sample_id": table.sample_ids,
            "donor_id": table.donor_ids,
            "tissue": "liver",
            "split": splits,
        }
    )
    samples_tsv = tmp_path / "samples.tsv"
    samples.to_csv(samples_tsv, sep="\t", index=False)
    train = set(table.sample_ids[:4])
    for method in ("noise", "smote", "none"):
        out_path = tmp_path / f"{method}.parquet"
        augment_file(
            expression,
            samples_tsv,
            "liver",
            out_path,
            method=method,
            min_samples=25,
            noise_sigma=0.5,
            smote_k_neighbors=5,
            seed=0,
        )
        out = read_expression(out_path)
        real = [s for s, syn in zip(out.sample_ids, out.extra["synthetic"], strict=True) if not syn]
        assert set(real) == train
        parents = {p for origin in out.extra["source_sample_id"] for p in origin.split(";")}
        assert parents <= train
        assert len(out.sample_ids) == (4 if method == "none" else 25)


def test_training_sample_missing_from_the_expression_file_is_an_error() -> None:
    table = make_table(3)
    with pytest.raises(ValueError, match="not in the expression file"):
        augment_tissue(table, ["S000", "nope"], "noise", 5, tissue="liver")


def run_augment_file(tmp_path: Path, name: str, seed: int, tissue: str = "liver") -> bytes:
    table = make_table(6)
    expression = tmp_path / f"{tissue}.parquet"
    write_expression(expression, table)
    samples = pd.DataFrame(
        {
            "sample_id": table.sample_ids,
            "donor_id": table.donor_ids,
            "tissue": tissue,
            "split": ["train"] * 5 + ["test"],
        }
    )
    samples.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    out = tmp_path / f"{name}.parquet"
    augment_file(
        expression,
        tmp_path / "samples.tsv",
        tissue,
        out,
        method="smote",
        min_samples=20,
        noise_sigma=0.5,
        smote_k_neighbors=2,
        seed=seed,
    )
    return out.read_bytes()


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    first = run_augment_file(tmp_path, "a", seed=0)
    assert run_augment_file(tmp_path, "b", seed=0) == first
    assert run_augment_file(tmp_path, "c", seed=1) != first


def test_each_tissue_gets_its_own_stable_random_stream() -> None:
    digest = hashlib.sha256(b"liver").digest()
    assert tissue_seed(3, "liver") == [3, int.from_bytes(digest[:8], "little")]
    table = make_table(4)
    liver = augment(table, "noise", 8, tissue="liver")
    lung = augment(table, "noise", 8, tissue="lung")
    assert not np.array_equal(liver.matrix[4:], lung.matrix[4:])


def test_tissue_without_training_samples_gets_an_empty_file(tmp_path: Path) -> None:
    table = make_table(2)
    expression = tmp_path / "bladder.parquet"
    write_expression(expression, table)
    # A dropped tissue has no rows in samples.tsv at all.
    samples = pd.DataFrame(
        {"sample_id": ["X1"], "donor_id": ["DX"], "tissue": ["liver"], "split": ["train"]}
    )
    samples.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    out = tmp_path / "out" / "bladder.parquet"
    augment_file(
        expression,
        tmp_path / "samples.tsv",
        "bladder",
        out,
        method="noise",
        min_samples=600,
        noise_sigma=0.5,
        smote_k_neighbors=5,
        seed=0,
    )
    back = read_expression(out)
    assert back.sample_ids == [] and back.matrix.shape == (0, N_GENES)
    assert back.gene_ids == table.gene_ids
    schema = pq.read_schema(out)
    assert schema.field("synthetic").type == pa.bool_()
    assert schema.field("source_sample_id").type == pa.string()


@pytest.mark.parametrize("bad", [-1, 2.5, 600.0, "600", True, None])
def test_negative_or_non_integer_min_samples_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match=r"augment\.min_samples"):
        check_min_samples(bad)
    with pytest.raises(ValueError, match=r"augment\.min_samples"):
        augment(make_table(3), "noise", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 2.5])
def test_config_schema_rejects_bad_min_samples(repo: Path, bad: object) -> None:
    config = yaml.safe_load((repo / "config/config.yaml").read_text())
    config["augment"]["min_samples"] = bad
    with pytest.raises(ConfigError, match=r"augment\.min_samples"):
        validate_config(config, repo / "workflow/schemas/config.schema.yaml")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "mixup"}, "augment.method"),
        ({"noise_sigma": 0.0}, "noise_sigma"),
        ({"smote_k_neighbors": 0}, "smote_k_neighbors"),
    ],
)
def test_other_bad_arguments_are_rejected(kwargs: dict, message: str) -> None:
    table = make_table(3)
    arguments = {"method": "noise", "min_samples": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        augment_tissue(table, table.sample_ids, **arguments)


# --- the PCA figure -------------------------------------------------------------------------


def augmented_files(tmp_path: Path) -> list[Path]:
    paths = []
    for i, tissue in enumerate(["liver", "lung"]):
        table = make_table(8, seed=i, prefix=tissue[:2].upper())
        path = tmp_path / f"{tissue}.parquet"
        write_expression(path, augment(table, "noise", 30, tissue=tissue))
        paths.append(path)
    return paths


def test_pca_is_fitted_on_real_rows_only(tmp_path: Path) -> None:
    tables = [read_expression(p) for p in augmented_files(tmp_path)]
    # Make the synthetic rows absurd: if they entered the fit, the mean would move.
    for table in tables:
        table.matrix = table.matrix.copy()  # read_expression's matrix is a read-only view
        table.matrix[~real_rows(table)] = 1e6
    pca = fit_real_pca(tables)
    real = np.concatenate([np.log1p(t.matrix[real_rows(t)].astype(np.float64)) for t in tables])
    assert pca.n_samples_ == 16
    np.testing.assert_allclose(pca.mean_, real.mean(axis=0))


def test_pca_figure_is_written(tmp_path: Path) -> None:
    import matplotlib.image

    paths = augmented_files(tmp_path)
    # A dropped tissue (empty file) is listed, not plotted.
    empty = make_table(2, prefix="BL")
    write_expression(tmp_path / "bladder.parquet", augment_tissue(empty, [], "noise", 30))
    out = tmp_path / "fig" / "pca_augmentation.png"
    plot_pca_augmentation(
        [*paths, tmp_path / "bladder.parquet"], ["liver", "lung", "bladder"], "noise", out
    )
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (720, 1560)
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_pca_figure_needs_matching_tissues(tmp_path: Path) -> None:
    paths = augmented_files(tmp_path)
    with pytest.raises(ValueError, match="tissues"):
        plot_pca_augmentation(paths, ["liver"], "noise", tmp_path / "x.png")
