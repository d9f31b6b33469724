"""Tests for the bundled demo dataset (rnaseq_saliency.demo) and its builder (demo_build)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import re
import runpy
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rnaseq_saliency import demo, demo_build, gtex
from rnaseq_saliency.gct import read_gct
from rnaseq_saliency.settings import DemoSettings
from rnaseq_saliency.tissues import all_labels, smtsd_to_label, tissue_table

DEFAULTS = {"seed": 20170605, "n_genes": 3000, "sample_scale": 0.1, "min_samples_per_tissue": 4}
SMALL = {"n_genes": 150, "sample_scale": 0.02, "min_samples_per_tissue": 3}
DATA = Path(demo.__file__).parent / "data"
VERSIONED_ID = re.compile(r"^ENSG\d{11}\.\d+$")
SAMPLE_ID = re.compile(r"^GTEX-[0-9A-Z]{5}-\d{4}-SM-[0-9A-Z]{5}$")


# ---------------------------------------------------------------- independent readers


def parse_gct(path: Path) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """A deliberately simple reader of GTEx's per-tissue GCT 1.3, independent of the package's.

    Returns gene ids, gene names, sample ids and the genes x samples matrix, after checking the
    version line, the dims line (columns = samples + Name + Description, as in real GTEx
    files; no metadata) against the table, the header and the ``id`` column.
    """
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        lines = handle.read().split("\n")
    assert lines[-1] == "", f"{path}: must end with a newline"
    lines = lines[:-1]
    assert lines[0] == "#1.3", f"{path}: version line {lines[0]!r}"
    n_rows, n_named_cols, n_row_meta, n_col_meta = (int(x) for x in lines[1].split("\t"))
    assert (n_row_meta, n_col_meta) == (0, 0), lines[1]
    n_cols = n_named_cols - 2
    header = lines[2].split("\t")
    assert header[:3] == ["id", "Name", "Description"], header[:3]
    rows = [line.split("\t", 3) for line in lines[3:]]  # id, Name, Description, values
    assert len(rows) == n_rows, f"{path}: dims say {n_rows} rows, found {len(rows)}"
    assert len(header) - 3 == n_cols, f"{path}: dims say {n_cols} samples, header differs"
    assert all(len(row) == 4 and row[3].count("\t") == n_cols - 1 for row in rows)
    assert [row[0] for row in rows] == [str(i) for i in range(n_rows)]
    values = pd.read_csv(
        io.StringIO("\n".join(row[3] for row in rows)), sep="\t", header=None, dtype=np.float64
    ).to_numpy()
    assert values.shape == (n_rows, n_cols)
    return [row[1] for row in rows], [row[2] for row in rows], header[3:], values


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def read_gmt(path: Path) -> dict[str, set[str]]:
    return {
        fields[0]: set(fields[2:])
        for fields in (line.rstrip("\n").split("\t") for line in path.open(encoding="utf-8"))
    }


def tpm_file(out: Path, label: str, measure: str = "tpm") -> Path:
    return out / gtex.tissue_file_name("v8", measure, label)


def digest_all(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
    }


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full default demo (3,000 genes, ~1,750 samples): what the quick start writes."""
    out = tmp_path_factory.mktemp("demo_default")
    demo.write_demo_dataset(out, **DEFAULTS)
    return out


@pytest.fixture(scope="module")
def default_tables(
    default_demo: Path,
) -> dict[str, tuple[list[str], list[str], list[str], np.ndarray]]:
    return {label: parse_gct(tpm_file(default_demo, label)) for label in all_labels()}


@pytest.fixture(scope="module")
def attributes(default_demo: Path) -> list[dict[str, str]]:
    return read_tsv(default_demo / gtex.attributes_file_name("v8"))


# ---------------------------------------------------------------- file formats


