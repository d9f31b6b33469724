"""Tests for rnaseq_saliency.evaluate: reports, confusion matrix, baseline and the rule's files."""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from rnaseq_saliency import evaluate as ev
from rnaseq_saliency.expression import ExpressionTable, write_expression
from rnaseq_saliency.tissues import all_labels

torch.set_num_threads(1)

# Two brain regions and two colon sections that share a group profile, and liver on its own.
TISSUES = ["brain_cortex", "liver", "colon_sigmoid", "brain_cerebellum", "colon_transverse"]
GROUP_GENES = {"brain": [0, 1, 2], "liver": [3, 4, 5], "colon": [6, 7, 8]}
OWN_GENE = {
    "brain_cortex": 9,
    "brain_cerebellum": 10,
    "liver": 11,
    "colon_sigmoid": 12,
    "colon_transverse": 13,
}
N_GENES = 16
N_PER_SPLIT = {"train": 8, "val": 3, "test": 4}
N_SYNTHETIC = 5  # per tissue, in the augmented files


def _group(tissue: str) -> str:
    return tissue.split("_")[0]


def _log_profile(tissue: str, own_strength: float) -> np.ndarray:
    profile = np.ones(N_GENES)
    profile[GROUP_GENES[_group(tissue)]] += 3.0
    profile[OWN_GENE[tissue]] += own_strength
    return profile


@dataclass
class Dataset:
    expression: list[Path]
    augmented: list[Path]
    samples: Path
    gene_ids: list[str]
    table: pd.DataFrame
    train_raw: np.ndarray = field(repr=False)
    train_tissues: list[str] = field(repr=False)


def make_dataset(
    root: Path, own_strength: float = 3.0, noise: float = 0.1, seed: int = 0
) -> Dataset:
    """Per-tissue expression files, augmented training files and samples.tsv, GTEx-shaped.

    Donors are shared across tissues within a split (donor j of the test split gave one test
    sample of every tissue), as GTEx donors give several tissues.
    """
    rng = np.random.default_rng(seed)
    gene_ids = [f"ENSG{i:011d}.1" for i in range(N_GENES)]
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    expression, augmented = [], []
    train_blocks, train_tissues = [], []
    for tissue in TISSUES:
        profile = _log_profile(tissue, own_strength)
        ids, donors, blocks, splits = [], [], [], []
        for split, n in N_PER_SPLIT.items():
            for j in range(n):
                ids.append(f"GTEX-{split[:2].upper()}{j}-{tissue}")
                donors.append(f"GTEX-{split[:2].upper()}{j}")
                splits.append(split)
            blocks.append(np.expm1(profile + rng.normal(0.0, noise, (n, N_GENES))))
        matrix = np.clip(np.vstack(blocks), 0, None).astype(np.float32)
        path = root / "expression" / f"{tissue}.parquet"
        write_expression(path, ExpressionTable(ids, donors, gene_ids, matrix))
        expression.append(path)
        rows += [
            {"sample_id": s, "donor_id": d, "tissue": tissue, "split": p}
            for s, d, p in zip(ids, donors, splits, strict=True)
        ]
        train = np.asarray([p == "train" for p in splits])
        real = matrix[train]
        real_ids = [s for s, p in zip(ids, splits, strict=True) if p == "train"]
        real_donors = [d for d, p in zip(donors, splits, strict=True) if p == "train"]
        parents = rng.integers(0, len(real), N_SYNTHETIC)
        synthetic = np.clip(
            np.expm1(np.log1p(real[parents]) + rng.normal(0.0, noise, (N_SYNTHETIC, N_GENES))),
            0,
            None,
        ).astype(np.float32)
        aug = np.vstack([real, synthetic])
        aug_path = root / "augmented" / f"{tissue}.parquet"
        write_expression(
            aug_path,
            ExpressionTable(
                [*real_ids, *(f"{tissue}-syn{i}" for i in range(N_SYNTHETIC))],
                [*real_donors, *(real_donors[p] for p in parents)],
                gene_ids,
                aug,
                extra={
                    "synthetic": [False] * len(real) + [True] * N_SYNTHETIC,
                    "source_sample_id": [*real_ids, *(real_ids[p] for p in parents)],
                },
            ),
        )
        augmented.append(aug_path)
        train_blocks.append(aug)
        train_tissues += [tissue] * len(aug)
    table = pd.DataFrame(rows)
    samples = root / "samples.tsv"
    table.to_csv(samples, sep="\t", index=False)
    return Dataset(
        expression, augmented, samples, gene_ids, table, np.vstack(train_blocks), train_tissues
    )


