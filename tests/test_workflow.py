"""End-to-end: the real workflow on a small slice of the demo dataset, then dry runs that show
which jobs a config change schedules."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake_cli import SNAKEMAKE_ENV, snakemake_command
from snakemake_cli import run_snakemake as snakemake

SMALL_CONFIG = {
    "data": {
        "source": "demo",
        "tissues": [
            "pancreas",
            "liver",
            "testis",
            "muscle_skeletal",
            "brain_cortex",
            "brain_frontal_cortex_ba9",
            "whole_blood",
            "kidney_medulla",
            # The demo's planted shortcut (issue 21): long ischemic time and stress genes.
            "colon_transverse",
        ],
    },
    "demo": {"n_genes": 400},
    "augment": {"min_samples": 40, "pca_tissues": ["liver", "brain_cortex"]},
    # One model: the replicate tests below change this to 3 themselves.
    "train": {"epochs": 4, "batch_size": 64, "replicates": 1},
    "model": {"hidden": [64, 32, 16]},
    "saliency": {"top_n": 10, "validation_top_k": 10},
}

pytestmark = pytest.mark.workflow
REPO_ROOT = Path(__file__).resolve().parents[1]


def with_override(config: dict, dotted_key: str, value: object) -> dict:
    """A deep copy of ``config`` with ``section.key`` set to ``value``."""
    changed = yaml.safe_load(yaml.safe_dump(config))
    section, key = dotted_key.split(".")
    changed.setdefault(section, {})[key] = value
    return changed


def scheduled_rules(workdir: Path, dotted_key: str | None = None, value: object = None) -> dict:
    """Rules (with job counts) that a dry run would run after changing one config value."""
    config = SMALL_CONFIG if dotted_key is None else with_override(SMALL_CONFIG, dotted_key, value)
    (workdir / "changed.yaml").write_text(yaml.safe_dump(config))
    output = snakemake(workdir, "--dry-run", "--quiet", "rules", configfile="changed.yaml").stdout
    if "Job stats:" not in output:
        assert "Nothing to be done" in output, output
        return {}
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines():
        match = re.fullmatch(r"\s*([a-z_]+)\s+(\d+)\s*", line)
        if match and match.group(1) not in ("job", "total"):
            counts[match.group(1)] = int(match.group(2))
    return counts


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("demo_run")
    (workdir / "config.yaml").write_text(yaml.safe_dump(SMALL_CONFIG))
    snakemake(workdir)
    return workdir


def test_the_workflow_writes_every_target(demo_run: Path) -> None:
    results = demo_run / "results"
    tissues = SMALL_CONFIG["data"]["tissues"]
    for tissue in tissues:
        assert (results / "expression" / f"{tissue}.parquet").stat().st_size > 0
        assert (results / "saliency" / "heatmaps" / f"{tissue}.png").stat().st_size > 0
    genes = pd.read_csv(results / "genes/selected_genes.tsv", sep="\t")
    assert len(genes) == 400 and list(genes.columns) == ["gene_id", "gene_name"]
    summary = json.loads((results / "evaluation/summary.json").read_text())
    assert summary["model"]["accuracy"] > 0.5
    # Issue 19: T fitted in rule train and stored in model.json; ECE and NLL before and after.
    temperature = json.loads((results / "model/model.json").read_text())["calibration"]
    calibration = summary["calibration"]
    assert calibration["temperature"] == temperature["temperature"] > 0
    for key in ("ece_before", "ece_after", "nll_before", "nll_after"):
        assert 0 <= calibration[key] < float("inf"), key
    assert (results / "evaluation/calibration.png").stat().st_size > 0
    # Issue 19: the sample checks beside the model; held-out samples and mixtures checked.
    from rnaseq_saliency.evaluate_checks import read_held_out, read_mixtures
    from rnaseq_saliency.sample_checks import read_sample_checks

    checks = read_sample_checks(results / "model")
    assert checks.tissues == sorted(SMALL_CONFIG["data"]["tissues"])
    held_out = read_held_out(results / "evaluation/sample_checks.tsv")
    assert set(held_out["split"]) == {"val", "test"}
    assert held_out["novel"].mean() < 0.2
    mixtures = read_mixtures(results / "evaluation/mixtures.tsv")
    assert mixtures["minor_fraction"].tolist() == [0, 0.05, 0.1, 0.2, 0.3, 0.5]
    assert mixtures["flagged_rate"].iloc[-1] > 0.5
    assert (results / "evaluation/mixtures.png").stat().st_size > 0
    history = pd.read_csv(results / "model/history.tsv", sep="\t")
    assert 1 <= len(history) <= 4
    assert any((results / "tensorboard").rglob("events.out.tfevents.*"))
    # Every method's maps and curves; the choice names one of them; the figures name it.
    methods = ["gradient", "input_x_gradient", "integrated_gradients", "smoothgrad"]
    for method in methods:
        assert len(list((results / "saliency/maps" / method).glob("*.parquet"))) == len(tissues)
    chosen = json.loads((results / "saliency/chosen_method.json").read_text())
    assert chosen["mode"] == "auto" and chosen["method"] in methods
    compared = pd.read_csv(results / "saliency/methods.tsv", sep="\t")
    assert compared["method"].tolist() == methods
    assert compared.loc[compared["chosen"], "method"].tolist() == [chosen["method"]]
    top = pd.read_csv(results / "saliency/top_genes_per_tissue.tsv", sep="\t")
    assert set(top["method"]) == {chosen["method"]}
    curves = pd.read_csv(results / "saliency/faithfulness.tsv", sep="\t")
    keys = set(zip(curves["tissue"], curves["method"], curves["split"], curves["k"], strict=True))
    ks = (1, 2, 5, 10, 20, 50, 100, 200, 400)  # k capped at the 400 genes
    assert keys == {
        (t, m, s, k) for t in tissues for m in methods for s in ("val", "test") for k in ks
    }
    assert len(curves) == len(keys)


def test_no_test_sample_reaches_training(demo_run: Path) -> None:
    from rnaseq_saliency.datasets import read_samples
    from rnaseq_saliency.expression import read_expression

    samples = read_samples(demo_run / "results/split/samples.tsv")
    held_out = set(samples.loc[samples["split"] != "train", "sample_id"])
    for path in (demo_run / "results/augmented").glob("*.parquet"):
        table = read_expression(path)
        sources = {s for value in table.extra["source_sample_id"] for s in value.split(";")}
        assert not (set(table.sample_ids) | sources) & held_out, path


def test_up_to_date_run_schedules_nothing(demo_run: Path) -> None:
    assert scheduled_rules(demo_run) == {}


def test_min_samples_change_starts_at_augment(demo_run: Path) -> None:
    rules = scheduled_rules(demo_run, "augment.min_samples", 50)
    assert rules.get("augment") == len(SMALL_CONFIG["data"]["tissues"])
    assert {"train", "evaluate", "saliency"} <= rules.keys()
    assert not {"demo", "select_genes", "ingest", "split"} & rules.keys()


def test_split_seed_change_starts_at_split(demo_run: Path) -> None:
    rules = scheduled_rules(demo_run, "split.seed", 1)
    assert {"split", "augment", "train"} <= rules.keys()
    assert not {"demo", "select_genes", "ingest"} & rules.keys()


def test_learning_rate_change_retrains_but_keeps_the_data(demo_run: Path) -> None:
    rules = scheduled_rules(demo_run, "train.lr", 0.002)
    assert {"train", "evaluate", "saliency", "saliency_heatmap", "saliency_validation"} <= set(
        rules
    )
    assert not {"demo", "download", "select_genes", "ingest", "split", "augment"} & set(rules)


def test_input_filter_change_starts_at_gene_selection(demo_run: Path) -> None:
    rules = scheduled_rules(demo_run, "data.input_filter", "all")
    assert {"select_genes", "ingest", "split", "augment", "train"} <= set(rules)
    assert rules["ingest"] == len(SMALL_CONFIG["data"]["tissues"])
    assert "demo" not in rules


def test_top_n_change_redraws_only_the_heatmaps(demo_run: Path) -> None:
    rules = scheduled_rules(demo_run, "saliency.top_n", 5)
    # No saliency computation: only the tables and figures cut to the top genes.
    assert set(rules) == {
        "top_genes_per_tissue",
        "saliency_heatmap",
        "saliency_overview",
        "saliency_methods",
        "all",
    }
    assert rules["saliency_heatmap"] == len(SMALL_CONFIG["data"]["tissues"])


def test_methods_change_recomputes_maps_but_not_the_model(demo_run: Path) -> None:
    rules = scheduled_rules(demo_run, "saliency.methods", ["gradient", "smoothgrad"])
    assert rules["saliency"] == len(SMALL_CONFIG["data"]["tissues"])
    assert "choose_method" in rules
    assert not {"train", "evaluate", "augment", "split", "de_statistic"} & set(rules)
    # Forcing one of the computed methods recomputes no map either.
    forced = scheduled_rules(demo_run, "saliency.method", "gradient")
    assert "choose_method" in forced and "saliency" not in forced and "train" not in forced


def test_enrichment_and_shortcut_check_find_what_the_demo_planted(demo_run: Path) -> None:
    """Issue 21 on the demo: the HPA set of pancreas and of liver leads their enrichment (the
    demo is built from those markers: a plumbing check), and the shortcut check flags the planted
    ischemic-time shortcut in colon_transverse and nothing anywhere else."""
    from rnaseq_saliency.enrichment import read_enrichment
    from rnaseq_saliency.shortcuts import read_shortcuts

    results = demo_run / "results"
    for tissue in ("pancreas", "liver"):
        table = read_enrichment(results / f"enrichment/{tissue}.tsv")
        assert (table.iloc[0]["library"], table.iloc[0]["set"]) == ("hpa", tissue), table.head()
        assert table.iloc[0]["FDR"] < 0.05
    assert (results / "enrichment/summary.png").stat().st_size > 0
    checks = read_shortcuts(results / "saliency/shortcuts.tsv")
    flagged = checks.loc[checks["flagged"], ["tissue", "check"]]
    assert list(map(tuple, flagged.to_numpy())) == [("colon_transverse", "SMTSISCH")]
    planted = {"FOSB", "ATF3", "NR4A1", "NR4A3", "IER3", "KLF4", "CYR61", "MYC"}
    genes = checks.set_index(["tissue", "check"]).loc[("colon_transverse", "SMTSISCH"), "genes"]
    assert set(genes.split(",")) <= planted, genes
    log = (demo_run / "logs/shortcuts.log").read_text()
    assert "WARNING" in log and "possible shortcut in colon_transverse" in log


def test_report_is_built(demo_run: Path) -> None:
    snakemake(demo_run, "--report", str(demo_run / "report.html"))
    html = (demo_run / "report.html").read_text()
    # Issue 21: the enrichment summary and the shortcut check, with their captions.
    assert "summary.png" in html and "Gene-set enrichment of each tissue" in html
    assert "filename=shortcuts.tsv;base64," in html and "Shortcut check" in html
    assert "confusion_matrix.png" in html and "pca_augmentation.png" in html
    assert "calibration.png" in html and "expected calibration error" in html
    # The report carries each tissue's top genes; the full ranking (70 MB at GTEx size) stays out.
    assert "filename=top_genes_per_tissue.tsv;base64," in html
    assert "filename=top_genes.tsv;" not in html


def snakemake_popen(workdir: Path, *args: str) -> subprocess.Popen:
    """Start Snakemake in its own process group, so that the whole run can be killed."""
    return subprocess.Popen(
        snakemake_command(workdir, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=SNAKEMAKE_ENV,
        start_new_session=True,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(
                f"snakemake ended before {path} appeared:\n{process.stdout.read()}"
            )
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def test_killed_run_resumes_to_the_same_outputs_and_the_lock_refuses_a_second_run(
    demo_run: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "interrupted"
    shutil.copytree(demo_run, workdir, ignore=shutil.ignore_patterns("report.html"))
    train_log = workdir / "logs" / "train.log"
    train_log.unlink()

    # SIGKILL the whole run while rule train is running (its log exists, its outputs do not).
    run = snakemake_popen(workdir, "--forcerun", "train")
    wait_for(train_log, run)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    model = workdir / "results" / "model"
    assert not (model / "model.safetensors").exists()
    assert not (model / "model.json").exists()

    # A SIGKILLed Snakemake keeps its lock: the user unlocks, then reruns.
    snakemake(workdir, "--unlock")
    train_log.unlink(missing_ok=True)
    rerun = snakemake_popen(workdir, "--rerun-incomplete")
    try:
        wait_for(train_log, rerun)
        second = snakemake(workdir, check=False)
        assert second.returncode != 0
        assert "cannot be locked" in second.stdout + second.stderr
    finally:
        output, _ = rerun.communicate(timeout=1200)
    assert rerun.returncode == 0, output[-4000:]

    for relative in (
        "results/model/model.safetensors",
        "results/model/model.json",
        "results/evaluation/predictions.tsv",
        "results/saliency/top_genes.tsv",
    ):
        assert (workdir / relative).read_bytes() == (demo_run / relative).read_bytes(), relative
    leftovers = [p for p in (workdir / "results").rglob("*.tmp")]
    assert leftovers == []


def test_pca_tissues_follow_a_narrow_tissue_choice(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"data": {"tissues": ["liver", "lung"]}}))
    plan = snakemake(tmp_path, "--dry-run", "results/figures/pca_augmentation.png").stdout
    pca_job = plan.split("rule pca_augmentation:", 1)[1].split("\n\n", 1)[0]
    assert "results/augmented/liver.parquet" in pca_job
    assert "results/augmented/lung.parquet" not in pca_job  # not in the default pca_tissues
    assert "brain_cortex" not in pca_job


# ------------------------------------------------------------------ real GTEx file layouts


def expression_bytes(workdir: Path, tissues: list[str]) -> dict[str, bytes]:
    return {t: (workdir / f"results/expression/{t}.parquet").read_bytes() for t in tissues}


def test_summary_accounts_for_every_attributes_row(demo_run: Path) -> None:
    from rnaseq_saliency import gtex

    summary = pd.read_csv(demo_run / "results/expression/summary.tsv", sep="\t")
    attributes = pd.read_csv(
        demo_run / "resources/demo" / gtex.attributes_file_name("v8"), sep="\t"
    )
    assert summary["attribute_rows"].sum() == len(attributes)
    tissues = SMALL_CONFIG["data"]["tissues"]
    assert summary["tissue"].head(len(tissues)).tolist() == tissues
    kept = summary.set_index("tissue").loc[tissues, "samples"]
    assert kept.sum() == len(attributes) - summary["ignored_rows"].sum() and kept.min() > 0
    blood = summary.set_index("tissue").loc["whole_blood"]
    assert "WGS: whole-genome sequencing (DNA)" in blood["ignored_why"]
    log = (demo_run / "logs/expression_summary.log").read_text()
    assert "Cells - Leukemia cell line (CML)" in log


def test_matrix_layout_gives_byte_identical_expression_files(
    demo_run: Path, tmp_path: Path
) -> None:
    config = with_override(SMALL_CONFIG, "data.layout", "matrix")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copytree(demo_run / "resources", tmp_path / "resources")  # the same demo files
    snakemake(tmp_path, "results/expression/summary.tsv")
    tissues = SMALL_CONFIG["data"]["tissues"]
    assert expression_bytes(tmp_path, tissues) == expression_bytes(demo_run, tissues)
    assert (tmp_path / "results/expression/summary.tsv").read_bytes() == (
        demo_run / "results/expression/summary.tsv"
    ).read_bytes()
    log = (tmp_path / "logs/ingest_matrix.log").read_text()
    assert f"({len(tissues)} tissues)" in log


def write_v10_reads_dir(local: Path, tissues: list[str]) -> None:
    """GTEx v10 read-count files, under their published names, from a small demo.

    The per-tissue files keep the demo's real v8 layout (GCT 1.3, ``id`` column), except the
    first tissue, rewritten as v10 files may be (GCT 1.2, ``Name Description samples``; an
    inferred layout, see README); the whole-matrix file is GCT 1.2.
    """
    from rnaseq_saliency import demo, gtex

    source = local / "v8"
    demo.write_demo_dataset(
        source, seed=3, n_genes=300, sample_scale=0.02, min_samples_per_tissue=4, measure="reads"
    )
    for tissue in all_tissue_labels():
        old = source / gtex.tissue_file_name("v8", "reads", tissue)
        old.rename(local / gtex.tissue_file_name("v10", "reads", tissue))
    (source / gtex.attributes_file_name("v8")).rename(local / gtex.attributes_file_name("v10"))
    (source / gtex.gtf_file_name("v8")).rename(local / gtex.gtf_file_name("v10"))
    (source / gtex.subjects_file_name("v8")).rename(local / gtex.subjects_file_name("v10"))
    demo.merge_gct_files(
        [local / gtex.tissue_file_name("v10", "reads", t) for t in all_tissue_labels()],
        local / gtex.matrix_file_name("v10", "reads"),
    )
    first = local / gtex.tissue_file_name("v10", "reads", tissues[0])
    lines = gzip.decompress(first.read_bytes()).decode().split("\n")
    n_genes, n_columns = lines[1].split("\t")[:2]
    lines[:3] = ["#1.2", f"{n_genes}\t{int(n_columns) - 2}", lines[2].removeprefix("id\t")]
    lines[3:] = [line.split("\t", 1)[1] if line else line for line in lines[3:]]
    first.write_bytes(gzip.compress("\n".join(lines).encode()))


def all_tissue_labels() -> list[str]:
    from rnaseq_saliency.tissues import all_labels

    return all_labels()


def test_v10_read_counts_from_a_local_directory_in_both_layouts(tmp_path: Path) -> None:
    tissues = ["liver", "lung", "testis"]
    local = tmp_path / "gtex_v10"
    local.mkdir()
    write_v10_reads_dir(local, tissues)
    data = {"source": "local", "local_dir": str(local), "release": "v10", "measure": "reads"}
    runs = {}
    for layout in ("per_tissue", "matrix"):
        workdir = tmp_path / layout
        workdir.mkdir()
        config = {"data": {**data, "layout": layout, "tissues": tissues}}
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        snakemake(workdir, "results/expression/summary.tsv")
        runs[layout] = expression_bytes(workdir, tissues)
    assert runs["per_tissue"] == runs["matrix"]
    from rnaseq_saliency.expression import read_expression

    table = read_expression(tmp_path / "matrix/results/expression/liver.parquet")
    assert np.array_equal(table.matrix, np.round(table.matrix))  # read counts stay integers
    assert table.matrix.max() > 100


# ------------------------------------------------------------------ reruns: never stale, never wide

# A value that differs from SMALL_CONFIG's, for every documented key that has one offline.
ALTERNATIVES: dict[str, object] = {
    "data.base_url": "https://mirror.example.org/adult-gtex",
    "data.input_filter": "all",
    "data.download.retries": 1,
    "data.download.backoff_seconds": 0.5,
    "data.download.timeout_seconds": 10,
    "demo.seed": 1,
    "demo.n_genes": 300,
    "demo.sample_scale": 0.05,
    "demo.min_samples_per_tissue": 5,
    "split.test_fraction": 0.25,
    "split.val_fraction": 0.15,
    "split.group_by": "none",
    "split.seed": 1,
    "augment.method": "smote",
    "augment.min_samples": 50,
    "augment.noise_sigma": 0.4,
    "augment.smote_k_neighbors": 3,
    "augment.seed": 1,
    "model.preset": "original",
    "model.hidden": [32, 16, 8],
    "model.dropout": 0.1,
    "model.activation": "gelu",
    "train.device": "cpu",
    "train.epochs": 5,
    "train.batch_size": 32,
    "train.lr": 0.002,
    "train.weight_decay": 0.001,
    "train.patience": 3,
    "train.min_delta": 0.01,
    "train.class_balance": "sampler",
    "train.seed": 1,
    "train.select_on": "loss",
    "train.label_smoothing": 0.1,
    "train.input_dropout": 0.1,
    "evaluate.test_opt": 0,
    "saliency.method": "integrated_gradients",
    "saliency.methods": ["gradient", "input_x_gradient"],
    "saliency.abs": True,
    "saliency.top_n": 5,
    "saliency.batch_size": 128,
    "saliency.ig_steps": 20,
    "saliency.smoothgrad_samples": 10,
    "saliency.smoothgrad_stdev": 0.2,
    "saliency.validation_top_k": 5,
    "saliency.seed": 1,
    "saliency.enrichment_permutations": 100,
    "saliency.shortcut_top_k": 20,
    "saliency.shortcut_max_share": 0.1,
    "predict.max_missing_fraction": 0.1,
    "predict.top_n": 5,
    "sweep.samples": 2,
    "sweep.seed": 1,
    "sweep.model.hidden": [[8, 4, 2]],
    "sweep.model.dropout": [0.1],
    "sweep.model.activation": ["gelu"],
    "sweep.train.lr": [0.01],
    "sweep.train.batch_size": [16],
    "sweep.train.weight_decay": [0.01],
    "sweep.augment.method": ["none"],
    "sweep.augment.min_samples": [10],
    "sample_checks.novelty_rate": 0.02,
    "sample_checks.novelty_method": "pca_distance",
    "sample_checks.mixture_rate": 0.05,
    "sample_checks.mixture_pairs": 10,
    "sample_checks.mixture_fractions": [0.1],
    "sample_checks.seed": 1,
}
# Keys without an offline alternative that this test can run, and why.
NOT_DRY_RUN = {
    "data.measure": "reads are other input files (gene_reads_...): a structural change that "
    "reruns everything, by provenance",
    "augment.pca_tissues": "changes which augmented files the PCA figure reads (structural)",
    "data.source": "gtex downloads (no network here) and local needs a second dataset",
    "data.release": "the demo exists for v8 only",
    "data.local_dir": "read only with data.source: local",
    "data.layout": "matrix swaps rule ingest for demo_matrix and ingest_matrix (a new DAG): "
    "tested by test_matrix_layout_gives_byte_identical_expression_files",
    "data.tissues": "changes which jobs exist (structural)",
    "saliency.marker_sets": "changes saliency_validation's input file, not a param (structural)",
    "saliency.gene_sets": "changes rule enrichment's input files, not a param (structural)",
    "predict.input": "adds rule predict, which needs a file of samples (structural)",
    "sweep.enabled": "turns on the sweep's own rules; test_sweep.py runs them",
    "train.replicates": "changes which replicate jobs exist (structural): tested by "
    "test_more_replicates_schedule_only_the_new_models_and_their_dependents",
}
TARGETS = {
    "default": [],
    "summary": ["results/evaluation/summary.json"],
    "top_genes": ["results/saliency/top_genes.tsv"],
    "heatmap": ["results/saliency/heatmaps/liver.png"],
    "model": ["results/model/model.safetensors"],
}
# One key per rule that reads one, for the targets beyond the default and summary.json.
ONE_KEY_PER_RULE = [
    "demo.seed",
    "data.input_filter",
    "split.seed",
    "augment.seed",
    "train.lr",
    "evaluate.test_opt",
    "saliency.ig_steps",
    "saliency.method",
    "saliency.top_n",
    "saliency.validation_top_k",
]


def nested_override(config: dict, dotted_key: str, value: object) -> dict:
    changed = yaml.safe_load(yaml.safe_dump(config))
    *sections, key = dotted_key.split(".")
    node = changed
    for section in sections:
        node = node.setdefault(section, {})
    node[key] = value
    return changed


def job_graph(workdir: Path, targets: list[str]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """The target's DAG of jobs: each job's rule, and each job's direct dependents."""
    dot = snakemake(workdir, "--dag", "dot", *targets).stdout
    rules = {m[0]: m[1] for m in re.findall(r'^\s*(\d+)\[label = "(\w+)', dot, re.MULTILINE)}
    dependents: dict[str, set[str]] = {job: set() for job in rules}
    for source, target in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.MULTILINE):
        dependents[source].add(target)
    return rules, dependents


