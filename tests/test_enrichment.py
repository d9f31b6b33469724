"""Tests for the preranked gene-set enrichment (rnaseq_saliency.enrichment, issue 21)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnaseq_saliency import enrichment
from rnaseq_saliency.genes import write_selected_genes
from rnaseq_saliency.saliency import write_mean_matrix

N_GENES = 300


def model_genes() -> tuple[list[str], list[str]]:
    ids = [f"ENSG{i:011d}.{1 + i % 3}" for i in range(N_GENES)]
    return ids, [f"GENE{i}" for i in range(N_GENES)]


def write_gmt(path: Path, sets: dict[str, list[str]]) -> Path:
    path.write_text("".join(f"{name}\tdescription\t" + "\t".join(genes) + "\n"
                            for name, genes in sets.items()))  # fmt: skip
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, object]:
    """300 model genes, two tissues whose rankings put a set's genes first, and two GMTs: one
    keyed on unversioned Ensembl ids (and a gene of another species), one on symbols."""
    ids, names = model_genes()
    write_selected_genes(pd.DataFrame({"gene_id": ids, "gene_name": names}), tmp_path / "g.tsv")
    rng = np.random.default_rng(0)
    alpha, beta = rng.permutation(N_GENES)[:60].reshape(2, 30)
    scores = {
        "alpha_tissue": rng.uniform(0, 0.5, N_GENES),
        "beta_tissue": rng.uniform(0, 0.5, N_GENES),
    }
    scores["alpha_tissue"][alpha] += 0.5
    scores["beta_tissue"][beta] += 0.5
    matrix = pd.DataFrame(scores, index=pd.Index(ids, name="gene_id"), dtype=np.float32)
    write_mean_matrix(tmp_path / "mean.parquet", matrix)
    by_id = write_gmt(
        tmp_path / "by_id.gmt",
        {
            "ALPHA": [ids[i].split(".")[0] for i in alpha] + ["ENSMUSG00000000001"],
            "RANDOM": [ids[i].split(".")[0] for i in rng.permutation(N_GENES)[:30]],
            "TINY": [ids[0].split(".")[0], ids[1].split(".")[0]],  # below MIN_SET_SIZE
        },
    )
    by_name = write_gmt(tmp_path / "by_name.gmt", {"BETA": [names[i] for i in beta]})
    return {
        "mean_matrix_path": tmp_path / "mean.parquet",
        "genes_path": tmp_path / "g.tsv",
        "gene_set_paths": [by_id, by_name],
        "tissues": ["alpha_tissue", "beta_tissue"],
        "out_paths": [tmp_path / "alpha.tsv", tmp_path / "beta.tsv"],
        "permutations": 200,
        "seed": 7,
    }


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_members_match_on_unversioned_ids_or_symbols_and_counts_are_logged(
    inputs: dict, caplog: pytest.LogCaptureFixture
) -> None:
    ids, names = model_genes()
    with caplog.at_level("INFO", logger="rnaseq_saliency.enrichment"):
        libraries = enrichment.read_libraries(inputs["gene_set_paths"], ids, names)
    by_id, by_name = libraries
    assert (by_id.name, by_name.name) == ("by_id", "by_name")
    assert len(by_id.members["ALPHA"]) == 31 and len(by_id.matched["ALPHA"]) == 30
    assert all(gene in ids for gene in by_id.matched["ALPHA"])  # versioned model ids
    assert len(by_name.matched["BETA"]) == 30
    assert "by_id" in caplog.text and "model genes matched" in caplog.text


def test_a_library_with_no_model_gene_is_an_error_naming_it(tmp_path: Path) -> None:
    ids, names = model_genes()
    mouse = write_gmt(tmp_path / "mouse.gmt", {"M": ["ENSMUSG00000000001", "Actb"]})
    with pytest.raises(ValueError, match=r"mouse\.gmt: none of its 2 members"):
        enrichment.read_libraries([mouse], ids, names)
    human = write_gmt(tmp_path / "mouse.txt", {"H": names[:10]})
    with pytest.raises(ValueError, match="a second gene-set library called 'mouse'"):
        enrichment.read_libraries([human, human], ids, names)


def test_the_shipped_hpa_file_is_library_hpa() -> None:
    assert enrichment.library_name(str(enrichment.HPA_GMT)) == "hpa"


def test_each_tissue_finds_its_set_offline_and_the_seed_fixes_the_result(
    inputs: dict, no_network: None
) -> None:
    tables = enrichment.run_enrichment(**inputs)
    alpha, beta = tables["alpha_tissue"], tables["beta_tissue"]
    assert list(alpha.columns) == enrichment.ENRICHMENT_COLUMNS
    assert (alpha.iloc[0]["library"], alpha.iloc[0]["set"]) == ("by_id", "ALPHA")
    assert (beta.iloc[0]["library"], beta.iloc[0]["set"]) == ("by_name", "BETA")
    assert alpha.iloc[0]["NES"] > 1.5 and alpha.iloc[0]["FDR"] < 0.05
    assert "TINY" not in set(alpha["set"])  # 2 matched genes: not tested
    assert alpha.set_index("set").loc["ALPHA", "n_matched"] == 30
    assert alpha.set_index("set").loc["ALPHA", "n_members"] == 31
    leading = alpha.iloc[0]["leading_edge"].split(",")
    assert leading and all(name.startswith("GENE") for name in leading)  # symbols, not ids
    back = enrichment.read_enrichment(inputs["out_paths"][0])
    pd.testing.assert_frame_equal(back, alpha, check_dtype=False, atol=1e-3)
    first = [Path(p).read_bytes() for p in inputs["out_paths"]]
    enrichment.run_enrichment(**inputs)
    assert [Path(p).read_bytes() for p in inputs["out_paths"]] == first
    enrichment.run_enrichment(**{**inputs, "seed": 8})
    assert [Path(p).read_bytes() for p in inputs["out_paths"]] != first


def test_summary_figure_picks_each_tissues_best_sets(inputs: dict, tmp_path: Path) -> None:
    tables = enrichment.run_enrichment(**inputs)
    assert enrichment.summary_sets(tables, per_tissue=1) == [
        ("by_id", "ALPHA"),
        ("by_name", "BETA"),
    ]
    out = tmp_path / "summary.png"
    enrichment.run_enrichment_summary(inputs["out_paths"], inputs["tissues"], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_tissue_without_maps_gets_an_empty_table(inputs: dict, tmp_path: Path) -> None:
    matrix = pd.read_parquet(inputs["mean_matrix_path"])
    matrix["beta_tissue"] = np.nan
    write_mean_matrix(tmp_path / "nan.parquet", matrix)
    tables = enrichment.run_enrichment(**{**inputs, "mean_matrix_path": tmp_path / "nan.parquet"})
    assert tables["beta_tissue"].empty
    assert enrichment.read_enrichment(inputs["out_paths"][1]).empty
