"""Snakemake adapter for rule split: train/val/test per sample, stratified by tissue, by donor."""

from rnaseq_saliency.logs import setup_logging
from rnaseq_saliency.split import write_split

log = setup_logging(snakemake.log[0])
try:
    write_split(
        snakemake.input.expression,
        snakemake.params.tissues,
        snakemake.output.samples,
        snakemake.output.summary,
        test_fraction=snakemake.params.test_fraction,
        val_fraction=snakemake.params.val_fraction,
        group_by=snakemake.params.group_by,
        seed=snakemake.params.seed,
    )
except Exception:
    log.exception("rule split failed")
    raise