def expected_jobs(graph: tuple[dict[str, str], dict[str, set[str]]], key: str) -> Counter:
    """Jobs of the rules that read ``key``, and every job downstream of them, per rule."""
    from rnaseq_saliency.settings import RULE_SETTINGS, rule_keys

    rules, dependents = graph
    todo = [job for job, rule in rules.items() if rule in RULE_SETTINGS and key in rule_keys(rule)]
    seen = set(todo)
    while todo:
        for child in dependents[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return Counter(rules[job] for job in seen)


def dry_run(workdir: Path, key: str, targets: list[str]) -> tuple[Counter, str]:
    """Rules and job counts that a dry run schedules after changing ``key``; and its output."""
    name = f"changed_{key}_{len(targets) and targets[0]}".replace("/", "_")
    config = workdir / f"{name}.yaml"
    config.write_text(yaml.safe_dump(nested_override(SMALL_CONFIG, key, ALTERNATIVES[key])))
    result = snakemake(workdir, *targets, "--dry-run", "--quiet", "rules", configfile=config)
    output = result.stdout + result.stderr
    counts = Counter()
    if "Job stats:" in output:
        for line in output.split("Job stats:", 1)[1].splitlines():
            match = re.fullmatch(r"\s*([a-z_]+)\s+(\d+)\s*", line)
            if match and match.group(1) not in ("job", "total"):
                counts[match.group(1)] = int(match.group(2))
    else:
        assert "Nothing to be done" in output, output[-3000:]
    return counts, output


def test_every_key_reruns_exactly_its_readers_and_their_dependents(demo_run: Path) -> None:
    """Two sides of one map (rnaseq_saliency.settings): a dry run after a one-key edit schedules
    the rules that read the key and everything downstream of them up to the target, no more and
    no fewer, for every documented key and several targets."""
    from concurrent.futures import ThreadPoolExecutor

    from rnaseq_saliency.settings import RULE_SETTINGS, rule_keys

    documented = re.findall(
        r"^\| `([a-z_]+(?:\.[a-z_]+)+)` \|",
        (REPO_ROOT / "config/README.md").read_text(),
        flags=re.MULTILINE,
    )
    assert sorted(set(documented) - set(ALTERNATIVES) - set(NOT_DRY_RUN)) == []
    cases = [(key, target) for key in ALTERNATIVES for target in ("default", "summary")]
    cases += [(key, t) for key in ONE_KEY_PER_RULE for t in ("top_genes", "heatmap", "model")]
    readers = {key for rule in RULE_SETTINGS for key in rule_keys(rule)}
    assert set(ONE_KEY_PER_RULE) <= readers
    graphs = {name: job_graph(demo_run, targets) for name, targets in TARGETS.items()}
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda case: dry_run(demo_run, case[0], TARGETS[case[1]]), cases))
    wrong = []
    for (key, target), (scheduled, output) in zip(cases, runs, strict=True):
        # Snakemake names the rules it could not compare (no metadata: the stale case) and the
        # rules a params, input or code change triggered: only rules reading the key may be.
        if "missing metadata" in output:
            wrong.append(f"{key} -> {target}: Snakemake reports missing metadata")
        triggered = re.search(r"Rules with provenance triggered jobs: (.*)", output)
        readers_of_key = {rule for rule in RULE_SETTINGS if key in rule_keys(rule)}
        # Snakemake 9 separates the rule names with spaces (earlier versions with commas).
        if triggered and not set(re.split(r"[,\s]+", triggered.group(1).strip())) <= readers_of_key:
            wrong.append(f"{key} -> {target}: provenance triggered {triggered.group(1)}")
        expected = expected_jobs(graphs[target], key)
        if scheduled != expected:
            wrong.append(f"{key} -> {target}: scheduled {dict(scheduled)}, map {dict(expected)}")
    assert wrong == [], "\n".join(wrong)


