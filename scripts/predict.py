"""Snakemake adapter for rule `predict`: classify new samples and explain each call."""

from pathlib import Path

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.predict import run_predict

with rule_log(snakemake) as log:
    run_predict(
        model_dir=Path(snakemake.input.weights).parent,
        # Empty when config key predict.input is not set: run_predict says so.
        input_path=snakemake.input.expression or None,
        predictions_path=snakemake.output.predictions,
        top_genes_path=snakemake.output.top_genes,
        figures_dir=snakemake.output.figures,
        **snakemake.params.settings._asdict(),
        method=snakemake.input.chosen,
        saliency=snakemake.params.saliency,
        threads=snakemake.threads,
    )
