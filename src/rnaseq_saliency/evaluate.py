"""Evaluation of the trained classifier on real held-out samples, and a baseline to beat.

Every number here comes from *real* samples of donors that the split kept out of training
(synthetic rows exist only in the augmented training files). Which held-out samples are
scored is set by ``config.evaluate.test_opt``, the original switch:

- ``1``: predict the validation and the test samples; every report, the confusion matrix and
  the baseline are computed on the **test** samples;
- ``2``: as ``1``, and the classification reports are also printed to the rule's log;
- ``0``: skip the test set. ``predictions.tsv`` then holds the validation samples only, and the
  reports, confusion matrix and baseline are computed on the **validation** samples, with
  ``summary.json`` saying ``"evaluated_split": "val"`` and every title saying "validation".
  The files still exist, so the workflow's DAG does not depend on the setting.

Probabilities (``predictions.tsv``'s ``probability``) are calibrated: the softmax of the logits
divided by the temperature fitted on the validation split after training (model.json,
``rnaseq_saliency.calibration``). ``summary.json``'s ``calibration`` section gives the
temperature and the top-label ECE (15 equal-width bins) and NLL of the evaluated split before
and after it; ``calibration.png`` is the reliability diagram.

Metrics follow scikit-learn's definitions (``classification_report(output_dict=True,
zero_division=0)``) over the model's output tissues, so a tissue that is never predicted
scores precision 0 rather than being dropped from the macro average.
"""

from __future__ import annotations

import html
import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from rnaseq_saliency.datasets import (
    LabelledRows,
    load_split_rows,
    load_training_rows,
    read_samples,
)
from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.plotting import pyplot, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

TEST_OPTS = (0, 1, 2)
PREDICTION_COLUMNS = ["sample_id", "tissue", "split", "predicted", "probability", "correct"]
_REQUIRED_PREDICTION_COLUMNS = [c for c in PREDICTION_COLUMNS if c != "probability"]
# The keys of scikit-learn's output_dict, so that a reader can compare the two directly.
REPORT_COLUMNS = ["label", "precision", "recall", "f1-score", "support"]
AVERAGE_ROWS = ("accuracy", "macro avg", "weighted avg")
TOP_CONFUSION_COLUMNS = ["true", "predicted", "count", "fraction_of_true"]
CONFUSION_INDEX_LABEL = "true_tissue"
OUTPUT_KEYS = (
    "predictions",
    "report_tsv",
    "report_html",
    "confusion_tsv",
    "confusion_png",
    "top_confusions",
    "baseline",
    "summary",
    "calibration_png",
)
SPLIT_NAMES = {"test": "test", "val": "validation"}
# The row of the report page that states the difference on every run.
DIFFERENCE_LABEL = "model − baseline"

# Baseline settings. lbfgs fits the multinomial (softmax) loss on dense float32 input without a
# copy; newton-cholesky would build a Hessian of (genes x tissues)^2 entries and sag/saga need
# many passes over the rows. On a simulated demo-shaped problem (32,400 x 3,000 rows, 54
# tissues, noise-augmented, correlated genes) lbfgs with tol 1e-4 converged in 30 iterations,
# about 20 s on one thread, and held-out accuracy did not change from 50 to 400 allowed
# iterations (measured for issue 5, see BENCHMARKS.md). GTEx-sized input (19,291 genes) costs about
# six times more per iteration. The cap below leaves room for harder real data and bounds the
# run time; a fit stopped by it is logged and recorded in summary.json.
BASELINE_SOLVER = "lbfgs"
BASELINE_C = 1.0
BASELINE_TOL = 1e-4
BASELINE_MAX_ITER = 200
PREDICT_BATCH_ROWS = 4096


class Classifier(Protocol):
    """What evaluation needs of ``rnaseq_saliency.model.TrainedModel``."""

    tissues: list[str]
    gene_ids: list[str]
    network: Any  # torch.nn.Module
    temperature: float  # the calibration temperature; predict_proba is softmax(logits / T)

    def scale(self, raw: np.ndarray, *, overwrite_input: bool = False) -> np.ndarray: ...

    def logits(self, raw: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, raw: np.ndarray) -> np.ndarray: ...


# ----------------------------------------------------------------------------- predictions


def _predict_proba_batched(model: Classifier, raw: np.ndarray, batch_rows: int) -> np.ndarray:
    """Class probabilities in row batches, so that scaled copies of a large split stay small."""
    n_classes = len(model.tissues)
    if raw.shape[0] == 0:
        return np.empty((0, n_classes), dtype=np.float32)
    blocks = [
        np.asarray(model.predict_proba(raw[start : start + batch_rows]))
        for start in range(0, raw.shape[0], batch_rows)
    ]
    proba = np.concatenate(blocks, axis=0)
    if proba.shape != (raw.shape[0], n_classes):
        raise ValueError(
            f"model.predict_proba returned shape {proba.shape}; expected "
            f"({raw.shape[0]}, {n_classes}) for {n_classes} tissues"
        )
    return proba


