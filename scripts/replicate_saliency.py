"""Snakemake adapter for rule `replicate_saliency`: one replicate model's maps of one tissue by
the chosen method."""

import os

from rnaseq_saliency.consensus import run_replicate_saliency
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    run_replicate_saliency(
        model_dir=os.path.dirname(snakemake.input.weights),
        predictions_path=snakemake.input.predictions,
        expression_path=snakemake.input.expression,
        chosen_path=snakemake.input.chosen,
        out_path=snakemake.output[0],
        tissue=snakemake.params.tissue,
        replicate=int(snakemake.params.replicate),
        settings=snakemake.params.settings,
        # Many per-tissue jobs run side by side: each uses the cores Snakemake gave it, no more.
        threads=snakemake.threads,
    )
