"""Snakemake adapter for rule split: train/val/test per sample, stratified by tissue, by donor."""

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.split import write_split

with rule_log(snakemake) as log:
    write_split(
        snakemake.input.expression,
        list(snakemake.params.tissues.labels),
        snakemake.output.samples,
        snakemake.output.summary,
        **snakemake.params.settings._asdict(),
    )
