"""Snakemake adapter for rule ``ingest``: one per-tissue GCT file -> expression Parquet."""

from rnaseq_saliency.ingest import ingest_tissue
from rnaseq_saliency.logs import setup_logging

log = setup_logging(snakemake.log[0])
ingest_tissue(
    gct_path=snakemake.input.gct,
    attributes_path=snakemake.input.attributes,
    genes_tsv=snakemake.input.genes,
    tissue=snakemake.params.tissue,
    out_path=snakemake.output[0],
    threads=snakemake.threads,
)
