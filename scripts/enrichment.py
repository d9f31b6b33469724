"""Snakemake adapter for rule `enrichment`: GSEA prerank of each tissue's saliency ranking."""

from rnaseq_saliency.enrichment import run_enrichment
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    # gene_sets is one path or a list of them (saliency.gene_sets, `hpa` resolved).
    gene_sets = snakemake.input.gene_sets
    settings = snakemake.params.settings
    run_enrichment(
        mean_matrix_path=snakemake.input.mean_matrix,
        genes_path=snakemake.input.genes,
        gene_set_paths=[gene_sets] if isinstance(gene_sets, str) else list(gene_sets),
        tissues=list(snakemake.params.tissues.labels),
        out_paths=list(snakemake.output),
        permutations=settings.permutations,
        seed=settings.seed,
        threads=snakemake.threads,
    )
