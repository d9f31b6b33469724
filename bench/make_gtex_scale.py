"""Write a full-size, GTEx v8-shaped local dataset for the workflow's dress rehearsal (issue 8).

Usage::

    python bench/make_gtex_scale.py OUT_DIR                  # everything, 2 worker processes
    python bench/make_gtex_scale.py OUT_DIR --tissues muscle_skeletal,liver   # only those GCTs
    python bench/make_gtex_scale.py OUT_DIR --summary run.json                # also a JSON summary

Then run the workflow on it with ``data: {source: local, local_dir: OUT_DIR}``.

What it writes into ``OUT_DIR``, under GTEx v8's published names (``rnaseq_saliency.gtex``):

- ``gene_tpm_2017-06-05_v8_<label>.gct.gz`` for each of the 54 v8 tissues, with the tissue's real
  v8 RNA-seq sample count (17,382 samples in all) and 56,200 genes, the size of GTEx v8's files;
- ``GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt``, the subject phenotypes file and
  ``gencode.v26.GRCh38.genes.gtf`` with every gene's ``gene_type``;
- ``demo_tissue_specific_genes.tsv``, as the demo does (not read by the workflow).

Genes. The 19,291 GENCODE v26 protein-coding genes that GTEx v8 quantified, with their real ids,
symbols and coordinates (``data/gencode_v26_protein_coding.tsv.gz``), plus 36,909 SYNTHETIC
non-coding genes, so that the total matches GTEx's 56,200 rows: made-up ids ``ENSG9<10 digits>.1``
(Ensembl has issued no ``ENSG9`` ids), names ``SYNNC<5 digits>``, a GENCODE v26 non-coding
``gene_type`` (lincRNA, antisense, processed_pseudogene, ...) drawn with roughly GENCODE v26's
proportions, random positions on chr1-22, X and Y (spread like the protein-coding genes) and
log-normal spans (median 3 kb). They exist to give the files GTEx's width: the workflow's default
gene filter (``protein_coding``) drops them at ingestion, as it drops GTEx's real non-coding genes.
All genes are written in genome order.

Expression. ``rnaseq_saliency.demo``'s model throughout (its module docstring): the same donors
(``make_donors``: 948 donors, 2 of 3 male, sex-specific tissues), donor assignment, tissue means
(``tissue_means``: a per-tissue sparse deviation on 4% of all genes), dispersion, donor effects,
read sampling and TPM (``simulate_tissue``), attributes and GCT/GTF writers. Mean profiles:

- the 12,000 genes of the demo's committed HPA table (``demo.load_demo_genes``) keep their
  per-tissue HPA profiles, so tissues differ as in the demo;
- the other 7,291 protein-coding genes: one log-normal level for all tissues, median 1 nTPM,
  sd 1.5 (natural log), before ``tissue_means``' per-tissue deviations;
- the synthetic non-coding genes: the same with median 0.05 nTPM, sd 2.0, so that most are zero
  or near zero in most samples, like GTEx's non-coding genes.

What differs from ``demo.write_demo_dataset``, to stay fast and small at this size:

- each tissue is simulated and written in blocks of ``--block-genes`` genes (each block with a
  random stream of its own; the tissue's heterogeneity factor and library sizes are drawn once
  and passed to every block), so a worker holds a few blocks, never a 56,200 x 803 matrix;
- tissues are written by a pool of at most 2 worker processes (largest first, started fresh
  with ``spawn`` so that they hold none of the parent's memory); donor effects (56,200 genes x
  948 donors, float32, 213 MB) sit in a temporary raw file from which the workers read the
  block they need, so no process holds them whole;
- gzip level 1 (``demo.write_gct``).

The output is deterministic: the same seed, block size and gene counts give byte-identical files
whatever the number of processes. It is not the demo at a larger size: the random streams are
laid out differently, so the first 12,000 genes do not repeat ``write_demo_dataset``'s values.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnaseq_saliency import demo, gtex
from rnaseq_saliency.genes import read_gmt
from rnaseq_saliency.tissues import tissue_table

V8_GENES = 56_200  # rows of every GTEx v8 per-tissue file
V8_PROTEIN_CODING = 19_291
PROFILED_GENES = 12_000  # rows of the demo's committed HPA table
SEED = 20170605
BLOCK_GENES = 2048
MAX_PROCESSES = 2
SYNTHETIC_ID = "ENSG9{:010d}.1"
SYNTHETIC_NAME = "SYNNC{:05d}"
# Mean profile of genes without an HPA profile: (median nTPM, sd of the natural log).
CODING_LEVEL = (1.0, 1.5)
NONCODING_LEVEL = (0.05, 2.0)
SPAN_MEDIAN, SPAN_SD = 3000.0, 1.2  # bp, natural log: synthetic genes' genomic spans
# Roughly GENCODE v26's counts of its commoner non-coding gene types (rare types left out);
# only the proportions are used.
NONCODING_TYPES = {
    "processed_pseudogene": 10200,
    "lincRNA": 7500,
    "antisense": 5600,
    "unprocessed_pseudogene": 2600,
    "misc_RNA": 2000,
    "snRNA": 1900,
    "miRNA": 1800,
    "TEC": 1000,
    "snoRNA": 950,
    "sense_intronic": 900,
    "transcribed_unprocessed_pseudogene": 750,
}


# ----------------------------------------------------------------------------- the genes


def _protein_coding_table() -> list[list[str]]:
    """gene_id, gene_name, chrom, start, end, strand of GENCODE v26's protein-coding genes."""
    text = demo._read_package_text("gencode_v26_protein_coding.tsv.gz", gzipped=True)
    return [line.split("\t") for line in text.splitlines()[1:]]


