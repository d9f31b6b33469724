"""Tests for rnaseq_saliency.sweep and the sweep rules: combinations, Paramspace round trips,
validation-only ranking, the best run's config, and a 2x2 sweep on the demo data."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import Paramspace
from snakemake_cli import run_snakemake

from rnaseq_saliency import sweep as sw
from rnaseq_saliency.config import validate_config
from rnaseq_saliency.expression import ExpressionTable, write_expression

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def base_config(**sweep: Any) -> dict[str, Any]:
    """The schema defaults with a sweep section (dotted keys -> lists) switched on."""
    config = validate_config({}, SCHEMA)
    config["sweep"]["enabled"] = True
    for key, values in sweep.items():
        section, name = key.split("__")
        config["sweep"][section][name] = values
    return config


# ----------------------------------------------------------------------------- combinations


def test_swept_values_keep_only_filled_lists_in_key_order() -> None:
    config = base_config(augment__min_samples=[10, 20], train__lr=[0.1], model__dropout=[])
    assert sw.swept_values(config["sweep"]) == {
        "train.lr": [0.1],
        "augment.min_samples": [10, 20],
    }


def test_grid_has_every_combination_last_key_fastest() -> None:
    grid = sw.grid_combinations({"train.lr": [0.1, 0.01], "model.dropout": [0.0, 0.5]})
    assert grid == [
        {"train.lr": 0.1, "model.dropout": 0.0},
        {"train.lr": 0.1, "model.dropout": 0.5},
        {"train.lr": 0.01, "model.dropout": 0.0},
        {"train.lr": 0.01, "model.dropout": 0.5},
    ]


def test_random_combinations_are_distinct_seeded_and_keep_earlier_draws() -> None:
    values = {"train.lr": [1e-4, 1e-3, 1e-2], "train.batch_size": [32, 64, 128, 256]}
    five = sw.random_combinations(values, 5, seed=3)
    assert len({tuple(c.values()) for c in five}) == 5
    grid = sw.grid_combinations(values)
    assert all(c in grid for c in five)
    assert sw.random_combinations(values, 5, seed=3) == five
    # Asking for more keeps the runs drawn before, so their results are reused.
    assert sw.random_combinations(values, 8, seed=3)[:5] == five
    assert sw.random_combinations(values, 5, seed=4) != five
    whole = sw.random_combinations(values, 12, seed=3)
    assert sorted(map(str, whole)) == sorted(map(str, grid))


def test_random_combinations_beyond_the_grid_fail_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"sweep\.samples: 5 random .* only 4"):
        sw.random_combinations({"train.lr": [1.0, 2.0], "model.dropout": [0.0, 0.1]}, 5, 0)


def test_sweep_combinations_grid_or_random() -> None:
    config = base_config(train__lr=[0.1, 0.01], train__batch_size=[32, 64])
    assert len(sw.sweep_combinations(config["sweep"], config)) == 4
    config["sweep"]["samples"] = 3
    drawn = sw.sweep_combinations(config["sweep"], config)
    assert len(drawn) == 3
    assert drawn == sw.random_combinations(
        {"train.lr": [0.1, 0.01], "train.batch_size": [32, 64]}, 3, seed=0
    )


def test_enabled_sweep_without_values_is_an_error() -> None:
    config = base_config()
    with pytest.raises(ValueError, match=r"sweep\.enabled: true, but no value list"):
        sw.sweep_combinations(config["sweep"], config)


def test_architecture_sweep_with_the_original_preset_is_an_error() -> None:
    config = base_config(model__dropout=[0.1, 0.2])
    config["model"]["preset"] = "original"
    with pytest.raises(ValueError, match=r"sweep\.model\.dropout: model\.preset is 'original'"):
        sw.sweep_combinations(config["sweep"], config)
    config = base_config(train__lr=[0.1, 0.2])
    config["model"]["preset"] = "original"
    assert len(sw.sweep_combinations(config["sweep"], config)) == 2


def test_schema_checks_sweep_lists() -> None:
    config = base_config(train__lr=[0.1, 0.1])
    with pytest.raises(ValueError, match=r"config key sweep\.train\.lr"):
        validate_config(config, SCHEMA)
    config = base_config(model__hidden=[[64, 32]])
    with pytest.raises(ValueError, match=r"config key sweep\.model\.hidden"):
        validate_config(config, SCHEMA)
    config = base_config(augment__method=["mixup"])
    with pytest.raises(ValueError, match=r"config key sweep\.augment\.method"):
        validate_config(config, SCHEMA)


# ----------------------------------------------------------------------------- paramspace


ALL_KEYS = {
    "model.hidden": [[64, 32, 16], [8, 8, 8]],
    "model.dropout": [0.0, 0.25],
    "model.activation": ["relu", "gelu"],
    "train.lr": [1e-05, 0.1],
    "train.batch_size": [32, 256],
    "train.weight_decay": [0, 0.0001],
    "augment.method": ["noise", "none"],
    "augment.min_samples": [0, 600],
}


def test_paramspace_round_trip_gives_plain_config_values() -> None:
    combinations = sw.grid_combinations(ALL_KEYS)
    table = sw.paramspace_table(combinations)
    assert list(table.columns) == list(sw.SWEEP_KEYS.values())
    space = Paramspace(table)
    patterns = list(space.instance_patterns)
    assert len(set(patterns)) == len(combinations) == 256
    assert patterns[0] == (
        "hidden~64-32-16/dropout~0.0/activation~relu/lr~1e-05/batch_size~32/"
        "weight_decay~0.0/augment_method~noise/augment_min_samples~0"
    )
    wildcard_regex = re.compile(
        re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(space.wildcard_pattern))
    )
    for pattern, combination in zip(patterns, combinations, strict=True):
        wildcards = wildcard_regex.fullmatch(pattern).groupdict()
        back = sw.combination_from_instance(space.instance(wildcards))
        expected = {
            key: (float(v) if key == "train.weight_decay" else v) for key, v in combination.items()
        }
        assert back == expected
        # Plain types: JSON and YAML take them, and params compare equal from run to run.
        for value in back.values():
            assert type(value) in (int, float, str, list)
        json.dumps(back)
        yaml.safe_dump(back)


def test_adding_a_value_keeps_the_existing_run_paths() -> None:
    before = {"train.lr": [0.001, 0.01], "augment.min_samples": [30, 40]}
    after = {"train.lr": [0.001, 0.01, 0.003], "augment.min_samples": [30, 40]}
    runs_before = set(
        Paramspace(sw.paramspace_table(sw.grid_combinations(before))).instance_patterns
    )
    runs_after = set(Paramspace(sw.paramspace_table(sw.grid_combinations(after))).instance_patterns)
    assert runs_before < runs_after
    assert runs_after - runs_before == {
        "lr~0.003/augment_min_samples~30",
        "lr~0.003/augment_min_samples~40",
    }


def test_repeated_combinations_are_refused() -> None:
    with pytest.raises(ValueError, match="repeated"):
        sw.paramspace_table([{"train.lr": 0.1}, {"train.lr": 0.1}])


def test_merge_combination_copies_and_overrides() -> None:
    config = base_config()
    before = copy.deepcopy(config)
    merged = sw.merge_combination(config, {"model.hidden": [8, 8, 8], "train.lr": 0.5})
    assert merged["model"]["hidden"] == [8, 8, 8] and merged["train"]["lr"] == 0.5
    assert merged["train"]["epochs"] == config["train"]["epochs"]
    assert config == before
    merged["data"]["tissues"] = ["liver"]
    assert config == before
    with pytest.raises(ValueError, match="not a sweep key"):
        sw.merge_combination(config, {"train.epochs": 3})


def test_train_resources_share_cores_on_cpu_and_hold_the_gpu_otherwise() -> None:
    assert sw.train_resources(4, "cpu", 16) == (0, 4)
    assert sw.train_resources(4, "cpu", 2) == (0, 1)
    assert sw.train_resources(1, "cpu", 8) == (0, 8)
    assert sw.train_resources(4, "auto", 16) == (1, 16)
    assert sw.train_resources(4, "cuda", None) == (1, 1)


def test_plan_shares_augmented_files_unless_augment_values_are_swept() -> None:
    tissues = ["liver", "lung"]
    shared = [f"results/augmented/{t}.parquet" for t in tissues]
    config = base_config(train__lr=[0.1, 0.01], model__dropout=[0.0, 0.5])
    plan = sw.SweepPlan(config, tissues, shared)
    assert plan.augment_columns == [] and plan.augment_space is None
    assert all(plan.augmented_of(run) == shared for run in plan.runs)
    assert plan.all_augmented_files() == shared

    config = base_config(train__lr=[0.1, 0.01], augment__min_samples=[30, 40])
    config["augment"]["method"] = "smote"
    plan = sw.SweepPlan(config, tissues, shared)
    assert plan.runs == [
        "lr~0.1/augment_min_samples~30",
        "lr~0.1/augment_min_samples~40",
        "lr~0.01/augment_min_samples~30",
        "lr~0.01/augment_min_samples~40",
    ]
    assert plan.augment_pattern == "augment_min_samples~{augment_min_samples}"
    assert plan.augmented_of("lr~0.01/augment_min_samples~40") == [
        f"results/sweep/augmented/augment_min_samples~40/{t}.parquet" for t in tissues
    ]
    # Runs that share the augment values share the files: 2 values x 2 tissues.
    assert len(plan.all_augmented_files()) == 4
    wildcards = {"lr": "0.01", "augment_min_samples": "40"}
    assert plan.run(wildcards) == "lr~0.01/augment_min_samples~40"
    assert plan.combination(wildcards) == {"train.lr": 0.01, "augment.min_samples": 40}
    run_config = plan.run_config(wildcards)
    assert set(run_config) == {"data", "demo", "split", "augment", "model", "train"}
    assert run_config["train"]["lr"] == 0.01 and run_config["augment"]["min_samples"] == 40
    settings = plan.augment_settings({"augment_min_samples": "30", "tissue": "liver"})
    assert settings["min_samples"] == 30 and settings["method"] == "smote"
    inputs = plan.evaluation_inputs()
    assert inputs["lr~0.1/augment_min_samples~30"]["model_dir"] == (
        "results/sweep/lr~0.1/augment_min_samples~30/model"
    )
    assert plan.value_order() == {"train.lr": [0.1, 0.01], "augment.min_samples": [30, 40]}


# ----------------------------------------------------------------------------- validation


TISSUES = ["liver", "lung"]
GENES = ["ENSG00000000001.1", "ENSG00000000002.1", "ENSG00000000003.1"]


class FakeModel:
    """Logits are the first two genes: a sample is called the tissue of its larger one."""

    tissues = TISSUES
    gene_ids = GENES
    network = None

    def __init__(self) -> None:
        self.metadata = {"training": {"best_epoch": 2, "epochs_run": 3}}

    def scale(self, raw: np.ndarray) -> np.ndarray:
        return raw

    def logits(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw[:, :2], dtype=np.float32)

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        logits = self.logits(raw).astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def write_split(root: Path) -> tuple[list[Path], Path, dict[str, list[tuple[str, list[float]]]]]:
    """Per-tissue expression files and samples.tsv. Validation: liver called right twice and
    lung once right, once wrong. Test: every sample called wrong."""
    rows = {
        "liver": [
            ("L-tr", "train", [5.0, 1.0, 0.0]),
            ("L-v1", "val", [4.0, 1.0, 0.0]),
            ("L-v2", "val", [3.0, 2.0, 0.0]),
            ("L-te", "test", [0.0, 9.0, 0.0]),
        ],
        "lung": [
            ("U-tr", "train", [1.0, 5.0, 0.0]),
            ("U-v1", "val", [1.0, 6.0, 0.0]),
            ("U-v2", "val", [2.0, 1.0, 0.0]),
            ("U-te", "test", [9.0, 0.0, 0.0]),
        ],
    }
    files, table = [], []
    for tissue, samples in rows.items():
        ids = [s for s, _, _ in samples]
        matrix = np.asarray([v for _, _, v in samples], dtype=np.float32)
        path = root / f"{tissue}.parquet"
        write_expression(path, ExpressionTable(ids, [f"D-{s}" for s in ids], GENES, matrix))
        files.append(path)
        table += [
            {"sample_id": s, "donor_id": f"D-{s}", "tissue": tissue, "split": p}
            for s, p, _ in samples
        ]
    samples_tsv = root / "samples.tsv"
    pd.DataFrame(table).to_csv(samples_tsv, sep="\t", index=False)
    val = {t: [(s, v) for s, p, v in samples if p == "val"] for t, samples in rows.items()}
    return files, samples_tsv, val


def test_validation_metrics_use_the_validation_samples_only(tmp_path: Path) -> None:
    files, samples_tsv, val = write_split(tmp_path)
    metrics = sw.validation_metrics(FakeModel(), files, samples_tsv)
    # Validation: liver 2/2 right, lung 1/2 right (U-v2 called liver). Test samples, all
    # wrong, would pull accuracy below 0.75 if they were read.
    assert metrics["n_samples"] == 4
    assert metrics["accuracy"] == pytest.approx(0.75)
    liver_f1 = 2 * (2 / 3 * 1.0) / (2 / 3 + 1.0)
    lung_f1 = 2 * (1.0 * 0.5) / (1.0 + 0.5)
    assert metrics["macro_f1"] == pytest.approx((liver_f1 + lung_f1) / 2)
    losses = []
    for tissue, samples in val.items():
        for _, values in samples:
            logits = np.asarray(values[:2])
            losses.append(np.log(np.exp(logits).sum()) - logits[TISSUES.index(tissue)])
    assert metrics["loss"] == pytest.approx(float(np.mean(losses)))


def test_validation_without_validation_samples_says_what_to_change(tmp_path: Path) -> None:
    files, samples_tsv, _ = write_split(tmp_path)
    table = pd.read_csv(samples_tsv, sep="\t")
    table.loc[table["split"] == "val", "split"] = "test"
    table.to_csv(samples_tsv, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"split\.val_fraction"):
        sw.validation_metrics(FakeModel(), files, samples_tsv)


def test_mean_cross_entropy_is_stable_for_large_logits() -> None:
    logits = np.asarray([[1000.0, 0.0], [0.0, 1000.0]])
    assert sw.mean_cross_entropy(logits, np.asarray([0, 0])) == pytest.approx(500.0)
    assert math.isfinite(sw.mean_cross_entropy(logits, np.asarray([1, 0])))


# ----------------------------------------------------------------------------- summary


def record(run: str, lr: float, f1: float, loss: float) -> dict[str, Any]:
    return {
        "run": run,
        "params": {"train.lr": lr, "model.hidden": [8, 8, 8]},
        "split": "val",
        "metrics": {
            "macro_f1": f1,
            "accuracy": f1,
            "loss": loss,
            "weighted_f1": f1,
            "balanced_accuracy": f1,
            "n_samples": 10,
        },
        "best_epoch": 1,
        "epochs_run": 1,
    }


def test_summary_ranks_by_validation_macro_f1_then_loss_then_name() -> None:
    records = [
        record("b", 0.1, 0.80, 0.5),
        record("a", 0.2, 0.90, 0.7),
        record("d", 0.3, 0.90, 0.4),
        record("c", 0.4, 0.80, 0.5),
    ]
    table = sw.summary_table(records)
    assert table["run"].tolist() == ["d", "a", "b", "c"]
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert list(table.columns[:4]) == ["rank", "run", "model.hidden", "train.lr"]
    assert table.loc[0, "model.hidden"] == "8-8-8" and table.loc[0, "train.lr"] == "0.3"


def test_write_summary_and_a_best_config_usable_as_a_configfile(tmp_path: Path) -> None:
    config = base_config(train__lr=[1e-05, 0.1], model__hidden=[[8, 8, 8]])
    training = {key: config[key] for key in ("data", "demo", "split", "augment", "model", "train")}
    paths = []
    for i, (lr, f1) in enumerate([(1e-05, 0.5), (0.1, 0.75)]):
        path = tmp_path / f"run{i}" / "validation.json"
        path.parent.mkdir()
        path.write_text(json.dumps(record(f"run{i}", lr, f1, 1.0)))
        paths.append(path)
    summary_tsv, best_yaml = tmp_path / "summary.tsv", tmp_path / "best_config.yaml"
    sw.write_summary(paths, training, summary_tsv, best_yaml)
    summary = sw.read_summary(summary_tsv)
    assert summary["run"].tolist() == ["run1", "run0"]
    assert summary["train.lr"].tolist() == ["0.1", "1e-05"]
    text = best_yaml.read_text()
    assert text.startswith("# Best run of the hyper-parameter sweep: run1")
    best = yaml.safe_load(text)
    assert best["train"]["lr"] == 0.1 and best["model"]["hidden"] == [8, 8, 8]
    assert best["sweep"] == {"enabled": False}
    assert best["train"]["epochs"] == config["train"]["epochs"]
    validated = validate_config(copy.deepcopy(best), SCHEMA)
    assert validated["sweep"]["enabled"] is False


def test_figure_is_a_png(tmp_path: Path) -> None:
    records = [
        record(f"r{i}", lr, f1, 1.0)
        for i, (lr, f1) in enumerate([(0.1, 0.5), (0.01, 0.7), (0.001, 0.6)])
    ]
    summary = sw.summary_table(records)
    out = tmp_path / "validation_f1.png"
    sw.plot_validation_f1(summary, {"train.lr": [0.1, 0.01, 0.001]}, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="none of the swept keys"):
        sw.plot_validation_f1(summary, {"train.batch_size": [1]}, out)


def test_spread_offsets_separate_runs_of_one_value() -> None:
    offsets = sw.spread_offsets(["a", "b", "a", "a"])
    assert offsets[1] == 0.0
    assert sorted(offsets[[0, 2, 3]]) == pytest.approx([-0.2, 0.0, 0.2])


def test_best_run_must_belong_to_the_current_sweep(tmp_path: Path) -> None:
    summary_tsv = tmp_path / "summary.tsv"
    sw.summary_table([record("old", 0.1, 0.9, 0.1)]).to_csv(summary_tsv, sep="\t", index=False)
    with pytest.raises(ValueError, match="not a run of the current sweep"):
        sw.evaluate_best_run(summary_tsv, {"new": {}}, [], "samples.tsv", {}, 1, 0)


# ----------------------------------------------------------------------------- workflow

SWEEP_CONFIG = {
    "data": {"source": "demo", "tissues": ["pancreas", "liver", "testis"]},
    "demo": {"n_genes": 100},
    "augment": {"min_samples": 30, "pca_tissues": ["liver"]},
    "model": {"hidden": [16, 8, 8]},
    "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
    "sweep": {
        "enabled": True,
        "train": {"lr": [0.001, 0.01]},
        "augment": {"min_samples": [30, 40]},
    },
}
SWEEP_OUTPUTS = list(sw.SWEEP_TARGETS)


def snakemake(workdir: Path, config: dict, *args: str) -> str:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return run_snakemake(workdir, *args).stdout


def scheduled(workdir: Path, config: dict, *targets: str) -> dict[str, int]:
    """Rule -> job count of a dry run."""
    # Targets first: --quiet takes several values and would swallow them.
    output = snakemake(workdir, config, *targets, "--dry-run", "--quiet", "rules")
    if "Job stats:" not in output:
        assert "Nothing to be done" in output, output
        return {}
    counts = {}
    for line in output.split("Job stats:", 1)[1].splitlines():
        match = re.fullmatch(r"\s*([a-z_]+)\s+(\d+)\s*", line)
        if match and match.group(1) not in ("job", "total"):
            counts[match.group(1)] = int(match.group(2))
    return counts


def with_values(section: str, key: str, values: list) -> dict:
    config = copy.deepcopy(SWEEP_CONFIG)
    config["sweep"][section][key] = values
    return config


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("sweep_run")
    snakemake(workdir, SWEEP_CONFIG, *SWEEP_OUTPUTS)
    return workdir


@pytest.mark.workflow
def test_a_2x2_grid_trains_four_runs_and_ranks_them(sweep_run: Path) -> None:
    sweep = sweep_run / "results/sweep"
    runs = [f"lr~{lr}/augment_min_samples~{n}" for lr in ("0.001", "0.01") for n in ("30", "40")]
    training_rows = {}
    for run in runs:
        model = json.loads((sweep / run / "model/model.json").read_text())
        lr, n = run.split("/")
        assert model["config"]["train"]["lr"] == float(lr.split("~")[1])
        # model.json records what training read; the run's augment value is in its validation.
        validation = json.loads((sweep / run / "validation.json").read_text())
        assert validation["params"]["augment.min_samples"] == int(n.split("~")[1])
        training_rows.setdefault(n, set()).add(model["training"]["n_training_rows"])
        assert (sweep / run / "model/model.safetensors").stat().st_size > 0
        assert any((sweep_run / "results/tensorboard/sweep" / run).glob("events.out.tfevents.*"))
        validation = json.loads((sweep / run / "validation.json").read_text())
        assert validation["run"] == run and validation["split"] == "val"
    # Runs with the same augment values trained on the same rows; the two values differ.
    assert all(len(rows) == 1 for rows in training_rows.values())
    assert training_rows["augment_min_samples~30"] != training_rows["augment_min_samples~40"]
    assert sorted(p.name for p in (sweep / "augmented").iterdir()) == [
        "augment_min_samples~30",
        "augment_min_samples~40",
    ]

    summary = pd.read_csv(sweep / "summary.tsv", sep="\t")
    assert len(summary) == 4 and sorted(summary["run"]) == sorted(runs)
    assert summary["rank"].tolist() == [1, 2, 3, 4]
    assert summary["val_macro_f1"].is_monotonic_decreasing
    assert (sweep / "validation_f1.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.workflow
def test_only_the_best_run_is_evaluated_on_the_test_set(sweep_run: Path) -> None:
    sweep = sweep_run / "results/sweep"
    summary = pd.read_csv(sweep / "summary.tsv", sep="\t")
    best = summary.loc[0, "run"]
    evaluation = json.loads((sweep / "best/evaluation/summary.json").read_text())
    assert evaluation["sweep_run"] == best and evaluation["evaluated_split"] == "test"
    predictions = pd.read_csv(sweep / "best/evaluation/predictions.tsv", sep="\t")
    assert "test" in set(predictions["split"])
    # No other run has test metrics or predictions.
    per_run = {p.name for p in sweep.glob("lr~*/*/*")}
    assert per_run == {"model", "validation.json"}
    best_config = yaml.safe_load((sweep / "best_config.yaml").read_text())
    assert best_config["train"]["lr"] == summary.loc[0, "train.lr"]
    assert best_config["augment"]["min_samples"] == summary.loc[0, "augment.min_samples"]
    assert best_config["sweep"] == {"enabled": False}
    validate_config(best_config, SCHEMA)


@pytest.mark.workflow
def test_adding_a_value_schedules_only_the_new_runs(sweep_run: Path) -> None:
    assert scheduled(sweep_run, SWEEP_CONFIG, *SWEEP_OUTPUTS) == {}
    rules = scheduled(sweep_run, with_values("train", "lr", [0.001, 0.01, 0.003]), *SWEEP_OUTPUTS)
    assert rules == {
        "sweep_train": 2,
        "sweep_validate": 2,
        "sweep_summary": 1,
        "sweep_figure": 1,
        "sweep_evaluate_best": 1,
    }
    rules = scheduled(
        sweep_run, with_values("augment", "min_samples", [30, 40, 50]), *SWEEP_OUTPUTS
    )
    assert rules["sweep_augment"] == len(SWEEP_CONFIG["data"]["tissues"])
    assert rules["sweep_train"] == 2
    assert not {"demo", "select_genes", "ingest", "split", "augment"} & rules.keys()


@pytest.mark.workflow
def test_rule_all_asks_for_the_sweep_only_when_enabled(tmp_path: Path) -> None:
    enabled = scheduled(tmp_path, SWEEP_CONFIG)
    assert enabled["sweep_train"] == 4 and enabled["train"] == 1
    assert enabled["sweep_evaluate_best"] == 1 and enabled["evaluate"] == 1
    disabled = copy.deepcopy(SWEEP_CONFIG)
    disabled["sweep"]["enabled"] = False
    rules = scheduled(tmp_path, disabled)
    assert "train" in rules
    assert not [rule for rule in rules if rule.startswith("sweep")]


@pytest.mark.workflow
def test_the_figure_is_in_the_report(sweep_run: Path) -> None:
    report = sweep_run / "report.html"
    snakemake(sweep_run, SWEEP_CONFIG, "--report", str(report), *SWEEP_OUTPUTS)
    assert "validation_f1.png" in report.read_text()