def test_every_tissue_file_is_a_gtex_per_tissue_gct(default_demo: Path, default_tables) -> None:
    assert sorted(default_tables) == sorted(all_labels())
    first_ids, first_names, _, _ = default_tables["liver"]
    assert len(first_ids) == DEFAULTS["n_genes"]
    assert all(VERSIONED_ID.match(gene) for gene in first_ids)
    assert all(first_names) and len(set(first_ids)) == len(first_ids)
    for label, (ids, names, samples, values) in default_tables.items():
        assert ids == first_ids and names == first_names, label
        assert samples == sorted(samples) and len(set(samples)) == len(samples)
        assert all(SAMPLE_ID.match(sample) for sample in samples), label
        assert np.isfinite(values).all() and (values >= 0).all(), label
        assert (values == 0).any() and (values > 0).mean() > 0.5, label


def test_genes_are_real_gencode_v26_with_symbols_in_genome_order(default_tables) -> None:
    gencode = pd.read_csv(DATA / "gencode_v26_protein_coding.tsv.gz", sep="\t")
    ids, names, _, _ = default_tables["lung"]
    position = {gene: i for i, gene in enumerate(gencode["gene_id"])}
    assert all(gene in position for gene in ids)
    assert [position[gene] for gene in ids] == sorted(position[gene] for gene in ids)
    symbol = dict(zip(gencode["gene_id"], gencode["gene_name"], strict=True))
    assert names == [symbol[gene] for gene in ids]


def test_gzip_headers_carry_no_time_or_name(default_demo: Path) -> None:
    header = tpm_file(default_demo, "liver").read_bytes()[:10]
    assert header[:2] == b"\x1f\x8b"
    assert header[3] & 0x08 == 0, "FNAME flag set: the temporary file name would leak in"
    assert header[4:8] == b"\0\0\0\0", "mtime must be 0 for byte-identical files"


def test_gtf_holds_the_demo_genes_as_protein_coding_gene_lines(default_demo: Path, default_tables):
    gene_lines = []
    for line in (default_demo / gtex.gtf_file_name("v8")).read_text().splitlines():
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        assert len(fields) == 9
        if fields[2] == "gene":
            gene_lines.append(fields)
    attributes = [dict(re.findall(r'(\w+) "([^"]*)"', fields[8])) for fields in gene_lines]
    ids, names, _, _ = default_tables["liver"]
    assert [a["gene_id"] for a in attributes] == ids
    assert [a["gene_name"] for a in attributes] == names
    assert {a["gene_type"] for a in attributes} == {"protein_coding"}
    gencode = pd.read_csv(DATA / "gencode_v26_protein_coding.tsv.gz", sep="\t").set_index("gene_id")
    for fields, a in zip(gene_lines[:50], attributes[:50], strict=True):
        row = gencode.loc[a["gene_id"]]
        assert (fields[0], int(fields[3]), int(fields[4]), fields[6]) == (
            row["chrom"], row["start"], row["end"], row["strand"],
        )  # fmt: skip


def test_reads_back_through_the_package_gct_reader(default_demo: Path, default_tables) -> None:
    gct = pytest.importorskip("rnaseq_saliency.gct")
    ids, _, samples, values = default_tables["pancreas"]
    matrix = gct.read_gct(tpm_file(default_demo, "pancreas"))
    assert matrix.sample_ids == samples and matrix.gene_ids == ids
    np.testing.assert_array_equal(matrix.matrix, values.T.astype(np.float32))


# ---------------------------------------------------------------- samples, donors, attributes


def test_sample_counts_are_the_scaled_v8_counts(default_tables) -> None:
    for tissue in tissue_table():
        expected = max(4, math.floor(tissue.n_samples_v8 * 0.1 + 0.5))
        assert len(default_tables[tissue.label][2]) == expected, tissue.label
    assert len(default_tables["kidney_medulla"][2]) == 4
    assert len(default_tables["muscle_skeletal"][2]) == 80
    assert sum(len(table[2]) for table in default_tables.values()) == 1757


