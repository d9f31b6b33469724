"""Calibration of the classifier's probabilities: temperature scaling, ECE, NLL and a figure.

Temperature scaling (Guo et al. 2017, "On calibration of modern neural networks") divides the
logits by one scalar ``T > 0`` before the softmax. It changes no argmax, so no prediction,
only how sure the probabilities are: ``T > 1`` softens over-confident probabilities, ``T < 1``
sharpens under-confident ones (training with label smoothing, the default, tends to give those).

``T`` is fitted after training on the **validation** rows only (real held-out samples), by
minimising their mean negative log-likelihood over ``log T`` with scipy's bounded scalar
minimiser. One parameter over all validation samples together is what keeps the fit stable on
the small validation splits that are the normal case here (a few samples per tissue, none for
some): it cannot overfit a tissue, only the overall sharpness. ``T`` is bounded to
``TEMPERATURE_BOUNDS``; with fewer than ``MIN_VALIDATION_SAMPLES`` validation samples (including
``split.val_fraction: 0``) it stays 1, with a warning.

The expected calibration error (ECE) is top-label: the confidence of each sample is its largest
probability, and ECE is the mean absolute gap between accuracy and confidence over
``ECE_BINS`` equal-width confidence bins, each weighted by its share of samples. The bins are
scikit-learn's ``calibration_curve(strategy="uniform")``; ECE is the short weighted sum over
them (``expected_calibration_error``), with the bin counts taken the way scikit-learn assigns
samples to bins.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TEMPERATURE_BOUNDS = (0.05, 20.0)
MIN_VALIDATION_SAMPLES = 10
ECE_BINS = 15
METHOD = "temperature scaling"


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted temperature and how the fit went; stored as model.json's ``calibration``."""

    temperature: float
    fitted: bool  # False: too few validation samples, T kept at 1
    n_validation_samples: int
    validation_nll_before: float | None
    validation_nll_after: float | None
    method: str = METHOD
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS
    min_validation_samples: int = MIN_VALIDATION_SAMPLES

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bounds"] = list(self.bounds)
        return data


def _log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    from scipy.special import log_softmax

    return log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def calibrated_proba(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) row by row, float64, shape (n_samples, n_classes)."""
    return np.exp(_log_softmax(logits, temperature))


def negative_log_likelihood(
    logits: np.ndarray, true_index: np.ndarray, temperature: float = 1.0
) -> float:
    """Mean -log softmax(logits / temperature)[true class]; NaN without samples."""
    true_index = np.asarray(true_index, dtype=np.int64)
    if true_index.size == 0:
        return math.nan
    log_p = _log_softmax(logits, temperature)
    return float(-log_p[np.arange(true_index.size), true_index].mean())


def fit_temperature(
    logits: np.ndarray,
    true_index: np.ndarray,
    *,
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
    min_samples: int = MIN_VALIDATION_SAMPLES,
) -> TemperatureFit:
    """The temperature minimising the mean NLL of the validation ``logits`` (n, n_classes).

    ``true_index`` holds each row's true class index. Pass validation rows only: the fit must
    not see the test rows it is judged on. Below ``min_samples`` rows, T = 1 with a warning.
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    true_index = np.asarray(true_index, dtype=np.int64)
    n = int(true_index.size)
    if n < min_samples:
        message = (
            f"temperature scaling: {n} validation sample(s), fewer than {min_samples}; "
            "the temperature is kept at 1 (probabilities are not calibrated)"
        )
        warnings.warn(message, stacklevel=2)
        log.warning(message)
        before = negative_log_likelihood(logits, true_index) if n else None
        return TemperatureFit(
            1.0, False, n, before, before, bounds=bounds, min_validation_samples=min_samples
        )
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, true_index, math.exp(log_t)),
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-4},
    )
    temperature = float(math.exp(result.x))
    before = negative_log_likelihood(logits, true_index)
    after = negative_log_likelihood(logits, true_index, temperature)
    if not after <= before:  # the bounded search never does worse than T = 1 in practice
        temperature, after = 1.0, before
    log.info(
        "temperature scaling on %d validation samples: T = %.4g, validation NLL %.4g -> %.4g",
        n,
        temperature,
        before,
        after,
    )
    return TemperatureFit(
        temperature, True, n, before, after, bounds=bounds, min_validation_samples=min_samples
    )


