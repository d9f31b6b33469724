"""Snakemake adapter for rule ``select_genes``: apply data.input_filter to the release's GTF."""

from rnaseq_saliency.genes import select_genes, write_selected_genes
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    id_lists = list(snakemake.input.id_list)  # empty unless data.input_filter names an id list
    genes, report = select_genes(
        snakemake.input.gtf,
        snakemake.params.settings.input_filter,
        id_list_path=id_lists[0] if id_lists else None,
    )
    write_selected_genes(genes, snakemake.output[0])
    log.info("wrote %d genes to %s", len(genes), snakemake.output[0])
