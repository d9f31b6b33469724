"""Temperature scaling, ECE and NLL (rnaseq_saliency.calibration), the temperature in model.json
and the calibration report caption (issue 19, part 1)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import jinja2
import numpy as np
import pytest
import torch

from rnaseq_saliency import calibration as cal
from rnaseq_saliency import model as md

REPO = Path(__file__).resolve().parents[1]


def overconfident(n: int, seed: int, n_classes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a fair but noisy classifier, multiplied by 10: right about 70% of the time, but
    nearly always with probability 1."""
    rng = np.random.default_rng(seed)
    true_index = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), true_index] += 1.5
    return 10.0 * logits, true_index


def test_temperature_scaling_lowers_the_nll_of_an_overconfident_model() -> None:
    val_logits, val_true = overconfident(200, seed=0)
    test_logits, test_true = overconfident(500, seed=1)
    fit = cal.fit_temperature(val_logits, val_true)
    assert fit.fitted and fit.n_validation_samples == 200
    assert 5.0 < fit.temperature < 15.0  # about the factor the logits were inflated by
    assert fit.validation_nll_after < fit.validation_nll_before
    metrics = cal.calibration_metrics(test_logits, test_true, fit.temperature)
    assert metrics["nll_after"] < 0.5 * metrics["nll_before"]
    assert metrics["ece_after"] < 0.5 * metrics["ece_before"]
    after = cal.calibrated_proba(test_logits, fit.temperature)
    np.testing.assert_array_equal(after.argmax(axis=1), test_logits.argmax(axis=1))
    np.testing.assert_allclose(after.sum(axis=1), 1.0)


@pytest.mark.parametrize("temperature", [0.05, 0.3, 1.0, 7.0, 20.0])
def test_no_temperature_changes_an_argmax(temperature: float) -> None:
    logits, _ = overconfident(300, seed=2)
    proba = cal.calibrated_proba(logits, temperature)
    np.testing.assert_array_equal(proba.argmax(axis=1), logits.argmax(axis=1))


def test_temperature_stays_within_its_bounds() -> None:
    logits, _ = overconfident(100, seed=3)
    # Labels the model always gets wrong: the best temperature is as flat as allowed.
    wrong = (logits.argmax(axis=1) + 1) % logits.shape[1]
    fit = cal.fit_temperature(logits, wrong)
    low, high = cal.TEMPERATURE_BOUNDS
    assert low <= fit.temperature <= high
    assert fit.temperature == pytest.approx(high, rel=1e-2)


def test_too_few_validation_samples_keep_t_at_1_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logits, true_index = overconfident(cal.MIN_VALIDATION_SAMPLES - 1, seed=4)
    with caplog.at_level(logging.WARNING), pytest.warns(UserWarning, match="kept at 1"):
        fit = cal.fit_temperature(logits, true_index)
    assert fit.temperature == 1.0 and not fit.fitted
    assert "fewer than 10" in caplog.text
    with pytest.warns(UserWarning, match="0 validation sample"):
        empty = cal.fit_temperature(np.empty((0, 5)), np.empty(0, dtype=int))
    assert empty.temperature == 1.0 and empty.validation_nll_before is None


def test_ece_is_the_weighted_gap_over_equal_width_bins() -> None:
    # Two bins used: confidence 0.95 (4 samples, 3 right) and 0.55 (2 samples, both wrong).
    proba = np.array([[0.95, 0.05]] * 4 + [[0.55, 0.45]] * 2)
    true_index = np.array([0, 0, 0, 1, 1, 1])
    expected = 4 / 6 * abs(0.75 - 0.95) + 2 / 6 * abs(0.0 - 0.55)
    assert cal.expected_calibration_error(proba, true_index) == pytest.approx(expected)
    assert cal.expected_calibration_error(np.eye(3), np.arange(3)) == pytest.approx(0.0)


def test_nll_matches_torch_cross_entropy() -> None:
    logits, true_index = overconfident(50, seed=5)
    for temperature in (1.0, 4.0):
        expected = torch.nn.functional.cross_entropy(
            torch.from_numpy(logits) / temperature, torch.from_numpy(true_index)
        ).item()
        assert cal.negative_log_likelihood(logits, true_index, temperature) == pytest.approx(
            expected
        )


def test_reliability_diagram_is_a_png(tmp_path: Path) -> None:
    logits, true_index = overconfident(80, seed=6)
    path = tmp_path / "calibration.png"
    cal.plot_reliability(logits, true_index, 8.0, "test", path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- model.json


def _save(directory: Path, calibration: dict | None) -> md.TrainedModel:
    torch.manual_seed(0)
    architecture = md.resolve_architecture(4, 3, hidden=(5, 5, 5))
    network = md.network_from_architecture(architecture)
    scaler = md.Scaler(np.zeros(4, np.float32), np.ones(4, np.float32))
    genes = [f"g{i}" for i in range(4)]
    return md.save_model(
        directory, network, architecture, scaler, genes, genes, ["a", "b", "c"],
        calibration=calibration,
    )  # fmt: skip


def test_model_json_round_trips_the_temperature(tmp_path: Path) -> None:
    fit = cal.TemperatureFit(2.5, True, 40, 1.2, 0.8)
    saved = _save(tmp_path, fit.to_json())
    loaded = md.load_model(tmp_path)
    assert saved.temperature == loaded.temperature == 2.5
    assert json.loads((tmp_path / md.JSON_FILE).read_text())["calibration"]["temperature"] == 2.5
    raw = np.random.default_rng(0).poisson(5.0, size=(6, 4)).astype(np.float32)
    logits = torch.from_numpy(loaded.logits(raw))
    np.testing.assert_allclose(
        loaded.predict_proba(raw), torch.softmax(logits / 2.5, dim=1).numpy(), rtol=1e-5
    )
    np.testing.assert_allclose(
        loaded.predict_proba(raw, calibrated=False), torch.softmax(logits, dim=1).numpy()
    )
    assert loaded.predict(raw) == [loaded.tissues[i] for i in logits.argmax(dim=1)]


def test_an_old_model_json_without_calibration_loads_with_t_1(tmp_path: Path) -> None:
    _save(tmp_path, {"temperature": 3.0})
    path = tmp_path / md.JSON_FILE
    metadata = json.loads(path.read_text())
    del metadata["calibration"]
    path.write_text(json.dumps(metadata))  # the weights' SHA-256 is unchanged
    loaded = md.load_model(tmp_path)
    assert loaded.temperature == 1.0
    raw = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(
        loaded.predict_proba(raw), loaded.predict_proba(raw, calibrated=False)
    )


def test_a_non_positive_temperature_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not > 0"):
        _save(tmp_path, {"temperature": 0.0})


# ----------------------------------------------------------------------------- report caption


@pytest.mark.parametrize("score_test", [True, False])
def test_calibration_caption_renders(score_test: bool) -> None:
    """The caption is a Jinja2 template over ``snakemake`` as Snakemake's report renders it."""

    job = SimpleNamespace(params=SimpleNamespace(settings=SimpleNamespace(score_test=score_test)))
    text = (REPO / "workflow/report/calibration.rst").read_text()
    rendered = jinja2.Template(text).render(snakemake=job)
    assert "temperature" in rendered and "ECE" in rendered and "NLL" in rendered
    assert ("validation samples T was fitted on" in rendered) is not score_test
    assert ("test samples" in rendered) is score_test
