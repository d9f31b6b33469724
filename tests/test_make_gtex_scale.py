"""Tests for bench/make_gtex_scale.py and the demo.py extensions it relies on.

The bench runs here at a tiny width (a few hundred genes, two small tissues at their real v8
sample counts); the full size differs only in the gene counts.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake_cli import run_snakemake

from rnaseq_saliency import demo, gtex
from rnaseq_saliency.gct import read_gct
from rnaseq_saliency.genes import read_gtf_genes, select_genes
from rnaseq_saliency.ingest import read_sample_attributes
from rnaseq_saliency.tissues import tissue_table

REPO = Path(__file__).resolve().parents[1]
TISSUES = ["kidney_medulla", "bladder"]  # 4 and 21 v8 samples
SIZES = {"n_coding": 300, "n_noncoding": 200, "n_profiled": 100}
SYNTHETIC = re.compile(r"^ENSG9\d{10}\.1$")


@pytest.fixture(scope="module")
def bench(bench_importable: Path) -> object:
    import make_gtex_scale

    return make_gtex_scale


@pytest.fixture(scope="module")
def dataset(bench, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gtex_scale")
    summary = bench.write_gtex_scale(out, tissues=TISSUES, block_genes=128, processes=2, **SIZES)
    return out, summary


def gct_path(out: Path, label: str) -> Path:
    return out / gtex.tissue_file_name("v8", "tpm", label)


def digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def protein_coding_ids() -> set[str]:
    text = demo._read_package_text("gencode_v26_protein_coding.tsv.gz", gzipped=True)
    return {line.split("\t")[0] for line in text.splitlines()[1:]}


# ------------------------------------------------------------------ the bench's dataset


def test_writes_gtex_named_files_for_the_chosen_tissues_only(dataset) -> None:
    out, summary = dataset
    names = {p.name for p in out.iterdir()}
    assert {gtex.tissue_file_name("v8", "tpm", t) for t in TISSUES} <= names
    assert len([n for n in names if n.endswith(".gct.gz")]) == len(TISSUES)
    for name in (
        gtex.attributes_file_name("v8"),
        gtex.gtf_file_name("v8"),
        demo.SUBJECT_FILE,
        demo.SPECIFIC_GENES_FILE,
    ):
        assert name in names
    assert not [n for n in names if n.startswith(".")], "temporary files left behind"
    assert summary["genes"] == sum(SIZES[k] for k in ("n_coding", "n_noncoding"))


def test_tissues_have_their_real_v8_sample_counts(dataset) -> None:
    out, _ = dataset
    v8 = {t.label: t.n_samples_v8 for t in tissue_table()}
    for label in TISSUES:
        with gzip.open(gct_path(out, label), "rt") as handle:
            assert handle.readline() == "#1.3\n"
            n_genes, n_columns, *metadata = (int(x) for x in handle.readline().split("\t"))
        n_samples = n_columns - 2  # GTEx counts Name and Description as columns
        assert metadata == [0, 0]
        assert n_samples == v8[label]
        assert n_genes == SIZES["n_coding"] + SIZES["n_noncoding"]


def test_genes_real_protein_coding_and_well_formed_synthetic_in_genome_order(
    bench, dataset
) -> None:
    out, _ = dataset
    gtf = read_gtf_genes(out / gtex.gtf_file_name("v8"))
    coding = gtf.loc[gtf["gene_type"] == "protein_coding", "gene_id"]
    other = gtf.loc[gtf["gene_type"] != "protein_coding"]
    assert len(coding) == SIZES["n_coding"] and len(other) == SIZES["n_noncoding"]
    assert set(coding) <= protein_coding_ids()
    assert all(SYNTHETIC.match(gene) for gene in other["gene_id"])
    assert set(other["gene_type"]) <= set(bench.NONCODING_TYPES)
    assert other["gene_type"].nunique() > 3
    # The demo's profiled genes are among the protein-coding ones.
    assert set(demo.load_demo_genes(SIZES["n_profiled"]).gene_id) <= set(coding)
    # The GCT lists the GTF's genes in the same, genome order.
    matrix = read_gct(gct_path(out, TISSUES[1]))
    assert matrix.gene_ids == gtf["gene_id"].tolist()
    positions = [
        line.split("\t")
        for line in (out / gtex.gtf_file_name("v8")).read_text().splitlines()
        if not line.startswith("#") and line.split("\t")[2] == "gene"
    ]
    chroms = list(dict.fromkeys(p[0] for p in positions))
    key = [(chroms.index(p[0]), int(p[3])) for p in positions]
    assert key == sorted(key)
    assert chroms.index("chr1") == 0


def test_workflow_filter_keeps_exactly_the_protein_coding_genes(dataset) -> None:
    out, _ = dataset
    genes, _ = select_genes(out / gtex.gtf_file_name("v8"), "protein_coding")
    assert len(genes) == SIZES["n_coding"]
    assert not any(SYNTHETIC.match(gene) for gene in genes["gene_id"])


def test_attributes_cover_every_sample_with_its_tissue(dataset) -> None:
    out, _ = dataset
    attributes = read_sample_attributes(out / gtex.attributes_file_name("v8"))
    smtsd = dict(zip(attributes["SAMPID"], attributes["SMTSD"], strict=True))
    by_label = {t.label: t.smtsd for t in tissue_table()}
    for label in TISSUES:
        samples = read_gct(gct_path(out, label)).sample_ids
        assert samples == sorted(samples)
        assert {smtsd[s] for s in samples} == {by_label[label]}
    # Every tissue's samples are described, written or not: 17,382 RNA-seq rows.
    rnaseq = attributes.loc[
        (attributes["SMAFRZE"] == "RNASEQ") & ~attributes["SAMPID"].str.startswith("K-562")
    ]
    assert len(rnaseq) == sum(t.n_samples_v8 for t in tissue_table())


def test_values_follow_the_demo_model(dataset) -> None:
    out, _ = dataset
    matrix = read_gct(gct_path(out, "bladder"))
    values = matrix.matrix
    assert values.min() >= 0 and np.isfinite(values).all()
    synthetic = np.array([bool(SYNTHETIC.match(g)) for g in matrix.gene_ids])
    # Non-coding genes are drawn low: most of their values are zero or near it.
    assert np.median(values[:, synthetic]) < 0.5 < np.median(values[:, ~synthetic])


def test_same_files_whatever_the_number_of_processes(bench, dataset, tmp_path: Path) -> None:
    out, _ = dataset
    bench.write_gtex_scale(tmp_path, tissues=TISSUES, block_genes=128, processes=1, **SIZES)
    assert digests(tmp_path) == digests(out)


def test_rejects_bad_arguments(bench, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--processes"):
        bench.write_gtex_scale(tmp_path, processes=3, **SIZES)
    with pytest.raises(ValueError, match="not GTEx v8 tissue labels"):
        bench.write_gtex_scale(tmp_path, tissues=["spleen", "moon"], **SIZES)
    with pytest.raises(ValueError, match="--profiled-genes"):
        bench.write_gtex_scale(tmp_path, n_coding=50, n_noncoding=0, n_profiled=100)


# ------------------------------------------------------------ the demo.py extensions


def test_write_gct_from_blocks_gives_the_same_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = np.round(rng.exponential(5.0, (7, 3)), 3)
    genes, names, samples = [f"G{i}" for i in range(7)], [f"N{i}" for i in range(7)], list("abc")
    demo.write_gct(tmp_path / "whole.gct.gz", genes, names, samples, values, integer=False)
    blocks = (values[i : i + 3] for i in range(0, 7, 3))
    demo.write_gct(tmp_path / "blocks.gct.gz", genes, names, samples, blocks, integer=False)
    assert (tmp_path / "whole.gct.gz").read_bytes() == (tmp_path / "blocks.gct.gz").read_bytes()


@pytest.mark.parametrize(
    ("blocks", "message"),
    [([np.zeros((2, 3)), np.zeros((2, 3))], "values for 4 genes"),
     ([np.zeros((4, 3)), np.zeros((2, 3))], "does not fit"),
     ([np.zeros((5, 2))], "does not fit")],
)  # fmt: skip
def test_write_gct_rejects_blocks_that_do_not_fit(tmp_path: Path, blocks, message) -> None:
    path = tmp_path / "x.gct.gz"
    with pytest.raises(ValueError, match=message):
        demo.write_gct(path, list("ABCDE"), list("abcde"), list("xyz"), iter(blocks), integer=True)
    assert not path.exists()


def simulation_inputs(n_genes: int = 40, n_donors: int = 12):
    rng = np.random.default_rng(1)
    return dict(
        mean=np.exp(rng.normal(1.0, 1.0, n_genes)),
        dispersion=np.full(n_genes, 0.3),
        donor_effect=rng.standard_normal((n_genes, n_donors)),
        donor_rows=np.arange(0, n_donors, 2),
        female_silent=np.zeros(n_genes, dtype=bool),
        male=np.ones(n_donors, dtype=bool),
        length=np.full(n_genes, 2000.0),
    )


def test_simulate_tissue_draws_as_before_when_nothing_is_given() -> None:
    inputs = simulation_inputs()
    default = demo.simulate_tissue(np.random.default_rng(5), **inputs)
    # The same stream, drawn in the documented order: heterogeneity, noise, library.
    rng = np.random.default_rng(5)
    heterogeneity = demo.draw_heterogeneity(rng)
    noise_then_library = np.random.default_rng(5)
    noise_then_library.normal()  # skip heterogeneity's draw
    noise_then_library.standard_normal((40, 6))
    library = demo.draw_library(noise_then_library, 6)
    given = demo.simulate_tissue(rng, **inputs, heterogeneity=heterogeneity)
    for a, b in zip(default, given, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(default[2], library)


def test_simulate_tissue_uses_the_library_it_is_given() -> None:
    inputs = simulation_inputs()
    library = np.full(6, 10e6)
    reads, tpm, returned = demo.simulate_tissue(
        np.random.default_rng(2), **inputs, heterogeneity=1.0, library=library
    )
    assert returned is library
    scale = inputs["length"][:, None] * library[None, :] / (1e6 * demo.MEAN_TRANSCRIPT_LENGTH)
    np.testing.assert_allclose(tpm, np.round(reads / scale, demo.TPM_DECIMALS))


def test_write_gtf_writes_each_genes_type(tmp_path: Path) -> None:
    genes = demo.load_demo_genes(3)
    typed = demo.DemoGenes(**{**genes.__dict__, "gene_type": ["protein_coding", "lincRNA", "TEC"]})
    demo.write_gtf(tmp_path / "typed.gtf", typed)
    demo.write_gtf(tmp_path / "plain.gtf", genes)
    assert read_gtf_genes(tmp_path / "typed.gtf")["gene_type"].tolist() == [
        "protein_coding",
        "lincRNA",
        "TEC",
    ]
    assert set(read_gtf_genes(tmp_path / "plain.gtf")["gene_type"]) == {"protein_coding"}
    assert 'transcript_type "lincRNA"' in (tmp_path / "typed.gtf").read_text()


# ------------------------------------------------------------------ a small dress rehearsal

REHEARSAL_TISSUES = ["kidney_medulla", "bladder", "uterus"]  # 4, 21 and 142 v8 samples


@pytest.mark.workflow
def test_workflow_runs_on_the_bench_dataset_and_benchmarks_every_job(bench, tmp_path: Path) -> None:
    """Issue 8's rehearsal in small: the bench's files through ``data.source: local``, with
    every job leaving a benchmark file that bench/collect_benchmarks.py reads."""
    data = tmp_path / "gtex_scale"
    summary = bench.write_gtex_scale(
        data, tissues=REHEARSAL_TISSUES, block_genes=128, processes=1, **SIZES
    )
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = {
        "data": {"source": "local", "local_dir": str(data), "tissues": REHEARSAL_TISSUES},
        "augment": {"min_samples": 30},
        "model": {"hidden": [32, 16, 8]},
        "train": {"epochs": 2, "batch_size": 32},
        "saliency": {"top_n": 5, "validation_top_k": 5},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "--benchmark-extended")

    samples = pd.read_csv(workdir / "results/split/samples.tsv", sep="\t")
    assert len(samples) == sum(row["n_samples"] for row in summary["tissues"]) == 167
    genes = pd.read_csv(workdir / "results/genes/selected_genes.tsv", sep="\t")
    assert len(genes) == SIZES["n_coding"]  # the synthetic non-coding genes are filtered out

    steps = re.search(r"(\d+) of \1 steps \(100%\) done", result.stdout + result.stderr)
    assert steps, "no completion line in Snakemake's output"
    import collect_benchmarks  # bench/ is on sys.path while the `bench` fixture lives

    jobs = collect_benchmarks.collect(workdir / "benchmarks")
    assert len(jobs) == int(steps.group(1)) - 1  # every job but the target rule `all`
    per_rule = {row.rule: row.jobs for row in collect_benchmarks.summarise(jobs)}
    for rule in ("ingest", "augment", "saliency", "saliency_heatmap"):
        assert per_rule[rule] == len(REHEARSAL_TISSUES), rule
    for rule in ("select_genes", "split", "train", "evaluate", "top_genes_per_tissue"):
        assert per_rule[rule] == 1, rule
    assert all(job.wall_s > 0 for job in jobs)


def test_every_rule_carries_a_benchmark_directive() -> None:
    rules_dir = REPO / "workflow/rules"
    missing = []
    for smk in sorted(rules_dir.glob("*.smk")):
        blocks = re.split(r"^\s*rule (\w+):\n", smk.read_text(), flags=re.MULTILINE)
        for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
            if "benchmark:" not in body:
                missing.append(f"{smk.name}: {name}")
    assert not missing, missing