def _confidence_and_correct(
    proba: np.ndarray, true_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    proba = np.asarray(proba, dtype=np.float64)
    confidence = np.clip(proba.max(axis=1), 0.0, 1.0)
    correct = (proba.argmax(axis=1) == np.asarray(true_index)).astype(np.int64)
    return confidence, correct


def reliability_bins(
    proba: np.ndarray, true_index: np.ndarray, n_bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(accuracy, mean confidence, count) of each non-empty equal-width confidence bin.

    Accuracy and confidence are scikit-learn's ``calibration_curve`` of "top label correct"
    against the top probability; the counts assign samples to bins as it does.
    """
    from sklearn.calibration import calibration_curve

    confidence, correct = _confidence_and_correct(proba, true_index)
    accuracy, mean_confidence = calibration_curve(
        correct, confidence, n_bins=n_bins, strategy="uniform", pos_label=1
    )
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=n_bins)
    return accuracy, mean_confidence, counts[counts > 0]


def expected_calibration_error(
    proba: np.ndarray, true_index: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    """Top-label ECE: sum over bins of (bin share of samples) * |accuracy - confidence|."""
    if len(true_index) == 0:
        return math.nan
    accuracy, confidence, counts = reliability_bins(proba, true_index, n_bins)
    return float(np.sum(counts / counts.sum() * np.abs(accuracy - confidence)))


def calibration_metrics(
    logits: np.ndarray, true_index: np.ndarray, temperature: float
) -> dict[str, float]:
    """ECE and NLL of ``logits`` before (T = 1) and after (``temperature``) calibration."""
    before = calibrated_proba(logits)
    after = calibrated_proba(logits, temperature)
    return {
        "temperature": float(temperature),
        "ece_before": expected_calibration_error(before, true_index),
        "ece_after": expected_calibration_error(after, true_index),
        "nll_before": negative_log_likelihood(logits, true_index),
        "nll_after": negative_log_likelihood(logits, true_index, temperature),
        "ece_bins": ECE_BINS,
    }


def plot_reliability(
    logits: np.ndarray,
    true_index: np.ndarray,
    temperature: float,
    title: str,
    path: str | os.PathLike[str],
) -> None:
    """Reliability diagram, before and after temperature scaling, side by side, as a PNG."""
    from rnaseq_saliency.plotting import pyplot, save_png

    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 4.4), sharey=True)
    panels: Sequence[tuple[str, float]] = (
        ("before (T = 1)", 1.0),
        (f"after (T = {temperature:.3g})", temperature),
    )
    for axis, (name, t) in zip(axes, panels, strict=True):
        proba = calibrated_proba(logits, t)
        accuracy, confidence, counts = reliability_bins(proba, true_index)
        ece = expected_calibration_error(proba, true_index)
        nll = negative_log_likelihood(logits, true_index, t)
        axis.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect")
        axis.plot(confidence, accuracy, marker="o", color="C0", label="model (n per bin)")
        for x, y, n in zip(confidence, accuracy, counts, strict=True):
            axis.annotate(str(int(n)), (x, y), textcoords="offset points", xytext=(3, -10))
        axis.set_title(f"{name}\nECE {ece:.3f}, NLL {nll:.3f}", fontsize=10)
        axis.set_xlabel("confidence (top probability), bin mean")
        axis.set_xlim(0, 1.02)
        axis.set_ylim(0, 1.02)
        axis.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("accuracy in bin")
    figure.suptitle(title)
    figure.tight_layout()
    save_png(figure, path, dpi=150, metadata={"Software": None})
    plt.close(figure)
