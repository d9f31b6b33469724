"""Tests for the shortcut check (rnaseq_saliency.shortcuts, issue 21)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnaseq_saliency import shortcuts
from rnaseq_saliency.datasets import write_samples
from rnaseq_saliency.expression import ExpressionTable, write_expression
from rnaseq_saliency.genes import write_selected_genes
from rnaseq_saliency.saliency import write_mean_matrix

# ---------------------------------------------------------------- gene lists


@pytest.mark.parametrize(
    "name",
    ["RPL3", "RPL36AL", "RPL22L1", "RPS4X", "RPS4Y1", "RPLP0", "RPLP2", "RPSA", "RPS27A", "RPL10A"],
)
def test_ribosomal_protein_genes_are_recognised(name: str) -> None:
    assert shortcuts.is_ribosomal_protein(name)


@pytest.mark.parametrize("name", ["RPS6KA1", "RPS6KB2", "MRPL3", "MRPS12", "RPE", "RPRM", "GRPEL1"])
def test_kinases_and_mitochondrial_ribosome_genes_are_not_ribosomal_proteins(name: str) -> None:
    assert not shortcuts.is_ribosomal_protein(name)


@pytest.mark.parametrize(
    "name",
    # GENCODE v26 names, then v39 names, of the same kinds of histone genes.
    ["HIST1H4C", "HIST1H2BK", "HIST2H2AA3", "H2AFZ", "H2AFX", "H3F3A", "H1F0", "H1FNT",
     "H4C3", "H2BC12", "H2AZ1", "H2AX", "H3-3A", "H1-0", "H3C1", "MACROH2A1"],
)  # fmt: skip
def test_histone_genes_of_both_nomenclatures_are_recognised(name: str) -> None:
    assert shortcuts.is_histone(name)


@pytest.mark.parametrize("name", ["HMGB1", "HDAC1", "H19", "HBB", "HSPA1A", "HIRA", "H6PD"])
def test_histone_related_but_not_histone_genes_are_not(name: str) -> None:
    assert not shortcuts.is_histone(name)


def test_gene_list_hits_use_chromosomes_and_names() -> None:
    names = ["DDX3Y", "PLCXD1", "XIST", "TSIX", "MT-ND6", "RPL3", "HIST1H4C", "ALB"]
    chroms = ["chrY", "chrY", "chrX", "chrX", "chrM", "chr3", "chr6", "chr4"]
    hits = shortcuts.gene_list_hits(names, chroms)
    assert list(hits) == list(shortcuts.GENE_CHECKS)
    picked = {
        check: [n for n, h in zip(names, hit, strict=True) if h] for check, hit in hits.items()
    }
    assert picked == {
        "chrY": ["DDX3Y", "PLCXD1"],  # PLCXD1 here is the _PAR_Y copy: on chrY in the GTF
        "XIST_TSIX": ["XIST", "TSIX"],
        "chrM": ["MT-ND6"],
        "ribosomal": ["RPL3"],
        "histone": ["HIST1H4C"],
    }


def test_chromosomes_come_from_the_gtf_and_a_missing_gene_is_named(tmp_path: Path) -> None:
    gtf = tmp_path / "genes.gtf"
    line = (
        '{c}\tHAVANA\tgene\t1\t10\t.\t+\t.\tgene_id "{i}"; gene_type "protein_coding"; '
        'gene_name "{n}";\n'
    )
    gtf.write_text(
        line.format(c="chrX", i="ENSG00000182378.13", n="PLCXD1")
        + line.format(c="chrY", i="ENSG00000182378.13_PAR_Y", n="PLCXD1")
        + line.format(c="chrM", i="ENSG00000198695.2", n="MT-ND6")
    )  # fmt: skip
    ids = ["ENSG00000182378.13_PAR_Y", "ENSG00000198695.2", "ENSG00000182378.13"]
    assert shortcuts.gene_chromosomes(gtf, ids) == ["chrY", "chrM", "chrX"]
    with pytest.raises(ValueError, match=r"genes\.gtf.*ENSG00000000003\.14"):
        shortcuts.gene_chromosomes(gtf, [*ids, "ENSG00000000003.14"])


# ---------------------------------------------------------------- associations


def _covariates(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "SMRIN": rng.uniform(5, 9, n),
            "SMTSISCH": rng.uniform(60, 1400, n),
            "SMGEBTCH": [f"LCSET-{i}" for i in range(n)],  # every sample its own batch
            "SEX": np.where(np.arange(n) % 3 == 0, "female", "male"),
            "AGE": rng.choice(["40-49", "50-59", "60-69"], n),
        },
        index=[f"S{i}" for i in range(n)],
    )


def test_associations_find_what_is_there_and_not_what_is_not() -> None:
    rng = np.random.default_rng(0)
    covariates = _covariates(40, rng)
    expression = rng.lognormal(size=(40, 4))
    expression[:, 0] = np.exp(0.003 * covariates["SMTSISCH"] + rng.normal(0, 0.3, 40))
    expression[:, 1] = np.where(covariates["SEX"] == "female", 0.0, 5.0) + rng.uniform(0, 1, 40)
    table = shortcuts.association_table(expression, covariates)
    q = table.pivot(index="gene", columns="covariate", values="q")
    assert q.loc[0, "SMTSISCH"] < 1e-4 and q.loc[1, "SEX"] < 1e-4
    hits = table.loc[table["q"] < shortcuts.FDR_LEVEL, ["gene", "covariate"]]
    assert sorted(map(tuple, hits.to_numpy())) == [(0, "SMTSISCH"), (1, "SEX")]
    # One sample per batch: no group of 3, so batch is not tested at all (not "no effect").
    batch = table.loc[table["covariate"] == "SMGEBTCH"]
    assert batch["p"].isna().all() and (batch["n_samples"] == 0).all()


def test_no_test_below_the_minimum_number_of_samples() -> None:
    rng = np.random.default_rng(1)
    n = shortcuts.MIN_SAMPLES - 1
    covariates = _covariates(n, rng)
    expression = np.exp(0.003 * covariates["SMTSISCH"].to_numpy())[:, None]  # perfect rank link
    table = shortcuts.association_table(expression, covariates)
    assert table["p"].isna().all() and (table["n_samples"] == 0).all()
    # Missing values count as absent: one more sample, but with no ischemic time.
    more = pd.concat([covariates, _covariates(1, rng).set_axis(["extra"])])
    more.loc["extra", "SMTSISCH"] = np.nan
    table = shortcuts.association_table(np.vstack([expression, [[1.0]]]), more)
    assert np.isnan(table.set_index("covariate").loc["SMTSISCH", "p"])


def _tissue(tissue: str, names: list[str], chroms: list[str], n: int = 30) -> shortcuts.TissueInput:
    rng = np.random.default_rng(2)
    covariates = _covariates(n, rng)
    expression = rng.lognormal(size=(n, len(names)))
    return shortcuts.TissueInput(tissue, names, chroms, expression, covariates)


def test_a_tissue_is_flagged_above_the_share_and_sex_tissues_not_for_sex_genes() -> None:
    names = ["DDX3Y", "UTY", "KDM5D", *(f"G{i}" for i in range(17))]  # 3 of 20 on chrY
    chroms = ["chrY"] * 3 + ["chr1"] * 17
    lung = shortcuts.tissue_shortcuts(_tissue("lung", names, chroms), max_share=0.1)
    row = lung.set_index("check").loc["chrY"]
    assert (row["n_hits"], row["share"], row["flagged"]) == (3, 0.15, True)
    assert row["genes"] == "DDX3Y,UTY,KDM5D"
    assert lung.loc[lung["check"] != "chrY", "flagged"].sum() == 0
    assert not shortcuts.tissue_shortcuts(_tissue("lung", names, chroms), 0.15)["flagged"].any()
    testis = shortcuts.tissue_shortcuts(_tissue("testis", names, chroms), max_share=0.1)
    assert testis.set_index("check").loc["chrY", "n_hits"] == 3  # reported ...
    assert not testis["flagged"].any()  # ... not flagged
    assert list(lung.columns) == shortcuts.SHORTCUT_COLUMNS


# ---------------------------------------------------------------- the rule, on files


@pytest.fixture
def shortcut_files(tmp_path: Path) -> dict[str, object]:
    """Two tissues on files; in colon, gene STRESS follows ischemic time in the training
    samples, and gene LEAK only through the test samples (which must never be read)."""
    rng = np.random.default_rng(3)
    genes = pd.DataFrame(
        {"gene_id": [f"ENSG{i:011d}.1" for i in range(6)],
         "gene_name": ["STRESS", "LEAK", "RPL3", "A", "B", "C"]}
    )  # fmt: skip
    write_selected_genes(genes, tmp_path / "genes.tsv")
    gtf = "".join(
        f'chr1\tHAVANA\tgene\t1\t9\t.\t+\t.\tgene_id "{i}"; gene_type "protein_coding"; '
        f'gene_name "{n}";\n'
        for i, n in zip(genes["gene_id"], genes["gene_name"], strict=True)
    )
    (tmp_path / "genes.gtf").write_text(gtf)
    samples, attributes, subjects = [], [], []
    for tissue, code in (("colon_transverse", "1"), ("lung", "2")):
        ids = [f"GTEX-{tissue[:2].upper()}{k:03d}-000{code}-SM-X" for k in range(40)]
        split = ["train"] * 28 + ["test"] * 12
        minutes = rng.uniform(600, 1600, 40)
        matrix = rng.lognormal(size=(40, 6)).astype(np.float32)
        if tissue == "colon_transverse":
            matrix[:, 0] = np.exp(minutes / 300 + rng.normal(0, 0.2, 40))
            matrix[28:, 1] = np.exp(minutes[28:] / 100)  # only test samples carry it
        donors = ["-".join(s.split("-")[:2]) for s in ids]
        table = ExpressionTable(ids, donors, genes["gene_id"].tolist(), matrix)
        write_expression(tmp_path / f"{tissue}.parquet", table)
        samples += [(s, d, tissue, sp) for s, d, sp in zip(ids, donors, split, strict=True)]
        attributes += [(s, "7.0", f"{m:.0f}", "LCSET-1") for s, m in zip(ids, minutes, strict=True)]
        subjects += [(d, "1" if k % 2 else "2", "50-59") for k, d in enumerate(donors)]
    write_samples(pd.DataFrame(samples, columns=["sample_id", "donor_id", "tissue", "split"]),
                  tmp_path / "samples.tsv")  # fmt: skip
    pd.DataFrame(attributes, columns=["SAMPID", "SMRIN", "SMTSISCH", "SMGEBTCH"]).to_csv(
        tmp_path / "attributes.txt", sep="\t", index=False
    )
    pd.DataFrame(subjects, columns=["SUBJID", "SEX", "AGE"]).to_csv(
        tmp_path / "subjects.txt", sep="\t", index=False
    )
    # Colon's first two genes rank high in its saliency; RPL3 outside both top 3s.
    mean = pd.DataFrame(
        {"colon_transverse": [0.9, 0.8, 0.1, 0.3, 0.2, 0.05],
         "lung": [0.5, 0.4, 0.0, 0.3, 0.2, 0.1]},
        index=pd.Index(genes["gene_id"], name="gene_id"), dtype=np.float32,
    )  # fmt: skip
    write_mean_matrix(tmp_path / "mean.parquet", mean)
    return {
        "mean_matrix_path": tmp_path / "mean.parquet",
        "genes_path": tmp_path / "genes.tsv",
        "gtf_path": tmp_path / "genes.gtf",
        "samples_path": tmp_path / "samples.tsv",
        "expression_files": [tmp_path / "colon_transverse.parquet", tmp_path / "lung.parquet"],
        "tissues": ["colon_transverse", "lung"],
        "attributes_path": tmp_path / "attributes.txt",
        "subjects_path": tmp_path / "subjects.txt",
        "out_path": tmp_path / "shortcuts.tsv",
        "figure_path": tmp_path / "shortcuts.png",
    }


def test_run_reads_training_samples_only_flags_and_warns(
    shortcut_files: dict, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rnaseq_saliency.shortcuts"):
        table = shortcuts.run_shortcuts(**shortcut_files, top_k=3, max_share=0.2)
    back = shortcuts.read_shortcuts(shortcut_files["out_path"])
    pd.testing.assert_frame_equal(back, table, check_dtype=False, atol=1e-3)
    colon = table.loc[table["tissue"] == "colon_transverse"].set_index("check")
    assert colon.loc["SMTSISCH", "genes"] == "STRESS"  # LEAK's link lives in test samples only
    assert colon.loc["SMTSISCH", "n_samples"] == 28
    assert colon.loc["ribosomal", "genes"] == ""  # RPL3 ranks 5th, outside the top 3
    assert colon.loc["SMTSISCH", "flagged"] and colon["flagged"].sum() == 1
    assert not table.loc[table["tissue"] == "lung", "flagged"].any()
    assert "possible shortcut in colon_transverse" in caplog.text and "lung" not in caplog.text
    assert shortcut_files["figure_path"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_annotation_files_are_named(shortcut_files: dict) -> None:
    subjects = shortcut_files["subjects_path"]
    original = subjects.read_bytes()
    pd.read_csv(subjects, sep="\t").drop(columns="AGE").to_csv(subjects, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"subjects\.txt: missing column\(s\) \['AGE'\]"):
        shortcuts.run_shortcuts(**shortcut_files, top_k=3, max_share=0.2)
    subjects.write_bytes(original)
    attributes = shortcut_files["attributes_path"]
    pd.read_csv(attributes, sep="\t").iloc[1:].to_csv(attributes, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"attributes\.txt: no row for sample"):
        shortcuts.run_shortcuts(**shortcut_files, top_k=3, max_share=0.2)
    with pytest.raises(ValueError, match="shortcut_max_share"):
        shortcuts.run_shortcuts(**shortcut_files, top_k=3, max_share=1.5)
