"""Issue 19's measurements on a finished demo run: novelty, mixtures, calibration, predict speed.

Usage: .venv/bin/python bench/sample_checks.py [WORKDIR] [--threads 2] [--n-samples 1000]

WORKDIR (default: the repository) must hold a run with ``results/evaluation/summary.json``,
``predictions.tsv``, ``sample_checks.tsv`` and ``mixtures.tsv`` and the model with its sample checks
(``results/model/sample_checks.json``), e.g. after
``snakemake --cores 2 results/evaluation/summary.json results/evaluation/mixtures.tsv``.

Prints two tables:

1. each "Done when" target of issue 19 with the measured value: 10 log-normal noise profiles,
   a flat profile (every gene 10 TPM) and 5 gene-shuffled test samples flagged novel; the clean
   test samples flagged novel and possible_mixture (sample_checks.tsv); the 10%
   mixtures flagged and their fraction error (mixtures.tsv); the test NLL before and after
   temperature scaling (summary.json) and the wrongly called test samples' median calibrated
   probability (predictions.tsv);
2. the wall time of ``rnaseq_saliency.predict.run_predict`` on N samples (test samples drawn
   with replacement, written as a TSV), torch and BLAS held to ``--threads``, without figures,
   then of the per-sample figures of 100 of them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def novelty_targets(workdir: Path, checks, test) -> list[tuple[str, str, str]]:
    from rnaseq_saliency.sample_checks import check_samples

    rng = np.random.default_rng(0)
    n_genes = test.matrix.shape[1]
    odd = {
        "10 log-normal noise profiles": rng.lognormal(1.0, 2.0, (10, n_genes)),
        "a flat profile (10 TPM)": np.full((1, n_genes), 10.0),
        "5 gene-shuffled test samples": np.stack(
            [rng.permutation(test.matrix[i]) for i in rng.choice(len(test.matrix), 5)]
        ),
    }
    rows = []
    for what, raw in odd.items():
        table = check_samples(checks, raw.astype(np.float32), [checks.tissues[0]] * len(raw))
        rows.append((f"{what} flagged novel", "all", f"{int(table['novel'].sum())}/{len(raw)}"))
    return rows


def evaluation_targets(workdir: Path) -> list[tuple[str, str, str]]:
    evaluation = workdir / "results/evaluation"
    from rnaseq_saliency.evaluate import read_predictions
    from rnaseq_saliency.evaluate_checks import read_held_out

    held_out = read_held_out(evaluation / "sample_checks.tsv")
    novel = held_out.loc[held_out["split"] == "test", "novel"]
    mixture = held_out.loc[held_out["split"] == "test", "possible_mixture"]
    predictions = read_predictions(evaluation / "predictions.tsv")
    test = predictions.loc[predictions["split"] == "test"]
    mixtures = pd.read_csv(evaluation / "mixtures.tsv", sep="\t").set_index("minor_fraction")
    ten = mixtures.loc[0.1]
    summary = json.loads((evaluation / "summary.json").read_text())
    calibration = summary.get("calibration", {})
    nan = float("nan")
    nll = (
        f"{calibration.get('nll_before', nan):.4f} -> {calibration.get('nll_after', nan):.4f} "
        f"(T = {calibration.get('temperature', nan):.3g})"
    )
    wrong = test.loc[~test["correct"], "probability"].astype(float)
    return [
        ("clean test samples flagged novel", "<= 3%", f"{100 * novel.mean():.1f}% of {len(test)}"),
        ("clean test samples flagged possible_mixture", "<= 5%", f"{100 * mixture.mean():.1f}%"),
        (
            "10% mixtures flagged",
            ">= 90%",
            f"{100 * ten['flagged_rate']:.1f}% of {ten['n_samples']:.0f} pairs",
        ),
        (
            "10% mixtures: mean |error| of the fraction",
            "<= 5 points",
            f"{100 * ten['mean_abs_error']:.1f} points",
        ),
        (
            "test NLL before -> after temperature scaling",
            "lower after",
            nll,
        ),
        (
            "wrongly called test samples: median calibrated probability",
            "< 0.8",
            f"{wrong.median():.3f} (n = {len(wrong)})",
        ),
    ]


def time_predict(workdir: Path, test, n_samples: int, threads: int) -> list[tuple[str, str]]:
    import torch
    from threadpoolctl import threadpool_limits

    from rnaseq_saliency.predict import run_predict

    torch.set_num_threads(threads)
    rng = np.random.default_rng(1)
    rows = rng.choice(len(test.matrix), n_samples)
    timings = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=threads):
        from rnaseq_saliency.sample_checks import check_samples, read_sample_checks

        checks = read_sample_checks(workdir / "results/model")
        start = time.perf_counter()
        check_samples(checks, test.matrix[rows], [checks.tissues[0]] * n_samples)
        elapsed = time.perf_counter() - start
        timings.append((f"sample checks alone, {n_samples} samples", f"{elapsed:.1f} s"))
        out = Path(tmp)
        matrix = pd.DataFrame(
            test.matrix[rows].T, index=test.gene_ids, columns=[f"S{i}" for i in range(n_samples)]
        )
        matrix.index.name = "gene_id"
        matrix.to_csv(out / "input.tsv", sep="\t")
        for figures, n in ((False, n_samples), (True, 100)):
            path = out / "input.tsv"
            if figures:
                matrix.iloc[:, :n].to_csv(out / "small.tsv", sep="\t")
                path = out / "small.tsv"
            start = time.perf_counter()
            run_predict(
                workdir / "results/model",
                path,
                out / "predictions.tsv",
                out / "top.tsv",
                out / "figures",
                threads=threads,
                figures=figures,
            )
            timings.append(
                (
                    f"predict, {n} samples, {'with' if figures else 'without'} figures",
                    f"{time.perf_counter() - start:.1f} s",
                )
            )
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", type=Path, default=ROOT)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-samples", type=int, default=1000)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    from rnaseq_saliency.datasets import load_split_rows, read_samples
    from rnaseq_saliency.sample_checks import read_sample_checks

    workdir = args.workdir.resolve()
    checks = read_sample_checks(workdir / "results/model")
    expression = sorted((workdir / "results/expression").glob("*.parquet"))
    test = load_split_rows(expression, read_samples(workdir / "results/split/samples.tsv"), "test")
    targets = novelty_targets(workdir, checks, test) + evaluation_targets(workdir)
    print(pd.DataFrame(targets, columns=["target", "wanted", "measured"]).to_string(index=False))
    print()
    timings = time_predict(workdir, test, args.n_samples, args.threads)
    print(pd.DataFrame(timings, columns=["run", "wall time"]).to_string(index=False))


if __name__ == "__main__":
    main()
