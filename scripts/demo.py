"""Snakemake adapter for rule `demo`: write the bundled GTEx-shaped demo dataset."""

from pathlib import Path

from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    from rnaseq_saliency.demo import write_demo_dataset

    # write_demo_dataset() names its files as GTEx does; every output must sit in one directory.
    out_dir = Path(snakemake.output.attributes).parent
    for path in [*snakemake.output.gct, snakemake.output.gtf]:
        if Path(path).parent != out_dir:
            raise ValueError(f"rule demo: output {path} is not in {out_dir}, beside the attributes")

    write_demo_dataset(
        out_dir,
        **snakemake.params.settings._asdict(),
    )

    missing = [path for path in snakemake.output if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"rule demo: the demo writer did not produce {missing}")
