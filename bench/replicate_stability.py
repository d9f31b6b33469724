"""Retraining stability and the cost of the replicate saliency jobs, from a finished run.

Usage::

    python bench/replicate_stability.py RUN_DIR      # a run with train.replicates > 1

Reads what the workflow wrote in ``RUN_DIR`` (no job is run here):
``results/saliency/replicate_stability.tsv`` (rule ``replicate_stability``),
``results/saliency/top_genes_per_tissue.tsv`` (``replicates_in_top_n``), the split-half
``stability_overlap`` of the chosen method in ``results/saliency/validation.tsv``, and the
Snakemake benchmark files of rules ``saliency`` (replicate 0: every method and the deletion
curves) and ``replicate_saliency`` (replicates 1..: the chosen method only). Prints Markdown
tables. CPU seconds are the steadier cost on a shared machine; wall seconds depend on the load.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def quartiles(values: pd.Series) -> str:
    low, mid, high = values.quantile([0.25, 0.5, 0.75]).tolist()
    return f"{mid:.2f} ({low:.2f} - {high:.2f})"


def stability_rows(run: Path) -> list[str]:
    saliency = run / "results/saliency"
    table = pd.read_csv(saliency / "replicate_stability.tsv", sep="\t")
    tissues = table.loc[table["tissue"] != "all_tissues_median"].dropna()
    method = json.loads((saliency / "chosen_method.json").read_text())["method"]
    validation = pd.read_csv(saliency / "validation.tsv", sep="\t")
    split_half = validation.loc[
        (validation["method"] == method) & (validation["tissue"] != "all_tissues_median"),
        "stability_overlap",
    ].dropna()
    top = pd.read_csv(saliency / "top_genes_per_tissue.tsv", sep="\t")
    n, top_n = int(table["n_replicates"].iloc[0]), int(table["top_n"].iloc[0])
    counts = top["replicates_in_top_n"].value_counts(normalize=True).sort_index()
    shares = ", ".join(f"{k}/{n}: {share:.0%}" for k, share in counts.items())
    return [
        f"Method {method}, {n} replicates, {len(tissues)} tissues with maps, top {top_n}.",
        "",
        "| measure | median (quartiles) over tissues |",
        "|---|---|",
        f"| retraining: mean pairwise Jaccard of the top {top_n} "
        f"| {quartiles(tissues['jaccard_top_n'])} |",
        f"| retraining: mean pairwise Spearman, all genes | {quartiles(tissues['spearman'])} |",
        f"| sampling (one model): split-half top-k overlap | {quartiles(split_half)} |",
        "",
        f"Consensus top-{top_n} rows by replicates that rank the gene top {top_n}: {shares}.",
    ]


def cost_rows(run: Path) -> list[str]:
    rows = [
        "",
        "| rule | jobs | CPU s, sum | CPU s, median | wall s, sum |",
        "|---|---:|---:|---:|---:|",
    ]
    for rule, pattern in (
        ("saliency (replicate 0)", "benchmarks/saliency/*.tsv"),
        ("replicate_saliency", "benchmarks/replicate_saliency/*/*.tsv"),
        ("top_genes", "benchmarks/top_genes.tsv"),
        ("replicate_stability", "benchmarks/replicate_stability.tsv"),
    ):
        files = sorted(run.glob(pattern))
        if not files:
            continue
        bench = pd.concat([pd.read_csv(f, sep="\t") for f in files])
        rows.append(
            f"| {rule} | {len(bench)} | {bench['cpu_time'].sum():.0f} | "
            f"{bench['cpu_time'].median():.1f} | {bench['s'].sum():.0f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("run", type=Path, help="a finished run directory (train.replicates > 1)")
    run = parser.parse_args().run
    print("\n".join([*stability_rows(run), *cost_rows(run)]))


if __name__ == "__main__":
    main()
