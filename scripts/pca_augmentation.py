"""Snakemake adapter for rule pca_augmentation: PCA of real vs synthetic training samples."""

from rnaseq_saliency.figures_augmentation import plot_pca_augmentation
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    plot_pca_augmentation(
        snakemake.input.augmented,
        list(snakemake.params.settings.tissues),
        snakemake.params.settings.method,
        snakemake.output[0],
    )
