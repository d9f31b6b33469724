"""Benchmark GTEx ingestion: one full-size per-tissue GCT.gz -> expression Parquet.

Generates (once, cached under ``bench/out/``) a GTEx-shaped per-tissue TPM file of 56,200 genes
x 803 samples (the size of GTEx v8 muscle, the largest tissue), gzip level 6, with TPM-like
values: 4 significant digits, many zeros, protein-coding genes expressed more than the rest.
Then times, each in its own process so that peak memory (ru_maxrss via wait4) is its own:

- ``zcat file > /dev/null``: the floor, decompression alone;
- ``ingest_tissue`` (``read_gct`` + ``write_expression``) for the 19,291 protein-coding genes
  and for all 56,200 genes, plus ``read_gct`` alone;
- a naive ``pandas.read_csv`` of the whole file, then the same genes as float32;
- a process that imports the package and ingests a 60-gene file: the baseline that memory
  figures subtract (costs that do not grow with the file).

Finally it compares two Parquet layouts of the protein-coding matrix: one
``fixed_size_list<float32>`` column (``rnaseq_saliency.expression``) and a 19,291-column wide
table: write time, read back into one contiguous float32 array, file size.

With ``--matrix`` it measures the whole-matrix layout instead (``data.layout: matrix``): a
generated GCT 1.2 file of 56,200 genes x 17,382 samples (GTEx v8's whole-matrix file, the 54
tissues at their v8 sample counts), read once by ``ingest_matrix`` into the 54 per-tissue
Parquet files, for the protein-coding genes and for all genes, against ``zcat`` of the same
file and the same baseline process.

Usage::

    python bench/ingest.py                      # full size; prints a table
    python bench/ingest.py --markdown BENCHMARKS.md   # also (re)writes its section there
    python bench/ingest.py --genes 3000 --samples 40 --repeats 1   # a quick smoke run
    python bench/ingest.py --matrix --markdown BENCHMARKS.md   # the whole-matrix layout
    python bench/ingest.py --matrix --genes 2000 --samples 600 --repeats 1   # its smoke run
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SECTION = "## Ingestion (bench/ingest.py)"
MATRIX_SECTION = "## Ingestion of the whole-matrix file (bench/ingest.py --matrix)"
TISSUE = "muscle_skeletal"
SMTSD = "Muscle - Skeletal"


# ------------------------------------------------------------------------------ the data


def protein_coding() -> tuple[list[str], list[str]]:
    source = resources.files("rnaseq_saliency").joinpath("data/gencode_v26_protein_coding.tsv.gz")
    with source.open("rb") as handle:
        rows = gzip.decompress(handle.read()).decode().splitlines()[1:]
    fields = [row.split("\t") for row in rows]
    return [f[0] for f in fields], [f[1] for f in fields]


def value_vocabulary() -> tuple[np.ndarray, int, int]:
    """Every 4-significant-digit value from 0.001 to 99,990 as text, like GTEx TPMs."""
    exponents = range(-3, 5)
    words = [
        np.format_float_positional(m * 10.0 ** (e - 3), precision=4, unique=False, trim="-")
        for e in exponents
        for m in range(1000, 10000)
    ]
    words.append("0")
    return np.array(words, dtype=object), exponents.start, exponents.stop - 1


def make_dataset(out: Path, n_genes: int, n_samples: int, seed: int = 0) -> dict[str, Path]:
    """Write the GCT.gz, a sample attributes file and two gene lists; reuse them if present."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "gct": out / f"gene_tpm_bench_{n_genes}x{n_samples}.gct.gz",
        "attributes": out / f"attributes_{n_samples}.txt",
        "genes_pc": out / f"genes_protein_coding_{n_genes}.tsv",
        "genes_all": out / f"genes_all_{n_genes}.tsv",
    }
    if all(path.exists() for path in files.values()):
        return files
    rng = np.random.default_rng(seed)
    coding_ids, coding_names = protein_coding()
    n_coding = min(len(coding_ids), round(n_genes * len(coding_ids) / 56_200))
    is_coding = np.zeros(n_genes, dtype=bool)
    is_coding[rng.choice(n_genes, n_coding, replace=False)] = True
    ids, names = [], []
    coding = iter(zip(coding_ids, coding_names, strict=True))
    for g in range(n_genes):
        gene_id, name = next(coding) if is_coding[g] else (f"ENSG9{g:010d}.1", f"RP11-{g}.1")
        ids.append(gene_id)
        names.append(name)
    samples = [f"GTEX-{i:05X}-0426-SM-{rng.integers(16**5):05X}" for i in range(n_samples)]

    vocabulary, e_min, e_max = value_vocabulary()
    zero = len(vocabulary) - 1
    # Per gene: a typical level, and whether it is mostly off in this tissue; per sample:
    # log-normal variation and occasional dropouts. About half of all values end up 0.
    level = np.where(is_coding, rng.normal(1.0, 2.0, n_genes), rng.normal(-2.0, 2.0, n_genes))
    off = rng.random(n_genes) < np.where(is_coding, 0.15, 0.55)
    tmp = files["gct"].with_suffix(".tmp")
    with gzip.open(tmp, "wt", compresslevel=6, newline="\n") as handle:
        handle.write(f"#1.2\n{n_genes}\t{n_samples}\n")
        handle.write("\t".join(["id", "Name", "Description", *samples]) + "\n")
        for g in range(n_genes):
            x = np.exp(level[g] + rng.normal(0.0, 0.8, n_samples))
            x *= (rng.random(n_samples) < 0.05) if off[g] else (rng.random(n_samples) > 0.02)
            exponent = np.clip(np.floor(np.log10(np.maximum(x, 1e-300))), e_min, e_max)
            mantissa = np.clip(np.rint(x / 10.0 ** (exponent - 3)), 1000, 9999)
            index = ((exponent - e_min) * 9000 + mantissa - 1000).astype(np.int64)
            index[x < 10.0**e_min] = zero
            handle.write(f"{g}\t{ids[g]}\t{names[g]}\t" + "\t".join(vocabulary[index]) + "\n")
    tmp.replace(files["gct"])
    with open(files["attributes"], "w") as handle:
        handle.write("SAMPID\tSMTS\tSMTSD\tSMAFRZE\n")
        handle.writelines(f"{s}\tMuscle\t{SMTSD}\tRNASEQ\n" for s in samples)
    for key, keep in (("genes_pc", is_coding), ("genes_all", np.ones(n_genes, dtype=bool))):
        with open(files[key], "w") as handle:
            handle.write("gene_id\tgene_name\n")
            handle.writelines(f"{i}\t{n}\n" for i, n, k in zip(ids, names, keep, strict=True) if k)
    return files


