"""Snakemake adapter for rule ``evaluate``: score held-out samples, write reports and baseline."""

from pathlib import Path

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.evaluate import OUTPUT_KEYS, run_evaluation

    run_evaluation(
        model_dir=Path(snakemake.input.weights).parent,
        augmented_files=list(snakemake.input.augmented),
        expression_files=list(snakemake.input.expression),
        samples_tsv=snakemake.input.samples,
        outputs={key: getattr(snakemake.output, key) for key in OUTPUT_KEYS},
        # 1 and 2 score the same split; 2 only adds the report to the log, read at run time so that
        # editing it reruns nothing (rnaseq_saliency.settings.RUNTIME_KEYS).
        test_opt=snakemake.params.settings.test_opt(snakemake.config),
        seed=snakemake.params.settings.seed,
        threads=snakemake.threads,
    )
