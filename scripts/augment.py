"""Snakemake adapter for rule augment: one tissue's training samples plus synthetic ones."""

from rnaseq_saliency.augment import augment_file
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    augment_file(
        snakemake.input.expression,
        snakemake.input.samples,
        snakemake.params.tissue,
        snakemake.output[0],
        **snakemake.params.settings._asdict(),
    )
