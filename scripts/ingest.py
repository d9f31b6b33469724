"""Snakemake adapter for rule ``ingest``: one per-tissue GCT file -> expression Parquet."""

from rnaseq_saliency.ingest import ingest_tissue
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    ingest_tissue(
        gct_path=snakemake.input.gct,
        attributes_path=snakemake.input.attributes,
        genes_tsv=snakemake.input.genes,
        tissue=snakemake.params.tissue,
        out_path=snakemake.output[0],
        threads=snakemake.threads,
    )
