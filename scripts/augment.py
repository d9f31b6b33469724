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
        **snakemake.params.settings._asdict(),
    )
except Exception:
    log.exception("rule augment failed for tissue %s", snakemake.params.tissue)
    raise
