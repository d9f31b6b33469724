"""Snakemake adapter for rule `saliency_heatmap`: one tissue's top genes across all tissues."""

from rnaseq_saliency.figures_saliency import run_tissue_heatmap
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    run_tissue_heatmap(
        top_genes_path=snakemake.input.top_genes,
        mean_matrix_path=snakemake.input.mean_matrix,
        tissue=snakemake.params.tissue,
        top_n=snakemake.params.settings.top_n,
        out_png=snakemake.output[0],
    )
