"""Snakemake adapter for rule ``ingest_matrix``: GTEx's whole-matrix GCT -> per-tissue Parquet."""

from rnaseq_saliency.ingest import ingest_matrix
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    ingest_matrix(
        gct_path=snakemake.input.gct,
        attributes_path=snakemake.input.attributes,
        genes_tsv=snakemake.input.genes,
        out_paths=dict(zip(snakemake.params.tissues.labels, snakemake.output, strict=True)),
        threads=snakemake.threads,
    )
