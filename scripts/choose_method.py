"""Snakemake adapter for rule `choose_method`: gather the deletion curves, pick the method."""

from rnaseq_saliency.faithfulness import run_choose_method
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    run_choose_method(
        faithfulness_files=list(snakemake.input),
        methods=snakemake.params.settings.methods,
        method=snakemake.params.settings.method,
        faithfulness_path=snakemake.output.faithfulness,
        chosen_path=snakemake.output.chosen,
    )
