"""Snakemake adapter for rule ``ensemble``: see rnaseq_saliency.ensemble.ensemble_rule."""

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.ensemble import ensemble_rule

    ensemble_rule(
        member_jsons=[path for path in snakemake.input.members if path.endswith(".json")],
        expression=list(snakemake.input.expression),
        samples_path=snakemake.input.samples,
        out_path=snakemake.output[0],
        threads=snakemake.threads,
    )
