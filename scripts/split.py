"""Snakemake adapter for rule split: train/val/test per sample, stratified by tissue, by donor."""

from rnaseq_saliency.logs import setup_logging
from rnaseq_saliency.split import write_split

log = setup_logging(snakemake.log[0])
try:
    write_split(
        snakemake.input.expression,
        list(snakemake.params.tissues.labels),
        snakemake.output.samples,
        snakemake.output.summary,
        **snakemake.params.settings._asdict(),
    )
except Exception:
    log.exception("rule split failed")
    raise
