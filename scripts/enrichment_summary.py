"""Snakemake adapter for rule `enrichment_summary`: the tissues x top gene sets figure."""

from rnaseq_saliency.enrichment import run_enrichment_summary
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    run_enrichment_summary(
        table_paths=list(snakemake.input),
        tissues=list(snakemake.params.tissues.labels),
        out_png=snakemake.output[0],
    )
