"""Collect Snakemake ``benchmark:`` files into per-rule wall time and peak memory tables.

Usage::

    python bench/collect_benchmarks.py                       # reads benchmarks/, prints Markdown
    python bench/collect_benchmarks.py benchmarks --jobs-tsv jobs.tsv --rss-limit-gb 8

Each job's benchmark file is Snakemake's TSV (``s``, ``h:m:s``, ``max_rss``, ..., ``cpu_time``;
with ``--benchmark-extended`` also ``rule_name``, ``wildcards``, ...). The rule of a file is its
``rule_name`` column when there is one, else read from its path: ``benchmarks/<rule>.tsv`` or
``benchmarks/<rule>/<wildcards...>.tsv``, the layout the workflow's ``benchmark:`` lines use.
A file with several rows (``benchmark: repeat(...)``) counts as one job: its mean wall and CPU
time and its largest ``max_rss``.

Reported per rule: jobs, summed and largest wall seconds, summed CPU seconds, largest max RSS
(MiB, as Snakemake writes it: the job's process tree, sampled every 0.5 s for the first 15 s
and every 30 s after, so a short peak of a long job can be missed). Totals: the summed job time
and the elapsed time from the first job's start to the last job's end, taken from the files'
modification times (each is written when its job ends) minus their wall time; it leaves out
Snakemake's start-up before the first job.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass
class Job:
    rule: str
    name: str  # the file's path below the benchmarks directory, without .tsv
    wall_s: float
    cpu_s: float | None
    max_rss_mib: float | None  # None: no sample caught the job running (under ~0.5 s)
    end: float  # file modification time, seconds since the epoch


def _number(text: str | None) -> float | None:
    """A benchmark field as a float; Snakemake writes ``NA`` or ``-`` when it has none."""
    if text is None or text.strip() in ("", "NA", "-"):
        return None
    return float(text)


def read_job(path: Path, root: Path) -> Job:
    """One benchmark file as a job; errors name the file and line."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: no benchmark rows (an empty or header-only file)")
    for column in ("s", "max_rss"):
        if column not in rows[0]:
            raise ValueError(f"{path}: column {column!r} missing; is this a benchmark file?")
    relative = path.relative_to(root).with_suffix("")
    rule = rows[0].get("rule_name") or relative.parts[0]
    walls, cpus, rss = [], [], []
    for line, row in enumerate(rows, start=2):
        try:
            wall = _number(row["s"])
            cpu, peak = _number(row.get("cpu_time")), _number(row["max_rss"])
        except ValueError as error:
            raise ValueError(f"{path}, line {line}: {error}") from error
        if wall is None:
            raise ValueError(f"{path}, line {line}: no wall time in column 's'")
        walls.append(wall)
        if cpu is not None:
            cpus.append(cpu)
        if peak:  # Snakemake writes 0 (or NA) when no sample caught the job running
            rss.append(peak)
    return Job(
        rule=rule,
        name=relative.as_posix(),
        wall_s=statistics.fmean(walls),
        cpu_s=statistics.fmean(cpus) if cpus else None,
        max_rss_mib=max(rss) if rss else None,
        end=path.stat().st_mtime,
    )


def collect(root: Path) -> list[Job]:
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no benchmarks directory (run with benchmark: lines)")
    jobs = [read_job(path, root) for path in sorted(root.rglob("*.tsv"))]
    if not jobs:
        raise ValueError(f"{root}: no benchmark files (*.tsv) found")
    return jobs


@dataclass
class RuleSummary:
    rule: str
    jobs: int
    wall_total_s: float
    wall_max_s: float
    slowest: str
    cpu_total_s: float | None
    rss_max_mib: float | None
    rss_max_job: str | None
    rss_missing: int  # jobs without a memory sample


