"""Snakemake adapter for rule sweep_validate: one sweep run's validation metrics."""

from pathlib import Path

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.sweep import write_run_validation

    write_run_validation(
        model_dir=Path(snakemake.input.weights).parent,
        expression_files=list(snakemake.input.expression),
        samples_tsv=snakemake.input.samples,
        run=snakemake.params.run,
        combination=dict(snakemake.params.combination),
        out_json=snakemake.output[0],
    )