def test_the_stale_case_retrains_for_an_explicit_target(demo_run: Path) -> None:
    for key in ("train.lr", "model.hidden"):
        for target in ("results/evaluation/summary.json", "results/model/model.safetensors"):
            scheduled, _ = dry_run(demo_run, key, [target])
            assert scheduled["train"] == 1, (key, target, scheduled)


def test_retry_policy_and_report_verbosity_rerun_nothing(demo_run: Path) -> None:
    for key, value in (("data.download.retries", 1), ("evaluate.test_opt", 2)):
        config = demo_run / "verbosity.yaml"
        config.write_text(yaml.safe_dump(nested_override(SMALL_CONFIG, key, value)))
        output = snakemake(demo_run, "--dry-run", configfile=config).stdout
        assert "Nothing to be done" in output, (key, output[-2000:])


def test_a_failed_job_says_why_in_its_log(demo_run: Path, tmp_path: Path) -> None:
    from rnaseq_saliency import gtex

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(SMALL_CONFIG))
    shutil.copytree(demo_run / "resources", tmp_path / "resources")
    gct = tmp_path / "resources/demo" / gtex.tissue_file_name("v8", "tpm", "liver")
    gct.write_bytes(gct.read_bytes()[:-100])  # an interrupted download
    result = snakemake(tmp_path, "results/expression/liver.parquet", check=False)
    assert result.returncode != 0
    last = (tmp_path / "logs/ingest/liver.log").read_text().rstrip("\n").splitlines()[-1]
    assert "rule ingest failed: GctFormatError:" in last and "truncated or corrupt gzip" in last