def test_attributes_describe_exactly_the_gct_samples(default_tables, attributes) -> None:
    columns = set(attributes[0])
    assert {"SAMPID", "SMTS", "SMTSD", "SMAFRZE", "SMRIN", "SMTSISCH", "SMUBRID"} <= columns
    by_id = {row["SAMPID"]: row for row in attributes}
    assert len(by_id) == len(attributes), "SAMPID repeats"
    in_files = set()
    for label, (_, _, samples, _) in default_tables.items():
        for sample in samples:
            row = by_id[sample]
            assert row["SMAFRZE"] == "RNASEQ"
            assert smtsd_to_label(row["SMTSD"]) == label
            assert 1.0 <= float(row["SMRIN"]) <= 10.0
        in_files.update(samples)
    rnaseq = {row["SAMPID"] for row in attributes if row["SMAFRZE"] == "RNASEQ"}
    cml = [row for row in attributes if row["SMTSD"] == demo.CML_SMTSD]
    assert cml and all(row["SMAFRZE"] == "RNASEQ" for row in cml)
    assert smtsd_to_label(demo.CML_SMTSD) not in all_labels()
    assert rnaseq - in_files == {row["SAMPID"] for row in cml}
    assert {row["SMAFRZE"] for row in attributes} >= {"RNASEQ", "WGS", "EXCLUDE"}
    assert by_id[default_tables["brain_cortex"][2][0]]["SMTS"] == "Brain"


def test_donors_give_samples_to_many_tissues_and_sexes_fit(default_demo: Path, default_tables):
    subjects = {row["SUBJID"]: row["SEX"] for row in read_tsv(default_demo / demo.SUBJECT_FILE)}
    tissues_of: dict[str, list[str]] = defaultdict(list)
    for label, (_, _, samples, _) in default_tables.items():
        donors = [gtex.donor_id(sample) for sample in samples]
        assert len(set(donors)) == len(donors), f"{label}: a donor gave two samples"
        for donor in donors:
            tissues_of[donor].append(label)
            expected = {"testis": "1", "prostate": "1"}.get(label)
            if label in demo.FEMALE_ONLY:
                expected = "2"
            if expected:
                assert subjects[donor] == expected, f"{label} sample from a donor of sex {donor}"
    assert set(tissues_of) <= set(subjects)
    per_donor = [len(labels) for labels in tissues_of.values()]
    assert 80 <= len(tissues_of) <= 110  # round(948 * 0.1) = 95
    assert np.mean(per_donor) > 10 and min(per_donor) < max(per_donor)
    assert Counter(subjects.values())["1"] > Counter(subjects.values())["2"]


def test_sample_counts_hold_at_tiny_scales(tmp_path: Path) -> None:
    demo.write_demo_dataset(tmp_path, seed=3, n_genes=100, sample_scale=0.005,
                            min_samples_per_tissue=5)  # fmt: skip
    for label in ("testis", "uterus", "whole_blood"):
        assert len(parse_gct(tpm_file(tmp_path, label))[2]) == 5


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        demo.write_demo_dataset(tmp_path / name, seed=seed, **SMALL)
    a, b, c = (digest_all(tmp_path / name) for name in "abc")
    assert a == b
    assert len(a) == 54 + 4  # GCTs; attributes, subjects, GTF, tissue-specific genes
    gct_names = [name for name in a if name.endswith(".gct.gz")]
    assert all(a[name] != c[name] for name in gct_names)
    samples_a = parse_gct(tpm_file(tmp_path / "a", "liver"))[2]
    samples_c = parse_gct(tpm_file(tmp_path / "c", "liver"))[2]
    assert samples_a != samples_c


def test_reads_are_integer_counts_consistent_with_tpm(tmp_path: Path) -> None:
    demo.write_demo_dataset(tmp_path / "tpm", seed=11, measure="tpm", **SMALL)
    demo.write_demo_dataset(tmp_path / "reads", seed=11, measure="reads", **SMALL)
    ids, _, samples, tpm = parse_gct(tpm_file(tmp_path / "tpm", "liver"))
    ids_r, _, samples_r, reads = parse_gct(tpm_file(tmp_path / "reads", "liver", "reads"))
    assert (ids_r, samples_r) == (ids, samples)
    text = gzip.open(tpm_file(tmp_path / "reads", "liver", "reads"), "rt").read().split("\n")[3]
    assert all(field.isdigit() for field in text.split("\t")[3:])
    gencode = pd.read_csv(DATA / "gencode_v26_protein_coding.tsv.gz", sep="\t").set_index("gene_id")
    length = demo.effective_length(gencode.loc[ids, "start"], gencode.loc[ids, "end"])
    assert ((reads == 0) == (tpm == 0)).mean() > 0.99  # TPM rounding can zero a single read
    counted = reads > 0
    ratio = tpm * length[:, None] / np.where(counted, reads, 1)  # TPM per read per bp: 1e6*L/N
    for j in range(len(samples)):
        values = ratio[counted[:, j] & (reads[:, j] >= 100), j]
        np.testing.assert_allclose(values, np.median(values), rtol=0.02)


