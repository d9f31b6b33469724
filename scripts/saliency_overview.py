"""Snakemake adapter for rule `saliency_overview`: all tissues' top genes in one figure."""

from rnaseq_saliency.figures_saliency import run_overview
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    run_overview(
        top_genes_path=snakemake.input.top_genes,
        mean_matrix_path=snakemake.input.mean_matrix,
        top_n=snakemake.params.settings.top_n,
        out_png=snakemake.output[0],
    )
