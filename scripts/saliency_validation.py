"""Snakemake adapter for rule `saliency_validation`: do the maps agree with biology and model?"""

import os

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.saliency_validation import run_validation

with rule_log(snakemake) as log:
    # marker_sets is an empty input list when saliency.marker_sets is null, else one path.
    markers = snakemake.input.marker_sets
    markers = [markers] if isinstance(markers, str) else list(markers)
    settings = snakemake.params.settings
    run_validation(
        maps_files=list(snakemake.input.maps),
        tissues=list(snakemake.params.tissues.labels),
        model_dir=os.path.dirname(snakemake.input.weights),
        predictions_path=snakemake.input.predictions,
        expression_files=list(snakemake.input.expression),
        de_path=snakemake.input.de_statistic,
        genes_path=snakemake.input.genes,
        marker_sets_path=markers[0] if markers else None,
        out_path=snakemake.output[0],
        top_k_genes=settings.top_k,
        seed=settings.seed,
        batch_size=settings.batch_size,
    )