# ---------------------------------------------------------------- biology


def _mean_log(default_tables, label: str) -> np.ndarray:
    return np.log1p(default_tables[label][3]).mean(axis=1)


def test_tissue_specific_genes_are_higher_in_their_tissue(default_demo: Path, default_tables):
    listed = read_tsv(default_demo / demo.SPECIFIC_GENES_FILE)
    markers = read_gmt(DATA / "hpa_tissue_enriched.gmt")
    ids = default_tables["liver"][0]
    row = {gene: i for i, gene in enumerate(ids)}
    means = {label: _mean_log(default_tables, label) for label in default_tables}
    per_tissue = Counter(entry["tissue"] for entry in listed)
    for label in ("pancreas", "liver", "testis", "muscle_skeletal"):
        assert per_tissue[label] >= 40, label
    for entry in listed:
        i, gene = row[entry["gene_id"]], entry["gene_id"]
        assert gene in markers[entry["tissue"]]
        others = [label for label in means if gene not in markers.get(label, ())]
        assert means[entry["tissue"]][i] > max(means[label][i] for label in others), entry


def test_related_tissues_are_close_but_not_identical(default_tables) -> None:
    cortex = _mean_log(default_tables, "brain_cortex")
    ba9 = _mean_log(default_tables, "brain_frontal_cortex_ba9")
    liver = _mean_log(default_tables, "liver")
    assert np.corrcoef(cortex, ba9)[0, 1] > 0.99
    assert np.abs(cortex - ba9).mean() < 0.25 * np.abs(cortex - liver).mean()
    # They share one HPA profile; only the demo's tissue deviations tell them apart, and those
    # stand well above the noise of a ~20-sample mean (about 0.05 log units).
    assert np.sum(np.abs(cortex - ba9) > 0.4) >= 15


def test_shared_profiles_get_distinct_tissue_means() -> None:
    genes = demo.load_demo_genes(500)
    labels = all_labels()
    cortex, ba9 = labels.index("brain_cortex"), labels.index("brain_frontal_cortex_ba9")
    np.testing.assert_array_equal(genes.profiles[:, cortex], genes.profiles[:, ba9])
    means = demo.tissue_means(np.random.default_rng(0), genes.profiles)
    differs = means[:, cortex] != means[:, ba9]
    assert 0 < differs.mean() < 0.2  # a sparse deviation, not a different tissue


def test_y_genes_are_silent_in_female_donors(default_demo: Path, default_tables) -> None:
    gencode = pd.read_csv(DATA / "gencode_v26_protein_coding.tsv.gz", sep="\t").set_index("gene_id")
    ids, _, samples, values = default_tables["lung"]
    chr_y = np.array([gencode.loc[gene, "chrom"] == "chrY" for gene in ids])
    subjects = {row["SUBJID"]: row["SEX"] for row in read_tsv(default_demo / demo.SUBJECT_FILE)}
    female = np.array([subjects[gtex.donor_id(sample)] == "2" for sample in samples])
    if chr_y.any():
        assert (values[np.ix_(chr_y, female)] == 0).all()


# The planted shortcut (issue 21), spelled out here rather than read from the module, so that a
# demo without it fails.
PLANTED_TISSUE = "colon_transverse"
PLANTED_GENES = ("FOSB", "ATF3", "NR4A1", "NR4A3", "IER3", "KLF4", "CYR61", "MYC")


