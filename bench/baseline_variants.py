"""Network vs the logistic-regression baseline: training variants over split seeds and demo sizes.

For each demo size (``demo.sample_scale``) and split seed (``split.seed``), builds the demo
dataset with the package's functions (the calls the workflow's rules make, without Snakemake),
fits the baseline once (it sees only the training rows, scaled the model's way, so it is the
same for every variant), trains each variant on the same rows and scores both on the test
samples with the evaluation's own macro-F1 (``evaluate.classification_report_table``). Prints
mean +- sd over the seeds of the test macro-F1 of the model, the baseline and model - baseline.

Every finished run is appended to ``<workdir>/runs.jsonl``; a rerun with the same workdir skips
those runs, so a long measurement can be stopped and resumed, and ``--report`` prints the table
of what is there. A run whose result is already known is not trained again: training is
deterministic on the CPU, so the same split (at ``sample_scale`` 0.02 some split seeds give the
same split) with the same effective settings gives the same model; without validation samples
``train.select_on`` changes nothing (the training loss decides), so such a run is also reused.

Each trained run's test logits are cached in ``<workdir>/logits/<run key>.npy`` (a run measured
before that is read back from the model it saved). The ``ENSEMBLES`` are not trained: each
calls argmax of the mean of its members' raw logits, the members being ordinary variants (the
shipped defaults with ``train.seed`` 0, 1, 2), so a single model and the ensembles that contain
it come from the same training. An ensemble's train s is the sum of its members'.

    python bench/baseline_variants.py --workdir /tmp/bv                       # everything
    python bench/baseline_variants.py --workdir /tmp/bv --variants old_default new_default
    python bench/baseline_variants.py --workdir /tmp/bv --variants ensemble_3 --scales 0.1
    python bench/baseline_variants.py --workdir /tmp/bv --report              # table only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnaseq_saliency import gtex
from rnaseq_saliency.augment import augment_file
from rnaseq_saliency.datasets import load_split_rows, load_training_rows, read_samples
from rnaseq_saliency.demo import write_demo_dataset
from rnaseq_saliency.evaluate import baseline_report, classification_report_table, report_metrics
from rnaseq_saliency.genes import select_genes, write_selected_genes
from rnaseq_saliency.ingest import ingest_tissue
from rnaseq_saliency.logs import setup_logging
from rnaseq_saliency.split import write_split
from rnaseq_saliency.tissues import all_labels
from rnaseq_saliency.training import read_gene_names, train, training_classes

DEMO = {"seed": 20170605, "n_genes": 3000, "min_samples_per_tissue": 4}
SPLIT = {"test_fraction": 0.2, "val_fraction": 0.1, "group_by": "donor"}
AUGMENT = {"method": "noise", "min_samples": 600, "noise_sigma": 0.5, "smote_k_neighbors": 5}
MODEL = {"preset": "default", "hidden": [512, 256, 128], "dropout": 0.2, "activation": "relu"}
# The defaults before this benchmark: the loss picks the epoch, no smoothing, no input dropout.
OLD_TRAIN = {
    "device": "cpu",
    "epochs": 20,
    "batch_size": 256,
    "lr": 0.001,
    "weight_decay": 0.0001,
    "patience": 5,
    "min_delta": 0.0,
    "class_balance": "none",
    "seed": 0,
    "select_on": "loss",
    "label_smoothing": 0.0,
    "input_dropout": 0.0,
}
NEW = {"select_on": "macro_f1", "label_smoothing": 0.1, "input_dropout": 0.2, "patience": 10}
# The shipped defaults: NEW with label smoothing 0.05 (variant new+label_smoothing_0.05).
SHIPPED = {**NEW, "label_smoothing": 0.05}
# name -> (model changes, train changes), each on top of MODEL and OLD_TRAIN; in run order.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "old_default": ({}, {}),
    "new_default": ({}, NEW),
    "select_on_macro_f1": ({}, {"select_on": "macro_f1"}),
    "label_smoothing_0.1": ({}, {"label_smoothing": 0.1}),
    "input_dropout_0.2": ({}, {"input_dropout": 0.2}),
    # Tried to close what is left of the gap (BENCHMARKS.md, "Network vs baseline").
    "new+input_dropout_0.5": ({}, {**NEW, "input_dropout": 0.5}),
    "new+weight_decay_0.01": ({}, {**NEW, "weight_decay": 0.01}),
    "new+hidden_256-128-64": ({"hidden": [256, 128, 64]}, NEW),
    "new+loss_weights": ({}, {**NEW, "class_balance": "loss_weights"}),
    # Label smoothing shrinks the logit margins and blurs the saliency lists (BENCHMARKS.md,
    # "Which saliency method: the demo"): the new defaults without it.
    "new+label_smoothing_0": ({}, {**NEW, "label_smoothing": 0.0}),
    "new+label_smoothing_0.05": ({}, {**NEW, "label_smoothing": 0.05}),
    "patience_10": ({}, {"patience": 10}),
    # On top of the shipped defaults, to bring the network to the baseline at the default size.
    # The same model with train.seed 1 and 2 (replicates 1 and 2 of train.replicates: 3).
    "shipped_seed1": ({}, {**SHIPPED, "seed": 1}),
    "shipped_seed2": ({}, {**SHIPPED, "seed": 2}),
    "shipped+loss_weights": ({}, {**SHIPPED, "class_balance": "loss_weights"}),
    "shipped+weight_decay_0.001": ({}, {**SHIPPED, "weight_decay": 0.001}),
    "shipped+hidden_256-128-64": ({"hidden": [256, 128, 64]}, SHIPPED),
}
# name -> member variants: the ensemble calls argmax of the mean of its members' raw logits
# (as the workflow's train.replicates does; replicate r has train.seed + r). The members are
# trained (or reused) as ordinary variants, and each member's test logits are cached in
# <workdir>/logits/<run key>.npy, so the ensembles and single models share their trainings.
ENSEMBLES: dict[str, list[str]] = {
    "ensemble_2": ["new+label_smoothing_0.05", "shipped_seed1"],
    "ensemble_3": ["new+label_smoothing_0.05", "shipped_seed1", "shipped_seed2"],
}


def prepare_scale(root: Path, scale: float) -> tuple[list[str], list[Path], Path]:
    """The demo at ``scale``, its selected genes and ingested expression files (once)."""
    base = root / f"scale{scale:g}"
    raw = base / "raw"
    genes_tsv = base / "genes.tsv"
    tissues = all_labels()
    expression = [base / "expression" / f"{t}.parquet" for t in tissues]
    if all(path.exists() for path in expression):
        return tissues, expression, genes_tsv
    write_demo_dataset(raw, sample_scale=scale, **DEMO)
    genes, _ = select_genes(raw / gtex.gtf_file_name("v8"), "protein_coding")
    write_selected_genes(genes, genes_tsv)
    attributes = raw / gtex.attributes_file_name("v8")
    for tissue, path in zip(tissues, expression, strict=True):
        gct = raw / gtex.tissue_file_name("v8", "tpm", tissue)
        ingest_tissue(gct, attributes, genes_tsv, tissue, path)
    return tissues, expression, genes_tsv


def prepare_split(
    base: Path, tissues: list[str], expression: list[Path], seed: int
) -> tuple[Path, list[Path]]:
    """samples.tsv of split seed ``seed`` and the augmented training files (once)."""
    out = base / f"split{seed}"
    samples = out / "samples.tsv"
    augmented = [out / "augmented" / f"{t}.parquet" for t in tissues]
    if all(path.exists() for path in augmented):
        return samples, augmented
    write_split(expression, tissues, samples, out / "summary.tsv", seed=seed, **SPLIT)
    for tissue, source, path in zip(tissues, expression, augmented, strict=True):
        augment_file(source, samples, tissue, path, seed=0, **AUGMENT)
    return samples, augmented


def _macro_f1(y_true: list[str], y_pred: list[str], labels: list[str]) -> float:
    return report_metrics(classification_report_table(y_true, y_pred, labels))["macro_f1"]


def baseline_f1(base: Path, expression, samples, augmented, model) -> float:
    """The baseline's test macro-F1 on this split (cached: it does not depend on the variant)."""
    cache = base / "baseline.json"
    if cache.exists():
        return json.loads(cache.read_text())["macro_f1"]
    rows = load_training_rows(augmented)
    test = load_split_rows(expression, read_samples(samples), "test")
    labels = list(model.tissues)
    result = baseline_report(
        model.scale(rows.matrix), rows.tissues, model.scale(test.matrix), test.tissues, labels, 0
    )
    value = report_metrics(result.report)["macro_f1"]
    cache.write_text(json.dumps({"macro_f1": value, "converged": result.settings["converged"]}))
    return value