def _check_rows(model: Classifier, rows: LabelledRows, what: str) -> None:
    if list(rows.gene_ids) != list(model.gene_ids):
        raise ValueError(
            f"{what}: the expression files' genes differ from the model's gene_ids (model.json); "
            "the model was trained on another gene selection"
        )
    unknown = sorted(set(rows.tissues) - set(model.tissues))
    if unknown:
        raise ValueError(f"{what}: tissue(s) {unknown} are not among the model's output tissues")


def predictions_table(
    model: Classifier,
    rows_by_split: Mapping[str, LabelledRows],
    batch_rows: int = PREDICT_BATCH_ROWS,
) -> pd.DataFrame:
    """One row per sample: ``sample_id, tissue, split, predicted, probability, correct``.

    ``rows_by_split`` maps a split name (``val``, ``test``) to its real samples; rows keep the
    mapping's order, then file order. ``probability`` is the model's calibrated probability
    (``predict_proba``: softmax of the logits divided by the model's temperature) of the
    *predicted* tissue (its confidence), not of the true one. Ties go to the first tissue in
    model output order, so predictions are deterministic.
    """
    tissues = np.asarray(model.tissues, dtype=object)
    frames = []
    for split, rows in rows_by_split.items():
        _check_rows(model, rows, f"{split} samples")
        proba = _predict_proba_batched(model, rows.matrix, batch_rows)
        best = proba.argmax(axis=1)
        predicted = tissues[best].tolist()
        frames.append(
            pd.DataFrame(
                {
                    "sample_id": list(rows.sample_ids),
                    "tissue": list(rows.tissues),
                    "split": [split] * len(rows.sample_ids),
                    "predicted": predicted,
                    "probability": proba[np.arange(len(best)), best].astype(np.float64),
                    "correct": np.asarray(rows.tissues, dtype=object)
                    == np.asarray(predicted, dtype=object),
                }
            )
        )
    if not frames:
        return pd.DataFrame({column: [] for column in PREDICTION_COLUMNS})
    table = pd.concat(frames, ignore_index=True)
    table["correct"] = table["correct"].astype(bool)
    return table[PREDICTION_COLUMNS]


# ----------------------------------------------------------------------------- reports


