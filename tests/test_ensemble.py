"""Tests for rnaseq_saliency.ensemble: ensemble.json, the ensemble call and its calibration,
and evaluation of replicates (summary.json's per-replicate and ensemble metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_evaluate import outputs_in
from test_training import TISSUES, train_replicates

from rnaseq_saliency import ensemble as en
from rnaseq_saliency import model as md
from rnaseq_saliency.calibration import fit_temperature
from rnaseq_saliency.datasets import load_split_rows, read_samples
from rnaseq_saliency.evaluate import OUTPUT_KEYS, run_evaluation

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def replicates(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three replicates trained on one set of files (results/model and replicates/1, 2)."""
    return train_replicates(tmp_path_factory.mktemp("replicates"), 3)


def _results(model_dir: Path) -> Path:
    return model_dir if model_dir.name == "results" else _results(model_dir.parent)


def _inputs(results: Path) -> dict:
    return {
        "expression": sorted((results / "expression").glob("*.parquet")),
        "samples_path": results / "split" / "samples.tsv",
    }


def _ensemble_dir(tmp_path: Path, members: list[Path]) -> Path:
    """A copy of the members' model directories under tmp_path/model with its ensemble.json."""
    root = tmp_path / "model"
    for r, member in enumerate(members):
        target = en.replicate_dir(root, r)
        target.mkdir(parents=True, exist_ok=True)
        for name in (md.WEIGHTS_FILE, md.JSON_FILE):
            (target / name).write_bytes((member / name).read_bytes())
    jsons = [en.replicate_dir(root, r) / md.JSON_FILE for r in range(len(members))]
    en.ensemble_rule(jsons, **_inputs(_results(members[0])), out_path=root / en.ENSEMBLE_FILE)
    return root


def _rows(results: Path, split: str):
    inputs = _inputs(results)
    return load_split_rows(inputs["expression"], read_samples(inputs["samples_path"]), split)


def _val(results: Path):
    return _rows(results, "val")


def test_replicate_directories() -> None:
    assert en.replicate_dir("results/model", 0) == Path("results/model")
    assert en.replicate_dir("results/model", 2) == Path("results/model/replicates/2")
    with pytest.raises(ValueError, match="replicate -1"):
        en.replicate_dir("results/model", -1)


def test_mean_logits_is_the_mean_of_the_members() -> None:
    torch.manual_seed(0)
    members = [torch.nn.Linear(4, 3) for _ in range(3)]
    x = torch.randn(5, 4, requires_grad=True)
    mean = en.MeanLogits(members)(x)
    expected = sum(member(x) for member in members) / 3
    torch.testing.assert_close(mean, expected)
    mean.sum().backward()  # attributions need gradients through every member
    assert x.grad is not None
    with pytest.raises(ValueError, match="at least one member"):
        en.MeanLogits([])


def test_without_ensemble_json_the_classifier_is_the_model(replicates: list[Path]) -> None:
    assert not (replicates[0] / en.ENSEMBLE_FILE).exists()
    classifier = en.load_classifier(replicates[0])
    assert not isinstance(classifier, en.Ensemble)
    assert classifier.metadata == md.load_model(replicates[0]).metadata


def test_ensemble_of_one_is_the_model(replicates: list[Path], tmp_path: Path) -> None:
    """train.replicates: 1: ensemble.json names the model and its own temperature, and the
    classifier is the model itself, so evaluation and prediction give the same numbers."""
    root = _ensemble_dir(tmp_path, replicates[:1])
    description = en.read_ensemble(root / en.ENSEMBLE_FILE)
    model = md.load_model(root)
    assert [m["path"] for m in description["members"]] == ["."]
    assert description["members"][0]["seed"] == 0
    assert description["calibration"] == model.metadata["calibration"]
    classifier = en.load_classifier(root)
    assert not isinstance(classifier, en.Ensemble)
    raw = _val(_results(replicates[0])).matrix
    np.testing.assert_array_equal(classifier.logits(raw), model.logits(raw))
    np.testing.assert_array_equal(classifier.predict_proba(raw), model.predict_proba(raw))
    assert classifier.temperature == model.temperature != 1.0


def test_one_members_refit_gives_its_own_temperature(replicates: list[Path]) -> None:
    """Why an ensemble of one keeps the model's temperature: refitting it on the same
    validation rows gives the same T (to the fit's tolerance), and copying it keeps the bytes."""
    model = md.load_model(replicates[0])
    rows = _val(_results(replicates[0]))
    true_index = np.asarray([model.tissues.index(t) for t in rows.tissues])
    refit = fit_temperature(model.logits(rows.matrix), true_index)
    assert refit.temperature == pytest.approx(model.temperature, rel=1e-3)


def test_load_classifier_on_an_ensemble_averages_raw_logits(
    replicates: list[Path], tmp_path: Path
) -> None:
    root = _ensemble_dir(tmp_path, replicates)
    description = en.read_ensemble(root / en.ENSEMBLE_FILE)
    assert [m["path"] for m in description["members"]] == [".", "replicates/1", "replicates/2"]
    assert [m["seed"] for m in description["members"]] == [0, 1, 2]
    classifier = en.load_classifier(root)
    assert isinstance(classifier, en.Ensemble) and len(classifier.members) == 3
    members = [md.load_model(d) for d in replicates]
    rows = _val(_results(replicates[0]))
    raw = rows.matrix
    mean = np.mean([member.logits(raw) for member in members], axis=0)
    np.testing.assert_allclose(classifier.logits(raw), mean, rtol=1e-6, atol=1e-6)
    assert classifier.predict(raw) == [TISSUES[i] for i in mean.argmax(axis=1)]
    # One temperature, fitted on the validation rows' mean raw logits (not the members' Ts).
    true_index = np.asarray([TISSUES.index(t) for t in rows.tissues])
    expected = fit_temperature(mean, true_index).temperature
    assert classifier.temperature == description["calibration"]["temperature"]
    assert classifier.temperature == pytest.approx(expected, rel=1e-6)
    assert description["calibration"]["fitted"]
    assert description["calibration"]["n_validation_samples"] == len(rows.tissues)
    proba = torch.softmax(torch.from_numpy(mean) / classifier.temperature, dim=1).numpy()
    np.testing.assert_allclose(classifier.predict_proba(raw), proba, rtol=1e-5, atol=1e-6)