def summarise(jobs: Sequence[Job]) -> list[RuleSummary]:
    """Per rule, largest summed wall time first."""
    by_rule: dict[str, list[Job]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    summaries = []
    for rule, members in by_rule.items():
        slowest = max(members, key=lambda j: j.wall_s)
        measured = [j for j in members if j.max_rss_mib is not None]
        biggest = max(measured, key=lambda j: j.max_rss_mib or 0.0) if measured else None
        cpus = [j.cpu_s for j in members if j.cpu_s is not None]
        summaries.append(
            RuleSummary(
                rule=rule,
                jobs=len(members),
                wall_total_s=sum(j.wall_s for j in members),
                wall_max_s=slowest.wall_s,
                slowest=slowest.name,
                cpu_total_s=sum(cpus) if cpus else None,
                rss_max_mib=biggest.max_rss_mib if biggest else None,
                rss_max_job=biggest.name if biggest else None,
                rss_missing=len(members) - len(measured),
            )
        )
    return sorted(summaries, key=lambda s: -s.wall_total_s)


def elapsed_s(jobs: Sequence[Job]) -> float:
    """From the earliest job start (end minus wall time) to the latest job end."""
    return max(j.end for j in jobs) - min(j.end - j.wall_s for j in jobs)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(jobs: Sequence[Job], rss_limit_mib: float, wall_target_min: float) -> str:
    summaries = summarise(jobs)
    lines = [
        "| rule | jobs | wall s, sum | wall s, slowest job | CPU s, sum | max RSS MiB (job) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        rss = _fmt(s.rss_max_mib, 0)
        if s.rss_max_job and s.jobs > 1:
            rss += f" ({s.rss_max_job})"
        if s.rss_missing:
            rss += f"; {s.rss_missing} job(s) unsampled"
        slowest = _fmt(s.wall_max_s) + (f" ({s.slowest})" if s.jobs > 1 else "")
        lines.append(
            f"| {s.rule} | {s.jobs} | {_fmt(s.wall_total_s)} | {slowest} | "
            f"{_fmt(s.cpu_total_s)} | {rss} |"
        )
    total_wall = sum(j.wall_s for j in jobs)
    cpus = [j.cpu_s for j in jobs if j.cpu_s is not None]
    elapsed = elapsed_s(jobs)
    peak = max((j.max_rss_mib for j in jobs if j.max_rss_mib is not None), default=None)
    lines.append(
        f"| **total** | {len(jobs)} | {_fmt(total_wall)} | | {_fmt(sum(cpus) if cpus else None)} "
        f"| {_fmt(peak, 0)} |"
    )
    over = [j for j in jobs if j.max_rss_mib is not None and j.max_rss_mib > rss_limit_mib]
    lines += [
        "",
        f"- Elapsed, first job start to last job end: {elapsed / 60:.1f} min "
        f"({'within' if elapsed <= wall_target_min * 60 else 'OVER'} the {wall_target_min:g} "
        f"min target); summed job time {total_wall / 60:.1f} min, "
        f"{total_wall / elapsed if elapsed > 0 else math.nan:.2f} jobs running on average.",
        f"- Jobs above {rss_limit_mib:,.0f} MiB resident: "
        + (", ".join(f"{j.name} ({j.max_rss_mib:,.0f} MiB)" for j in over) if over else "none")
        + ".",
    ]
    return "\n".join(lines)


def write_jobs_tsv(jobs: Sequence[Job], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("rule\tjob\twall_s\tcpu_s\tmax_rss_mib\n")
        for j in sorted(jobs, key=lambda j: (j.rule, j.name)):
            cpu = "NA" if j.cpu_s is None else f"{j.cpu_s:.2f}"
            rss = "NA" if j.max_rss_mib is None else f"{j.max_rss_mib:.1f}"
            handle.write(f"{j.rule}\t{j.name}\t{j.wall_s:.2f}\t{cpu}\t{rss}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks", nargs="?", default="benchmarks", help="(benchmarks)")
    parser.add_argument("--jobs-tsv", help="also write one row per job here")
    parser.add_argument(
        "--rss-limit-gb", type=float, default=8.0, help="flag jobs above this (decimal GB; 8)"
    )
    parser.add_argument(
        "--wall-target-min", type=float, default=30.0, help="elapsed-time target (30)"
    )
    args = parser.parse_args(argv)
    try:
        jobs = collect(Path(args.benchmarks))
    except (OSError, ValueError) as error:
        print(f"collect_benchmarks: {error}", file=sys.stderr)
        return 1
    if args.jobs_tsv:
        write_jobs_tsv(jobs, Path(args.jobs_tsv))
    print(markdown(jobs, args.rss_limit_gb * 1e9 / MIB, args.wall_target_min))
    return 0


if __name__ == "__main__":
    sys.exit(main())
