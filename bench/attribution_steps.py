"""How many integrated-gradients steps and SmoothGrad samples a tissue's gene ranking needs.

Usage: .venv/bin/python bench/attribution_steps.py [WORKDIR] [--tissues 12]

On a finished run (default: the repository's results/), for the first ``--tissues`` tissues with
correctly classified test samples: each tissue's mean attribution (the ranking the workflow
reports) by integrated gradients with ``ig_steps`` in 4 .. 50 and by SmoothGrad with
``smoothgrad_samples`` in 4 .. 25, compared with the most expensive setting (50 steps; 25
samples): the overlap of the top-20 genes (median and minimum over tissues), the Spearman
correlation of the full rankings, integrated gradients' completeness error (|sum of attributions
- (logit(x) - logit(baseline))|, relative to the logit change; Sundararajan et al. 2017), and the
time relative to the reference. SmoothGrad's noise is seeded, so its differences at 25 vs 25
samples would be 0; at fewer samples they mix noise and truncation, as a user would see them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnaseq_saliency.evaluate import read_predictions
from rnaseq_saliency.expression import read_expression
from rnaseq_saliency.model import load_model
from rnaseq_saliency.saliency import attribute, correct_samples, rank_genes
from rnaseq_saliency.saliency_validation import spearman

ROOT = Path(__file__).resolve().parents[1]
IG_STEPS = (4, 8, 16, 32, 50)
SG_SAMPLES = (4, 8, 16, 25)
K = 20


def raw_attribution(network: torch.nn.Module, x: np.ndarray, target: int, steps: int) -> float:
    """Integrated gradients' completeness error, relative: Captum's own convergence delta."""
    from captum.attr import IntegratedGradients

    inputs = torch.from_numpy(x)
    targets = torch.full((len(x),), target, dtype=torch.long)
    with torch.enable_grad():
        _, delta = IntegratedGradients(network).attribute(
            inputs, baselines=0.0, target=targets, n_steps=steps, return_convergence_delta=True
        )
    with torch.no_grad():
        change = network(inputs)[:, target] - network(torch.zeros_like(inputs))[:, target]
    return float((delta.abs() / change.abs().clamp(min=1e-6)).median())


def tissue_inputs(workdir: Path, n_tissues: int) -> Iterator[tuple[Any, str, np.ndarray]]:
    model = load_model(workdir / "results/model")
    predictions = read_predictions(workdir / "results/evaluation/predictions.tsv")
    found = 0
    for tissue in model.tissues:
        ids, _, _ = correct_samples(predictions, tissue, "test")
        if len(ids) < 2:
            continue
        table = read_expression(workdir / f"results/expression/{tissue}.parquet")
        rows = [i for i, s in enumerate(table.sample_ids) if s in set(ids)]
        yield model, tissue, model.scale(table.matrix[rows])
        found += 1
        if found == n_tissues:
            return


def measure(workdir: Path, n_tissues: int) -> pd.DataFrame:
    records = []
    for model, tissue, x in tissue_inputs(workdir, n_tissues):
        target = list(model.tissues).index(tissue)
        settings = [("integrated_gradients", "n_steps", s) for s in IG_STEPS]
        settings += [("smoothgrad", "nt_samples", s) for s in SG_SAMPLES]
        means = {}
        for method, option, value in settings:
            extra = {"stdevs": 0.1} if method == "smoothgrad" else {"baseline": 0.0}
            start = time.perf_counter()
            maps = attribute(model.network, x, method=method, target=target, **{option: value},
                             **extra)  # fmt: skip
            means[(method, value)] = (maps.mean(axis=0), time.perf_counter() - start)
        for method, option, value in settings:
            reference = means[(method, max(v for m, _, v in settings if m == method))]
            mean, seconds = means[(method, value)]
            top, ref_top = set(rank_genes(mean)[:K]), set(rank_genes(reference[0])[:K])
            records.append({
                "tissue": tissue, "method": method, "setting": f"{option}={value}",
                "top20_overlap": len(top & ref_top) / K,
                "spearman": spearman(mean, reference[0]),
                "completeness_error": raw_attribution(model.network, x, target, value)
                if method == "integrated_gradients" else np.nan,
                "time_vs_reference": seconds / reference[1],
            })  # fmt: skip
    return pd.DataFrame(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", nargs="?", default=str(ROOT), type=Path)
    parser.add_argument("--tissues", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = measure(args.workdir, args.tissues)
    summary = table.groupby(["method", "setting"], sort=False).agg(
        top20_overlap_median=("top20_overlap", "median"),
        top20_overlap_min=("top20_overlap", "min"),
        spearman_median=("spearman", "median"),
        completeness_error_median=("completeness_error", "median"),
        time_vs_reference=("time_vs_reference", "median"),
    )
    print(
        f"# {table['tissue'].nunique()} tissues of {args.workdir}; reference: 50 steps, 25 samples"
    )
    print(summary.reset_index().to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