def test_a_member_with_other_weights_is_refused(replicates: list[Path], tmp_path: Path) -> None:
    root = _ensemble_dir(tmp_path, replicates)
    other = root / "replicates" / "2"
    for name in (md.WEIGHTS_FILE, md.JSON_FILE):  # replicate 1's files in replicate 2's place
        (other / name).write_bytes((replicates[1] / name).read_bytes())
    with pytest.raises(ValueError, match="member replicates/2 has other weights"):
        en.load_classifier(root)


def test_members_with_other_scaling_are_refused(replicates: list[Path]) -> None:
    members = [md.load_model(d) for d in replicates[:2]]
    members[1].mean = members[1].mean + 1.0
    with pytest.raises(ValueError, match="input scaling differs"):
        en.assemble(members, [".", "replicates/1"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"format": "other"}, "not an rnaseq-saliency ensemble"),
        ({"format": en.FORMAT, "format_version": 9}, "format_version 9"),
        ({"format": en.FORMAT, "format_version": 1, "members": []}, "at least one"),
        (
            {"format": en.FORMAT, "format_version": 1, "members": [{"path": "."}]},
            "'weights_sha256'",
        ),
    ],
)
def test_a_broken_ensemble_json_names_the_problem(tmp_path: Path, content, message) -> None:
    path = tmp_path / en.ENSEMBLE_FILE
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message):
        en.read_ensemble(path)


# ----------------------------------------------------------------------------- evaluation


def _evaluate(model_dir: Path, out: Path) -> dict:
    results = _results(model_dir)
    inputs = _inputs(results)
    outputs = outputs_in(out)
    summary = run_evaluation(
        model_dir,
        sorted((results / "augmented").glob("*.parquet")),
        inputs["expression"],
        inputs["samples_path"],
        outputs,
        test_opt=1,
        seed=0,
        threads=1,
    )
    return {"summary": summary, "outputs": outputs}


def test_evaluation_of_an_ensemble_of_one_is_the_models(replicates: list[Path]) -> None:
    """With one replicate, summary.json and every other output are the single model's."""
    results = _results(replicates[0])
    plain = _evaluate(replicates[0], results / "eval_plain")
    jsons = [replicates[0] / md.JSON_FILE]
    en.ensemble_rule(jsons, **_inputs(results), out_path=replicates[0] / en.ENSEMBLE_FILE)
    try:
        one = _evaluate(replicates[0], results / "eval_one")
    finally:
        (replicates[0] / en.ENSEMBLE_FILE).unlink()
    assert "replicates" not in one["summary"] and "ensemble" not in one["summary"]
    for key in OUTPUT_KEYS:
        assert one["outputs"][key].read_bytes() == plain["outputs"][key].read_bytes(), key


def test_evaluation_reports_each_replicate_and_the_ensemble(replicates: list[Path]) -> None:
    results = _results(replicates[0])
    jsons = [d / md.JSON_FILE for d in replicates]
    ensemble_json = replicates[0] / en.ENSEMBLE_FILE
    en.ensemble_rule(jsons, **_inputs(results), out_path=ensemble_json)
    try:
        evaluated = _evaluate(replicates[0], results / "eval_three")
    finally:
        ensemble_json.unlink()
    summary = json.loads(evaluated["outputs"]["summary"].read_text())
    assert [entry["seed"] for entry in summary["replicates"]] == [0, 1, 2]
    paths = [entry["path"] for entry in summary["replicates"]]
    assert paths == [".", "replicates/1", "replicates/2"]
    # Each replicate's own calls and calibration, on the same test samples.
    rows = _rows(results, "test")
    for entry, directory in zip(summary["replicates"], replicates, strict=True):
        member = md.load_model(directory)
        called = member.predict(rows.matrix)
        accuracy = np.mean(np.asarray(called) == np.asarray(rows.tissues))
        assert entry["accuracy"] == pytest.approx(accuracy)
        assert entry["temperature"] == member.temperature
        assert 0 <= entry["ece"] <= 1 and entry["nll"] > 0
    # The ensemble is the evaluated model: its metrics are the headline ones.
    ensemble = summary["ensemble"]
    assert ensemble["n_members"] == 3
    for key in ("accuracy", "macro_f1", "weighted_f1", "balanced_accuracy"):
        assert ensemble[key] == summary["model"][key], key
    assert ensemble["temperature"] == summary["calibration"]["temperature"]
    assert ensemble["ece"] == summary["calibration"]["ece_after"]
    mean_f1 = np.mean([entry["macro_f1"] for entry in summary["replicates"]])
    assert summary["ensemble_minus_mean_replicate"] == pytest.approx(ensemble["macro_f1"] - mean_f1)
    # The report page shows the ensemble next to each replicate, the difference row after the
    # two rows it compares.
    page = evaluated["outputs"]["report_html"].read_text()
    order = [
        "model (ensemble of 3)",
        "baseline (logistic regression)",
        "model − baseline",
        "replicate . (seed 0)",
        "replicate replicates/1 (seed 1)",
        "replicate replicates/2 (seed 2)",
    ]
    positions = [page.index(f"<td>{name}</td>") for name in order]
    assert positions == sorted(positions)