def _vocabulary_row(
    rng: np.random.Generator, n: int, level: float, off: bool, vocabulary: tuple
) -> str:
    """One gene's values as GTEx-like TPM text (see ``make_dataset``)."""
    words, e_min, e_max = vocabulary
    x = np.exp(level + rng.normal(0.0, 0.8, n))
    x *= (rng.random(n) < 0.05) if off else (rng.random(n) > 0.02)
    exponent = np.clip(np.floor(np.log10(np.maximum(x, 1e-300))), e_min, e_max)
    mantissa = np.clip(np.rint(x / 10.0 ** (exponent - 3)), 1000, 9999)
    index = ((exponent - e_min) * 9000 + mantissa - 1000).astype(np.int64)
    index[x < 10.0**e_min] = len(words) - 1
    return "\t".join(words[index])


def make_matrix_dataset(out: Path, n_genes: int, n_samples: int, seed: int = 0) -> dict[str, Path]:
    """A whole-matrix GCT 1.2 (no ``id`` column) and its attributes; reuse them if present.

    Samples go to the 54 tissues in proportion to their v8 counts (at full size: exactly the
    v8 counts), interleaved by sample id as in GTEx's file; the gene lists are those of
    ``make_dataset`` for the same ``n_genes``.
    """
    from rnaseq_saliency.tissues import tissue_table

    files = make_dataset(out, n_genes, 3, seed)  # the gene lists (and a tiny unused GCT)
    stem = f"{n_genes}x{n_samples}"
    files = {
        "matrix_gct": out / f"GTEx_bench_matrix_gene_tpm_{stem}.gct.gz",
        "matrix_attributes": out / f"matrix_attributes_{n_samples}.txt",
        "genes_pc": files["genes_pc"],
        "genes_all": files["genes_all"],
    }
    if files["matrix_gct"].exists() and files["matrix_attributes"].exists():
        return files
    rng = np.random.default_rng(seed + 1)
    tissues = tissue_table()
    counts = np.array([t.n_samples_v8 for t in tissues], dtype=float)
    # At full size these are the v8 counts; smaller, every tissue keeps at least one sample.
    per_tissue = np.maximum(1, np.floor(counts * n_samples / counts.sum())).astype(int)
    per_tissue[np.argmax(counts)] += n_samples - per_tissue.sum()
    smtsd = np.repeat([t.smtsd for t in tissues], per_tissue)
    ids = [f"GTEX-{i // 18:05X}-{i % 18:02d}26-SM-{i:05X}" for i in range(n_samples)]
    order = rng.permutation(n_samples)  # tissues interleaved along the file
    samples, smtsd = [ids[i] for i in np.sort(order)], smtsd[order]
    ids_pc = set(gene_list(str(files["genes_pc"])))
    with open(files["genes_all"]) as handle:
        genes = [line.rstrip("\n").split("\t") for line in handle.readlines()[1:]]
    vocabulary = value_vocabulary()
    tmp = files["matrix_gct"].with_suffix(".tmp")
    with gzip.open(tmp, "wt", compresslevel=6, newline="\n") as handle:
        handle.write(f"#1.2\n{n_genes}\t{n_samples}\n")
        handle.write("\t".join(["Name", "Description", *samples]) + "\n")
        for gene_id, name in genes:
            coding = gene_id in ids_pc
            level = rng.normal(1.0, 2.0) if coding else rng.normal(-2.0, 2.0)
            off = rng.random() < (0.15 if coding else 0.55)
            row = _vocabulary_row(rng, n_samples, level, off, vocabulary)
            handle.write(f"{gene_id}\t{name}\t{row}\n")
    tmp.replace(files["matrix_gct"])
    with open(files["matrix_attributes"], "w") as handle:
        handle.write("SAMPID\tSMTS\tSMTSD\tSMAFRZE\n")
        handle.writelines(
            f"{s}\t{t.split(' - ')[0]}\t{t}\tRNASEQ\n" for s, t in zip(samples, smtsd, strict=True)
        )
    return files


