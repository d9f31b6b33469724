"""Logging set-up shared by the Snakemake script adapters."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any


def setup_logging(log_path: str | os.PathLike[str] | None = None) -> logging.Logger:
    """Send the package's log records to ``log_path`` (the rule's log file) and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        os.makedirs(os.path.dirname(os.fspath(log_path)) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    return logging.getLogger("rnaseq_saliency")


@contextlib.contextmanager
def rule_log(snakemake: Any) -> Iterator[logging.Logger]:
    """Run a Snakemake script adapter's body with the package's log in the rule's log file.

    An exception is written to that log, its traceback and then a last line naming the rule and
    the error, and raised again for Snakemake: so ``logs/`` says why a job failed, not only the
    job's stderr (which a cluster keeps elsewhere, if at all).
    """
    log = setup_logging(snakemake.log[0])
    try:
        yield log
    except Exception as err:
        rule = getattr(snakemake, "rule", None) or "job"
        log.error("rule %s failed", rule, exc_info=True)
        log.error("rule %s failed: %s: %s", rule, type(err).__name__, err)
        raise
