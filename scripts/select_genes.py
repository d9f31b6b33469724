"""Snakemake adapter for rule ``select_genes``: apply data.input_filter to the release's GTF."""

from rnaseq_saliency.genes import run_select_genes
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    run_select_genes(
        snakemake.input.gtf,
        snakemake.params.settings.input_filter,
        # Empty unless data.input_filter names an id list.
        id_list_paths=list(snakemake.input.id_list),
        out_path=snakemake.output[0],
    )
