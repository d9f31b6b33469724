"""The workflow on a real SLURM cluster through profiles/slurm, against a local run.

tools/slurm/start.sh starts a one-node cluster on this machine (Debian's slurm-wlm and munge,
installed when missing); the workflow then runs on a small slice of the demo data with
`--workflow-profile profiles/slurm` and Snakemake's SLURM executor plugin, every job going
through sbatch. A second, local run of the same configuration gives the outputs to compare.

The user-facing profile stays as it is for a real cluster. The test overrides only what a
one-node cluster without accounting needs: job states come from squeue (the plugin's default,
sacct, has no database to ask and waits forever), status checks start after 2 s instead of 40,
successful jobs keep their SLURM logs (the proof that they ran there), and thread and memory
requests shrink to what the one node has.

Needs root (it starts daemons). Marked `slurm`: deselect with `pytest -m "not slurm"`. Without
root, or where the packages cannot be installed, the tests skip, except under CI=true, where
they fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake_cli import SNAKEMAKE_ENV, snakemake_command

REPO = Path(__file__).resolve().parents[1]
START = REPO / "tools/slurm/start.sh"
STOP = REPO / "tools/slurm/stop.sh"
PROFILE = REPO / "profiles/slurm"
STATE = Path(os.environ.get("RNASEQ_SALIENCY_SLURM_STATE", "/tmp/rnaseq-saliency-slurm"))
# start.sh: 3 not root, 4 packages missing and not installable, 5 the machine has a SLURM
# configuration of its own. Reasons to skip on a developer's machine, not to fail.
START_SKIP_CODES = {3: "not root", 4: "slurm-wlm/munge not installable", 5: "foreign SLURM"}
# Seconds for the whole workflow on the cluster before `timeout` ends it (SIGKILL 10 s after
# SIGTERM: a Snakemake stuck on status checks ignores SIGTERM).
CLUSTER_RUN_TIMEOUT = 1500

# Four tissues make the per-tissue rules (ingest, augment, saliency, saliency_heatmap) groups
# of four jobs; two epochs keep training short.
SLURM_CONFIG = {
    "data": {"source": "demo", "tissues": ["liver", "pancreas", "brain_cortex", "whole_blood"]},
    "demo": {"n_genes": 200},
    "augment": {"min_samples": 30, "pca_tissues": ["liver", "pancreas"]},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "replicates": 1},
    "model": {"hidden": [32, 16, 8]},
    "saliency": {"top_n": 5, "validation_top_k": 5},
}
# Groups of profiles/slurm whose members are per-tissue jobs.
PER_TISSUE_GROUPS = {"ingest": "ingest", "augment": "augment", "saliency": "saliency"}
PER_TISSUE_GROUPS["saliency_heatmap"] = "heatmaps"

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the SLURM test must run)")
    pytest.skip(reason)


@dataclass(frozen=True)
class Cluster:
    node: str
    cpus: int
    memory_mb: int


def daemon_running(pid_file: Path, name: str) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
        return Path(f"/proc/{pid}/comm").read_text().strip() == name
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        skip_or_fail("starting a SLURM cluster needs root")
    # A cluster someone started by hand stays up after the tests.
    already_up = daemon_running(STATE / "slurmctld.pid", "slurmctld")
    started = subprocess.run(
        ["timeout", "-k", "10", "600", "bash", str(START), str(STATE)],
        capture_output=True,
        text=True,
    )
    if started.returncode in START_SKIP_CODES:
        skip_or_fail(f"no test cluster ({START_SKIP_CODES[started.returncode]}): {started.stderr}")
    if started.returncode != 0:
        pytest.fail(f"tools/slurm/start.sh failed ({started.returncode}):\n{started.stderr}")
    try:
        node, cpus, memory = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%N %c %m"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split()[:3]
        yield Cluster(node=node, cpus=int(cpus), memory_mb=int(memory))
    finally:
        if not already_up:
            subprocess.run(["timeout", "-k", "10", "120", "bash", str(STOP), str(STATE)])


def profile_value(value: Any) -> str:
    """A profile value as Snakemake's command line takes it (as its profile reader writes it)."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        return repr(value)
    return str(value)


