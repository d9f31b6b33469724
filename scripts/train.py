"""Snakemake adapter for rules ``train`` and ``train_replicate``: see
rnaseq_saliency.training.train_rule."""

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.training import train_rule

    train_rule(
        snakemake.params.settings,
        augmented=list(snakemake.input.augmented),
        expression=list(snakemake.input.expression),
        samples_path=snakemake.input.samples,
        genes_path=snakemake.input.genes,
        weights_path=snakemake.output.weights,
        model_json_path=snakemake.output.model_json,
        history_path=snakemake.output.history,
        # A sweep run names its own TensorBoard directory (its Paramspace path).
        tensorboard_dir=getattr(snakemake.output, "tensorboard", None),
        threads=snakemake.threads,
        # Rule train_replicate: replicate r >= 1 (seed train.seed + r); rule train is replicate 0.
        replicate=int(getattr(snakemake.params, "replicate", 0)),
    )
