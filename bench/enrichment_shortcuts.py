"""Cost of the enrichment and the shortcut check (issue 21) at demo and at GTEx v8 scale.

Usage::

    python bench/enrichment_shortcuts.py --run-dir RUN        # a finished run (the demo's)
    python bench/enrichment_shortcuts.py --gtex-scale WORKDIR # GTEx v8 shapes, synthesised

``--run-dir`` times the two steps on a finished run's own files (``results/``, ``resources/demo``
or ``data.local_dir``; nothing in it is written: the outputs go to a temporary directory).

``--gtex-scale`` writes, once, inputs with GTEx v8's shapes into ``WORKDIR`` and times the steps
on them: the 19,291 GENCODE v26 protein-coding genes; the 54 tissues with their real v8 RNA-seq
sample counts (17,382 samples, ``results/expression/*.parquet`` with log-normal values, 1.3 GB);
a 70/10/20 train/validation/test split; an attributes file with SMRIN, SMTSISCH, SMGEBTCH (batches
of about 60 samples, as in GTEx) and a subject phenotypes file for 948 donors; a random mean
saliency matrix (19,291 x 54); a GTF of 56,200 genes (the protein-coding ones and synthetic
non-coding ones) with a gene, a transcript and 8 exon lines each, about GTEx's collapsed model.
Expression values do not change the cost of the rank tests or of GSEA, so random data measure
it; the saliency ranking's shape does not either.

Prints one table: step, wall seconds, CPU seconds (this process and its threads), with the
threads given to gseapy (``--threads``, the rule's 2) and the permutations (``--permutations``).
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from rnaseq_saliency import gtex
from rnaseq_saliency.datasets import write_samples
from rnaseq_saliency.enrichment import HPA_GMT, run_enrichment, run_enrichment_summary
from rnaseq_saliency.expression import ExpressionTable, write_expression
from rnaseq_saliency.genes import write_selected_genes
from rnaseq_saliency.saliency import write_mean_matrix
from rnaseq_saliency.shortcuts import run_shortcuts
from rnaseq_saliency.tissues import resolve_tissues, tissue_table

N_DONORS = 948
N_GTF_GENES = 56_200


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, step: Callable[[], object], rows: list[tuple[str, float, float]]) -> None:
    wall, cpu = time.perf_counter(), _cpu()
    step()
    rows.append((label, time.perf_counter() - wall, _cpu() - cpu))
    print(f"{label}: {rows[-1][1]:.1f} s wall, {rows[-1][2]:.1f} s CPU", flush=True)


def _protein_coding() -> pd.DataFrame:
    source = resources.files("rnaseq_saliency").joinpath("data/gencode_v26_protein_coding.tsv.gz")
    with source.open("rb") as handle:
        return pd.read_csv(handle, sep="\t", compression="gzip", dtype=str)


def _write_gtf(path: Path, genes: pd.DataFrame) -> None:
    attributes = 'gene_id "{0}"; gene_type "{1}"; gene_name "{2}"; level 2;'
    with gzip.open(path, "wt") if path.suffix == ".gz" else open(path, "w") as handle:
        rows = list(zip(genes["gene_id"], genes["gene_name"], genes["chrom"], strict=True))
        rows += [(f"ENSG9{k:010d}.1", f"SYNNC{k:05d}", "chr1")
                 for k in range(N_GTF_GENES - len(rows))]  # fmt: skip
        for k, (gene, name, chrom) in enumerate(rows):
            kind = "protein_coding" if not name.startswith("SYNNC") else "lincRNA"
            text = attributes.format(gene, kind, name)
            where = f"{chrom}\tHAVANA\t{{}}\t{k * 10 + 1}\t{k * 10 + 9}\t.\t+\t.\t"
            handle.write(where.format("gene") + text + "\n")
            handle.write(where.format("transcript") + text + f' transcript_id "{gene}";\n')
            for exon in range(8):
                handle.write(where.format("exon") + text + f" exon_number {exon + 1};\n")


def _write_annotations(work: Path, samples: pd.DataFrame, rng: np.random.Generator) -> None:
    n = len(samples)
    pd.DataFrame(
        {
            "SAMPID": samples["sample_id"],
            "SMRIN": np.round(rng.normal(7, 1, n), 1),
            "SMTSISCH": rng.integers(60, 1400, n),
            "SMGEBTCH": [f"LCSET-{b}" for b in rng.integers(0, n // 60, n)],
        }
    ).to_csv(work / gtex.attributes_file_name("v8"), sep="\t", index=False)
    donors = sorted(set(samples["donor_id"]))
    pd.DataFrame(
        {
            "SUBJID": donors,
            "SEX": rng.choice(["1", "2"], len(donors), p=[0.67, 0.33]),
            "AGE": rng.choice(["20-29", "30-39", "40-49", "50-59", "60-69", "70-79"], len(donors)),
        }
    ).to_csv(work / gtex.subjects_file_name("v8"), sep="\t", index=False)


def make_gtex_scale(work: Path, seed: int = 0) -> None:
    """The inputs of rules enrichment and shortcuts, with GTEx v8's shapes (module docstring)."""
    rng = np.random.default_rng(seed)
    genes = _protein_coding()
    write_selected_genes(genes, work / "results/genes/selected_genes.tsv")
    _write_gtf(work / gtex.gtf_file_name("v8"), genes)
    donors = [f"GTEX-{k:05X}" for k in range(N_DONORS)]
    split_rows = []
    for index, tissue in enumerate(tissue_table()):
        n = tissue.n_samples_v8
        chosen = rng.choice(N_DONORS, size=min(n, N_DONORS), replace=False)
        ids = [f"{donors[d]}-{index:04d}-SM-{k:05d}" for k, d in enumerate(chosen)]
        matrix = rng.lognormal(0.0, 1.5, size=(len(ids), len(genes))).astype(np.float32)
        table = ExpressionTable(ids, [donors[d] for d in chosen], genes["gene_id"].tolist(), matrix)
        write_expression(work / f"results/expression/{tissue.label}.parquet", table)
        split = rng.choice(["train", "val", "test"], size=len(ids), p=[0.7, 0.1, 0.2])
        split_rows += [
            (s, donors[d], tissue.label, sp) for s, d, sp in zip(ids, chosen, split, strict=True)
        ]
    samples = pd.DataFrame(split_rows, columns=["sample_id", "donor_id", "tissue", "split"])
    write_samples(samples, work / "results/split/samples.tsv")
    _write_annotations(work, samples, rng)
    mean = pd.DataFrame(
        rng.uniform(0, 1, size=(len(genes), 54)).astype(np.float32),
        index=pd.Index(genes["gene_id"], name="gene_id"),
        columns=[t.label for t in tissue_table()],
    )
    write_mean_matrix(work / "results/saliency/mean_saliency.parquet", mean)
    (work / "done").write_text("ok\n")