def split_facts(samples_path: Path) -> dict[str, Any]:
    """How many samples each split holds, and a fingerprint of the test set."""
    samples = read_samples(samples_path)
    counts = samples["split"].value_counts().to_dict()
    test_ids = sorted(samples.loc[samples["split"] == "test", "sample_id"])
    return {
        "n_train": int(counts.get("train", 0)),
        "n_val": int(counts.get("val", 0)),
        "n_test": int(counts.get("test", 0)),
        "test_fingerprint": hashlib.sha256("\n".join(test_ids).encode()).hexdigest()[:12],
    }


def run_key(root: Path, name: str, scale: float, seed: int) -> str:
    """What decides a run's result: the split's sample assignment and the effective settings."""
    tissues, expression, _ = prepare_scale(root, scale)
    samples, _ = prepare_split(root / f"scale{scale:g}", tissues, expression, seed)
    table = read_samples(samples).sort_values("sample_id")
    assignment = "\n".join(table["sample_id"] + "\t" + table["split"])
    model_changes, train_changes = VARIANTS[name]
    train_cfg = {**OLD_TRAIN, **train_changes}
    if not (table["split"] == "val").any():
        train_cfg["select_on"] = "loss"  # the training loss decides either way
    settings = json.dumps([scale, assignment, {**MODEL, **model_changes}, train_cfg])
    return hashlib.sha256(settings.encode()).hexdigest()[:16]