class FakeModel:
    """The TrainedModel API over a torch.nn.Linear nearest-centroid classifier."""

    def __init__(self, data: Dataset) -> None:
        logged = np.log1p(data.train_raw)
        self.mean = logged.mean(axis=0).astype(np.float32)
        self.std = np.maximum(logged.std(axis=0), 0.1).astype(np.float32)
        self.tissues = list(TISSUES)
        self.gene_ids = list(data.gene_ids)
        scaled = self.scale(data.train_raw)
        labels = np.asarray(data.train_tissues)
        centroids = np.stack([scaled[labels == t].mean(axis=0) for t in self.tissues])
        self.network = torch.nn.Linear(N_GENES, len(self.tissues))
        with torch.no_grad():
            self.network.weight.copy_(torch.from_numpy(centroids))
            self.network.bias.copy_(torch.from_numpy(-0.5 * (centroids**2).sum(axis=1)))
        self.network.eval()

    def scale(self, raw: np.ndarray, *, overwrite_input: bool = False) -> np.ndarray:
        return ((np.log1p(raw) - self.mean) / self.std).astype(np.float32)

    temperature = 1.0

    def logits(self, raw: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.network(torch.from_numpy(self.scale(raw))).numpy()

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        logits = torch.from_numpy(self.logits(raw)) / self.temperature
        return torch.softmax(logits, dim=1).numpy()


class AlwaysModel(FakeModel):
    """Broken: predicts one tissue for every sample."""

    def __init__(self, data: Dataset, tissue: str) -> None:
        super().__init__(data)
        self.always = self.tissues.index(tissue)

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        proba = np.full((raw.shape[0], len(self.tissues)), 0.01, dtype=np.float32)
        proba[:, self.always] = 1.0 - 0.01 * (len(self.tissues) - 1)
        return proba

    def logits(self, raw: np.ndarray) -> np.ndarray:
        return np.log(self.predict_proba(raw))


class ShiftedModel(FakeModel):
    """Broken: the output columns are rotated, so tissue i is reported as tissue i + 1."""

    def logits(self, raw: np.ndarray) -> np.ndarray:
        return np.roll(super().logits(raw), 1, axis=1)


def outputs_in(directory: Path) -> dict[str, Path]:
    names = {
        "predictions": "predictions.tsv",
        "report_tsv": "classification_report.tsv",
        "report_html": "classification_report.html",
        "confusion_tsv": "confusion_matrix.tsv",
        "confusion_png": "confusion_matrix.png",
        "top_confusions": "top_confusions.tsv",
        "baseline": "baseline_report.tsv",
        "summary": "summary.json",
        "calibration_png": "calibration.png",
    }
    return {key: directory / "evaluation" / name for key, name in names.items()}


def run(model: Any, data: Dataset, out_dir: Path, test_opt: int = 1) -> dict[str, Any]:
    outputs = outputs_in(out_dir)
    ev.evaluate_model(
        model, data.augmented, data.expression, data.samples, outputs, test_opt, seed=0
    )
    return {key: path for key, path in outputs.items()}


def read_report(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t").set_index("label")


def count_report(predictions: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The classification report by counting with pandas (no scikit-learn)."""
    rows = {}
    for label in labels:
        true = predictions["tissue"] == label
        pred = predictions["predicted"] == label
        tp = int((true & pred).sum())
        precision = tp / pred.sum() if pred.sum() else 0.0
        recall = tp / true.sum() if true.sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows[label] = {
            "precision": precision,
            "recall": recall,
            "f1-score": f1,
            "support": int(true.sum()),
        }
    per = pd.DataFrame(rows).T
    weights = per["support"] / per["support"].sum()
    n = len(predictions)
    rows["accuracy"] = {
        "precision": np.nan,
        "recall": np.nan,
        "f1-score": float(predictions["correct"].mean()),
        "support": n,
    }
    rows["macro avg"] = {**per[["precision", "recall", "f1-score"]].mean().to_dict(), "support": n}
    rows["weighted avg"] = {
        **per[["precision", "recall", "f1-score"]].mul(weights, axis=0).sum().to_dict(),
        "support": n,
    }
    return pd.DataFrame(rows).T


def assert_reports_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual.index) == list(expected.index)
    for column in ["precision", "recall", "f1-score", "support"]:
        np.testing.assert_allclose(
            actual[column].astype(float),
            expected[column].astype(float),
            atol=2e-6,
            err_msg=column,
        )


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    # The tissue-specific gene is weak beside the noise: brain regions and colon sections mix.
    return make_dataset(tmp_path_factory.mktemp("noisy"), own_strength=0.6, noise=0.6, seed=1)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return make_dataset(tmp_path_factory.mktemp("clean"), own_strength=3.0, noise=0.1, seed=2)


@pytest.fixture(scope="module")
def noisy_run(noisy: Dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return run(FakeModel(noisy), noisy, tmp_path_factory.mktemp("noisy_run"))


# --------------------------------------------------------------------------- report vs counting


def test_report_recomputed_from_predictions_matches(noisy_run: dict[str, Path]) -> None:
    predictions = pd.read_csv(noisy_run["predictions"], sep="\t")
    assert list(predictions.columns) == ev.PREDICTION_COLUMNS
    test = predictions[predictions["split"] == "test"]
    # Not a trivial case: some right, some wrong.
    assert 0.0 < test["correct"].mean() < 1.0
    assert (test["correct"] == (test["tissue"] == test["predicted"])).all()
    assert_reports_equal(read_report(noisy_run["report_tsv"]), count_report(test, TISSUES))


def test_confusion_tsv_matches_predictions(noisy_run: dict[str, Path]) -> None:
    predictions = pd.read_csv(noisy_run["predictions"], sep="\t")
    test = predictions[predictions["split"] == "test"]
    counts = pd.read_csv(noisy_run["confusion_tsv"], sep="\t", index_col="true_tissue")
    expected = pd.crosstab(test["tissue"], test["predicted"]).reindex(
        index=TISSUES, columns=TISSUES, fill_value=0
    )
    assert list(counts.index) == TISSUES and list(counts.columns) == TISSUES
    np.testing.assert_array_equal(counts.to_numpy(), expected.to_numpy())


def test_top_confusions_file_lists_off_diagonal_pairs(noisy_run: dict[str, Path]) -> None:
    predictions = pd.read_csv(noisy_run["predictions"], sep="\t")
    test = predictions[predictions["split"] == "test"]
    top = pd.read_csv(noisy_run["top_confusions"], sep="\t")
    assert list(top.columns) == ev.TOP_CONFUSION_COLUMNS
    wrong = test[~test["correct"]].groupby(["tissue", "predicted"]).size()
    assert len(top) == len(wrong) > 0
    for row in top.itertuples(index=False):
        assert row.true != row.predicted
        assert row.count == wrong[(row.true, row.predicted)]
        support = (test["tissue"] == row.true).sum()
        assert row.fraction_of_true == pytest.approx(row.count / support, abs=1e-6)
    assert list(top["count"]) == sorted(top["count"], reverse=True)


def test_predictions_probability_is_that_of_the_predicted_tissue(noisy: Dataset) -> None:
    model = FakeModel(noisy)
    rows = ev.load_split_rows(noisy.expression, noisy.table, "test")
    table = ev.predictions_table(model, {"test": rows}, batch_rows=7)  # several batches
    proba = model.predict_proba(rows.matrix)
    np.testing.assert_allclose(table["probability"], proba.max(axis=1), rtol=1e-6)
    assert table["predicted"].tolist() == [TISSUES[i] for i in proba.argmax(axis=1)]
    assert table["sample_id"].tolist() == rows.sample_ids


def test_classification_report_table_agrees_with_counting_on_random_labels() -> None:
    rng = np.random.default_rng(3)
    labels = ["a", "b", "c", "d", "never_seen"]
    y_true = rng.choice(labels[:4], 200).tolist()
    # "never_seen" has no true samples; "d" is never predicted.
    y_pred = rng.choice(["a", "b", "c", "never_seen"], 200).tolist()
    table = ev.classification_report_table(y_true, y_pred, labels)
    assert list(table.columns) == ev.REPORT_COLUMNS
    assert table["label"].tolist() == [*labels, "accuracy", "macro avg", "weighted avg"]
    frame = pd.DataFrame({"tissue": y_true, "predicted": y_pred})
    frame["correct"] = frame["tissue"] == frame["predicted"]
    assert_reports_equal(table.set_index("label"), count_report(frame, labels))
    accuracy = table.set_index("label").loc["accuracy"]
    assert np.isnan(accuracy["precision"]) and np.isnan(accuracy["recall"])


def test_classification_report_table_refuses_unknown_labels() -> None:
    with pytest.raises(ValueError, match=r"\['z'\]"):
        ev.classification_report_table(["a", "b"], ["a", "z"], ["a", "b"])
    with pytest.raises(ValueError, match="no samples"):
        ev.classification_report_table([], [], ["a"])


# --------------------------------------------------------------------------- extremes


def test_perfect_classifier_scores_one_and_has_a_diagonal_confusion(
    clean: Dataset, tmp_path: Path
) -> None:
    files = run(FakeModel(clean), clean, tmp_path)
    report = read_report(files["report_tsv"])
    values = report[["precision", "recall", "f1-score"]].drop(index="accuracy")
    assert (values == 1.0).all().all()
    assert report.loc["accuracy", "f1-score"] == 1.0
    counts = pd.read_csv(files["confusion_tsv"], sep="\t", index_col="true_tissue").to_numpy()
    assert (counts == np.diag(np.diag(counts))).all()
    np.testing.assert_array_equal(np.diag(counts), [N_PER_SPLIT["test"]] * len(TISSUES))
    assert pd.read_csv(files["top_confusions"], sep="\t").empty
    summary = json.loads(files["summary"].read_text())
    assert summary["model"] == {
        "accuracy": 1.0,
        "macro_f1": 1.0,
        "weighted_f1": 1.0,
        "balanced_accuracy": 1.0,
    }


def test_always_one_tissue_gives_the_expected_report(clean: Dataset, tmp_path: Path) -> None:
    files = run(AlwaysModel(clean, "liver"), clean, tmp_path)
    report = read_report(files["report_tsv"])
    k, n_each = len(TISSUES), N_PER_SPLIT["test"]
    n = k * n_each
    precision = n_each / n
    f1 = 2 * precision / (precision + 1)
    assert report.loc["liver", "recall"] == 1.0
    assert report.loc["liver", "precision"] == pytest.approx(precision, abs=1e-6)
    others = report.loc[[t for t in TISSUES if t != "liver"], ["precision", "recall", "f1-score"]]
    assert (others == 0.0).all().all()
    assert report.loc["accuracy", "f1-score"] == pytest.approx(1 / k, abs=1e-6)
    assert report.loc["macro avg", "f1-score"] == pytest.approx(f1 / k, abs=1e-6)
    assert report.loc["macro avg", "recall"] == pytest.approx(1 / k, abs=1e-6)
    counts = pd.read_csv(files["confusion_tsv"], sep="\t", index_col="true_tissue")
    assert (counts["liver"] == n_each).all()
    assert counts.drop(columns="liver").to_numpy().sum() == 0
    top = pd.read_csv(files["top_confusions"], sep="\t")
    assert set(top["predicted"]) == {"liver"} and len(top) == k - 1
    assert (top["fraction_of_true"] == 1.0).all()


def test_permuted_labels_score_zero(clean: Dataset, tmp_path: Path) -> None:
    files = run(ShiftedModel(clean), clean, tmp_path)
    report = read_report(files["report_tsv"])
    assert (report[["precision", "recall", "f1-score"]].fillna(0.0) == 0.0).all().all()
    counts = pd.read_csv(files["confusion_tsv"], sep="\t", index_col="true_tissue")
    for i, tissue in enumerate(TISSUES):
        assert counts.loc[tissue, TISSUES[(i + 1) % len(TISSUES)]] == N_PER_SPLIT["test"]
    assert np.trace(counts.to_numpy()) == 0
    summary = json.loads(files["summary"].read_text())
    assert summary["model"]["accuracy"] == 0.0 and summary["model"]["balanced_accuracy"] == 0.0
    # The baseline does not inherit the model's mistake.
    assert summary["baseline"]["accuracy"] == 1.0


# --------------------------------------------------------------------------- figure and order


def test_confusion_figure_has_one_labelled_row_and_column_per_tissue(tmp_path: Path) -> None:
    labels = all_labels()
    assert len(labels) == 54
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(
        rng.integers(0, 3, (54, 54)) + np.diag(rng.integers(5, 40, 54)),
        index=labels,
        columns=labels,
    )
    order = ev.cluster_order(rng.normal(size=(54, 10)), labels)
    png = tmp_path / "confusion.png"
    fig = ev.plot_confusion_matrix(counts, order, png, "Confusion matrix, test samples")
    heatmap = fig.axes[0]
    assert [t.get_text() for t in heatmap.get_xticklabels()] == order
    assert [t.get_text() for t in heatmap.get_yticklabels()] == order
    assert heatmap.get_title() == "Confusion matrix, test samples"
    colorbar = fig.axes[1]
    assert "fraction" in colorbar.get_ylabel()
    mesh = heatmap.collections[0].get_array().reshape(54, 54)
    # Row-normalised: each row sums to one.
    np.testing.assert_allclose(np.asarray(mesh).sum(axis=1), 1.0, rtol=1e-6)
    width, height = png_size(png)
    assert width >= 2000 and height >= 1800


def test_confusion_figure_leaves_rows_without_samples_blank(tmp_path: Path) -> None:
    labels = ["a", "b", "c"]
    counts = ev.confusion_counts(["a", "a", "b"], ["a", "b", "b"], labels)
    fig = ev.confusion_figure(counts, ["c", "a", "b"], "t")
    mesh = np.ma.masked_invalid(fig.axes[0].collections[0].get_array()).reshape(3, 3)
    assert mesh.mask[0].all() and not mesh.mask[1:].any()


def test_confusion_figure_refuses_an_incomplete_order() -> None:
    counts = ev.confusion_counts(["a", "b"], ["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="exactly once"):
        ev.confusion_figure(counts, ["a", "b"], "t")


def test_cluster_order_puts_related_tissues_together() -> None:
    rng = np.random.default_rng(5)
    groups = {"brain": 3, "colon": 2, "skin": 2, "liver": 1}
    labels, centroids = [], []
    for group, size in groups.items():
        centre = rng.normal(0.0, 5.0, 30)
        for i in range(size):
            labels.append(f"{group}_{i}")
            centroids.append(centre + rng.normal(0.0, 0.3, 30))
    # Interleave the input so that adjacency cannot come from the input order.
    shuffle = rng.permutation(len(labels))
    labels = [labels[i] for i in shuffle]
    order = ev.cluster_order(np.asarray(centroids)[shuffle], labels)
    assert sorted(order) == sorted(labels)
    for group in groups:
        positions = [i for i, label in enumerate(order) if label.startswith(group)]
        assert positions == list(range(positions[0], positions[0] + len(positions))), group


def test_workflow_order_groups_brain_and_colon(noisy: Dataset, tmp_path: Path) -> None:
    files = run(FakeModel(noisy), noisy, tmp_path)
    order = json.loads(files["summary"].read_text())["tissue_order"]
    for group in ("brain", "colon"):
        positions = [i for i, t in enumerate(order) if t.startswith(group)]
        assert positions[1] - positions[0] == 1, order


def test_tissue_centroids_needs_every_tissue() -> None:
    with pytest.raises(ValueError, match="'b'"):
        ev.tissue_centroids(np.zeros((2, 3)), ["a", "a"], ["a", "b"])


# --------------------------------------------------------------------------- test_opt


def test_test_opt_0_evaluates_validation_samples_only(noisy: Dataset, tmp_path: Path) -> None:
    files = run(FakeModel(noisy), noisy, tmp_path, test_opt=0)
    predictions = pd.read_csv(files["predictions"], sep="\t")
    assert set(predictions["split"]) == {"val"}
    val_ids = set(noisy.table.loc[noisy.table["split"] == "val", "sample_id"])
    assert set(predictions["sample_id"]) == val_ids
    summary = json.loads(files["summary"].read_text())
    assert summary["evaluated_split"] == "val"
    assert summary["n_samples"] == len(val_ids)
    assert read_report(files["report_tsv"]).loc["accuracy", "support"] == len(val_ids)
    assert read_report(files["baseline"]).loc["accuracy", "support"] == len(val_ids)
    assert "validation samples" in files["report_html"].read_text()
    assert all(path.exists() for path in files.values())


def test_test_opt_1_predicts_validation_and_test_and_reports_test(
    noisy_run: dict[str, Path], noisy: Dataset
) -> None:
    predictions = pd.read_csv(noisy_run["predictions"], sep="\t")
    assert set(predictions["sample_id"]) == set(
        noisy.table.loc[noisy.table["split"] != "train", "sample_id"]
    )
    assert predictions["split"].tolist() == sorted(predictions["split"], key=["val", "test"].index)
    summary = json.loads(noisy_run["summary"].read_text())
    n_test = (noisy.table["split"] == "test").sum()
    assert summary["evaluated_split"] == "test" and summary["n_samples"] == n_test
    assert "test samples" in noisy_run["report_html"].read_text()


def test_test_opt_2_prints_the_report_to_the_log(
    clean: Dataset, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="rnaseq_saliency"):
        run(FakeModel(clean), clean, tmp_path / "two", test_opt=2)
    assert "| macro avg |" in caplog.text and "| brain_cortex |" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rnaseq_saliency"):
        run(FakeModel(clean), clean, tmp_path / "one", test_opt=1)
    assert "| macro avg |" not in caplog.text


def test_test_opt_0_without_validation_samples_says_what_to_change(
    clean: Dataset, tmp_path: Path
) -> None:
    table = clean.table.loc[clean.table["split"] != "val"]
    samples = tmp_path / "samples.tsv"
    table.to_csv(samples, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"no validation samples.*split\.val_fraction"):
        ev.evaluate_model(
            FakeModel(clean),
            clean.augmented,
            clean.expression,
            samples,
            outputs_in(tmp_path),
            0,
            seed=0,
        )


def test_unknown_test_opt_is_refused(clean: Dataset, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"evaluate\.test_opt"):
        run(FakeModel(clean), clean, tmp_path, test_opt=3)


# --------------------------------------------------------------------------- baseline


def test_baseline_separates_a_separable_problem() -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "d"]
    centres = rng.normal(0.0, 3.0, (4, 20))
    y_train = np.repeat(labels, 50)
    y_test = np.repeat(labels, 20)
    index = {label: i for i, label in enumerate(labels)}
    x_train = (centres[[index[y] for y in y_train]] + rng.normal(size=(200, 20))).astype(np.float32)
    x_test = (centres[[index[y] for y in y_test]] + rng.normal(size=(80, 20))).astype(np.float32)
    result = ev.baseline_report(x_train, list(y_train), x_test, list(y_test), labels, seed=0)
    metrics = ev.report_metrics(result.report)
    assert metrics["accuracy"] >= 0.95
    assert list(result.report.columns) == ev.REPORT_COLUMNS
    assert result.settings["converged"] and result.settings["n_training_rows"] == 200


def test_baseline_stopped_early_is_recorded_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    y = list(np.repeat(["a", "b", "c"], 20))
    with caplog.at_level(logging.WARNING, logger="rnaseq_saliency"):
        result = ev.baseline_report(x, y, x, y, ["a", "b", "c"], seed=0, max_iter=1)
    assert not result.settings["converged"] and result.settings["n_iter"] == 1
    assert "max_iter=1" in caplog.text


def test_baseline_trains_on_real_and_synthetic_rows(noisy_run: dict[str, Path]) -> None:
    settings = json.loads(noisy_run["summary"].read_text())["baseline_settings"]
    per_tissue = N_PER_SPLIT["train"] + N_SYNTHETIC
    assert settings["n_training_rows"] == per_tissue * len(TISSUES)
    assert settings["n_synthetic_training_rows"] == N_SYNTHETIC * len(TISSUES)
    assert settings["seed"] == 0


# --------------------------------------------------------------------------- summary and files


def test_summary_fields_are_present_and_consistent(
    noisy_run: dict[str, Path], noisy: Dataset
) -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    summary = json.loads(noisy_run["summary"].read_text())
    for key in (
        "evaluated_split",
        "n_samples",
        "n_donors",
        "n_tissues",
        "n_model_parameters",
        "model",
        "baseline",
        "seed",
        "test_opt",
    ):
        assert key in summary, key
    predictions = pd.read_csv(noisy_run["predictions"], sep="\t")
    test = predictions[predictions["split"] == "test"]
    model = summary["model"]
    assert model["accuracy"] == pytest.approx(test["correct"].mean())
    assert model["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(test["tissue"], test["predicted"])
    )
    assert model["macro_f1"] == pytest.approx(
        f1_score(
            test["tissue"], test["predicted"], labels=TISSUES, average="macro", zero_division=0
        )
    )
    assert summary["n_samples"] == len(test)
    assert summary["n_donors"] == N_PER_SPLIT["test"]  # donors give every tissue
    assert summary["n_tissues"] == len(TISSUES)
    assert summary["n_model_parameters"] == N_GENES * len(TISSUES) + len(TISSUES)
    baseline = read_report(noisy_run["baseline"])
    assert summary["baseline"]["accuracy"] == pytest.approx(
        baseline.loc["accuracy", "f1-score"], abs=1e-6
    )
    assert sorted(summary["tissue_order"]) == sorted(TISSUES)


def test_every_run_states_model_minus_baseline(noisy_run: dict[str, Path]) -> None:
    """summary.json, the report page and the log say by how much the network beats the
    baseline, or loses to it (issue 20: a network beaten by a linear model has to say so)."""
    summary = json.loads(noisy_run["summary"].read_text())
    difference = summary["model"]["macro_f1"] - summary["baseline"]["macro_f1"]
    assert summary["model_minus_baseline"] == pytest.approx(difference, abs=1e-12)
    page = noisy_run["report_html"].read_text()
    assert f"<td>{ev.DIFFERENCE_LABEL}</td><td>" in page
    assert f"<td>{difference:+.3f}</td>" in page


def test_report_html_difference_row_is_signed() -> None:
    report = ev.classification_report_table(["a", "b"], ["a", "a"], ["a", "b"])
    comparison = {
        "model": {"accuracy": 0.5, "macro_f1": 0.4, "weighted_f1": 0.6, "balanced_accuracy": 0.7},
        "baseline": {
            "accuracy": 0.5,
            "macro_f1": 0.5,
            "weighted_f1": 0.5,
            "balanced_accuracy": 0.9,
        },
    }
    page = ev.report_html(report, "T", comparison, "model − baseline")
    assert (
        "<tr><td>model − baseline</td><td>+0.000</td><td>-0.100</td><td>+0.100</td>"
        "<td>-0.200</td></tr>" in page
    )
    assert "model − baseline" not in ev.report_html(report, "T", comparison)


@pytest.mark.parametrize("difference", [-0.02, 0.03])
def test_log_headline_warns_when_the_network_loses(
    difference: float, caplog: pytest.LogCaptureFixture
) -> None:
    result = {
        "model": {"macro_f1": 0.8 + difference},
        "baseline": {"macro_f1": 0.8},
        "model_minus_baseline": difference,
    }
    with caplog.at_level(logging.INFO, logger="rnaseq_saliency"):
        ev._log_difference(result, "test")
    (record,) = caplog.records
    assert f"{difference:+.4f}" in record.getMessage()
    assert (record.levelno == logging.WARNING) == (difference < 0)
    assert ("loses to the logistic-regression baseline" in record.getMessage()) == (difference < 0)


def test_html_and_markdown_render_every_row(noisy_run: dict[str, Path]) -> None:
    report = ev.classification_report_table(["a<b", "c"], ["a<b", "a<b"], ["a<b", "c"])
    markdown = ev.report_markdown(report)
    assert len(markdown.strip().splitlines()) == 2 + len(report)
    page = ev.report_html(report, "T", {"model": ev.report_metrics(report)})
    assert "a&lt;b" in page and "a<b" not in page
    assert page.count("<tr>") == 1 + 1 + 1 + len(report)  # comparison header+row, table header
    text = noisy_run["report_html"].read_text()
    for label in [*TISSUES, "macro avg", "weighted avg", "baseline (logistic regression)"]:
        assert label in text


def test_same_seed_gives_byte_identical_outputs(noisy: Dataset, tmp_path: Path) -> None:
    first = run(FakeModel(noisy), noisy, tmp_path / "a")
    second = run(FakeModel(noisy), noisy, tmp_path / "b")
    for key in first:
        assert first[key].read_bytes() == second[key].read_bytes(), key


def test_sample_missing_from_its_expression_file_is_named(clean: Dataset, tmp_path: Path) -> None:
    table = clean.table.copy()
    table.loc[len(table)] = ["GTEX-GHOST-0001", "GTEX-GHOST", "liver", "test"]
    samples = tmp_path / "samples.tsv"
    table.to_csv(samples, sep="\t", index=False)
    with pytest.raises(ValueError, match="GTEX-GHOST-0001"):
        ev.evaluate_model(
            FakeModel(clean),
            clean.augmented,
            clean.expression,
            samples,
            outputs_in(tmp_path),
            1,
            seed=0,
        )


def test_genes_that_differ_from_the_model_are_refused(clean: Dataset, tmp_path: Path) -> None:
    model = FakeModel(clean)
    model.gene_ids = list(reversed(model.gene_ids))
    with pytest.raises(ValueError, match="gene_ids"):
        run(model, clean, tmp_path)


def test_run_evaluation_loads_the_model_from_its_directory(
    clean: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rnaseq_saliency.ensemble

    seen = []
    model = FakeModel(clean)

    def fake_load(model_dir: Path) -> FakeModel:
        seen.append(Path(model_dir))
        return model

    # The model directory's ensemble (rnaseq_saliency.ensemble), or its one model.
    monkeypatch.setattr(rnaseq_saliency.ensemble, "load_classifier", fake_load)
    outputs = outputs_in(tmp_path)
    summary = ev.run_evaluation(
        tmp_path / "model",
        clean.augmented,
        clean.expression,
        clean.samples,
        outputs,
        test_opt=1,
        seed=0,
        threads=1,
    )
    assert seen == [tmp_path / "model"]
    assert summary == json.loads(outputs["summary"].read_text())


# --------------------------------------------------------------------------- report captions

CAPTIONS = [
    "classification_report",
    "confusion_matrix",
    "top_confusions",
    "baseline_report",
    "evaluation_summary",
]


@pytest.mark.parametrize("name", CAPTIONS)
@pytest.mark.parametrize("test_opt", [0, 1])
def test_captions_render_and_name_the_scored_split(repo: Path, name: str, test_opt: int) -> None:
    from types import SimpleNamespace

    from docutils.core import publish_parts
    from jinja2 import Environment

    # The settings Snakemake's report renders captions with.
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    snakemake = SimpleNamespace(
        params=SimpleNamespace(settings=SimpleNamespace(score_test=test_opt != 0)),
        config={
            "data": {"source": "demo"},
            "split": {"group_by": "donor"},
            "train": {"replicates": 1},
        },
    )
    text = env.from_string((repo / f"workflow/report/{name}.rst").read_text()).render(
        snakemake=snakemake
    )
    # halt_level 2: an RST warning (broken markup) fails the test instead of showing in the report.
    publish_parts(text, writer="html", settings_overrides={"halt_level": 2})
    assert ("validation" if test_opt == 0 else "test") in text
    assert "GTEx" in text
    if test_opt:
        assert "never seen in training" in text or "gave no sample to training" in text


@pytest.mark.parametrize("name", ["classification_report", "evaluation_summary"])
def test_captions_explain_the_ensemble_only_with_replicates(repo: Path, name: str) -> None:
    """Issue 20: with train.replicates > 1 the report says the model is the replicates'
    ensemble and that each replicate is shown beside it; with one, nothing changes."""
    from types import SimpleNamespace

    from docutils.core import publish_parts
    from jinja2 import Environment

    env = Environment(trim_blocks=True, lstrip_blocks=True)
    texts = {}
    for replicates in (1, 3):
        snakemake = SimpleNamespace(
            params=SimpleNamespace(settings=SimpleNamespace(score_test=True)),
            config={
                "data": {"source": "demo"},
                "split": {"group_by": "donor"},
                "train": {"replicates": replicates},
            },
        )
        caption = (repo / f"workflow/report/{name}.rst").read_text()
        texts[replicates] = env.from_string(caption).render(snakemake=snakemake)
        publish_parts(texts[replicates], writer="html", settings_overrides={"halt_level": 2})
    assert "ensemble" not in texts[1]
    assert "ensemble" in texts[3] and "replicates: 3" in texts[3].replace("``", "")


# --------------------------------------------------------------------------- calibration (issue 19)


def test_summary_reports_calibration_before_and_after(noisy: Dataset, tmp_path: Path) -> None:
    """With a temperature, summary.json has ECE and NLL before and after it, predictions.tsv's
    probability is the calibrated one, the calls are those of the uncalibrated model and
    calibration.png is written."""
    model = FakeModel(noisy)
    model.temperature = 3.0
    outputs = run(model, noisy, tmp_path)
    summary = json.loads(outputs["summary"].read_text())
    calibration = summary["calibration"]
    assert calibration["temperature"] == 3.0 and calibration["split"] == "test"
    for key in ("ece_before", "ece_after", "nll_before", "nll_after"):
        assert np.isfinite(calibration[key]), key
    assert calibration["nll_after"] != pytest.approx(calibration["nll_before"])
    assert calibration["ece_bins"] == 15
    assert outputs["calibration_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    predictions = pd.read_csv(outputs["predictions"], sep="\t")
    test = predictions[predictions["split"] == "test"]
    rows = ev.load_split_rows(noisy.expression, noisy.table, "test")
    logits = model.logits(rows.matrix)
    expected = torch.softmax(torch.from_numpy(logits) / 3.0, dim=1).numpy().max(axis=1)
    np.testing.assert_allclose(test["probability"].to_numpy(), expected, rtol=1e-5)
    plain = FakeModel(noisy)  # T = 1: the same calls
    assert test["predicted"].tolist() == [TISSUES[i] for i in plain.logits(rows.matrix).argmax(1)]
