"""Snakemake adapter for rule `de_statistic`: one-vs-rest t statistics on the training split."""

from rnaseq_saliency.differential import run_de_statistic
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    run_de_statistic(
        expression_files=list(snakemake.input.expression),
        samples_path=snakemake.input.samples,
        genes_path=snakemake.input.genes,
        tissues=list(snakemake.params.tissues.labels),
        out_path=snakemake.output[0],
    )
