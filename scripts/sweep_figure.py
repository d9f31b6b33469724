"""Snakemake adapter for rule sweep_figure: validation macro-F1 per parameter value."""

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.sweep import plot_sweep

    plot_sweep(snakemake.input[0], dict(snakemake.params.order), snakemake.output[0])
