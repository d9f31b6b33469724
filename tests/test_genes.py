"""Gene selection from a GENCODE GTF: protein-coding, all, and Ensembl id lists."""

from __future__ import annotations

import gzip
import logging
import runpy
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from rnaseq_saliency import genes as genes_module
from rnaseq_saliency.genes import (
    match_key,
    read_gtf_genes,
    read_id_list,
    read_selected_genes,
    select_genes,
    write_selected_genes,
)
from rnaseq_saliency.settings import GeneSelectionSettings

REPO = Path(__file__).resolve().parents[1]


def protein_coding_table() -> pd.DataFrame:
    """The 19,291 protein-coding genes of GENCODE v26 that GTEx v8 uses (package data)."""
    source = resources.files("rnaseq_saliency").joinpath("data/gencode_v26_protein_coding.tsv.gz")
    with source.open("rb") as handle:
        return pd.read_csv(handle, sep="\t", compression="gzip", dtype=str)


def gtf_lines(gene_id: str, name: str, gene_type: str, chrom: str, start: str, end: str) -> str:
    """A gene as GTEx's collapsed gene model writes it: gene, transcript and exon lines."""
    where = f"{chrom}\tHAVANA\t{{}}\t{start}\t{end}\t.\t+\t.\t"
    attributes = (
        f'gene_id "{gene_id}"; transcript_id "{gene_id}"; gene_type "{gene_type}"; '
        f'gene_status "KNOWN"; gene_name "{name}"; transcript_type "{gene_type}"; '
        f'transcript_status "KNOWN"; transcript_name "{name}"; level 2; '
        'havana_gene "OTTHUMG00000000961.2";'
    )
    return (
        where.format("gene") + attributes + "\n"
        + where.format("transcript") + attributes + "\n"
        + where.format("exon") + attributes + ' exon_number 1; exon_id "ENSE1";\n'
    )  # fmt: skip


