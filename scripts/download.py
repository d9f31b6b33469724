"""Snakemake adapter for rule `download`: fetch one GTEx file, verified, its sha256 beside it."""

import sys

from rnaseq_saliency.download import download
from rnaseq_saliency.gtex import file_url
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    # download() writes the checksum to file + ".sha256"; the rule must name that same path.
    if snakemake.output.checksum != snakemake.output.file + ".sha256":
        raise ValueError(
            f"rule download: output.checksum must be {snakemake.output.file}.sha256, "
            f"got {snakemake.output.checksum}"
        )

    # Read at run time, not as params: the mirror and the retry policy change no file, so editing
    # them must not fetch anything again (rnaseq_saliency.settings.RUNTIME_KEYS).
    data = snakemake.config["data"]
    download(
        file_url(data["base_url"], snakemake.wildcards.release, snakemake.wildcards.filename),
        snakemake.output.file,
        retries=data["download"]["retries"],
        backoff_seconds=data["download"]["backoff_seconds"],
        timeout_seconds=data["download"]["timeout_seconds"],
        # A bar redrawn with carriage returns helps at a terminal and floods a CI log.
        progress=sys.stderr.isatty(),
    )