# ----------------------------------------------------------------------------- replicates
# Issue 20: train.replicates trains more models on the same rows (seed train.seed + r); the
# ensemble of them is what evaluate and predict use.


def descendants(workdir: Path, configfile: Path, rules: set[str]) -> Counter:
    """Jobs of ``rules`` and every job downstream of them, per rule, in the DAG of a config."""
    dot = snakemake(workdir, "--dag", "dot", configfile=configfile).stdout
    names = {m[0]: m[1] for m in re.findall(r'^\s*(\d+)\[label = "(\w+)', dot, re.MULTILINE)}
    children: dict[str, set[str]] = {job: set() for job in names}
    for source, target in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.MULTILINE):
        children[source].add(target)
    todo = [job for job, rule in names.items() if rule in rules]
    seen = set(todo)
    while todo:
        for child in children[todo.pop()] - seen:
            seen.add(child)
            todo.append(child)
    return Counter(names[job] for job in seen)


def test_more_replicates_schedule_only_the_new_models_and_their_dependents(
    demo_run: Path,
) -> None:
    """1 -> 3: the two new training jobs, the ensemble and what depends on them; no data step,
    no retraining of the model that exists."""
    scheduled = Counter(scheduled_rules(demo_run, "train.replicates", 3))
    assert scheduled["train_replicate"] == 2 and scheduled["ensemble"] == 1
    assert "train" not in scheduled
    expected = descendants(demo_run, demo_run / "changed.yaml", {"train_replicate", "ensemble"})
    assert scheduled == expected


