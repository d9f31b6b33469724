"""Snakemake adapter for rule augment: one tissue's training samples plus synthetic ones."""

from rnaseq_saliency.augment import augment_file
from rnaseq_saliency.logs import setup_logging

log = setup_logging(snakemake.log[0])
try:
    augment_file(
        snakemake.input.expression,
        snakemake.input.samples,
        snakemake.params.tissue,
        snakemake.output[0],
        method=snakemake.params.method,
        min_samples=snakemake.params.min_samples,
        noise_sigma=snakemake.params.noise_sigma,
        smote_k_neighbors=snakemake.params.smote_k_neighbors,
        seed=snakemake.params.seed,
    )
except Exception:
    log.exception("rule augment failed for tissue %s", snakemake.params.tissue)
    raise
