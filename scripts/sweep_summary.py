"""Snakemake adapter for rule sweep_summary: rank the runs by validation macro-F1."""

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.sweep import write_summary

    write_summary(
        validation_files=list(snakemake.input),
        base_config=dict(snakemake.params.base_config),
        summary_tsv=snakemake.output.summary,
        best_config_yaml=snakemake.output.best_config,
    )