def _ischemic_minutes(attributes: list[dict[str, str]], samples: list[str]) -> np.ndarray:
    by_id = {row["SAMPID"]: row["SMTSISCH"] for row in attributes}
    return np.array([float(by_id[sample]) for sample in samples])


def test_ischemic_time_is_a_planted_shortcut_of_one_tissue(default_tables, attributes) -> None:
    from scipy.stats import spearmanr

    rho, median, ischemia = {}, {}, {}
    for label, (_, names, samples, values) in default_tables.items():
        rows = [names.index(gene) for gene in PLANTED_GENES]
        minutes = _ischemic_minutes(attributes, samples)
        ischemia[label] = minutes.mean()
        if len(samples) >= 20:
            rho[label] = [spearmanr(minutes, values[row]).statistic for row in rows]
        median[label] = np.median(values[rows], axis=1)
    planted = _ischemic_minutes(attributes, default_tables[PLANTED_TISSUE][2])
    assert planted.min() >= 600 and planted.max() <= 1600
    assert ischemia[PLANTED_TISSUE] > max(v for k, v in ischemia.items() if k != PLANTED_TISSUE)
    # Within the tissue every planted gene follows ischemic time; elsewhere none does.
    assert min(rho[PLANTED_TISSUE]) > 0.5, rho[PLANTED_TISSUE]
    for label, values in rho.items():
        if label != PLANTED_TISSUE:
            assert abs(np.mean(values)) < 0.3, (label, values)
    # And a classifier can learn them: far above their level in the other tissues.
    others = np.median([m for k, m in median.items() if k != PLANTED_TISSUE], axis=0)
    assert (median[PLANTED_TISSUE] > 4 * others).all(), (median[PLANTED_TISSUE], others)


def test_planted_genes_are_in_every_demo_and_leave_the_default_genes_alone() -> None:
    lines = gzip.decompress((DATA / "demo_profiles.tsv.gz").read_bytes()).decode().splitlines()
    first_ids = [line.split("\t")[0] for line in lines[1:3001]]
    default = demo.load_demo_genes(3000)
    assert sorted(default.gene_id) == sorted(first_ids)  # the default demo's genes as before
    small = demo.load_demo_genes(150)
    assert len(small.gene_id) == 150 and set(PLANTED_GENES) <= set(small.gene_name)
    assert set(first_ids[:142]) <= set(small.gene_id)


# ---------------------------------------------------------------- errors


def test_demo_rejects_other_releases_and_too_many_genes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.release"):
        demo.write_demo_dataset(tmp_path, seed=1, release="v10", **SMALL)
    with pytest.raises(ValueError, match=r"demo\.n_genes.*12000 genes"):
        demo.write_demo_dataset(tmp_path, seed=1, n_genes=19_291, sample_scale=0.1,
                                min_samples_per_tissue=4)  # fmt: skip
    with pytest.raises(ValueError, match=r"demo\.sample_scale"):
        demo.write_demo_dataset(tmp_path, seed=1, n_genes=100, sample_scale=0.0,
                                min_samples_per_tissue=4)  # fmt: skip
    assert not list(tmp_path.iterdir()), "a failed call must leave nothing behind"


# ---------------------------------------------------------------- the Snakemake adapter


class _Output(SimpleNamespace):
    """Stands in for Snakemake's named output list: attributes, and iterable over all paths."""

    def __iter__(self):
        return iter([*self.gct, self.attributes, self.gtf])


def test_adapter_writes_the_rule_outputs(tmp_path: Path, repo: Path) -> None:
    out = tmp_path / "resources" / "demo"
    output = _Output(
        gct=[str(out / gtex.tissue_file_name("v8", "tpm", label)) for label in all_labels()],
        attributes=str(out / gtex.attributes_file_name("v8")),
        gtf=str(out / gtex.gtf_file_name("v8")),
    )
    snakemake = SimpleNamespace(
        output=output,
        params=SimpleNamespace(settings=DemoSettings(release="v8", measure="tpm", seed=5, **SMALL)),
        log=[str(tmp_path / "logs" / "demo.log")],
    )
    runpy.run_path(str(repo / "scripts" / "demo.py"), init_globals={"snakemake": snakemake})
    assert all(Path(path).is_file() for path in output)
    assert "150 genes" in (tmp_path / "logs" / "demo.log").read_text()