def logits_path(root: Path, key: str) -> Path:
    """Where the test logits of the run with key ``key`` are cached."""
    return root / "logits" / f"{key}.npy"


def save_logits(path: Path, logits: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npy")
    np.save(partial, logits)
    partial.replace(path)


def run_one(
    root: Path, name: str, scale: float, seed: int, threads: int, key: str
) -> dict[str, Any]:
    """Train variant ``name`` on split ``seed`` of the demo at ``scale``; score it and the
    baseline on the test samples; cache its test logits under ``key``."""
    tissues, expression, genes_tsv = prepare_scale(root, scale)
    base = root / f"scale{scale:g}" / f"split{seed}"
    samples, augmented = prepare_split(base.parent, tissues, expression, seed)
    model_changes, train_changes = VARIANTS[name]
    training_rows = load_training_rows(augmented)
    classes = training_classes(training_rows, read_samples(samples))
    val_rows = load_split_rows(expression, read_samples(samples), "val")
    gene_names = read_gene_names(genes_tsv, training_rows.gene_ids)
    started = time.perf_counter()
    result = train(
        training_rows,
        val_rows,
        gene_names,
        classes,
        {**MODEL, **model_changes},
        {**OLD_TRAIN, **train_changes},
        base / "runs" / name,
        base / "tensorboard" / name,
        threads=threads,
        progress=False,
        scale_in_place=True,
    )
    seconds = time.perf_counter() - started
    model = result.model
    test = load_split_rows(expression, read_samples(samples), "test")
    labels = list(model.tissues)
    logits = model.logits(test.matrix)
    save_logits(logits_path(root, key), logits)
    model_f1 = _macro_f1(test.tissues, [labels[i] for i in logits.argmax(axis=1)], labels)
    base_f1 = baseline_f1(base, expression, samples, augmented, model)
    return {
        "variant": name,
        "scale": scale,
        "seed": seed,
        "model_macro_f1": model_f1,
        "baseline_macro_f1": base_f1,
        "model_minus_baseline": model_f1 - base_f1,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_s": round(seconds, 1),
        **split_facts(samples),
    }


def member_logits(root: Path, runs: list[dict[str, Any]], name: str, scale: float, seed: int):
    """The cached test logits of variant ``name`` on split ``seed``, with its tissue order.

    Runs measured before the logits were cached are read back from the model they saved (any
    run with the same key: same split and effective settings), checked against their macro-F1.
    """
    from rnaseq_saliency.model import load_model

    key = run_key(root, name, scale, seed)
    tissues, expression, _ = prepare_scale(root, scale)
    samples, _ = prepare_split(root / f"scale{scale:g}", tissues, expression, seed)
    test = load_split_rows(expression, read_samples(samples), "test")
    path = logits_path(root, key)
    trained = [
        r
        for r in runs
        if r["scale"] == scale
        and not r.get("reused")
        and r["variant"] in VARIANTS
        and run_key(root, r["variant"], scale, r["seed"]) == key
    ]
    model_dir = root / f"scale{scale:g}" / f"split{trained[0]['seed']}" / "runs"
    model = load_model(model_dir / trained[0]["variant"])
    if not path.exists():
        logits = model.logits(test.matrix)
        labels = list(model.tissues)
        f1 = _macro_f1(test.tissues, [labels[i] for i in logits.argmax(axis=1)], labels)
        if abs(f1 - trained[0]["model_macro_f1"]) > 1e-9:
            raise RuntimeError(f"{model_dir}: macro-F1 {f1} is not the recorded one")
        save_logits(path, logits)
    return np.load(path), list(model.tissues), test.tissues


def ensemble_row(root: Path, runs: list[dict[str, Any]], name: str, scale: float, seed: int):
    """Score ensemble ``name`` on split ``seed``: argmax of the mean of its members' logits."""
    members = [
        next(r for r in runs if r["variant"] == m and r["scale"] == scale and r["seed"] == seed)
        for m in ENSEMBLES[name]
    ]
    outputs = [member_logits(root, runs, m, scale, seed) for m in ENSEMBLES[name]]
    labels, truth = outputs[0][1], outputs[0][2]
    if any(o[1] != labels for o in outputs):
        raise RuntimeError(f"{name}: members have different tissue orders")
    mean = np.mean([o[0] for o in outputs], axis=0)
    model_f1 = _macro_f1(truth, [labels[i] for i in mean.argmax(axis=1)], labels)
    base_f1 = members[0]["baseline_macro_f1"]
    return {
        **{k: members[0][k] for k in ("n_train", "n_val", "n_test", "test_fingerprint")},
        "variant": name,
        "scale": scale,
        "seed": seed,
        "model_macro_f1": model_f1,
        "baseline_macro_f1": base_f1,
        "model_minus_baseline": model_f1 - base_f1,
        # per member (means), and the time of all members' trainings together
        "best_epoch": float(np.mean([m["best_epoch"] for m in members])),
        "epochs_run": float(np.mean([m["epochs_run"] for m in members])),
        "train_s": round(sum(m["train_s"] for m in members), 1),
        "members": {m["variant"]: m["model_macro_f1"] for m in members},
    }


def read_runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mean_sd(values: list[float], signed: bool = False) -> str:
    if not values:
        return ""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    mean = f"{statistics.mean(values):+.3f}" if signed else f"{statistics.mean(values):.3f}"
    return f"{mean} ± {sd:.3f}"


def table(runs: list[dict[str, Any]]) -> str:
    """A Markdown table: one row per variant and demo size, mean ± sd over the seeds."""
    lines = [
        "| variant | sample_scale | seeds | model macro-F1 | baseline macro-F1 "
        "| model − baseline | epochs run (kept) | train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    named = list(VARIANTS) + list(ENSEMBLES)
    order = named + sorted({r["variant"] for r in runs} - set(named))
    for name in order:
        for scale in sorted({r["scale"] for r in runs}):
            rows = [r for r in runs if r["variant"] == name and r["scale"] == scale]
            if not rows:
                continue
            epochs = f"{np.mean([r['epochs_run'] for r in rows]):.1f} "
            epochs += f"({np.mean([r['best_epoch'] for r in rows]):.1f})"
            lines.append(
                f"| {name} | {scale:g} | {len(rows)} "
                f"| {_mean_sd([r['model_macro_f1'] for r in rows])} "
                f"| {_mean_sd([r['baseline_macro_f1'] for r in rows])} "
                f"| {_mean_sd([r['model_minus_baseline'] for r in rows], signed=True)} "
                f"| {epochs} | {np.mean([r['train_s'] for r in rows]):.0f} |"
            )
    return "\n".join(lines)


def split_notes(runs: list[dict[str, Any]]) -> list[str]:
    """Splits that repeat another seed's test set, or have no validation samples."""
    notes = []
    for scale in sorted({r["scale"] for r in runs}):
        facts = {r["seed"]: r for r in runs if r["scale"] == scale}
        by_print: dict[str, list[int]] = {}
        for seed, row in sorted(facts.items()):
            by_print.setdefault(row["test_fingerprint"], []).append(seed)
            if row["n_val"] == 0:
                notes.append(f"scale {scale:g}, seed {seed}: no validation samples")
        notes += [
            f"scale {scale:g}: seeds {seeds} have the same test samples"
            for seeds in by_print.values()
            if len(seeds) > 1
        ]
    return notes


def _known_results(root: Path, runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        run_key(root, r["variant"], r["scale"], r["seed"]): r
        for r in runs
        if r["variant"] in VARIANTS
    }


def _measure(args: argparse.Namespace, name: str, scale: float, state: dict[str, Any]) -> None:
    """Run (or reuse, or for an ensemble compose) variant ``name`` at ``scale`` on every seed."""
    runs_path = args.workdir / "runs.jsonl"
    for member in ENSEMBLES.get(name, []):
        _measure(args, member, scale, state)
    for seed in args.seeds:
        if (name, scale, seed) in state["done"]:
            continue
        if name in ENSEMBLES:
            row = ensemble_row(args.workdir, read_runs(runs_path), name, scale, seed)
        else:
            key = run_key(args.workdir, name, scale, seed)
            if key in state["known"]:
                row = {**state["known"][key], "variant": name, "seed": seed, "reused": True}
            else:
                row = run_one(args.workdir, name, scale, seed, args.threads, key)
            state["known"][key] = row
        state["done"].add((name, scale, seed))
        with runs_path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    names = list(VARIANTS) + list(ENSEMBLES)
    parser.add_argument("--variants", nargs="*", default=names, choices=names)
    parser.add_argument("--scales", nargs="*", type=float, default=[0.1, 0.02])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--report", action="store_true", help="print the table and stop")
    args = parser.parse_args()
    setup_logging()
    runs_path = args.workdir / "runs.jsonl"
    args.workdir.mkdir(parents=True, exist_ok=True)
    runs = read_runs(runs_path)
    state = {
        "done": {(r["variant"], r["scale"], r["seed"]) for r in runs},
        "known": {} if args.report else _known_results(args.workdir, runs),
    }
    for name in [] if args.report else args.variants:
        for scale in args.scales:
            _measure(args, name, scale, state)
    runs = read_runs(runs_path)
    print(table(runs))
    for note in split_notes(runs):
        print(f"note: {note}")


if __name__ == "__main__":
    main()
