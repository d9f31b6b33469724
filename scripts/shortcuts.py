"""Snakemake adapter for rule `shortcuts`: are each tissue's top genes sex, chrM, ribosomal or
histone genes, or tied to donor sex, age, RIN, ischemic time or batch?"""

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.shortcuts import run_shortcuts

with rule_log(snakemake) as log:
    settings = snakemake.params.settings
    run_shortcuts(
        mean_matrix_path=snakemake.input.mean_matrix,
        genes_path=snakemake.input.genes,
        gtf_path=snakemake.input.gtf,
        samples_path=snakemake.input.samples,
        expression_files=list(snakemake.input.expression),
        tissues=list(snakemake.params.tissues.labels),
        attributes_path=snakemake.input.attributes,
        subjects_path=snakemake.input.subjects,
        top_k=settings.top_k,
        max_share=settings.max_share,
        out_path=snakemake.output.table,
        figure_path=snakemake.output.figure,
    )
