"""Snakemake adapter for rule `replicate_stability`: each tissue's ranking across replicates."""

from rnaseq_saliency.consensus import run_replicate_stability
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    run_replicate_stability(
        top_genes_path=snakemake.input[0],
        tissues=list(snakemake.params.tissues.labels),
        top_n=snakemake.params.settings.top_n,
        table_path=snakemake.output.table,
        figure_path=snakemake.output.figure,
    )
