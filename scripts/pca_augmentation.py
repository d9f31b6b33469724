"""Snakemake adapter for rule pca_augmentation: PCA of real vs synthetic training samples."""

from rnaseq_saliency.figures_augmentation import plot_pca_augmentation
from rnaseq_saliency.logs import setup_logging

log = setup_logging(snakemake.log[0])
try:
    plot_pca_augmentation(
        snakemake.input.augmented,
        list(snakemake.params.settings.tissues),
        snakemake.params.settings.method,
        snakemake.output[0],
    )
except Exception:
    log.exception("rule pca_augmentation failed")
    raise