def _check_labels(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if len(y_true) == 0:
        raise ValueError("no samples to evaluate")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels repeat in {list(labels)}")
    unknown = sorted((set(y_true) | set(y_pred)) - set(labels))
    if unknown:
        # scikit-learn would silently swap the accuracy row for a "micro avg" row.
        raise ValueError(f"label(s) {unknown} are not among the {len(labels)} report labels")


def classification_report_table(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> pd.DataFrame:
    """scikit-learn's classification report as a table with columns ``REPORT_COLUMNS``.

    One row per label in ``labels`` order (support 0 included), then ``accuracy``,
    ``macro avg`` and ``weighted avg``, with the values of
    ``classification_report(..., labels=labels, output_dict=True, zero_division=0)``. As in
    scikit-learn's text report, the ``accuracy`` row holds the accuracy in ``f1-score``, the
    number of samples in ``support`` and no precision or recall (NaN, written as empty cells).
    """
    from sklearn.metrics import classification_report

    _check_labels(y_true, y_pred, labels)
    report = classification_report(
        list(y_true), list(y_pred), labels=list(labels), output_dict=True, zero_division=0
    )
    n_samples = len(y_true)
    rows: list[tuple[str, float, float, float, int]] = []
    for label in [*labels, "macro avg", "weighted avg"]:
        entry = report[label]
        rows.append(
            (
                label,
                float(entry["precision"]),
                float(entry["recall"]),
                float(entry["f1-score"]),
                int(entry["support"]),
            )
        )
    rows.insert(len(labels), ("accuracy", np.nan, np.nan, float(report["accuracy"]), n_samples))
    table = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    table["support"] = table["support"].astype(np.int64)
    return table


def report_metrics(report: pd.DataFrame) -> dict[str, float]:
    """Headline metrics of a report table: accuracy, macro/weighted F1, balanced accuracy.

    Balanced accuracy is scikit-learn's: the mean recall over the tissues that have samples.
    """
    by_label = report.set_index("label")
    per_tissue = by_label.drop(index=list(AVERAGE_ROWS))
    present = per_tissue["support"] > 0
    return {
        "accuracy": float(by_label.loc["accuracy", "f1-score"]),
        "macro_f1": float(by_label.loc["macro avg", "f1-score"]),
        "weighted_f1": float(by_label.loc["weighted avg", "f1-score"]),
        "balanced_accuracy": float(per_tissue.loc[present, "recall"].mean()),
    }


def _formatted(report: pd.DataFrame) -> list[list[str]]:
    """Report cells as strings: three decimals, empty for NaN, integer support."""
    cells = []
    for row in report.itertuples(index=False):
        label, precision, recall, f1, support = row
        values = [f"{value:.3f}" if pd.notna(value) else "" for value in (precision, recall, f1)]
        cells.append([str(label), *values, str(int(support))])
    return cells


def report_markdown(report: pd.DataFrame) -> str:
    """The report as a GitHub-flavoured Markdown table (numbers right-aligned)."""
    lines = [
        "| " + " | ".join(REPORT_COLUMNS) + " |",
        "|:---|" + "---:|" * (len(REPORT_COLUMNS) - 1),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in _formatted(report)]
    return "\n".join(lines) + "\n"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def report_html(
    report: pd.DataFrame,
    title: str,
    comparison: Mapping[str, Mapping[str, float]] | None = None,
    difference_label: str | None = None,
) -> str:
    """A standalone HTML page with the report table, for the Snakemake report.

    ``comparison`` maps a row name (e.g. ``model``, ``baseline``) to its ``report_metrics``,
    shown above the per-tissue table. With ``difference_label`` (e.g. ``model − baseline``), a
    last row of that name holds the first row's metrics minus the second's, with their sign.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;font-size:13px}"
        "table{border-collapse:collapse;margin-bottom:1.5em}"
        "th,td{padding:2px 8px;border-bottom:1px solid #ddd}"
        "td:not(:first-child),th:not(:first-child){text-align:right}"
        "th{background:#f0f0f0}</style>",
        "</head>",
        "<body>",
        f"<h2>{html.escape(title)}</h2>",
    ]
    if comparison:
        metrics = ["accuracy", "macro_f1", "weighted_f1", "balanced_accuracy"]
        rows = [
            [name, *(f"{values[metric]:.3f}" for metric in metrics)]
            for name, values in comparison.items()
        ]
        if difference_label is not None:
            # Right below the two rows it compares (any further rows, e.g. replicates, follow).
            first, second = list(comparison.values())[:2]
            difference = [difference_label, *(f"{first[m] - second[m]:+.3f}" for m in metrics)]
            rows.insert(2, difference)
        parts.append(_html_table(["classifier", *metrics], rows))
    parts.append(_html_table(REPORT_COLUMNS, _formatted(report)))
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- confusion


def confusion_counts(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> pd.DataFrame:
    """Counts with one row per true tissue and one column per predicted tissue, in ``labels``
    order (index name ``true_tissue``, columns name ``predicted``)."""
    _check_labels(y_true, y_pred, labels)
    position = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, ([position[t] for t in y_true], [position[p] for p in y_pred]), 1)
    table = pd.DataFrame(counts, index=list(labels), columns=list(labels))
    table.index.name = CONFUSION_INDEX_LABEL
    table.columns.name = "predicted"
    return table


def tissue_centroids(
    matrix: np.ndarray, tissues: Sequence[str | None], labels: Sequence[str]
) -> np.ndarray:
    """The mean row of each label (``(len(labels), n_genes)`` float64), in ``labels`` order.

    Rows whose tissue is ``None`` (or not in ``labels``) are left out.
    """
    tissue_array = np.asarray(tissues, dtype=object)
    centroids = np.empty((len(labels), matrix.shape[1]), dtype=np.float64)
    for i, label in enumerate(labels):
        mask = tissue_array == label
        if not mask.any():
            raise ValueError(f"tissue {label!r} has no training rows to place it in the order")
        centroids[i] = matrix[mask].mean(axis=0, dtype=np.float64)
    return centroids


def cluster_order(centroids: np.ndarray, labels: Sequence[str]) -> list[str]:
    """Order tissues so that similar ones sit side by side.

    Ward hierarchical clustering of the tissue centroids (one row per label; in the workflow
    the mean *scaled* expression of each tissue's real training samples), with scipy's optimal
    leaf ordering, which flips subtrees so that neighbouring leaves are as close as possible.
    The order depends on expression only, not on the model's mistakes, so it stays the same
    when the model changes and brain regions, colon, esophagus or skin sections end up
    together because their profiles are alike. Deterministic for given centroids.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage

    if centroids.shape[0] != len(labels):
        raise ValueError(f"{centroids.shape[0]} centroids for {len(labels)} labels")
    if len(labels) < 3:
        return list(labels)
    tree = linkage(centroids, method="ward", metric="euclidean", optimal_ordering=True)
    return [labels[i] for i in leaves_list(tree)]


def _tick_fontsize(n_labels: int) -> float:
    if n_labels > 40:
        return 6.5
    if n_labels > 20:
        return 8.0
    return 10.0


def confusion_figure(counts: pd.DataFrame, order: Sequence[str], title: str) -> Figure:
    """A row-normalised confusion heatmap: cell (true t, predicted p) is the fraction of the
    samples of true tissue ``t`` predicted as ``p``; rows and columns follow ``order``.

    Every tissue gets its own labelled row and column (no tick thinning); rows of tissues with
    no samples are grey. Colours follow the square root of the fraction, so that rare mistakes
    stay visible; the colour bar is labelled in fractions. With 20 tissues or fewer the
    non-zero counts are written in the cells.
    """

    pyplot()  # the backend, before seaborn loads pyplot
    import seaborn as sns
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure

    order = list(order)
    if sorted(order) != sorted(counts.index) or sorted(order) != sorted(counts.columns):
        raise ValueError("the order must hold each tissue of the confusion counts exactly once")
    ordered = counts.loc[order, order]
    totals = ordered.sum(axis=1).to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = ordered.to_numpy(dtype=np.float64) / totals[:, None]
    n = len(order)
    # About 16 x 14 inches at 54 tissues; smaller sets keep room for long tissue names.
    width = float(np.clip(0.25 * n + 3.0, 8.0, 16.0))
    fig = Figure(figsize=(width, width - 2.0 if n > 24 else width - 1.0), layout="constrained")
    ax = fig.subplots()
    annotate = n <= 20
    annotations: np.ndarray | bool = False
    if annotate:
        values = ordered.to_numpy()
        annotations = np.where(values > 0, values.astype(str), "")
    # A square-root colour scale: one mistake in 30 samples (0.03) is then a visible light blue
    # at 54 x 54 instead of near-white, while the diagonal still saturates.
    sns.heatmap(
        pd.DataFrame(fractions, index=order, columns=order),
        ax=ax,
        cmap="Blues",
        norm=PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0),
        square=True,
        xticklabels=order,
        yticklabels=order,
        annot=annotations,
        fmt="",
        annot_kws={"fontsize": 8},
        linewidths=0.3 if n <= 30 else 0.0,
        linecolor="#eeeeee",
        cbar_kws={
            "label": "fraction of the true tissue's samples\n(square-root colour scale)",
            "shrink": 0.8,
            "ticks": [0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0],
        },
    )
    ax.set_facecolor("#d9d9d9")  # rows of tissues without samples (NaN) show grey
    fontsize = _tick_fontsize(n)
    ax.set_xticks(np.arange(n) + 0.5, order, rotation=90, fontsize=fontsize)
    ax.set_yticks(np.arange(n) + 0.5, order, rotation=0, fontsize=fontsize)
    ax.set_xlabel("predicted tissue", fontsize=11)
    ax.set_ylabel("true tissue", fontsize=11)
    ax.set_title(title, fontsize=13)
    return fig


def plot_confusion_matrix(
    counts: pd.DataFrame, order: Sequence[str], out_png: str | os.PathLike[str], title: str
) -> Figure:
    """Draw ``confusion_figure`` and save it as a PNG (atomically); return the figure."""
    fig = confusion_figure(counts, order, title)
    # No "Software" text chunk: the PNG bytes then depend on the data only.
    save_png(fig, out_png, dpi=150, metadata={"Software": None})
    return fig


def top_confusions(counts: pd.DataFrame, n: int = 30) -> pd.DataFrame:
    """The ``n`` most frequent true -> predicted mistakes (diagonal excluded, counts > 0).

    ``fraction_of_true`` is the count over the number of samples of the true tissue. Sorted by
    count, then fraction (descending), then names, so ties come out in a fixed order.
    """
    values = counts.to_numpy()
    totals = values.sum(axis=1)
    records = [
        (true, predicted, int(values[i, j]), float(values[i, j] / totals[i]))
        for i, true in enumerate(counts.index)
        for j, predicted in enumerate(counts.columns)
        if true != predicted and values[i, j] > 0
    ]
    table = pd.DataFrame(records, columns=TOP_CONFUSION_COLUMNS)
    table = table.sort_values(
        ["count", "fraction_of_true", "true", "predicted"],
        ascending=[False, False, True, True],
        kind="mergesort",
    )
    table["count"] = table["count"].astype(np.int64)
    return table.head(n).reset_index(drop=True)


# ----------------------------------------------------------------------------- baseline


@dataclass
class BaselineResult:
    """A fitted baseline's report on the evaluated samples and how the fit went."""

    report: pd.DataFrame
    predicted: list[str]
    settings: dict[str, Any] = field(default_factory=dict)


def baseline_report(
    x_train: np.ndarray,
    y_train: Sequence[str],
    x_eval: np.ndarray,
    y_eval: Sequence[str],
    labels: Sequence[str],
    seed: int,
    *,
    max_iter: int = BASELINE_MAX_ITER,
    C: float = BASELINE_C,
    tol: float = BASELINE_TOL,
) -> BaselineResult:
    """Multinomial logistic regression (scikit-learn, L2, lbfgs) as a baseline to beat.

    ``x_train``/``x_eval`` must already be scaled the model's way (``model.scale``: log1p, then
    the model's per-gene mean and standard deviation), and ``x_train`` must be the model's own
    training rows (real and synthetic), so that the two classifiers differ only in the model.
    lbfgs fits the multinomial (softmax) loss on float32 directly. ``seed`` is passed as
    ``random_state`` for completeness (lbfgs itself draws nothing). A fit that stops at
    ``max_iter`` is logged and recorded (``converged: false``), not an error: a baseline only
    needs to be a fair one.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if x_train.shape[0] != len(y_train) or x_eval.shape[0] != len(y_eval):
        raise ValueError("baseline: one label per row is needed for training and evaluation")
    estimator = LogisticRegression(
        C=C, solver=BASELINE_SOLVER, max_iter=max_iter, tol=tol, random_state=seed
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(x_train, np.asarray(y_train, dtype=object))
    n_iter = int(np.max(estimator.n_iter_))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    if not converged:
        log.warning(
            "baseline logistic regression stopped at max_iter=%d before lbfgs converged "
            "(tol %g); its scores are those of the stopped fit",
            max_iter,
            tol,
        )
    predicted = [str(p) for p in estimator.predict(x_eval)]
    report = classification_report_table(list(y_eval), predicted, labels)
    settings = {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "loss": "multinomial",
        "solver": BASELINE_SOLVER,
        "C": C,
        "tol": tol,
        "max_iter": max_iter,
        "n_iter": n_iter,
        "converged": converged,
        "seed": seed,
        "n_training_rows": int(x_train.shape[0]),
    }
    return BaselineResult(report=report, predicted=predicted, settings=settings)


# ----------------------------------------------------------------------------- summary


def summary(
    evaluated_split: str,
    model_report: pd.DataFrame,
    baseline: BaselineResult,
    n_donors: int,
    n_model_parameters: int,
    test_opt: int,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The headline numbers as a JSON-ready dict.

    ``n_samples`` and ``n_donors`` count the evaluated (``evaluated_split``) real samples and
    their donors; ``model`` and ``baseline`` hold ``report_metrics`` of each report, and
    ``model_minus_baseline`` is the model's macro-F1 minus the baseline's (negative: the
    network loses to the linear model).
    """
    n_samples = int(model_report.set_index("label").loc["accuracy", "support"])
    result: dict[str, Any] = {
        "evaluated_split": evaluated_split,
        "test_opt": test_opt,
        "n_samples": n_samples,
        "n_donors": int(n_donors),
        "n_tissues": int(len(model_report) - len(AVERAGE_ROWS)),
        "n_model_parameters": int(n_model_parameters),
        "model": report_metrics(model_report),
        "baseline": report_metrics(baseline.report),
        "baseline_settings": dict(baseline.settings),
    }
    result["model_minus_baseline"] = result["model"]["macro_f1"] - result["baseline"]["macro_f1"]
    result.update(extra or {})
    return result


# ----------------------------------------------------------------------------- files


def _write_tsv(table: pd.DataFrame, path: str | os.PathLike[str], index: bool = False) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(
            tmp, sep="\t", index=index, float_format="%.6g", na_rep="", lineterminator="\n"
        )


def _write_text(text: str, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_predictions(predictions: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``predictions.tsv``; ``correct`` as lowercase ``true``/``false``."""
    table = predictions.copy()
    table["correct"] = np.where(table["correct"].astype(bool), "true", "false")
    _write_tsv(table, path)


def _as_bool(values: pd.Series, path: str | os.PathLike[str] | None) -> np.ndarray:
    if values.dtype == bool:
        return values.to_numpy()
    words = values.astype(str).str.strip().str.lower()
    mapping = {"true": True, "1": True, "false": False, "0": False}
    unknown = sorted(set(words) - set(mapping))
    if unknown:
        where = f"{path}: " if path else ""
        raise ValueError(f"{where}column 'correct': values {unknown[:5]} are not true/false")
    return words.map(mapping).to_numpy(dtype=bool)


def _count_parameters(network: Any) -> int:
    # Imported here: model imports torch, which the jobs that only read predictions
    # (saliency, heatmaps) must not pay for at import time.
    from rnaseq_saliency.model import count_parameters

    return count_parameters(network)


def write_evaluation_summary(summary: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``results/evaluation/summary.json`` (``read_evaluation_summary`` reads it back)."""
    _write_text(json.dumps(summary, indent=2) + "\n", path)


def read_evaluation_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``results/evaluation/summary.json``, checking it holds both models' metrics."""
    summary = json.loads(Path(path).read_text(encoding="utf-8"))
    missing = [key for key in ("evaluated_split", "model", "baseline") if key not in summary]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; not an evaluation summary")
    return summary


def read_predictions(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``results/evaluation/predictions.tsv`` (``write_predictions``); ``correct`` becomes a
    bool column. Only the columns the readers need must be there (``probability`` may not)."""
    predictions = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in _REQUIRED_PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; expected {_REQUIRED_PREDICTION_COLUMNS}"
        )
    predictions["correct"] = _as_bool(predictions["correct"], path)
    return predictions


def write_confusion(counts: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write the counts with a ``true_tissue`` first column, rows true, columns predicted."""
    _write_tsv(counts.rename_axis(index=CONFUSION_INDEX_LABEL, columns=None), path, index=True)


def _held_out_rows(
    expression_files: Sequence[str | os.PathLike[str]],
    samples: pd.DataFrame,
    split: str,
    samples_tsv: str | os.PathLike[str],
) -> LabelledRows:
    """``load_split_rows``, checked: every sample the split table lists must be found."""
    rows = load_split_rows(expression_files, samples, split)
    listed = set(samples.loc[samples["split"] == split, "sample_id"])
    missing = sorted(listed - set(rows.sample_ids))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(
            f"{samples_tsv}: {len(missing)} {split} sample(s) are in no expression file "
            f"of their tissue: {shown}"
        )
    return rows


def _read_checked_samples(
    model: Classifier,
    samples_tsv: str | os.PathLike[str],
    outputs: Mapping[str, str | os.PathLike[str]],
    test_opt: int,
) -> pd.DataFrame:
    """Check the settings and outputs; read the split table, whose tissues the model must know."""
    if test_opt not in TEST_OPTS:
        raise ValueError(f"config key evaluate.test_opt: {test_opt!r} is not one of {TEST_OPTS}")
    missing_keys = [key for key in OUTPUT_KEYS if key not in outputs]
    if missing_keys:
        raise ValueError(f"evaluation outputs missing: {missing_keys}")
    samples = read_samples(samples_tsv)
    unknown = sorted(set(samples["tissue"]) - set(model.tissues))
    if unknown:
        raise ValueError(
            f"{samples_tsv}: tissue(s) {unknown} are not among the model's output tissues "
            "(model.json); was the model trained on this split?"
        )
    return samples


def _held_out_splits(
    expression_files: Sequence[str | os.PathLike[str]],
    samples: pd.DataFrame,
    samples_tsv: str | os.PathLike[str],
    split: str,
    predicted_splits: Sequence[str],
) -> dict[str, LabelledRows]:
    """The rows of every predicted split; the evaluated ``split`` must have some."""
    rows_by_split = {
        name: _held_out_rows(expression_files, samples, name, samples_tsv)
        for name in predicted_splits
    }
    if not rows_by_split[split].sample_ids:
        message = f"{samples_tsv}: no {SPLIT_NAMES[split]} samples to evaluate"
        if split == "val":
            message += " (evaluate.test_opt 0 scores the validation split); set "
            message += "split.val_fraction above 0 or evaluate.test_opt to 1"
        raise ValueError(message)
    return rows_by_split


def _write_model_reports(
    y_true: list[str],
    y_pred: list[str],
    labels: list[str],
    outputs: Mapping[str, str | os.PathLike[str]],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model's classification report, confusion counts and top confusions; returns the
    report and the counts."""
    model_report = classification_report_table(y_true, y_pred, labels)
    _write_tsv(model_report, outputs["report_tsv"])
    counts = confusion_counts(y_true, y_pred, labels)
    write_confusion(counts, outputs["confusion_tsv"])
    _write_tsv(top_confusions(counts), outputs["top_confusions"])
    return model_report, counts


@dataclass
class _ScaledTraining:
    """The model's training rows, scaled the model's way."""

    x: np.ndarray
    tissues: list[str]
    real: np.ndarray  # False for synthetic rows
    n_synthetic: int


def _scaled_training(
    model: Classifier, augmented_files: Sequence[str | os.PathLike[str]]
) -> _ScaledTraining:
    """Read the augmented training files and scale them with the model's scaler."""
    # The training rows are the largest array here (2.5 GB at GTEx size): scale them in place.
    training = load_training_rows(augmented_files)
    _check_rows(model, training, "augmented training files")
    y_train = training.tissues
    real_train = ~training.synthetic
    n_synthetic = int(training.synthetic.sum())
    x_train = model.scale(training.matrix, overwrite_input=True)
    del training
    return _ScaledTraining(x_train, y_train, real_train, n_synthetic)


def _plot_confusion(
    training: _ScaledTraining,
    counts: pd.DataFrame,
    labels: list[str],
    split_name: str,
    n_evaluated: int,
    path: str | os.PathLike[str],
) -> list[str]:
    """Plot the confusion matrix with tissues ordered by clustering the centroids of their real
    training rows; returns that order."""
    # Centroids of the real rows only: synthetic rows are copies of them, and labelling them None
    # leaves them out without copying the real rows of a GTEx-sized matrix.
    real_tissues = [
        t if real else None for t, real in zip(training.tissues, training.real, strict=True)
    ]
    order = cluster_order(tissue_centroids(training.x, real_tissues, labels), labels)
    title = (
        f"Confusion matrix, {split_name} samples (n = {n_evaluated})\n"
        "rows normalised to the true tissue"
    )
    plot_confusion_matrix(counts, order, path, title)
    return order


def _calibration_report(
    model: Classifier,
    rows: LabelledRows,
    labels: list[str],
    split: str,
    path: str | os.PathLike[str],
) -> dict[str, Any]:
    """ECE and NLL of the evaluated rows before and after temperature scaling, and the
    reliability diagram; the ``calibration`` section of summary.json."""
    from rnaseq_saliency.calibration import calibration_metrics, plot_reliability

    logits = np.asarray(model.logits(rows.matrix), dtype=np.float64)
    position = {label: i for i, label in enumerate(labels)}
    true_index = np.asarray([position[t] for t in rows.tissues], dtype=np.int64)
    temperature = float(model.temperature)
    metrics = calibration_metrics(logits, true_index, temperature)
    title = f"Reliability, {SPLIT_NAMES[split]} samples (n = {len(true_index)})"
    plot_reliability(logits, true_index, temperature, title, path)
    log.info(
        "calibration on the %s samples: T = %.4g; ECE %.4f -> %.4f, NLL %.4f -> %.4f",
        SPLIT_NAMES[split],
        temperature,
        metrics["ece_before"],
        metrics["ece_after"],
        metrics["nll_before"],
        metrics["nll_after"],
    )
    return {"split": split, "fitted_on": "val", **metrics}


def replicate_section(
    model: Classifier,
    rows: LabelledRows,
    labels: list[str],
    model_metrics: Mapping[str, float],
    calibration: Mapping[str, Any],
) -> dict[str, Any]:
    """With an ensemble of several replicates (``rnaseq_saliency.ensemble.Ensemble``), each
    replicate's metrics on the evaluated ``rows`` and the ensemble's, for summary.json; empty
    for a single model, so that ``train.replicates: 1`` keeps summary.json as it was.

    Each entry holds ``report_metrics`` of its calls, its temperature, and the top-label ECE and
    NLL of its calibrated probabilities (a replicate with its own temperature, the ensemble with
    its one temperature fitted on the validation mean logits: ``model_metrics`` and
    ``calibration`` are the ensemble's, as evaluated). The spread across replicates is
    retraining noise; the ensemble's macro-F1 minus the replicates' mean is what averaging gains.
    """
    from rnaseq_saliency.calibration import calibration_metrics

    members = getattr(model, "members", None) or []
    if len(members) < 2:
        return {}
    position = {label: i for i, label in enumerate(labels)}
    true_index = np.asarray([position[t] for t in rows.tissues], dtype=np.int64)
    replicates = []
    for path, seed, member in zip(model.member_paths, model.member_seeds, members, strict=True):
        logits = np.asarray(member.logits(rows.matrix), dtype=np.float64)
        predicted = [labels[i] for i in logits.argmax(axis=1)]
        report = classification_report_table(list(rows.tissues), predicted, labels)
        fit = calibration_metrics(logits, true_index, member.temperature)
        replicates.append(
            {
                "path": path,
                "seed": seed,
                **report_metrics(report),
                "temperature": fit["temperature"],
                "ece": fit["ece_after"],
                "nll": fit["nll_after"],
            }
        )
    ensemble = {
        "n_members": len(members),
        **model_metrics,
        "temperature": calibration["temperature"],
        "ece": calibration["ece_after"],
        "nll": calibration["nll_after"],
    }
    mean_f1 = float(np.mean([entry["macro_f1"] for entry in replicates]))
    return {
        "replicates": replicates,
        "ensemble": ensemble,
        "ensemble_minus_mean_replicate": ensemble["macro_f1"] - mean_f1,
    }


def _log_replicates(section: Mapping[str, Any], split_name: str) -> None:
    for entry in [*section.get("replicates", []), section.get("ensemble")]:
        if entry is None:
            continue
        name = (
            f"replicate {entry['path']} (seed {entry['seed']})"
            if "seed" in entry
            else (f"ensemble of {entry['n_members']}")
        )
        log.info(
            "%s on %s: accuracy %.4f, macro F1 %.4f, ECE %.4f, NLL %.4f",
            name,
            split_name,
            entry["accuracy"],
            entry["macro_f1"],
            entry["ece"],
            entry["nll"],
        )


def _comparison(result: Mapping[str, Any]) -> dict[str, Mapping[str, float]]:
    """The rows of the report page's headline table: the model (the ensemble, when there are
    replicates) and the baseline, then each replicate."""
    replicates = result.get("replicates", [])
    name = f"model (ensemble of {len(replicates)})" if replicates else "model"
    comparison = {name: result["model"], "baseline (logistic regression)": result["baseline"]}
    for entry in replicates:
        comparison[f"replicate {entry['path']} (seed {entry['seed']})"] = entry
    return comparison


def _write_summary(
    split: str,
    model_report: pd.DataFrame,
    baseline: BaselineResult,
    donors: pd.Series,
    model: Classifier,
    test_opt: int,
    seed: int,
    order: list[str],
    n_evaluated: int,
    outputs: Mapping[str, str | os.PathLike[str]],
    calibration: dict[str, Any],
    evaluated_rows: LabelledRows,
) -> dict[str, Any]:
    """The summary JSON and the HTML report comparing the model with the baseline (and, with
    replicates, the ensemble with each replicate)."""
    result = summary(
        split,
        model_report,
        baseline,
        n_donors=int(donors.nunique()),
        n_model_parameters=_count_parameters(model.network),
        test_opt=test_opt,
        extra={"seed": seed, "tissue_order": order, "calibration": calibration},
    )
    result.update(
        replicate_section(model, evaluated_rows, list(model.tissues), result["model"], calibration)
    )
    comparison = _comparison(result)
    page_title = f"Classification report, {SPLIT_NAMES[split]} samples (n = {n_evaluated})"
    page = report_html(model_report, page_title, comparison, DIFFERENCE_LABEL)
    _write_text(page, outputs["report_html"])
    write_evaluation_summary(result, outputs["summary"])
    return result


def _log_results(
    result: dict[str, Any],
    split_name: str,
    test_opt: int,
    model_report: pd.DataFrame,
    baseline: BaselineResult,
) -> None:
    """Log the headline metrics, and with ``test_opt`` 2 both classification reports."""
    comparison = {"model": result["model"], "baseline (logistic regression)": result["baseline"]}
    for name, metrics in comparison.items():
        log.info(
            "%s on %s: accuracy %.4f, macro F1 %.4f, weighted F1 %.4f, balanced accuracy %.4f",
            name,
            split_name,
            metrics["accuracy"],
            metrics["macro_f1"],
            metrics["weighted_f1"],
            metrics["balanced_accuracy"],
        )
    _log_difference(result, split_name)
    _log_replicates(result, split_name)
    if test_opt == 2:
        log.info("model classification report (%s):\n%s", split_name, report_markdown(model_report))
        log.info(
            "baseline classification report (%s):\n%s", split_name, report_markdown(baseline.report)
        )


def _log_difference(result: Mapping[str, Any], split_name: str) -> None:
    """The headline: model minus baseline macro-F1; a warning when the network loses."""
    difference = result["model_minus_baseline"]
    if difference < 0:
        log.warning(
            "the network loses to the logistic-regression baseline on the %s samples: macro F1 "
            "%.4f vs %.4f (model - baseline %+.4f)",
            split_name,
            result["model"]["macro_f1"],
            result["baseline"]["macro_f1"],
            difference,
        )
    else:
        log.info(
            "model - baseline macro F1 on the %s samples: %+.4f (%.4f vs %.4f)",
            split_name,
            difference,
            result["model"]["macro_f1"],
            result["baseline"]["macro_f1"],
        )


def evaluate_model(
    model: Classifier,
    augmented_files: Sequence[str | os.PathLike[str]],
    expression_files: Sequence[str | os.PathLike[str]],
    samples_tsv: str | os.PathLike[str],
    outputs: Mapping[str, str | os.PathLike[str]],
    test_opt: int,
    seed: int,
    *,
    baseline_max_iter: int = BASELINE_MAX_ITER,
) -> dict[str, Any]:
    """Write every evaluation output (``OUTPUT_KEYS`` of ``outputs``) for a loaded model.

    See the module docstring for what ``test_opt`` 0, 1 and 2 evaluate. Returns the summary.
    """
    samples = _read_checked_samples(model, samples_tsv, outputs, test_opt)
    labels = list(model.tissues)
    split = "test" if test_opt else "val"
    split_name = SPLIT_NAMES[split]
    predicted_splits = ("val", "test") if test_opt else ("val",)
    rows_by_split = _held_out_splits(
        expression_files, samples, samples_tsv, split, predicted_splits
    )
    evaluated_rows = rows_by_split[split]

    predictions = predictions_table(model, rows_by_split)
    write_predictions(predictions, outputs["predictions"])
    evaluated = predictions.loc[predictions["split"] == split]
    y_true = evaluated["tissue"].tolist()
    y_pred = evaluated["predicted"].tolist()
    donors = samples.loc[samples["sample_id"].isin(evaluated["sample_id"]), "donor_id"]
    log.info(
        "%d %s samples of %d donors; %d tissues",
        len(evaluated),
        split_name,
        donors.nunique(),
        len(labels),
    )
    model_report, counts = _write_model_reports(y_true, y_pred, labels, outputs)
    calibration = _calibration_report(
        model, evaluated_rows, labels, split, outputs["calibration_png"]
    )

    training = _scaled_training(model, augmented_files)
    order = _plot_confusion(
        training, counts, labels, split_name, len(evaluated), outputs["confusion_png"]
    )

    x_eval = model.scale(evaluated_rows.matrix)
    baseline = baseline_report(
        training.x,
        training.tissues,
        x_eval,
        evaluated_rows.tissues,
        labels,
        seed,
        max_iter=baseline_max_iter,
    )
    baseline.settings["n_synthetic_training_rows"] = training.n_synthetic
    del training  # the largest array here: free it before the reports
    _write_tsv(baseline.report, outputs["baseline"])

    result = _write_summary(
        split,
        model_report,
        baseline,
        donors,
        model,
        test_opt,
        seed,
        order,
        len(evaluated),
        outputs,
        calibration,
        evaluated_rows,
    )
    _log_results(result, split_name, test_opt, model_report, baseline)
    return result


def run_evaluation(
    model_dir: str | os.PathLike[str],
    augmented_files: Sequence[str | os.PathLike[str]],
    expression_files: Sequence[str | os.PathLike[str]],
    samples_tsv: str | os.PathLike[str],
    outputs: Mapping[str, str | os.PathLike[str]],
    test_opt: int,
    seed: int,
    *,
    threads: int | None = None,
) -> dict[str, Any]:
    """Load the model from ``model_dir`` and write the evaluation outputs (``evaluate_model``).

    ``threads`` caps torch's and the BLAS libraries' threads (the rule's ``threads``).
    """
    import torch
    from threadpoolctl import threadpool_limits

    from rnaseq_saliency.ensemble import load_classifier

    if threads:
        torch.set_num_threads(threads)
    model = load_classifier(model_dir)
    with threadpool_limits(limits=threads):
        return evaluate_model(
            model, augmented_files, expression_files, samples_tsv, outputs, test_opt, seed
        )
