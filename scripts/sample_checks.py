"""Snakemake adapter for rule ``sample_checks``: fit the novelty and mixture checks beside the
model (real training samples; thresholds on the validation samples)."""

from pathlib import Path

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.sample_checks import run_fit

    run_fit(
        model_dir=Path(snakemake.input.model_json).parent,
        expression_files=list(snakemake.input.expression),
        samples_tsv=snakemake.input.samples,
        settings=snakemake.params.settings,
    )