def cluster_overrides(cluster: Cluster, cores: int) -> list[str]:
    """Command-line options that fit profiles/slurm to the one-node test cluster.

    Memory requests above the node's memory would never be scheduled: they are lowered to it.
    A command-line option replaces the profile's whole list, so lists with a lowered value are
    given in full.
    """
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())

    def fit(resources: dict[str, Any]) -> dict[str, Any]:
        return {
            key: min(value, cluster.memory_mb) if key == "mem_mb" else value
            for key, value in resources.items()
        }

    args = [
        "--workflow-profile",
        str(PROFILE),
        # No accounting database on the test cluster: sacct has nothing to say.
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-keep-successful-logs",
        # Threads beyond the node's CPUs would never be scheduled; the rules scale down.
        "--cores",
        str(cores),
    ]
    for option in ("resources", "default-resources"):
        if fit(profile[option]) != profile[option]:
            items = fit(profile[option]).items()
            args += [f"--{option}", *(f"{k}={profile_value(v)}" for k, v in items)]
    set_resources = {rule: fit(values) for rule, values in profile["set-resources"].items()}
    if set_resources != profile["set-resources"]:
        args += ["--set-resources"]
        for rule, values in set_resources.items():
            args += [f"{rule}:{key}={profile_value(value)}" for key, value in values.items()]
    return args


@dataclass(frozen=True)
class Runs:
    local: Path
    cluster: Path
    run_id: str
    output: str


