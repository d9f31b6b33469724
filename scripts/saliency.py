"""Snakemake adapter for rule `saliency`: one tissue's maps of its correctly classified samples."""

import os

from rnaseq_saliency.logs import rule_log
from rnaseq_saliency.saliency import run_tissue_saliency

with rule_log(snakemake) as log:
    run_tissue_saliency(
        model_dir=os.path.dirname(snakemake.input.weights),
        predictions_path=snakemake.input.predictions,
        expression_path=snakemake.input.expression,
        out_path=snakemake.output[0],
        tissue=snakemake.params.tissue,
        settings=snakemake.params.settings,
        # Many per-tissue jobs run side by side: each uses the cores Snakemake gave it, no more.
        threads=snakemake.threads,
    )