def build_genes(
    rng: np.random.Generator, n_coding: int, n_noncoding: int, n_profiled: int
) -> demo.DemoGenes:
    """The genes in genome order with their mean profiles (module docstring)."""
    if not 1 <= n_profiled <= min(n_coding, PROFILED_GENES):
        raise ValueError(
            f"--profiled-genes must be in 1..min(--coding-genes, {PROFILED_GENES}); "
            f"got {n_profiled} with --coding-genes {n_coding}"
        )
    table = _protein_coding_table()
    if not n_profiled <= n_coding <= len(table):
        raise ValueError(f"--coding-genes must be in {n_profiled}..{len(table)}; got {n_coding}")
    profiled = demo.load_demo_genes(n_profiled)
    profile_of = dict(zip(profiled.gene_id, profiled.profiles, strict=True))
    # The profiled genes, then the first other protein-coding genes in genome order.
    others = [row for row in table if row[0] not in profile_of][: n_coding - n_profiled]
    coding = [row for row in table if row[0] in profile_of] + others
    chroms = list(dict.fromkeys(row[2] for row in table))  # genome order: chr1..chr22 X Y M
    n_tissues = profiled.profiles.shape[1]

    # Synthetic non-coding genes: chromosomes in proportion to their protein-coding genes (no
    # chrM: its 37 genes are all real), uniform positions up to the last protein-coding gene.
    nuclear = [c for c in chroms if c != "chrM"]
    per_chrom = np.array([sum(row[2] == c for row in table) for c in nuclear], dtype=np.float64)
    chrom_end = np.array([max(int(row[4]) for row in table if row[2] == c) for c in nuclear])
    nc_chrom = rng.choice(len(nuclear), size=n_noncoding, p=per_chrom / per_chrom.sum())
    nc_start = rng.integers(1, chrom_end[nc_chrom], dtype=np.int64)
    spans = np.exp(rng.normal(math.log(SPAN_MEDIAN), SPAN_SD, n_noncoding))
    nc_end = nc_start + np.clip(spans, 50, 2_000_000).astype(np.int64) - 1
    nc_strand = rng.choice(["+", "-"], size=n_noncoding)
    weights = np.array(list(NONCODING_TYPES.values()), dtype=np.float64)
    nc_type = rng.choice(list(NONCODING_TYPES), size=n_noncoding, p=weights / weights.sum())

    def level(median_sd: tuple[float, float], n: int) -> np.ndarray:
        median, sd = median_sd
        return np.repeat(np.exp(rng.normal(math.log(median), sd, n))[:, None], n_tissues, axis=1)

    coding_level = level(CODING_LEVEL, len(others))
    nc_level = level(NONCODING_LEVEL, n_noncoding)

    # Merge and sort by (chromosome, start); the protein-coding table comes first, so equal
    # positions keep its order (lexsort is stable).
    chrom_rank = {c: i for i, c in enumerate(chroms)}
    rank = np.array(
        [chrom_rank[row[2]] for row in coding] + [chrom_rank[nuclear[c]] for c in nc_chrom]
    )
    start = np.concatenate([np.array([int(row[3]) for row in coding], dtype=np.int64), nc_start])
    end = np.concatenate([np.array([int(row[4]) for row in coding], dtype=np.int64), nc_end])
    order = np.lexsort((start, rank))
    n_cod = len(coding)
    profiles = np.concatenate(
        [np.array([profile_of[row[0]] for row in coding[:n_profiled]]), coding_level, nc_level]
    )[order]
    nc_rows = order[order >= n_cod] - n_cod  # synthetic genes, in genome order
    nc_number = {int(i): k for k, i in enumerate(nc_rows, start=1)}  # numbered in genome order
    ids, names, gchrom, strand, kinds = [], [], [], [], []
    for i in order.tolist():
        if i < n_cod:
            row = coding[i]
            ids.append(row[0])
            names.append(row[1])
            gchrom.append(row[2])
            strand.append(row[5])
            kinds.append("protein_coding")
        else:
            j = i - n_cod
            ids.append(SYNTHETIC_ID.format(nc_number[j]))
            names.append(SYNTHETIC_NAME.format(nc_number[j]))
            gchrom.append(nuclear[nc_chrom[j]])
            strand.append(str(nc_strand[j]))
            kinds.append(str(nc_type[j]))
    return demo.DemoGenes(
        gene_id=ids,
        gene_name=names,
        chrom=gchrom,
        start=start[order],
        end=end[order],
        strand=strand,
        profiles=profiles,
        gene_type=kinds,
    )