# ---------------------------------------------------------------- committed data and builder


def test_committed_profiles_and_markers_are_consistent() -> None:
    path = DATA / "demo_profiles.tsv.gz"
    assert path.stat().st_size < 1_500_000
    profiles = pd.read_csv(path, sep="\t")
    assert list(profiles.columns) == ["gene_id", "gene_name", "tier", *all_labels()]
    assert len(profiles) == demo_build.DEFAULT_POOL and profiles["gene_id"].is_unique
    assert profiles.iloc[:, 3:].notna().all().all() and (profiles.iloc[:, 3:] >= 0).all().all()
    tiers = profiles["tier"].tolist()
    n_enriched = tiers.count("enriched")
    assert 0 < n_enriched < 3000 and tiers[:n_enriched] == ["enriched"] * n_enriched
    gencode = pd.read_csv(DATA / "gencode_v26_protein_coding.tsv.gz", sep="\t")
    assert set(profiles["gene_id"]) <= set(gencode["gene_id"])
    markers = read_gmt(DATA / "hpa_tissue_enriched.gmt")
    assert set(markers) <= set(all_labels())
    assert set().union(*markers.values()) <= set(gencode["gene_id"])
    name = dict(zip(gencode["gene_id"], gencode["gene_name"], strict=True))
    assert {"PRSS1", "CPA1", "CELA3A"} & {name[g] for g in markers["pancreas"]}
    assert {"ALB", "APOA2", "F9"} & {name[g] for g in markers["liver"]}
    assert markers["brain_cortex"] == markers["brain_frontal_cortex_ba9"]
    assert "whole_blood" not in markers  # blood-cell columns are not in the 4x list
    assert "Human Protein Atlas" in (DATA / "NOTICE.md").read_text()


def _tiny_inputs(directory: Path) -> Path:
    """A 54-label tissue map over three HPA tissues, an HPA table and a 4x list."""
    directory.mkdir()
    mixes = {label: "tA:1" for label in all_labels()}
    mixes["liver"] = "tB:1"
    mixes["pancreas"] = "tC:0.6;tB:0.4"
    with open(directory / "gtex_to_hpa_tissue_map.tsv", "w") as handle:
        handle.write("label\thpa_mix\tnote\n")
        handle.writelines(f"{label}\t{mix}\t\n" for label, mix in mixes.items())
    gencode = pd.read_csv(DATA / "gencode_v26_protein_coding.tsv.gz", sep="\t").head(8)
    base = [gene.split(".")[0] for gene in gencode["gene_id"]]
    hpa = pd.DataFrame(
        {"tA": [1, 2, 3, 4, 5, 6, 7, 8], "tB": [9, 2, 3, 4, 5, 6, 7, 8],
         "tC": [1, 30, 3, np.nan, 5, 6, 7, 8], "tUnused": [np.nan] * 8},
        index=pd.Index(base, name="GeneID"),
    )  # fmt: skip
    hpa.to_csv(directory / "hpa_tissue_consensus_ntpm.tsv.gz", sep="\t")
    enriched = pd.DataFrame(
        {"gene_id": [base[0], base[1], base[3], "ENSG99999999999"],
         "hpa_tissue": ["tB", "tC", "tC", "tB"], "nTPM_top": [9, 30, 10, 5],
         "nTPM_second": [1, 3, 1, 1], "second_tissue": ["tA", "tA", "tA", "tA"]},
    )  # fmt: skip
    enriched.to_csv(directory / "hpa_tissue_enriched_4x.tsv", sep="\t", index=False)
    return directory


