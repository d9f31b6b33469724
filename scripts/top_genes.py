"""Snakemake adapter for rule `top_genes`: every tissue's genes ranked by mean saliency."""

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.saliency import run_top_genes

with rule_log(snakemake) as log:
    run_top_genes(
        saliency_files=list(snakemake.input.saliency),
        tissues=list(snakemake.params.tissues.labels),
        genes_path=snakemake.input.genes,
        top_genes_path=snakemake.output.top_genes,
        mean_matrix_path=snakemake.output.mean_matrix,
    )
