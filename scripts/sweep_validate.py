"""Snakemake adapter for rule sweep_validate: one sweep run's validation metrics."""

from pathlib import Path

from rnaseq_saliency.logs import setup_logging

log = setup_logging(snakemake.log[0])

from rnaseq_saliency.sweep import write_validation  # noqa: E402  (after logging is set up)

write_validation(
    model_dir=Path(snakemake.input.weights).parent,
    expression_files=list(snakemake.input.expression),
    samples_tsv=snakemake.input.samples,
    run=snakemake.params.run,
    combination=dict(snakemake.params.combination),
    out_json=snakemake.output[0],
)
