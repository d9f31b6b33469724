"""Snakemake adapter for rule sweep_summary: rank the runs by validation macro-F1."""

from rnaseq_saliency.logs import setup_logging

log = setup_logging(snakemake.log[0])

from rnaseq_saliency.sweep import write_summary  # noqa: E402  (after logging is set up)

write_summary(
    validation_files=list(snakemake.input),
    base_config=dict(snakemake.params.base_config),
    summary_tsv=snakemake.output.summary,
    best_config_yaml=snakemake.output.best_config,
)