def test_builder_mixes_profiles_and_drops_missing_not_zero(tmp_path: Path) -> None:
    shared = _tiny_inputs(tmp_path / "shared")
    counts = demo_build.build(shared, tmp_path / "out", per_tissue_cap=1)
    profiles = pd.read_csv(tmp_path / "out" / demo_build.PROFILES_NAME, sep="\t")
    gencode = pd.read_csv(DATA / "gencode_v26_protein_coding.tsv.gz", sep="\t").head(8)
    # Gene 4 has an empty tC cell: dropped, not read as 0. tUnused is not in the map: ignored.
    assert counts["genes"] == 7 and gencode["gene_id"][3] not in set(profiles["gene_id"])
    gene2 = profiles.set_index("gene_id").loc[gencode["gene_id"][1]]
    assert gene2["pancreas"] == pytest.approx(0.6 * 30 + 0.4 * 2)
    assert gene2["liver"] == 2 and gene2["lung"] == 2
    # Enriched tier: the strongest marker of each dominant HPA tissue (cap 1), then by variance.
    assert list(profiles["tier"][:2]) == ["enriched", "enriched"]
    assert set(profiles["gene_id"][:2]) == {gencode["gene_id"][0], gencode["gene_id"][1]}
    markers = read_gmt(tmp_path / "out" / demo_build.GMT_NAME)
    # tB's marker goes to liver (weight 1) but not to pancreas (tB weight 0.4 < 0.5); ids that
    # are not protein-coding genes are dropped; a gene with missing values may still be a marker.
    assert markers["liver"] == {gencode["gene_id"][0]}
    assert markers["pancreas"] == {gencode["gene_id"][1], gencode["gene_id"][3]}
    assert set(markers) == {"liver", "pancreas"}


def test_builder_map_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "map.tsv"
    path.write_text("label\thpa_mix\nliver\tliver:0.5;kidney:0.4\n")
    with pytest.raises(ValueError, match=r"map\.tsv:2: weights of 'liver' sum to 0\.9"):
        demo_build.parse_tissue_map(path)
    path.write_text("label\thpa_mix\nliver\tliver\n")
    with pytest.raises(ValueError, match=r"map\.tsv:2: bad mix entry 'liver'"):
        demo_build.parse_tissue_map(path)
    path.write_text("label\thpa_mix\nliver\tliver:1\n")
    with pytest.raises(ValueError, match="missing"):
        demo_build.parse_tissue_map(path)


# ---------------------------------------------------------------- the whole-matrix file


def test_merged_matrix_is_gtex_whole_matrix_gct_with_the_same_values(
    default_demo: Path, default_tables, tmp_path: Path
) -> None:
    labels = ["liver", "kidney_medulla", "testis"]
    out = tmp_path / gtex.matrix_file_name("v8", "tpm")
    demo.merge_gct_files([tpm_file(default_demo, label) for label in labels], out)
    with gzip.open(out, "rt") as handle:
        version, dims, header = (handle.readline().rstrip("\n") for _ in range(3))
        first = handle.readline().split("\t", 2)
    samples = [s for label in labels for s in default_tables[label][2]]
    genes = default_tables["liver"][0]
    assert (version, dims) == ("#1.2", f"{len(genes)}\t{len(samples)}")
    assert header.split("\t") == ["Name", "Description", *samples]  # no ``id`` column
    assert first[:2] == [genes[0], default_tables["liver"][1][0]]
    matrix = read_gct(out)
    expected = np.hstack([default_tables[label][3] for label in labels])
    np.testing.assert_array_equal(matrix.matrix, expected.T.astype(np.float32))
    assert matrix.gene_ids == genes and matrix.sample_ids == samples


def test_merge_refuses_files_with_other_genes(default_demo: Path, tmp_path: Path) -> None:
    liver = tpm_file(default_demo, "liver")
    lines = gzip.decompress(liver.read_bytes()).decode().split("\n")
    lines[9] = lines[9].replace("\tENSG", "\tENSGX", 1)  # gene row 7, file line 10
    other = tmp_path / "other.gct.gz"
    other.write_bytes(gzip.compress("\n".join(lines).encode()))
    out = tmp_path / "matrix.gct.gz"
    with pytest.raises(ValueError, match=r"other.gct.gz:10: gene \['ENSGX"):
        demo.merge_gct_files([liver, other], out)
    assert not out.exists() and list(tmp_path.iterdir()) == [other]
