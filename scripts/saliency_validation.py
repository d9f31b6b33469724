"""Snakemake adapter for rule `saliency_validation`: do the maps agree with biology and model?"""

import os

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.saliency_validation import run_validation

with rule_log(snakemake) as log:
    # marker_sets is an empty input list when saliency.marker_sets is null, else one path.
    markers = snakemake.input.marker_sets
    markers = [markers] if isinstance(markers, str) else list(markers)
    run_validation(
        saliency_files=list(snakemake.input.saliency),
        # The saliency files are expanded over the configured tissues, named after them.
        tissues=[os.path.basename(p).removesuffix(".parquet") for p in snakemake.input.saliency],
        model_dir=os.path.dirname(snakemake.input.weights),
        predictions_path=snakemake.input.predictions,
        expression_files=list(snakemake.input.expression),
        samples_path=snakemake.input.samples,
        genes_path=snakemake.input.genes,
        marker_sets_path=markers[0] if markers else None,
        out_path=snakemake.output[0],
        top_k_genes=snakemake.params.settings.top_k,
        method=snakemake.params.settings.method,
        abs=snakemake.params.settings.abs,
        seed=snakemake.params.settings.seed,
        batch_size=snakemake.params.settings.batch_size,
    )