@pytest.fixture(scope="module")
def runs(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The same configuration run locally and on the cluster, with the same thread counts."""
    cores = min(cluster.cpus, 2)
    env = SNAKEMAKE_ENV
    local = tmp_path_factory.mktemp("local_run")
    on_cluster = tmp_path_factory.mktemp("slurm_run")
    for workdir in (local, on_cluster):
        (workdir / "config.yaml").write_text(yaml.safe_dump(SLURM_CONFIG))

    command = snakemake_command(local, cores=cores)
    result = subprocess.run(
        ["timeout", "-k", "10", "1500", *command], capture_output=True, text=True, env=env, cwd=REPO
    )
    if result.returncode != 0:
        pytest.fail(f"local run failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")

    command = snakemake_command(on_cluster, *cluster_overrides(cluster, cores), cores=None)
    result = subprocess.run(
        ["timeout", "-k", "10", str(CLUSTER_RUN_TIMEOUT), *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    output = result.stdout + result.stderr
    found = re.search(r"SLURM run ID: (\S+)", output)
    run_id = found.group(1) if found else ""
    if result.returncode != 0:
        # A killed Snakemake leaves its lock and its jobs behind: clear both, then report.
        if run_id:
            subprocess.run(["scancel", "--name", run_id], capture_output=True, timeout=30)
        subprocess.run(
            snakemake_command(on_cluster, "--unlock", "--workflow-profile", "none", cores=None),
            capture_output=True,
            timeout=300,
            cwd=REPO,
        )
        ended = "timed out" if result.returncode in (124, 137) else f"exit {result.returncode}"
        pytest.fail(
            f"workflow on SLURM failed ({ended}):\n{output[-8000:]}\n"
            f"--- squeue:\n{squeue(run_id) if run_id else ''}\n"
            f"--- slurmctld.log:\n{tail(STATE / 'slurmctld.log', 40)}"
        )
    assert run_id, f"no SLURM run ID in Snakemake's output:\n{output[-4000:]}"
    return Runs(local=local, cluster=on_cluster, run_id=run_id, output=output)


def tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return str(error)


def squeue(run_id: str) -> str:
    """id|state|comment|TRES of every job of the run (finished ones stay for MinJobAge)."""
    return subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--name={run_id}", "--format=%i|%T|%k|%b"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout


def submissions(workdir: Path) -> dict[str, list[Path]]:
    """SLURM log files per submission directory (rule_<rule> or group_<group>...)."""
    logdir = workdir / ".snakemake/slurm_logs"
    found: dict[str, list[Path]] = {}
    for log in sorted(logdir.rglob("*.log")):
        found.setdefault(log.relative_to(logdir).parts[0], []).append(log)
    return found


def test_every_job_went_through_sbatch(runs: Runs) -> None:
    jobs = [line.split("|") for line in squeue(runs.run_id).splitlines() if line]
    assert jobs, f"SLURM knows no job of run {runs.run_id}"
    assert {state for _, state, _, _ in jobs} == {"COMPLETED"}, jobs
    logs = submissions(runs.cluster)
    assert sum(len(files) for files in logs.values()) == len(jobs), (logs, jobs)
    for rule in ("demo", "select_genes", "split", "train", "evaluate", "saliency_validation"):
        assert f"rule_{rule}" in logs, sorted(logs)
    for log in (log for files in logs.values() for log in files):
        assert log.stem in {job_id for job_id, _, _, _ in jobs}, log


def test_per_tissue_jobs_reach_the_cluster_as_one_group_each(runs: Runs) -> None:
    logs = submissions(runs.cluster)
    for rule, group in PER_TISSUE_GROUPS.items():
        assert f"rule_{rule}" not in logs, f"{rule} jobs were submitted one by one"
        group_logs = [
            log
            for name, files in logs.items()
            if name.startswith(f"group_{group}")
            for log in files
        ]
        assert len(group_logs) == 1, (group, sorted(logs))
        text = group_logs[0].read_text(errors="replace")
        for tissue in SLURM_CONFIG["data"]["tissues"]:
            assert f"{tissue}" in text, (group, tissue)


def test_training_asks_slurm_for_a_gpu(runs: Runs) -> None:
    train = [line.split("|") for line in squeue(runs.run_id).splitlines() if "|rule_train|" in line]
    assert len(train) == 1, squeue(runs.run_id)
    assert "gpu:1" in train[0][3], train


def read_table(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t")
    # Wall-clock seconds per epoch differ from run to run; everything else must not.
    return table.drop(columns=["seconds"]) if path.name == "history.tsv" else table


def same_content(a: Path, b: Path) -> bool:
    """Byte-identical, or (where bytes may differ harmlessly) identical content."""
    if a.read_bytes() == b.read_bytes():
        return True
    if a.suffix == ".parquet":
        import pyarrow.parquet as pq

        left, right = pq.read_table(a), pq.read_table(b)
        return left.equals(right) and left.schema.metadata == right.schema.metadata
    if a.suffix == ".safetensors":
        from safetensors.numpy import load_file

        left, right = load_file(a), load_file(b)
        return left.keys() == right.keys() and all(np.array_equal(left[k], right[k]) for k in left)
    if a.suffix == ".tsv":
        return read_table(a).equals(read_table(b))
    if a.suffix == ".json":
        return json.loads(a.read_text()) == json.loads(b.read_text())
    if a.suffix == ".png":
        from matplotlib import image as mpimg

        return np.array_equal(mpimg.imread(a), mpimg.imread(b))
    return False


def tensorboard_runs(files: set[Path]) -> set[str]:
    """The TensorBoard run directories of ``files``, without the start time they begin with."""
    tensorboard = Path("results/tensorboard")
    return {p.parent.name.split("_", 1)[1] for p in files if tensorboard in p.parents}


def test_outputs_equal_a_local_run(runs: Runs) -> None:
    compared = 0
    for tree in ("resources", "results"):
        local_files = {
            p.relative_to(runs.local) for p in (runs.local / tree).rglob("*") if p.is_file()
        }
        cluster_files = {
            p.relative_to(runs.cluster) for p in (runs.cluster / tree).rglob("*") if p.is_file()
        }
        # TensorBoard event files are named after host, time and process, and run directories
        # start with their start time: compare the runs' hyper-parameter part.
        tensorboard = Path("results/tensorboard")
        assert tensorboard_runs(local_files) == tensorboard_runs(cluster_files)
        assert tree == "resources" or tensorboard_runs(local_files)
        local_files = {p for p in local_files if tensorboard not in p.parents}
        cluster_files = {p for p in cluster_files if tensorboard not in p.parents}
        assert local_files == cluster_files
        differing = sorted(
            str(p) for p in local_files if not same_content(runs.local / p, runs.cluster / p)
        )
        assert differing == [], "outputs differ between the local and the SLURM run"
        compared += len(local_files)
    assert compared > 30
    assert (runs.cluster / "results/model/model.safetensors").is_file()