# ---------------------------------------------------------------- tissues, in workers


@dataclass(frozen=True)
class TissueTask:
    label: str
    column: int  # the tissue's column in the means matrix (tissue_table() order)
    donor_rows: np.ndarray
    sample_ids: list[str]  # in donor_rows order; written sorted, as GTEx sorts them
    heterogeneity: float
    library: np.ndarray
    blocks_seed: np.random.SeedSequence
    path: str


# Per-worker state, set once by _init_worker: the gene-wide arrays every tissue needs.
_STATE: dict[str, Any] = {}


def _init_worker(state: dict[str, Any], donor_effect_path: str) -> None:
    _STATE.update(state)
    _STATE["donor_effect_path"] = donor_effect_path


def _donor_effect_rows(first: int, n_rows: int) -> np.ndarray:
    """Rows ``first``.. of the (genes x donors) float32 donor effects, read from their file.

    Read, not memory-mapped: pages of a mapping would count in the worker's resident memory
    until it ends, 213 MB by the last block.
    """
    n_donors = _STATE["male"].size
    block = np.fromfile(
        _STATE["donor_effect_path"],
        dtype=np.float32,
        count=n_rows * n_donors,
        offset=first * n_donors * 4,
    )
    return block.reshape(n_rows, n_donors)


def _tissue_blocks(task: TissueTask, order: np.ndarray) -> Iterator[np.ndarray]:
    """The tissue's value matrix, block by block of genes, samples in written order."""
    s = _STATE
    n_genes, size = len(s["gene_ids"]), s["block_genes"]
    starts = range(0, n_genes, size)
    for first, seed in zip(starts, task.blocks_seed.spawn(len(starts)), strict=True):
        rows = slice(first, min(first + size, n_genes))
        reads, tpm, _ = demo.simulate_tissue(
            np.random.default_rng(seed),
            s["means"][rows, task.column],
            s["dispersion"][rows],
            _donor_effect_rows(rows.start, rows.stop - rows.start),
            task.donor_rows,
            s["female_silent"][rows],
            s["male"],
            s["length"][rows],
            heterogeneity=task.heterogeneity,
            library=task.library,
        )
        values = reads if s["measure"] == "reads" else tpm
        yield values[:, order]


def vmhwm_mib() -> float:
    """Peak RSS of this process (VmHWM), in MiB.

    Not ru_maxrss: a forked worker's ru_maxrss starts at its parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB


def write_tissue(task: TissueTask) -> dict[str, Any]:
    """Simulate and write one tissue's GCT; return what the run summary reports of it."""
    started, cpu = time.perf_counter(), time.process_time()
    order = np.argsort(task.sample_ids)
    demo.write_gct(
        task.path,
        _STATE["gene_ids"],
        _STATE["gene_names"],
        [task.sample_ids[i] for i in order],
        _tissue_blocks(task, order),
        integer=_STATE["measure"] == "reads",
    )
    return {
        "tissue": task.label,
        "n_samples": len(task.sample_ids),
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "bytes": os.path.getsize(task.path),
        "worker_peak_rss_mib": round(vmhwm_mib(), 1),
    }


# ------------------------------------------------------------------------------ the run


