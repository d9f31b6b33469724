"""Snakemake adapter for rule `saliency_methods`: every saliency method side by side."""

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.method_comparison import run_saliency_methods

with rule_log(snakemake) as log:
    run_saliency_methods(
        faithfulness_path=snakemake.input.faithfulness,
        validation_path=snakemake.input.validation,
        chosen_path=snakemake.input.chosen,
        maps_files=list(snakemake.input.maps),
        tissues=list(snakemake.params.tissues.labels),
        genes_path=snakemake.input.genes,
        top_n=snakemake.params.settings.top_n,
        out_tsv=snakemake.output.table,
        out_png=snakemake.output.figure,
        out_top_genes=snakemake.output.top_genes,
    )
