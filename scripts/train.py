"""Snakemake adapter for rule ``train``: see rnaseq_saliency.training.train_from_files."""

from rnaseq_saliency.logs import setup_logging

log = setup_logging(snakemake.log[0])

from rnaseq_saliency.training import train_from_files  # noqa: E402  (after logging is set up)

train_from_files(
    augmented=list(snakemake.input.augmented),
    expression=list(snakemake.input.expression),
    samples_path=snakemake.input.samples,
    genes_path=snakemake.input.genes,
    weights_path=snakemake.output.weights,
    model_json_path=snakemake.output.model_json,
    history_path=snakemake.output.history,
    tensorboard_dir=snakemake.output.tensorboard,
    model_cfg=dict(snakemake.params.model),
    train_cfg=dict(snakemake.params.train),
    run_config=dict(snakemake.params.run_config),
    threads=snakemake.threads,
)