def write_gtex_scale(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = SEED,
    tissues: Sequence[str] | None = None,
    n_coding: int = V8_PROTEIN_CODING,
    n_noncoding: int = V8_GENES - V8_PROTEIN_CODING,
    n_profiled: int = PROFILED_GENES,
    block_genes: int = BLOCK_GENES,
    processes: int = MAX_PROCESSES,
    measure: str = "tpm",
) -> dict[str, Any]:
    """Write the dataset (module docstring) into ``out_dir``; return a run summary.

    ``tissues`` limits which per-tissue GCT files are written (for timing a subset); donors,
    attributes, the subject file and the GTF always cover all 54 tissues.
    """
    if not 1 <= processes <= MAX_PROCESSES:
        raise ValueError(f"--processes must be 1 or 2 (a 2-core machine); got {processes}")
    if block_genes < 1:
        raise ValueError(f"--block-genes must be >= 1; got {block_genes}")
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    release = "v8"
    gtex.tissue_file_name(release, measure, "liver")  # validates measure
    table = tissue_table()
    labels = [t.label for t in table]
    wanted = labels if tissues is None else list(tissues)
    unknown = sorted(set(wanted) - set(labels))
    if unknown:
        raise ValueError(f"--tissues: not GTEx v8 tissue labels: {unknown}")
    counts = demo.samples_per_tissue(1.0, 1)  # the real v8 counts
    streams = np.random.SeedSequence(seed).spawn(6 + len(table))
    donor_rng, assign_rng, mean_rng, gene_rng, attr_rng, genes_rng = (
        np.random.default_rng(s) for s in streams[:6]
    )

    genes = build_genes(genes_rng, n_coding, n_noncoding, n_profiled)
    n_genes = len(genes.gene_id)
    donors = demo.make_donors(donor_rng, counts, 1.0)
    chosen = demo.assign_donors(assign_rng, donors, counts)
    means = demo.tissue_means(mean_rng, genes.profiles)
    dispersion = np.clip(
        demo.DISPERSION_MEDIAN * np.exp(gene_rng.normal(0.0, 0.4, n_genes)), 0.08, 1.5
    )
    state = {
        "gene_ids": genes.gene_id,
        "gene_names": genes.gene_name,
        "means": means,
        "dispersion": dispersion,
        "female_silent": np.array([chrom == "chrY" for chrom in genes.chrom]),
        "male": donors.male,
        "length": demo.effective_length(genes.start, genes.end),
        "block_genes": block_genes,
        "measure": measure,
    }

    # Sample ids, heterogeneity and library sizes come from each tissue's stream here, in tissue
    # order (sample codes must be unique across tissues); attributes follow from them.
    taken_sm: set[str] = set()
    attributes: list[dict[str, str]] = []
    tasks: list[TissueTask] = []
    for tissue, tissue_seed in zip(table, streams[6:], strict=True):
        ids_seed, blocks_seed = tissue_seed.spawn(2)
        rng = np.random.default_rng(ids_seed)
        donor_rows = chosen[tissue.label]
        site = f"{rng.integers(1, 3000):04d}"
        codes = demo._random_codes(rng, donor_rows.size, 5, taken_sm)
        sample_ids = [
            f"{donors.ids[d]}-{site}-SM-{code}" for d, code in zip(donor_rows, codes, strict=True)
        ]
        library = demo.draw_library(rng, donor_rows.size)
        task = TissueTask(
            label=tissue.label,
            column=labels.index(tissue.label),
            donor_rows=donor_rows,
            sample_ids=sample_ids,
            heterogeneity=demo.draw_heterogeneity(rng),
            library=library,
            blocks_seed=blocks_seed,
            path=str(out / gtex.tissue_file_name(release, measure, tissue.label)),
        )
        if tissue.label in wanted:
            tasks.append(task)
        for i in np.argsort(sample_ids):
            total = int(library[i] / 0.6)  # as the demo: ~60% of reads are counted in genes
            attributes.append(demo._attribute_row(attr_rng, sample_ids[i], tissue, "RNASEQ", total))
    attributes.extend(demo._extra_attribute_rows(attr_rng, donors, table, taken_sm))
    attributes.sort(key=lambda row: row["SAMPID"])
    demo._write_table(
        out / gtex.attributes_file_name(release),
        demo.ATTRIBUTE_COLUMNS,
        ([row.get(column, "") for column in demo.ATTRIBUTE_COLUMNS] for row in attributes),
    )
    demo._write_table(
        out / demo.SUBJECT_FILE,
        ("SUBJID", "SEX", "AGE", "DTHHRDY"),
        sorted(
            (donor, "1" if male else "2", age, hardy)
            for donor, male, age, hardy in zip(
                donors.ids, donors.male, donors.age, donors.hardy, strict=True
            )
        ),
    )
    demo.write_gtf(out / gtex.gtf_file_name(release), genes)
    markers = read_gmt(demo.MARKERS_GMT)
    specific = demo.tissue_specific_genes(means, genes.gene_id, labels, markers)
    demo._write_table(
        out / demo.SPECIFIC_GENES_FILE,
        ("tissue", "gene_id", "gene_name"),
        ((label, genes.gene_id[row], genes.gene_name[row]) for label, row in specific),
    )
    setup_seconds = time.perf_counter() - started
    # Forked workers would inherit these; they need none of them.
    del attributes, specific, markers, chosen

    tasks.sort(key=lambda task: -len(task.sample_ids))  # largest first: the pool ends together
    with tempfile.TemporaryDirectory(prefix=".make_gtex_scale.", dir=out) as tmp:
        donor_effect_path = os.path.join(tmp, "donor_effect.f32")
        with open(donor_effect_path, "wb") as handle:
            for first in range(0, n_genes, block_genes):
                shape = (min(block_genes, n_genes - first), len(donors.ids))
                handle.write(gene_rng.standard_normal(shape, dtype=np.float32).tobytes())
        if processes == 1:
            _init_worker(state, donor_effect_path)
            results = [write_tissue(task) for task in tasks]
        else:
            with multiprocessing.get_context("spawn").Pool(
                processes, initializer=_init_worker, initargs=(state, donor_effect_path)
            ) as pool:
                results = list(pool.imap_unordered(write_tissue, tasks, chunksize=1))
    results.sort(key=lambda r: labels.index(r["tissue"]))
    return {
        "out_dir": str(out),
        "seed": seed,
        "genes": n_genes,
        "protein_coding_genes": sum(kind == "protein_coding" for kind in genes.gene_type or []),
        "donors": len(donors.ids),
        "samples_all_tissues": sum(counts.values()),
        "tissues_written": len(results),
        "samples_written": sum(r["n_samples"] for r in results),
        "processes": processes,
        "block_genes": block_genes,
        "setup_seconds": round(setup_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "main_peak_rss_mib": round(vmhwm_mib(), 1),
        "max_worker_peak_rss_mib": max((r["worker_peak_rss_mib"] for r in results), default=0),
        "bytes_written": sum(p.stat().st_size for p in out.iterdir() if p.is_file()),
        "tissues": results,
    }


def extrapolate(summary: dict[str, Any]) -> dict[str, float]:
    """Whole-dataset figures from a subset run: per-tissue seconds and bytes as a + b * samples.

    Least squares over the tissues written (a: per-tissue fixed cost, b: cost per sample);
    wall time assumes the pool stays busy: setup + sum of tissue seconds / processes.
    """
    rows = summary["tissues"]
    if not rows:
        return {}
    n = np.array([r["n_samples"] for r in rows], dtype=np.float64)
    design = np.column_stack([np.ones_like(n), n]) if len(rows) > 1 else n[:, None]
    all_n = np.array([t.n_samples_v8 for t in tissue_table()], dtype=np.float64)
    all_design = np.column_stack([np.ones_like(all_n), all_n]) if len(rows) > 1 else all_n[:, None]
    figures = {}
    for key in ("seconds", "cpu_seconds", "bytes"):
        y = np.array([r[key] for r in rows], dtype=np.float64)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        figures[f"all_tissues_{key}"] = float((all_design @ coef).sum())
    figures["all_tissues_wall_seconds"] = (
        summary["setup_seconds"] + figures["all_tissues_seconds"] / summary["processes"]
    )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="directory to write the GTEx-named files into")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--tissues", help="comma-separated labels: write only these GCT files")
    parser.add_argument("--processes", type=int, default=MAX_PROCESSES, help="1 or 2 (default)")
    parser.add_argument("--block-genes", type=int, default=BLOCK_GENES)
    parser.add_argument("--coding-genes", type=int, default=V8_PROTEIN_CODING)
    parser.add_argument("--noncoding-genes", type=int, default=V8_GENES - V8_PROTEIN_CODING)
    parser.add_argument("--profiled-genes", type=int, default=PROFILED_GENES)
    parser.add_argument("--measure", choices=gtex.MEASURES, default="tpm")
    parser.add_argument("--summary", help="also write the run summary here as JSON")
    args = parser.parse_args(argv)
    summary = write_gtex_scale(
        args.out_dir,
        seed=args.seed,
        tissues=args.tissues.split(",") if args.tissues else None,
        n_coding=args.coding_genes,
        n_noncoding=args.noncoding_genes,
        n_profiled=args.profiled_genes,
        block_genes=args.block_genes,
        processes=args.processes,
        measure=args.measure,
    )
    if summary["tissues_written"] < len(tissue_table()):
        summary["extrapolated"] = extrapolate(summary)
    summary["machine"] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    text = json.dumps(summary, indent=1)
    if args.summary:
        Path(args.summary).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
