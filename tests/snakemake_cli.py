"""How the tests run the real workflow: one Snakemake command line, environment and runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

# One thread per BLAS pool, so that runs with the same --cores compute the same numbers.
SNAKEMAKE_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def snakemake_command(
    workdir: Path, *args: str, configfile: str | Path = "config.yaml", cores: int | None = 2
) -> list[str]:
    """Snakemake on this repository's Snakefile in ``workdir`` with ``workdir / configfile``
    (an absolute ``configfile`` is used as it is); ``cores=None`` leaves them to a profile."""
    command = [
        str(SNAKEMAKE),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / configfile),
    ]
    if cores is not None:
        command += ["--cores", str(cores)]
    return [*command, *args]


def run_snakemake(
    workdir: Path,
    *args: str,
    configfile: str | Path = "config.yaml",
    check: bool = True,
    timeout: float = 1200,
) -> subprocess.CompletedProcess:
    """Run ``snakemake_command`` to the end; with ``check``, a failure shows both output tails."""
    result = subprocess.run(
        snakemake_command(workdir, *args, configfile=configfile),
        capture_output=True,
        text=True,
        env=SNAKEMAKE_ENV,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result
