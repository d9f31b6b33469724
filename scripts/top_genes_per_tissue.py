"""Snakemake adapter for rule `top_genes_per_tissue`: each tissue's saliency.top_n genes."""

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.saliency import run_top_genes_per_tissue

with rule_log(snakemake) as log:
    run_top_genes_per_tissue(
        top_genes_path=snakemake.input[0],
        top_n=snakemake.params.settings.top_n,
        out_path=snakemake.output[0],
    )
