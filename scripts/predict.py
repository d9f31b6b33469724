"""Snakemake adapter for rule `predict`: classify new samples and explain each call."""

from pathlib import Path

from rnaseq_saliency.logs import setup_logging
from rnaseq_saliency.predict import run_predict

log = setup_logging(snakemake.log[0])

run_predict(
    model_dir=Path(snakemake.input.weights).parent,
    # Empty when config key predict.input is not set: run_predict says so.
    input_path=snakemake.input.expression or None,
    predictions_path=snakemake.output.predictions,
    top_genes_path=snakemake.output.top_genes,
    figures_dir=snakemake.output.figures,
    top_n=snakemake.params.top_n,
    method=snakemake.params.method,
    abs=snakemake.params.abs,
    max_missing_fraction=snakemake.params.max_missing_fraction,
    batch_size=snakemake.params.batch_size,
    ig_steps=snakemake.params.ig_steps,
    smoothgrad_samples=snakemake.params.smoothgrad_samples,
    smoothgrad_stdev=snakemake.params.smoothgrad_stdev,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
