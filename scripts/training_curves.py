"""Snakemake adapter for rule ``training_curves``."""

from rnaseq_saliency.figures_training import plot_training_curves
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    plot_training_curves(snakemake.input[0], snakemake.output[0])
    log.info("wrote %s", snakemake.output[0])
