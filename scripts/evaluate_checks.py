"""Snakemake adapter for rule ``evaluate_checks``: the sample checks on the held-out samples and
on synthetic mixtures of held-out test samples."""

from pathlib import Path

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.evaluate_checks import run_evaluate_checks

    run_evaluate_checks(
        model_dir=Path(snakemake.input.model_json).parent,
        expression_files=list(snakemake.input.expression),
        samples_tsv=snakemake.input.samples,
        held_out_path=snakemake.output.held_out,
        table_path=snakemake.output.table,
        figure_path=snakemake.output.figure,
        settings=snakemake.params.settings,
        threads=snakemake.threads,
    )
