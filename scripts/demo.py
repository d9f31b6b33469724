"""Snakemake adapter for rule `demo`: write the bundled GTEx-shaped demo dataset."""

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.demo import write_demo_outputs

    write_demo_outputs(list(snakemake.output), **snakemake.params.settings._asdict())
