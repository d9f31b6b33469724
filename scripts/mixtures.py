"""Snakemake adapter for rule ``mixtures``: the sample checks on synthetic mixtures of held-out
test samples."""

from pathlib import Path

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.mixture_evaluation import run_mixtures

    run_mixtures(
        model_dir=Path(snakemake.input.model_json).parent,
        expression_files=list(snakemake.input.expression),
        samples_tsv=snakemake.input.samples,
        table_path=snakemake.output.table,
        figure_path=snakemake.output.figure,
        settings=snakemake.params.settings,
        threads=snakemake.threads,
    )