@pytest.fixture(scope="module")
def replicates_run(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The finished demo run, then train.replicates: 3 up to the evaluation."""
    workdir = tmp_path_factory.mktemp("replicates_run") / "run"
    shutil.copytree(demo_run, workdir, symlinks=True)
    config = with_override(SMALL_CONFIG, "train.replicates", 3)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "results/model/ensemble.json", "results/evaluation/summary.json")
    return workdir


def test_replicates_train_beside_the_model_on_the_same_rows(
    demo_run: Path, replicates_run: Path
) -> None:
    model = replicates_run / "results/model"
    for name in ("model.safetensors", "model.json"):  # replicate 0: the existing model, kept
        assert (model / name).read_bytes() == (demo_run / "results/model" / name).read_bytes()
    first = json.loads((model / "model.json").read_text())
    for r in (1, 2):
        meta = json.loads((model / f"replicates/{r}/model.json").read_text())
        assert meta["config"]["train"]["seed"] == first["config"]["train"]["seed"] + r
        for key in ("n_training_rows", "n_validation_rows", "training_rows_per_tissue"):
            assert meta["training"][key] == first["training"][key], key
        assert meta["weights"]["sha256"] != first["weights"]["sha256"]
        assert (replicates_run / f"benchmarks/train_replicate/{r}.tsv").stat().st_size > 0
        assert "kept epoch" in (replicates_run / f"logs/train_replicate/{r}.log").read_text()
    runs = [p.name for p in (replicates_run / "results/tensorboard").iterdir()]
    assert sorted(r.rsplit("_", 1)[1] for r in runs if "_replicate_" in r) == ["1", "2"]
    ensemble = json.loads((model / "ensemble.json").read_text())
    assert [m["path"] for m in ensemble["members"]] == [".", "replicates/1", "replicates/2"]


def test_evaluation_shows_the_ensemble_next_to_each_replicate(replicates_run: Path) -> None:
    summary = json.loads((replicates_run / "results/evaluation/summary.json").read_text())
    assert [entry["seed"] for entry in summary["replicates"]] == [0, 1, 2]
    assert summary["ensemble"]["n_members"] == 3
    assert summary["ensemble"]["macro_f1"] == summary["model"]["macro_f1"]
    ensemble = json.loads((replicates_run / "results/model/ensemble.json").read_text())
    assert summary["calibration"]["temperature"] == ensemble["calibration"]["temperature"]
    page = (replicates_run / "results/evaluation/classification_report.html").read_text()
    assert "model (ensemble of 3)" in page
    assert all(f"(seed {seed})" in page for seed in (0, 1, 2))


def test_fewer_replicates_retrain_nothing(replicates_run: Path) -> None:
    """3 -> 2: replicate 2 is left out of the ensemble; no model is trained again."""
    scheduled = scheduled_rules(replicates_run, "train.replicates", 2)
    assert scheduled.get("ensemble") == 1 and "evaluate" in scheduled
    assert not {"train", "train_replicate"} & set(scheduled)
    again = scheduled_rules(replicates_run, "train.replicates", 3)
    assert not {"train", "train_replicate", "ensemble", "evaluate"} & set(again)


# ------------------------------------------------------------------------------------------
# Replicate models (issue 20, part 3): consensus saliency and retraining stability.
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replicate_run(replicates_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The train.replicates: 3 run (models and evaluation done), run to the end."""
    workdir = tmp_path_factory.mktemp("replicate_run") / "run"
    shutil.copytree(replicates_run, workdir, symlinks=True)
    snakemake(workdir)
    return workdir


def test_one_model_run_has_no_replicate_outputs(demo_run: Path) -> None:
    from rnaseq_saliency.saliency import TOP_GENES_COLUMNS

    saliency = demo_run / "results/saliency"
    assert not (saliency / "replicates").exists()
    assert not (saliency / "replicate_stability.tsv").exists()
    header = (saliency / "top_genes.tsv").read_text().split("\n", 1)[0]
    assert header.split("\t") == TOP_GENES_COLUMNS
    header = (saliency / "top_genes_per_tissue.tsv").read_text().split("\n", 1)[0]
    assert header.split("\t") == TOP_GENES_COLUMNS


def test_replicate_maps_explain_replicate_0s_samples_by_the_chosen_method(
    replicate_run: Path,
) -> None:
    from rnaseq_saliency.saliency import read_tissue_saliency

    saliency = replicate_run / "results/saliency"
    method = json.loads((saliency / "chosen_method.json").read_text())["method"]
    for tissue in SMALL_CONFIG["data"]["tissues"]:
        first = read_tissue_saliency(saliency / "maps" / method / f"{tissue}.parquet")
        other = read_tissue_saliency(saliency / "replicates/1" / f"{tissue}.parquet")
        assert other.info["method"] == method and other.info["replicate"] == 1
        assert other.sample_ids == first.sample_ids
        if first.n_samples:  # another model: other maps of the same samples
            assert not np.array_equal(other.maps, first.maps)
    # Only the chosen method is computed for replicates 1 and 2.
    n_tissues = len(SMALL_CONFIG["data"]["tissues"])
    assert len(list((saliency / "replicates").rglob("*.parquet"))) == 2 * n_tissues


def test_top_genes_rank_by_the_consensus_of_the_replicates(replicate_run: Path) -> None:
    from rnaseq_saliency.consensus import gene_ranks
    from rnaseq_saliency.saliency import read_mean_matrix, read_tissue_saliency, read_top_genes

    saliency = replicate_run / "results/saliency"
    method = json.loads((saliency / "chosen_method.json").read_text())["method"]
    top = read_top_genes(saliency / "top_genes.tsv")
    matrix = read_mean_matrix(saliency / "mean_saliency.parquet")
    tissue = "liver"
    first = read_tissue_saliency(saliency / "maps" / method / f"{tissue}.parquet")
    other = read_tissue_saliency(saliency / "replicates/1" / f"{tissue}.parquet")
    third = read_tissue_saliency(saliency / "replicates/2" / f"{tissue}.parquet")
    consensus = (first.mean.astype(np.float64) + other.mean + third.mean) / 3
    np.testing.assert_allclose(matrix[tissue], consensus, rtol=1e-5, atol=1e-7)
    rows = top.loc[top["tissue"] == tissue].set_index("gene_id").loc[first.gene_ids]
    assert rows["rank_replicate_0"].tolist() == gene_ranks(first.mean).tolist()
    assert rows["rank_replicate_1"].tolist() == gene_ranks(other.mean).tolist()
    short = pd.read_csv(saliency / "top_genes_per_tissue.tsv", sep="\t")
    ranks = ["rank_replicate_0", "rank_replicate_1", "rank_replicate_2"]
    in_top = (short[ranks] <= 10).sum(axis=1)
    assert short["replicates_in_top_n"].tolist() == in_top.tolist()
    assert set(short["replicates_in_top_n"]) <= {0, 1, 2, 3}


def test_retraining_stability_is_written_and_in_the_report(replicate_run: Path) -> None:
    from rnaseq_saliency.consensus import read_stability

    table = read_stability(replicate_run / "results/saliency/replicate_stability.tsv")
    tissues = SMALL_CONFIG["data"]["tissues"]
    assert table["tissue"].tolist() == [*tissues, "all_tissues_median"]
    assert (table["n_replicates"] == 3).all() and (table["top_n"] == 10).all()
    values = table.dropna()
    assert len(values) >= len(tissues) // 2
    assert values["jaccard_top_n"].between(0, 1).all() and values["spearman"].between(-1, 1).all()
    assert (replicate_run / "results/saliency/replicate_stability.png").stat().st_size > 0
    snakemake(replicate_run, "--report", str(replicate_run / "report.html"))
    html = (replicate_run / "report.html").read_text()
    assert "replicate_stability.png" in html and "replicate_stability.tsv" in html
    assert "retraining noise" in html and "Consensus of 3 replicate models" in html


def test_sample_checks_stand_beside_the_ensembles_calls(replicate_run: Path) -> None:
    """evaluate_checks judges the calls that evaluate and predict make: the ensemble's, not
    replicate 0's."""
    evaluation = replicate_run / "results/evaluation"
    checks = pd.read_csv(evaluation / "sample_checks.tsv", sep="\t", index_col="sample_id")
    calls = pd.read_csv(evaluation / "predictions.tsv", sep="\t", index_col="sample_id")
    shared = checks.index.intersection(calls.index)
    assert len(shared) == len(checks)
    assert (checks.loc[shared, "predicted"] == calls.loc[shared, "predicted"]).all()
