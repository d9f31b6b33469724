"""Snakemake adapter for rule sweep_evaluate_best: the test-set evaluation of the best run only."""

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.evaluate import OUTPUT_KEYS
    from rnaseq_saliency.sweep import evaluate_best_run

    evaluate_best_run(
        summary_tsv=snakemake.input.summary,
        runs=dict(snakemake.params.runs),
        expression_files=list(snakemake.input.expression),
        samples_tsv=snakemake.input.samples,
        outputs={key: getattr(snakemake.output, key) for key in OUTPUT_KEYS},
        test_opt=int(snakemake.params.test_opt),
        seed=int(snakemake.params.seed),
        threads=snakemake.threads,
    )
