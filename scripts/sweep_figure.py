"""Snakemake adapter for rule sweep_figure: validation macro-F1 per parameter value."""

from rnaseq_saliency.logs import setup_logging

log = setup_logging(snakemake.log[0])

from rnaseq_saliency.sweep import plot_sweep  # noqa: E402  (after logging is set up)

plot_sweep(snakemake.input[0], dict(snakemake.params.order), snakemake.output[0])
