"""Snakemake adapter for rule `top_genes`: every tissue's genes ranked by the chosen method."""

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.saliency import run_top_genes

with rule_log(snakemake) as log:
    run_top_genes(
        maps_files=list(snakemake.input.maps),
        tissues=list(snakemake.params.tissues.labels),
        chosen_path=snakemake.input.chosen,
        genes_path=snakemake.input.genes,
        top_genes_path=snakemake.output.top_genes,
        mean_matrix_path=snakemake.output.mean_matrix,
        replicate_files=list(snakemake.input.replicates),
    )