def write_gtf(path: Path, rows: list[tuple[str, str, str]], *, compress: bool = False) -> Path:
    text = "##description: test gene model\n##provider: GENCODE\n##format: gtf\n"
    text += "".join(
        gtf_lines(i, n, t, "chr1", str(k + 1), str(k + 10)) for k, (i, n, t) in enumerate(rows)
    )
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture(scope="module")
def v26_like_gtf(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A GTF with the 19,291 v26 protein-coding genes interleaved with non-coding genes."""
    coding = protein_coding_table()
    rows: list[tuple[str, str, str]] = []
    other_types = ["lncRNA", "processed_pseudogene", "miRNA", "misc_RNA", "TEC"]
    for k, (gene_id, name) in enumerate(zip(coding["gene_id"], coding["gene_name"], strict=True)):
        if k % 3 == 0:
            rows.append((f"ENSG9{k:010d}.1", f"LINC{k:05d}", other_types[k % len(other_types)]))
        rows.append((gene_id, name, "protein_coding"))
    rows.append(("ENSG00000228572.7_PAR_Y", "AL954722.1", "unprocessed_pseudogene"))
    path = write_gtf(
        tmp_path_factory.mktemp("gtf") / "gencode.v26.GRCh38.genes.gtf.gz", rows, compress=True
    )
    return path, coding


SMALL = [
    ("ENSG00000223972.5", "DDX11L1", "transcribed_unprocessed_pseudogene"),
    ("ENSG00000186092.4", "OR4F5", "protein_coding"),
    ("ENSG00000182378.13", "PLCXD1", "protein_coding"),
    ("ENSG00000182378.13_PAR_Y", "PLCXD1", "protein_coding"),
    ("ENSG00000002586.18", "CD99", "protein_coding"),
    ("ENSG00000002586.18_PAR_Y", "CD99", "protein_coding"),
    ("ENSG00000227232.5", "WASH7P", "unprocessed_pseudogene"),
]


@pytest.fixture
def small_gtf(tmp_path: Path) -> Path:
    return write_gtf(tmp_path / "genes.gtf", SMALL)


def write_list(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------ GTF


def test_reads_gene_records_in_order(small_gtf: Path) -> None:
    table = read_gtf_genes(small_gtf)
    assert list(table.columns) == ["gene_id", "gene_name", "gene_type", "chrom"]
    assert list(table.iloc[:, :3].itertuples(index=False, name=None)) == SMALL
    assert set(table["chrom"]) == {"chr1"}  # the sequence name, first GTF field


def test_protein_coding_filter_selects_exactly_the_v26_coding_genes(v26_like_gtf) -> None:
    path, coding = v26_like_gtf
    selected, report = select_genes(path, "protein_coding")
    assert len(selected) == 19_291
    assert selected["gene_id"].tolist() == coding["gene_id"].tolist()  # same genes, GTF order
    assert selected["gene_name"].tolist() == coding["gene_name"].tolist()
    assert sum(gene_id.endswith("_PAR_Y") for gene_id in selected["gene_id"]) == 18
    assert report.n_selected == 19_291 and report.n_gtf_genes == 19_291 + 6_431 + 1


def test_all_filter_keeps_every_gene(small_gtf: Path) -> None:
    selected, report = select_genes(small_gtf, "all")
    assert selected["gene_id"].tolist() == [row[0] for row in SMALL]
    assert report.n_selected == len(SMALL)


def test_gene_biotype_of_ensembl_gtfs_is_accepted(tmp_path: Path) -> None:
    path = write_gtf(tmp_path / "e.gtf", [("ENSG1.1", "A", "protein_coding")])
    path.write_text(path.read_text().replace("gene_type", "gene_biotype"))
    assert select_genes(path, "protein_coding")[0]["gene_id"].tolist() == ["ENSG1.1"]


def test_gtf_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write_gtf(tmp_path / "a.gtf", SMALL[:2])
    lines = path.read_text().splitlines(keepends=True)

    (tmp_path / "b.gtf").write_text("".join(lines[:4]) + lines[4].replace("\t", " ", 1))
    with pytest.raises(ValueError, match=rf"{tmp_path / 'b.gtf'}:5: .*9 tab-separated"):
        read_gtf_genes(tmp_path / "b.gtf")

    (tmp_path / "c.gtf").write_text("".join(lines[:6]) + lines[6].replace('gene_type "', 'x "'))
    with pytest.raises(ValueError, match=rf"{tmp_path / 'c.gtf'}:7: gene record without gene_type"):
        read_gtf_genes(tmp_path / "c.gtf")

    (tmp_path / "d.gtf").write_text("".join(lines) + lines[3])
    with pytest.raises(ValueError, match=r"d.gtf:10: gene id ENSG00000223972.5 repeats"):
        read_gtf_genes(tmp_path / "d.gtf")

    (tmp_path / "e.gtf").write_text("##only comments\n")
    with pytest.raises(ValueError, match=r"e.gtf: no 'gene' records"):
        read_gtf_genes(tmp_path / "e.gtf")


def test_truncated_gzip_gtf_names_the_file(tmp_path: Path) -> None:
    path = write_gtf(tmp_path / "g.gtf.gz", SMALL * 1, compress=True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"g.gtf.gz: truncated or corrupt gzip"):
        read_gtf_genes(path)


# ------------------------------------------------------------------------------ id lists


@pytest.mark.parametrize(
    ("gene_id", "key"),
    [
        ("ENSG00000186092.4", "ENSG00000186092"),
        ("ENSG00000186092", "ENSG00000186092"),
        ("ENSG00000182378.13_PAR_Y", "ENSG00000182378_PAR_Y"),
        ("ENSG00000182378_PAR_Y", "ENSG00000182378_PAR_Y"),
    ],
)
def test_match_key(gene_id: str, key: str) -> None:
    assert match_key(gene_id) == key


def test_id_list_matches_versioned_and_unversioned_ids_in_gtf_order(
    small_gtf: Path, tmp_path: Path, caplog
) -> None:
    id_list = write_list(
        tmp_path / "ids.txt",
        "# my genes\n"
        "ENSG00000002586.18_PAR_Y\n"  # the chrY copy only
        "ENSG00000182378\n"  # unversioned: the chrX copy only, not its _PAR_Y twin
        "\n"
        "ENSG00000186092.99   # another release's version still matches\n"
        "ENSG00000186092.4\n"  # a repeat of the same gene
        "ENSG00000000000.1\n"
        "TP53\n",
    )
    with caplog.at_level(logging.INFO, logger="rnaseq_saliency"):
        selected, report = select_genes(small_gtf, str(id_list))
    assert selected["gene_id"].tolist() == [
        "ENSG00000186092.4",
        "ENSG00000182378.13",
        "ENSG00000002586.18_PAR_Y",
    ]
    assert report.n_listed == 6 and report.unmatched == ["ENSG00000000000.1", "TP53"]
    assert "4 of 6 ids matched, 3 genes selected" in caplog.text
    assert "2 unmatched: ENSG00000000000.1, TP53" in caplog.text


def test_par_y_written_without_version_selects_the_chry_copy(small_gtf: Path, tmp_path: Path):
    id_list = write_list(tmp_path / "ids.txt", "ENSG00000182378_PAR_Y\n")
    selected, _ = select_genes(small_gtf, str(id_list))
    assert selected["gene_id"].tolist() == ["ENSG00000182378.13_PAR_Y"]


def test_id_list_read_from_the_rule_input_path(small_gtf: Path, tmp_path: Path) -> None:
    id_list = write_list(tmp_path / "ids.txt", "ENSG00000223972\n")
    selected, report = select_genes(small_gtf, "config/ids.txt", id_list_path=id_list)
    assert selected["gene_id"].tolist() == ["ENSG00000223972.5"]
    assert report.input_filter == str(id_list)


def test_zero_matches_is_an_error_naming_the_list(small_gtf: Path, tmp_path: Path) -> None:
    id_list = write_list(tmp_path / "ids.txt", "ENSG00000000001\nENSG00000000002.3\n")
    with pytest.raises(ValueError, match=rf"{id_list}: none of its 2 gene ids matches"):
        select_genes(small_gtf, str(id_list))


def test_id_list_format_errors(tmp_path: Path) -> None:
    empty = write_list(tmp_path / "empty.txt", "# nothing\n\n")
    with pytest.raises(ValueError, match=r"empty.txt: the gene id list is empty"):
        read_id_list(empty)
    two = write_list(tmp_path / "two.txt", "ENSG1\nENSG2\tTP53\n")
    with pytest.raises(ValueError, match=r"two.txt:2: expected one Ensembl gene id per line"):
        read_id_list(two)


# ------------------------------------------------------------------------------ TSV output


def test_selected_genes_tsv_round_trip(tmp_path: Path, small_gtf: Path) -> None:
    selected, _ = select_genes(small_gtf, "protein_coding")
    out = tmp_path / "results/genes/selected_genes.tsv"
    write_selected_genes(selected, out)
    assert out.read_text().splitlines()[:2] == ["gene_id\tgene_name", "ENSG00000186092.4\tOR4F5"]
    pd.testing.assert_frame_equal(read_selected_genes(out), selected)


def test_write_is_atomic(tmp_path: Path, small_gtf: Path, monkeypatch) -> None:
    selected, _ = select_genes(small_gtf, "all")
    out = tmp_path / "selected_genes.tsv"
    out.write_text("previous\n")

    def fail(self, path, **kwargs):
        Path(path).write_text("gene_id\tgene_na")  # half a file, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        write_selected_genes(selected, out)
    assert [p.name for p in tmp_path.iterdir() if p.name != "genes.gtf"] == [out.name]
    assert out.read_text() == "previous\n"


def test_read_selected_genes_checks_columns_and_repeats(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("id\tname\nENSG1.1\tA\n")
    with pytest.raises(ValueError, match=r"a.tsv: missing column"):
        read_selected_genes(tmp_path / "a.tsv")
    (tmp_path / "b.tsv").write_text("gene_id\tgene_name\nENSG1.1\tA\nENSG1.1\tA\n")
    with pytest.raises(ValueError, match=r"b.tsv: gene ids repeat: ENSG1.1"):
        read_selected_genes(tmp_path / "b.tsv")


# ------------------------------------------------------------------------------ adapter


def run_adapter(script: str, snakemake: SimpleNamespace) -> None:
    """Run a Snakemake ``script:`` adapter with a stand-in ``snakemake`` object."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        runpy.run_path(str(REPO / "scripts" / script), init_globals={"snakemake": snakemake})
    finally:
        for handler in root.handlers:
            if handler not in saved[0]:
                handler.close()
        root.handlers[:], root.level = saved


def test_select_genes_adapter_matches_the_rule(small_gtf: Path, tmp_path: Path) -> None:
    id_list = write_list(tmp_path / "ids.txt", "ENSG00000186092\nENSG00000000000\n")
    out = tmp_path / "results/genes/selected_genes.tsv"
    log = tmp_path / "logs/select_genes.log"
    run_adapter(
        "select_genes.py",
        SimpleNamespace(
            input=SimpleNamespace(gtf=str(small_gtf), id_list=[str(id_list)]),
            params=SimpleNamespace(settings=GeneSelectionSettings(str(id_list))),
            output=[str(out)],
            log=[str(log)],
        ),
    )
    assert read_selected_genes(out)["gene_id"].tolist() == ["ENSG00000186092.4"]
    assert "1 unmatched: ENSG00000000000" in log.read_text()


def test_module_logger_is_the_package_logger() -> None:
    # The adapters' setup_logging configures "rnaseq_saliency": selection logs must reach it.
    assert genes_module.log.name.startswith("rnaseq_saliency.")