# ------------------------------------------------------------------------------ children


def gene_list(path: str) -> list[str]:
    with open(path) as handle:
        return [line.split("\t")[0] for line in handle.read().splitlines()[1:]]


def rss_mib() -> float:
    """Peak RSS of this process image, in MiB.

    VmHWM, not ru_maxrss: Linux carries the forking parent's peak into a child's ru_maxrss
    across exec, so a child started by a large parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(task: str, files: dict[str, str], out: str) -> None:
    """Run one measured task in this (child) process; print its seconds and peak increase."""
    from rnaseq_saliency.gct import read_gct
    from rnaseq_saliency.ingest import ingest_matrix, ingest_tissue

    if task == "baseline":
        # The cost of any run, whatever the file size: imports, and what the first calls set
        # up (Arrow compute kernels, thread pools). Memory figures subtract it.
        with tempfile.TemporaryDirectory() as tmp:
            tiny = make_dataset(Path(tmp), n_genes=60, n_samples=3)
            ingest_tissue(tiny["gct"], tiny["attributes"], tiny["genes_pc"], TISSUE, f"{tmp}/x")
        print(json.dumps({"seconds": 0.0, "delta_mib": 0.0, "peak_mib": rss_mib()}))
        return
    if task == "prepare_layouts":
        # Here, not in the parent: a parent holding the matrix would inflate its children's
        # ru_maxrss (see rss_mib).
        from rnaseq_saliency.expression import read_expression

        table = read_expression(out)
        np.save(files["matrix"], table.matrix)
        Path(files["matrix_genes"]).write_text(json.dumps(table.gene_ids))
        print(json.dumps({"seconds": 0.0, "delta_mib": 0.0, "peak_mib": rss_mib()}))
        return

    name, _, variant = task.partition(":")
    matrix = gene_ids = None
    if name.startswith("layout_"):
        # First use of the Parquet writer and reader sets up ~20 MiB that does not grow with
        # the data: pay it on a tiny table, before the measurement starts.
        with tempfile.TemporaryDirectory() as tmp:
            LAYOUTS[variant][0](Path(tmp) / "warm", np.ones((4, 3), np.float32), ["a", "b", "c"])
            LAYOUTS[variant][1](Path(tmp) / "warm")
    if name == "layout_write":
        matrix = np.load(files["matrix"])
        gene_ids = json.loads(Path(files["matrix_genes"]).read_text())
    before = rss_mib()
    back = None
    start, start_cpu = time.perf_counter(), time.process_time()
    if name == "ingest":
        genes, threads = variant.split(",")
        ingest_tissue(files["gct"], files["attributes"], files[genes], TISSUE, out, int(threads))
    elif name == "matrix":
        from rnaseq_saliency.tissues import all_labels

        genes, threads = variant.split(",")
        out_paths = {label: Path(out) / f"{label}.parquet" for label in all_labels()}
        ingest_matrix(
            files["matrix_gct"], files["matrix_attributes"], files[genes], out_paths, int(threads)
        )
    elif name == "read":
        read_gct(files["gct"], gene_list(files["genes_pc"]))
    elif name == "pandas":
        import pandas as pd

        frame = pd.read_csv(files["gct"], sep="\t", skiprows=2, index_col="Name")
        values = frame.loc[gene_list(files["genes_pc"])].drop(columns=["id", "Description"])
        np.ascontiguousarray(values.to_numpy(dtype=np.float32).T)
    elif name == "layout_write":
        LAYOUTS[variant][0](Path(out), matrix, gene_ids)
    elif name == "layout_read":
        back = LAYOUTS[variant][1](Path(out))
    else:
        raise ValueError(f"unknown task {task}")
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    peak = rss_mib()
    if back is not None:  # checked after the measurement: the check takes memory too
        assert back.dtype == np.float32 and back.flags.c_contiguous
        assert np.array_equal(back, np.load(files["matrix"], mmap_mode="r"))
    report = {"seconds": seconds, "cpu": cpu, "delta_mib": peak - before, "peak_mib": peak}
    print(json.dumps(report))


def measure(command: list[str], discard: bool = False) -> dict[str, float]:
    """Run a command: its wall time, CPU time, peak RSS (MiB) and what a child reports.

    ``discard`` sends its output to /dev/null (zcat's), else it is read for the child's report.
    A command that is not one of our children runs under GNU time (``%M``) when there is one,
    for a peak RSS of its own.
    """
    gnu_time = discard and os.path.exists("/usr/bin/time")
    if gnu_time:
        command = ["/usr/bin/time", "-f", "%M", *command]
    with tempfile.TemporaryFile() as stdout_file, tempfile.TemporaryFile() as stderr_file:
        start = time.perf_counter()
        sink = subprocess.DEVNULL if discard else stdout_file
        process = subprocess.Popen(command, stdout=sink, stderr=stderr_file)
        # wait4, not wait: it returns this child's own resource usage.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        stdout_file.seek(0)
        stderr_file.seek(0)
        stdout, stderr = stdout_file.read(), stderr_file.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[:5]} failed: {stderr.decode()[-2000:]}")
    result = {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": float("nan")}
    if gnu_time:
        result["rss_mib"] = int(stderr.decode().split()[-1]) / 1024
    if stdout.strip():
        report = json.loads(stdout.decode().strip().splitlines()[-1])
        result["work"] = report["seconds"]
        result["work_cpu"] = report.get("cpu", 0.0)
        result["delta_mib"] = report["delta_mib"]
        result["rss_mib"] = report["peak_mib"]
    return result


def repeat(command: list[str], times: int, discard: bool = False) -> dict[str, float]:
    """The best of ``times`` runs (least disturbed by other load) for time; max for memory."""
    runs = [measure(command, discard) for _ in range(times)]
    best = {key: min(run[key] for run in runs) for key in runs[0]}
    for key in ("rss_mib", "delta_mib"):
        if key in best:
            best[key] = max(run[key] for run in runs)
    best["wall_median"] = statistics.median(run["wall"] for run in runs)
    best["work_median"] = statistics.median(run.get("work", 0.0) for run in runs)
    return best


# ------------------------------------------------------------------------------ layouts


def _ids(n_samples: int) -> tuple[list[str], list[str]]:
    samples = [f"GTEX-{i:05X}-0426-SM-{i:05X}" for i in range(n_samples)]
    return samples, [s.rsplit("-", 3)[0] for s in samples]


def write_fixed(path: Path, matrix: np.ndarray, gene_ids: list[str]) -> None:
    from rnaseq_saliency.expression import ExpressionTable, write_expression

    samples, donors = _ids(matrix.shape[0])
    write_expression(path, ExpressionTable(samples, donors, gene_ids, matrix))


def read_fixed(path: Path) -> np.ndarray:
    from rnaseq_saliency.expression import read_expression

    return read_expression(path).matrix


GROUP_ROWS = 128


def write_grouped(path: Path, matrix: np.ndarray, gene_ids: list[str]) -> None:
    """A possible write_expression: the same file, written in row groups of 128 samples."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rnaseq_saliency.expression import GENE_IDS_KEY

    samples, donors = _ids(matrix.shape[0])
    values = pa.array(matrix.reshape(-1), type=pa.float32())
    table = pa.table(
        {
            "sample_id": samples,
            "donor_id": donors,
            "expression": pa.FixedSizeListArray.from_arrays(values, matrix.shape[1]),
        }
    ).replace_schema_metadata({GENE_IDS_KEY: json.dumps(gene_ids).encode()})
    pq.write_table(
        table,
        path,
        compression="zstd",
        use_dictionary=["sample_id", "donor_id"],
        row_group_size=GROUP_ROWS,
    )


def read_grouped(path: Path) -> np.ndarray:
    """A possible read_expression: fill one preallocated array, one row group at a time."""
    import pyarrow.parquet as pq

    from rnaseq_saliency.expression import GENE_IDS_KEY

    parquet = pq.ParquetFile(path)
    n_genes = len(json.loads(parquet.schema_arrow.metadata[GENE_IDS_KEY]))
    matrix = np.empty((parquet.metadata.num_rows, n_genes), dtype=np.float32)
    row = 0
    for group in range(parquet.num_row_groups):
        column = parquet.read_row_group(group, columns=["expression"]).column(0)
        for chunk in column.chunks:
            matrix[row : row + len(chunk)] = chunk.flatten().to_numpy().reshape(-1, n_genes)
            row += len(chunk)
    return matrix


def write_wide(path: Path, matrix: np.ndarray, gene_ids: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    samples, donors = _ids(matrix.shape[0])
    columns = {"sample_id": pa.array(samples), "donor_id": pa.array(donors)}
    columns.update({g: pa.array(matrix[:, j]) for j, g in enumerate(gene_ids)})
    pq.write_table(
        pa.table(columns), path, compression="zstd", use_dictionary=["sample_id", "donor_id"]
    )


def read_wide(path: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    genes = table.column_names[2:]
    matrix = np.empty((table.num_rows, len(genes)), dtype=np.float32)
    for j, name in enumerate(genes):
        matrix[:, j] = table.column(name).to_numpy()
    return matrix


LAYOUTS = {
    "fixed": (write_fixed, read_fixed, "fixed_size_list<float32> column (expression.py today)"),
    "grouped": (
        write_grouped,
        read_grouped,
        f"same, in {GROUP_ROWS}-sample row groups, read group by group into one array",
    ),
    "wide": (write_wide, read_wide, "wide table, one float32 column per gene"),
}


# ------------------------------------------------------------------------------ report


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores ({model}), Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genes", type=int, default=56_200)
    parser.add_argument("--samples", type=int, help="default 803, or 17,382 with --matrix")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--matrix", action="store_true", help="the whole-matrix layout instead")
    parser.add_argument("--markdown", type=Path, help="write the results section into this file")
    parser.add_argument(
        "--child", nargs=3, metavar=("TASK", "FILES_JSON", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        task, files_json, out = args.child
        child(task, json.loads(files_json), out)
        return

    if args.samples is None:
        args.samples = 17_382 if args.matrix else 803
    if args.matrix:
        section = matrix_bench(args)
        print(section)
        if args.markdown:
            update_markdown(args.markdown, section, MATRIX_SECTION)
        return
    load_before = os.getloadavg()
    start = time.perf_counter()
    out_dir = HERE / "out"
    files = make_dataset(out_dir, args.genes, args.samples)
    print(f"data ready in {time.perf_counter() - start:.0f} s: {files['gct']}", file=sys.stderr)
    n_pc = len(gene_list(str(files["genes_pc"])))
    pc_parquet = out_dir / f"{TISSUE}_protein_coding_{args.genes}x{args.samples}.parquet"
    paths = {key: str(value) for key, value in files.items()}
    stem = f"{args.genes}x{args.samples}"
    paths["matrix"] = str(out_dir / f"matrix_protein_coding_{stem}.npy")
    paths["matrix_genes"] = str(out_dir / f"matrix_protein_coding_{stem}_genes.json")

    def python(task: str, out: Path | None = None) -> list[str]:
        name = task.replace(":", "_").replace(",", "_")
        out = out or out_dir / f"{TISSUE}_{name}_{args.genes}x{args.samples}.parquet"
        return [sys.executable, __file__, "--child", task, json.dumps(paths), str(out)]

    def run(label: str, command: list[str], n_genes: int = 0, times: int = args.repeats) -> None:
        """Measure a step; ``n_genes`` > 0: the width of the float32 matrix it makes."""
        print(f"running: {label}", file=sys.stderr)
        rows[label] = repeat(command, times, discard=command[0] == "zcat")
        rows[label]["out_mib"] = args.samples * n_genes * 4 / 2**20

    rows: dict[str, dict[str, float]] = {}
    run("zcat > /dev/null (the floor)", ["zcat", paths["gct"]])
    run("baseline: imports + a 60-gene ingest", python("baseline"))
    run(
        f"ingest_tissue, {n_pc} protein-coding genes", python("ingest:genes_pc,1", pc_parquet), n_pc
    )
    run(f"ingest_tissue, {n_pc} genes, threads=2", python("ingest:genes_pc,2"), n_pc)
    run(f"read_gct alone, {n_pc} genes", python("read"), n_pc)
    run(f"ingest_tissue, all {args.genes} genes", python("ingest:genes_all,1"), args.genes)
    run("ingest_tissue, all genes, threads=2", python("ingest:genes_all,2"), args.genes)
    if not args.skip_pandas:
        run(f"naive pandas.read_csv, then {n_pc} genes", python("pandas"), n_pc, times=1)

    # Layouts, on the matrix that the protein-coding ingest wrote: each write and each read
    # in a process of its own, so that each one's peak memory is its own. The parent stays
    # small throughout (see rss_mib).
    measure(python("prepare_layouts", pc_parquet))
    matrix_mib = args.samples * n_pc * 4 / 2**20
    layouts = []
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        for variant, (_, _, description) in LAYOUTS.items():
            target = Path(tmp) / f"{variant}.parquet"
            print(f"running: layout {variant}", file=sys.stderr)
            write = repeat(python(f"layout_write:{variant}", target), args.repeats)
            read = repeat(python(f"layout_read:{variant}", target), args.repeats)
            layouts.append((description, write, read, target.stat().st_size / 2**20))
    load_after = os.getloadavg()

    section = report(args, rows, layouts, files, n_pc, matrix_mib, (load_before, load_after))
    print(section)
    if args.markdown:
        update_markdown(args.markdown, section, SECTION)


def matrix_bench(args: argparse.Namespace) -> str:
    """Time ``ingest_matrix`` on a generated whole-matrix file; return the Markdown section."""
    load_before = os.getloadavg()
    start = time.perf_counter()
    out_dir = HERE / "out"
    files = make_matrix_dataset(out_dir, args.genes, args.samples)
    print(
        f"data ready in {time.perf_counter() - start:.0f} s: {files['matrix_gct']}", file=sys.stderr
    )
    paths = {key: str(value) for key, value in files.items()}
    n_pc = len(gene_list(paths["genes_pc"]))

    def python(task: str) -> list[str]:
        target = out_dir / f"matrix_out_{task.replace(':', '_').replace(',', '_')}"
        target.mkdir(exist_ok=True)
        return [sys.executable, __file__, "--child", task, json.dumps(paths), str(target)]

    rows: dict[str, dict[str, float]] = {}
    steps = [
        ("zcat > /dev/null (the floor)", ["zcat", paths["matrix_gct"]], 0),
        ("baseline: imports + a 60-gene ingest", python("baseline"), 0),
        (
            f"ingest_matrix, {n_pc} protein-coding genes, threads=2",
            python("matrix:genes_pc,2"),
            n_pc,
        ),
        (
            f"ingest_matrix, {n_pc} protein-coding genes, threads=1",
            python("matrix:genes_pc,1"),
            n_pc,
        ),
        (
            f"ingest_matrix, all {args.genes} genes, threads=2",
            python("matrix:genes_all,2"),
            args.genes,
        ),
    ]
    for label, command, n_genes in steps:
        print(f"running: {label}", file=sys.stderr)
        rows[label] = repeat(command, args.repeats, discard=command[0] == "zcat")
        rows[label]["out_mib"] = args.samples * n_genes * 4 / 2**20
    loads = (load_before, os.getloadavg())
    return matrix_report(args, rows, files["matrix_gct"], loads)


def matrix_report(args, rows, gct: Path, loads) -> str:
    import pyarrow

    zcat = rows["zcat > /dev/null (the floor)"]
    baseline = rows["baseline: imports + a 60-gene ingest"]
    lines = [
        MATRIX_SECTION,
        "",
        f"Input: a generated GTEx whole-matrix GCT 1.2 file (`data.layout: matrix`), "
        f"{args.genes:,} genes x {args.samples:,} samples in the 54 tissues"
        + (" at their v8 sample counts" if args.samples == 17_382 else "")
        + f", gzip level 6, {gct.stat().st_size / 2**20:,.0f} MiB; the same TPM-like values "
        f"as above. `ingest_matrix` writes all 54 per-tissue Parquet files. Machine: "
        f"{machine()}; numpy {np.__version__}, pyarrow {pyarrow.__version__}. Load average "
        f"(1 min): {loads[0][0]:.1f} at the start, {loads[1][0]:.1f} at the end. Best of "
        f"{args.repeats} runs (median in brackets); columns as in the table above; the "
        "targets are a work time within 2x of zcat's and a peak RSS above the baseline "
        "within 1.2x of the output matrix.",
        "",
        "| step | wall s | work s | work x zcat | work CPU s | peak RSS MiB "
        "| above baseline MiB | output MiB | / output |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        measured = row["out_mib"] > 0
        above = row["rss_mib"] - baseline["rss_mib"]
        cells = [
            name,
            f"{row['wall']:.1f} ({row['wall_median']:.1f})",
            f"{row['work']:.1f} ({row['work_median']:.1f})" if measured else "-",
            f"{row['work'] / zcat['wall']:.2f}" if measured else "-",
            f"{row['work_cpu']:.1f}" if measured else f"{row['cpu']:.1f}",
            f"{row['rss_mib']:.0f}",
            f"{above:.0f}" if measured else "-",
            f"{row['out_mib']:.0f}" if measured else "-",
            f"{above / row['out_mib']:.2f}" if measured else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _report_intro(args, gct_mib: float, loads) -> list[str]:
    """The section's heading, what was run on what, and how to read the steps table."""
    import pyarrow

    full_size = (
        " (the size of v8 muscle_skeletal)" if (args.genes, args.samples) == (56_200, 803) else ""
    )
    return [
        SECTION,
        "",
        f"Input: a generated GTEx-format per-tissue GCT.gz, {args.genes:,} genes x "
        f"{args.samples} samples{full_size}, gzip level 6, "
        f"{gct_mib:.0f} MiB; TPM-like values with 4 significant digits, about half of them 0. "
        f"Machine: {machine()}; numpy {np.__version__}, pyarrow {pyarrow.__version__}. "
        f"Load average (1 min): {loads[0][0]:.1f} at the start, {loads[1][0]:.1f} at the end; "
        "other jobs share the machine, so each time is the best of "
        f"{args.repeats} runs, with the median in brackets.",
        "",
        "Each row runs in a process of its own. `wall`: the whole process, interpreter start "
        "and imports included; `work`: the step alone, timed inside the process; `x floor`: "
        "divided by the zcat wall time. `CPU`: user + system seconds of the whole process; "
        "`work CPU`: of the step alone (all threads); `work CPU x floor CPU`: divided by "
        "zcat's CPU seconds, the ratio that other load on the machine disturbs least. "
        "`peak RSS`: VmHWM of the process (GNU time's %M for zcat); `above baseline`: minus "
        "that of a process that imports the package and ingests a 60-gene file (costs that "
        "do not grow with the file); `/ output`: that, divided by the size of the float32 "
        "matrix the step produces.",
        "",
    ]


def _steps_table(rows) -> list[str]:
    """One line per measured step, against the zcat floor and the baseline process."""
    floor = rows["zcat > /dev/null (the floor)"]["wall"]
    floor_cpu = rows["zcat > /dev/null (the floor)"]["cpu"]
    baseline = rows["baseline: imports + a 60-gene ingest"]
    lines = [
        "| step | wall s | x floor | work s | work x floor | CPU s | work CPU s "
        "| work CPU x floor CPU | peak RSS MiB | above baseline MiB | / output |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        measured = row["out_mib"] > 0
        cells = [
            name,
            f"{row['wall']:.2f} ({row['wall_median']:.2f})",
            f"{row['wall'] / floor:.2f}",
            f"{row['work']:.2f} ({row['work_median']:.2f})" if measured else "-",
            f"{row['work'] / floor:.2f}" if measured else "-",
            f"{row['cpu']:.2f}",
            f"{row['work_cpu']:.2f}" if measured else "-",
            f"{row['work_cpu'] / floor_cpu:.2f}" if measured else "-",
            f"{row['rss_mib']:.0f}",
            f"{row['rss_mib'] - baseline['rss_mib']:.0f}" if measured else "-",
            f"{(row['rss_mib'] - baseline['rss_mib']) / row['out_mib']:.2f}" if measured else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _layouts_table(args, layouts, n_pc: int, matrix_mib: float) -> list[str]:
    """The Parquet layouts compared: write and read times, peak memory, file size."""
    lines = [
        "",
        f"Parquet layouts for the {n_pc}-gene matrix that the ingest wrote ({args.samples} "
        f"samples, {matrix_mib:.0f} MiB as float32, zstd). Write: from the matrix in memory; "
        "read: from the file to one C-contiguous float32 array (checked equal). `peak above` "
        "is the rise of peak RSS (VmHWM) during the step, beyond the matrix the step starts "
        "from (write) or returns (read), after a warm-up on a tiny table.",
        "",
        "| layout | write s | write peak above MiB | read s | read peak above MiB | file MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for description, write, read, size in layouts:
        lines.append(
            f"| {description} | {write['work']:.2f} | {write['delta_mib']:.0f} "
            f"| {read['work']:.3f} | {read['delta_mib'] - matrix_mib:.0f} | {size:.1f} |"
        )
    return lines


def _ratios(rows, label: str) -> str:
    """A step's times against the floor's and its memory against its output."""
    floor = rows["zcat > /dev/null (the floor)"]["wall"]
    floor_cpu = rows["zcat > /dev/null (the floor)"]["cpu"]
    baseline = rows["baseline: imports + a 60-gene ingest"]
    row = rows[label]
    return (
        f"wall {row['wall'] / floor:.2f}x, work {row['work'] / floor:.2f}x, work CPU "
        f"{row['work_cpu'] / floor_cpu:.2f}x the floor; memory above baseline "
        f"{(row['rss_mib'] - baseline['rss_mib']) / row['out_mib']:.2f}x the output"
    )


def _targets(args, rows, layouts, n_pc: int) -> list[str]:
    """The headline steps against the targets, and what the Parquet write adds."""
    fixed_write = layouts[0][1]["delta_mib"]
    grouped_write = layouts[1][1]["delta_mib"]
    return [
        "",
        "Against the targets (within 2x of the floor; peak memory under 2x the output matrix):",
        "",
        f"- `read_gct`, {n_pc} genes: {_ratios(rows, f'read_gct alone, {n_pc} genes')}.",
        f"- `ingest_tissue`, {n_pc} genes: "
        f"{_ratios(rows, f'ingest_tissue, {n_pc} protein-coding genes')}; with threads=2: "
        f"{_ratios(rows, f'ingest_tissue, {n_pc} genes, threads=2')}.",
        f"- `ingest_tissue`, all {args.genes} genes: "
        f"{_ratios(rows, f'ingest_tissue, all {args.genes} genes')}.",
        f"- Beyond the read, the Parquet write (`write_expression`) raises the peak by about "
        f"{fixed_write:.0f} MiB for the {n_pc}-gene matrix; 128-sample row groups bring that "
        f"to {grouped_write:.0f} MiB at the same file size (layout table).",
    ]


def report(args, rows, layouts, files, n_pc, matrix_mib, loads) -> str:
    """The Markdown section: what was run, on what, and the two tables."""
    gct_mib = files["gct"].stat().st_size / 2**20
    lines = _report_intro(args, gct_mib, loads)
    lines += _steps_table(rows)
    lines += _layouts_table(args, layouts, n_pc, matrix_mib)
    lines += _targets(args, rows, layouts, n_pc)
    return "\n".join(lines) + "\n"


def update_markdown(path: Path, section: str, heading: str) -> None:
    """Replace the ``heading`` section of ``path`` (other sections stay), or append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        rest = "\n" + text[end + 1 :] if end >= 0 else ""  # keep the blank line before it
        text = text[:start] + section.rstrip("\n") + "\n" + rest
    path.write_text(text)


if __name__ == "__main__":
    main()
