"""Snakemake adapter for rule `saliency`: one tissue's maps by every method, and their
deletion curves."""

import os

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.saliency import run_tissue_saliency

with rule_log(snakemake) as log:
    methods = snakemake.params.settings.methods
    run_tissue_saliency(
        model_dir=os.path.dirname(snakemake.input.weights),
        predictions_path=snakemake.input.predictions,
        expression_path=snakemake.input.expression,
        de_path=snakemake.input.de_statistic,
        # The maps output is expanded over saliency.methods, in that order.
        maps_paths=dict(zip(methods, snakemake.output.maps, strict=True)),
        faithfulness_path=snakemake.output.faithfulness,
        tissue=snakemake.params.tissue,
        settings=snakemake.params.settings,
        # Many per-tissue jobs run side by side: each uses the cores Snakemake gave it, no more.
        threads=snakemake.threads,
    )