def _raw_dir(run: Path) -> tuple[Path, list[str]]:
    config = (
        yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").exists() else {}
    )
    data = config.get("data", {})
    tissues = resolve_tissues(data.get("tissues", "all"))
    if data.get("source", "demo") == "local":
        return Path(data["local_dir"]), tissues
    return run / "resources/demo", tissues


def bench(
    run: Path, raw: Path, tissues: list[str], permutations: int, threads: int, steps: str
) -> None:
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as out:
        tables = [Path(out) / f"{t}.tsv" for t in tissues]
        if steps != "shortcuts":
            _bench_enrichment(run, tissues, tables, permutations, threads, Path(out), rows)
        if steps != "enrichment":
            _bench_shortcuts(run, raw, tissues, Path(out), rows)
    print(f"\n{len(tissues)} tissues, {permutations} permutations, gseapy threads {threads}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| step | wall s | CPU s |\n|---|---:|---:|")
    for label, wall, cpu in rows:
        print(f"| {label} | {wall:.1f} | {cpu:.1f} |")
    print(f"| total | {sum(r[1] for r in rows):.1f} | {sum(r[2] for r in rows):.1f} |")


def _bench_enrichment(
    run: Path, tissues: list[str], tables: list[Path], permutations: int, threads: int,
    out: Path, rows: list[tuple[str, float, float]],
) -> None:  # fmt: skip
    timed("enrichment (GSEA prerank, HPA sets)", lambda: run_enrichment(
            mean_matrix_path=run / "results/saliency/mean_saliency.parquet",
            genes_path=run / "results/genes/selected_genes.tsv", gene_set_paths=[str(HPA_GMT)],
            tissues=tissues, out_paths=tables, permutations=permutations, seed=0, threads=threads,
        ), rows)  # fmt: skip
    summary = out / "summary.png"
    timed("enrichment_summary (figure)",
          lambda: run_enrichment_summary(tables, tissues, summary), rows)  # fmt: skip


def _bench_shortcuts(
    run: Path, raw: Path, tissues: list[str], out: Path, rows: list[tuple[str, float, float]]
) -> None:
    timed("shortcuts (top 50, all checks, figure)", lambda: run_shortcuts(
            mean_matrix_path=run / "results/saliency/mean_saliency.parquet",
            genes_path=run / "results/genes/selected_genes.tsv",
            gtf_path=raw / gtex.gtf_file_name("v8"), samples_path=run / "results/split/samples.tsv",
            expression_files=[run / f"results/expression/{t}.parquet" for t in tissues],
            tissues=tissues, attributes_path=raw / gtex.attributes_file_name("v8"),
            subjects_path=raw / gtex.subjects_file_name("v8"), top_k=50, max_share=0.05,
            out_path=out / "shortcuts.tsv", figure_path=out / "shortcuts.png",
        ), rows)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--run-dir", type=Path)
    where.add_argument("--gtex-scale", type=Path, metavar="WORKDIR")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", choices=["all", "enrichment", "shortcuts"], default="all")
    args = parser.parse_args()
    if args.run_dir is not None:
        raw, tissues = _raw_dir(args.run_dir)
        bench(args.run_dir, raw, tissues, args.permutations, args.threads, args.steps)
        return
    work = args.gtex_scale
    if not (work / "done").exists():
        timed("writing the GTEx-scale inputs", lambda: make_gtex_scale(work), [])
    tissues = [t.label for t in tissue_table()]
    bench(work, work, tissues, args.permutations, args.threads, args.steps)


if __name__ == "__main__":
    main()
