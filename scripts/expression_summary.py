"""Snakemake adapter for rule ``expression_summary``: every attributes row kept or ignored, why."""

from rnaseq_saliency.ingest import summarise_expression
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    summarise_expression(
        attributes_path=snakemake.input.attributes,
        expression_paths=dict(
            zip(snakemake.params.tissues.labels, snakemake.input.expression, strict=True)
        ),
        out_path=snakemake.output[0],
    )
