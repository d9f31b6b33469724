"""Tests for bench/collect_benchmarks.py on benchmark files in Snakemake's format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
EXTENDED = "\tjobid\trule_name\twildcards\tparams\tthreads\tcpu_usage\tresources\tinput_size_mb"


@pytest.fixture(scope="module")
def collector(bench_importable: Path) -> object:
    import collect_benchmarks

    return collect_benchmarks


def bench_file(
    root: Path, name: str, rows: list[tuple[float, str, float]], end: float, rule: str = ""
) -> None:
    """A benchmark file: rows of (wall s, max_rss, cpu s); ``rule`` adds extended columns."""
    path = root / f"{name}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER + (EXTENDED if rule else "")]
    for wall, rss, cpu in rows:
        line = f"{wall:.2f}\t0:00:00\t{rss}\t1\t1\t1\t0.00\t0.00\t0.00\t{cpu:.2f}"
        if rule:
            line += f"\t1\t{rule}\t{{}}\t{{}}\t1\t0.00\t{{}}\t{{}}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.utime(path, (end, end))


@pytest.fixture
def benchmarks(tmp_path: Path) -> Path:
    root = tmp_path / "benchmarks"
    bench_file(root, "ingest/liver", [(10.0, "300.5", 9.0)], end=1000.0)
    bench_file(root, "ingest/lung", [(20.0, "500.0", 18.0)], end=1010.0)
    bench_file(root, "train", [(100.0, "9000.0", 190.0)], end=1200.0)
    # Repeated twice (benchmark: repeat(..., 2)): mean times, largest memory.
    bench_file(root, "split", [(4.0, "100", 3.0), (6.0, "150", 5.0)], end=1020.0)
    bench_file(root, "tiny", [(0.01, "0", 0.0)], end=1030.0)  # no memory sample: 0
    bench_file(root, "odd/name", [(1.0, "NA", 1.0)], end=1040.0, rule="select_genes")
    return root


def test_rules_from_paths_or_the_extended_column(collector, benchmarks: Path) -> None:
    jobs = {j.name: j for j in collector.collect(benchmarks)}
    assert jobs["ingest/liver"].rule == "ingest" and jobs["train"].rule == "train"
    assert jobs["odd/name"].rule == "select_genes"


def test_repeats_average_time_and_keep_the_peak(collector, benchmarks: Path) -> None:
    split = next(j for j in collector.collect(benchmarks) if j.rule == "split")
    assert split.wall_s == pytest.approx(5.0) and split.cpu_s == pytest.approx(4.0)
    assert split.max_rss_mib == pytest.approx(150.0)


def test_per_rule_sums_maxima_and_unsampled_jobs(collector, benchmarks: Path) -> None:
    summaries = {s.rule: s for s in collector.summarise(collector.collect(benchmarks))}
    ingest = summaries["ingest"]
    assert (ingest.jobs, ingest.wall_total_s, ingest.wall_max_s) == (2, 30.0, 20.0)
    assert ingest.slowest == "ingest/lung" and ingest.rss_max_job == "ingest/lung"
    assert ingest.cpu_total_s == pytest.approx(27.0)
    assert summaries["tiny"].rss_max_mib is None and summaries["tiny"].rss_missing == 1
    assert summaries["select_genes"].rss_missing == 1
    # Largest summed wall time first.
    assert next(iter(summaries)) == "train"


def test_elapsed_runs_from_first_start_to_last_end(collector, benchmarks: Path) -> None:
    # train started at 1200 - 100 = 1100; ingest/liver at 990, the earliest; odd/name ended last
    # at 1040, train at 1200.
    assert collector.elapsed_s(collector.collect(benchmarks)) == pytest.approx(1200.0 - 990.0)


def test_markdown_flags_jobs_over_the_memory_limit(collector, benchmarks: Path) -> None:
    text = collector.markdown(collector.collect(benchmarks), 8e9 / 2**20, 30.0)
    assert "| **total** | 6 |" in text
    assert "train (9,000 MiB)" in text
    assert "ingest/lung" not in text.split("resident:")[1]
    assert "within the 30 min target" in text
    assert "OVER the 3 min target" in collector.markdown(collector.collect(benchmarks), 1e9, 3)


def test_main_writes_per_job_tsv_and_reports_errors(
    collector, benchmarks: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "jobs.tsv"
    assert collector.main([str(benchmarks), "--jobs-tsv", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "rule\tjob\twall_s\tcpu_s\tmax_rss_mib"
    assert "train\ttrain\t100.00\t190.00\t9000.0" in lines
    assert "tiny\ttiny\t0.01\t0.00\tNA" in lines
    bad = tmp_path / "bad"
    (bad / "x.tsv").parent.mkdir()
    (bad / "x.tsv").write_text("a\tb\n1\t2\n")
    assert collector.main([str(bad)]) == 1
    assert "x.tsv: column 's' missing" in capsys.readouterr().err
    assert collector.main([str(tmp_path / "absent")]) == 1
