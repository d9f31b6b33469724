"""Snakemake adapter for rule `download`: fetch one GTEx file, verified, its sha256 beside it."""

import sys

from rnaseq_saliency.download import download
from rnaseq_saliency.logs import setup_logging

log = setup_logging(snakemake.log[0])

# download() writes the checksum to file + ".sha256"; the rule must name that same path.
if snakemake.output.checksum != snakemake.output.file + ".sha256":
    raise ValueError(
        f"rule download: output.checksum must be {snakemake.output.file}.sha256, "
        f"got {snakemake.output.checksum}"
    )

download(
    snakemake.params.url,
    snakemake.output.file,
    retries=snakemake.params.retries,
    backoff_seconds=snakemake.params.backoff_seconds,
    timeout_seconds=snakemake.params.timeout_seconds,
    # A bar redrawn with carriage returns helps at a terminal and floods a CI log.
    progress=sys.stderr.isatty(),
)
