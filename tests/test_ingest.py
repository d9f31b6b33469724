"""GCT + sample attributes + selected genes -> expression Parquet (rule ``ingest``)."""

from __future__ import annotations

import gzip
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rnaseq_saliency.expression import read_expression
from rnaseq_saliency.gct import GctFormatError
from rnaseq_saliency.ingest import (
    EXPRESSION_SUMMARY_COLUMNS,
    ingest_matrix,
    ingest_tissue,
    read_sample_attributes,
    summarise_expression,
)

REPO = Path(__file__).resolve().parents[1]
GENES = [
    ("ENSG00000223972.5", "DDX11L1"),
    ("ENSG00000186092.4", "OR4F5"),
    ("ENSG00000182378.13", "PLCXD1"),
    ("ENSG00000182378.13_PAR_Y", "PLCXD1"),
    ("ENSG00000002586.18", "CD99"),
    ("ENSG00000002586.18_PAR_Y", "CD99"),
]
SAMPLES = [
    "GTEX-1117F-0226-SM-5GZZ7",
    "GTEX-1117F-0526-SM-5EGHJ",
    "GTEX-111CU-1826-SM-5GZYN",
    "GTEX-111FC-0226-SM-5N9B8",
    "K-562-SM-26GMQ",  # GTEx CML cell line ids are not donor-shaped; they are not in tissue files
]
LIVER = "Liver"
ATTRIBUTE_ROWS = [
    # SAMPID, SMATSSCR, SMTS, SMTSD, SMAFRZE, SMNABTCH (a free-text column with a stray quote)
    (SAMPLES[0], "1", "Liver", LIVER, "RNASEQ", 'BP-38516 "x'),
    (SAMPLES[1], "0", "Liver", LIVER, "RNASEQ", "BP-38516"),
    (SAMPLES[2], "", "Liver", LIVER, "RNASEQ", ""),
    (SAMPLES[3], "2", "Liver", LIVER, "EXCLUDE", "BP-1"),
    (SAMPLES[4], "", "Blood", "Cells - Leukemia cell line (CML)", "RNASEQ", ""),
]


def expression_values(n_genes: int, n_samples: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    values = np.exp(rng.normal(0, 3, (n_genes, n_samples))).astype(np.float32)
    values[rng.random(values.shape) < 0.3] = 0
    return values


def write_gct(path: Path, values: np.ndarray, sample_ids: list[str]) -> Path:
    """A GTEx per-tissue GCT 1.3 .gz (with the ``id`` column), values as shortest float32 text."""
    lines = [
        "#1.3",
        f"{len(GENES)}\t{len(sample_ids) + 2}\t0\t0",
        "\t".join(["id", "Name", "Description", *sample_ids]),
    ]
    for i, ((gene_id, name), row) in enumerate(zip(GENES, values, strict=True)):
        lines.append("\t".join([str(i), gene_id, name, *(str(np.float32(v)) for v in row)]))
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def write_attributes(path: Path, rows=ATTRIBUTE_ROWS) -> Path:
    header = "SAMPID\tSMATSSCR\tSMTS\tSMTSD\tSMAFRZE\tSMNABTCH"
    path.write_text("\n".join([header, *("\t".join(row) for row in rows)]) + "\n")
    return path


def write_genes(path: Path, genes: list[tuple[str, str]]) -> Path:
    path.write_text("gene_id\tgene_name\n" + "".join(f"{i}\t{n}\n" for i, n in genes))
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> SimpleNamespace:
    values = expression_values(len(GENES), 4)
    selected = [GENES[5], GENES[1], GENES[3], GENES[2]]  # model input order, not file order
    return SimpleNamespace(
        values=values,
        selected=selected,
        gct=write_gct(tmp_path / "gene_tpm_2017-06-05_v8_liver.gct.gz", values, SAMPLES[:4]),
        attributes=write_attributes(
            tmp_path / "GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt"
        ),
        genes=write_genes(tmp_path / "selected_genes.tsv", selected),
        out=tmp_path / "results/expression/liver.parquet",
    )


def run(inputs: SimpleNamespace, tissue: str = "liver", threads: int = 1) -> None:
    ingest_tissue(inputs.gct, inputs.attributes, inputs.genes, tissue, inputs.out, threads)


@pytest.mark.parametrize("threads", [1, 2])
def test_round_trip_gct_to_parquet_is_exact(inputs, threads: int) -> None:
    run(inputs, threads=threads)
    table = read_expression(inputs.out)
    assert table.sample_ids == SAMPLES[:4]
    assert table.donor_ids == ["GTEX-1117F", "GTEX-1117F", "GTEX-111CU", "GTEX-111FC"]
    assert table.gene_ids == [gene_id for gene_id, _ in inputs.selected]
    rows = [GENES.index(gene) for gene in inputs.selected]
    np.testing.assert_array_equal(table.matrix, inputs.values[rows].T)  # bit-exact float32


def test_samples_missing_from_attributes_are_dropped_with_a_count(inputs, caplog) -> None:
    write_attributes(inputs.attributes, [ATTRIBUTE_ROWS[1], ATTRIBUTE_ROWS[3], ATTRIBUTE_ROWS[4]])
    with caplog.at_level(logging.WARNING):
        run(inputs)
    assert f"2 of 4 samples are not in {inputs.attributes} and are dropped" in caplog.text
    assert SAMPLES[0] in caplog.text and SAMPLES[2] in caplog.text
    table = read_expression(inputs.out)
    assert table.sample_ids == [SAMPLES[1], SAMPLES[3]]
    rows = [GENES.index(gene) for gene in inputs.selected]
    np.testing.assert_array_equal(table.matrix, inputs.values[rows][:, [1, 3]].T)


def test_no_sample_in_attributes_is_an_error_and_writes_nothing(inputs) -> None:
    write_attributes(inputs.attributes, [ATTRIBUTE_ROWS[4]])
    with pytest.raises(ValueError, match=r"liver.gct.gz: none of its 4 samples is in"):
        run(inputs)
    assert not inputs.out.parent.exists() or not any(inputs.out.parent.iterdir())


def test_samples_of_another_tissue_are_kept_with_a_warning(inputs, caplog) -> None:
    rows = list(ATTRIBUTE_ROWS)
    rows[2] = (SAMPLES[2], "", "Brain", "Brain - Spinal cord (cervical c-1)", "RNASEQ", "")
    write_attributes(inputs.attributes, rows)
    with caplog.at_level(logging.WARNING):
        run(inputs)
    assert "1 samples are labelled another tissue than 'liver'" in caplog.text
    assert "brain_spinal_cord_cervical_c-1 (1)" in caplog.text
    assert read_expression(inputs.out).sample_ids == SAMPLES[:4]


def test_matching_tissue_gives_no_warning(inputs, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        run(inputs)
    assert caplog.records == []


def test_sample_ids_that_are_not_gtex_shaped(inputs, tmp_path: Path) -> None:
    write_gct(inputs.gct, inputs.values, [*SAMPLES[:3], "SAMPLE4"])
    rows = [*ATTRIBUTE_ROWS, ("SAMPLE4", "", "Liver", LIVER, "RNASEQ", "")]
    write_attributes(inputs.attributes, rows)
    with pytest.raises(ValueError, match=r"liver.gct.gz: sample id 'SAMPLE4' is not GTEx-shaped"):
        run(inputs)
    assert not inputs.out.exists()


def test_malformed_gct_leaves_nothing_at_the_output(inputs) -> None:
    inputs.out.parent.mkdir(parents=True)
    lines = gzip.decompress(inputs.gct.read_bytes()).split(b"\n")
    fields = lines[4].split(b"\t")  # line 5: ENSG00000186092.4, a selected gene
    lines[4] = b"\t".join([*fields[:4], b"-1", *fields[5:]])
    inputs.gct.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(GctFormatError, match=r"liver.gct.gz:5: .* value '-1' is negative"):
        run(inputs)
    assert list(inputs.out.parent.iterdir()) == []


def test_truncated_gct_keeps_a_previous_output_untouched(inputs) -> None:
    run(inputs)
    before = inputs.out.read_bytes()
    inputs.gct.write_bytes(inputs.gct.read_bytes()[:-20])
    with pytest.raises(GctFormatError, match="truncated or corrupt gzip"):
        run(inputs)
    assert inputs.out.read_bytes() == before
    assert [p.name for p in inputs.out.parent.iterdir()] == ["liver.parquet"]


def test_gene_missing_from_gct_is_an_error(inputs) -> None:
    write_genes(inputs.genes, [*inputs.selected, ("ENSG00000000001.1", "X")])
    with pytest.raises(GctFormatError, match=r"1 requested gene id\(s\) .*ENSG00000000001.1"):
        run(inputs)
    assert not inputs.out.exists()


def test_read_sample_attributes(inputs) -> None:
    attributes = read_sample_attributes(inputs.attributes)
    assert list(attributes.columns) == ["SAMPID", "SMTSD", "SMTS", "SMAFRZE"]
    assert attributes["SAMPID"].tolist() == SAMPLES  # the stray quote did not swallow rows
    assert attributes.loc[4, "SMTSD"] == "Cells - Leukemia cell line (CML)"


def test_attributes_without_smtsd_or_with_repeats(tmp_path: Path) -> None:
    path = tmp_path / "attributes.txt"
    path.write_text("SAMPID\tSMTS\nGTEX-1-1\tLiver\n")
    with pytest.raises(ValueError, match=r"attributes.txt: missing column\(s\) \['SMTSD'\]"):
        read_sample_attributes(path)
    path.write_text("SAMPID\tSMTSD\nGTEX-1-1\tLiver\nGTEX-1-1\tLiver\n")
    with pytest.raises(ValueError, match=r"attributes.txt: SAMPID repeats: GTEX-1-1"):
        read_sample_attributes(path)


def test_ingest_adapter_matches_the_rule(inputs, tmp_path: Path) -> None:
    log = tmp_path / "logs/ingest/liver.log"
    snakemake = SimpleNamespace(
        input=SimpleNamespace(
            gct=str(inputs.gct), attributes=str(inputs.attributes), genes=str(inputs.genes)
        ),
        params=SimpleNamespace(tissue="liver"),
        output=[str(inputs.out)],
        log=[str(log)],
        threads=2,
    )
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        runpy.run_path(str(REPO / "scripts/ingest.py"), init_globals={"snakemake": snakemake})
    finally:
        for handler in root.handlers:
            if handler not in saved[0]:
                handler.close()
        root.handlers[:], root.level = saved
    assert read_expression(inputs.out).sample_ids == SAMPLES[:4]
    assert "liver: 4 samples x 4 genes" in log.read_text()


# ------------------------------------------------------------------------------ whole matrix

LUNG = "Lung"
MATRIX_SAMPLES = [
    # file order: tissues interleaved, as in GTEx's whole-matrix file
    ("GTEX-1117F-0226-SM-5GZZ7", LIVER),
    ("GTEX-1117F-0326-SM-5EGHA", LUNG),
    ("GTEX-111CU-1826-SM-5GZYN", LIVER),
    ("GTEX-111CU-1926-SM-5EGHB", "Cells - Leukemia cell line (CML)"),
    ("GTEX-111FC-0226-SM-5N9B8", LUNG),
    ("GTEX-111FC-0326-SM-5N9B9", LIVER),
]


def write_matrix_gct(path: Path, values: np.ndarray, sample_ids: list[str]) -> Path:
    """GTEx's whole-matrix layout: GCT 1.2, no ``id`` column."""
    lines = [
        "#1.2",
        f"{len(GENES)}\t{len(sample_ids)}",
        "\t".join(["Name", "Description", *sample_ids]),
    ]
    for (gene_id, name), row in zip(GENES, values, strict=True):
        lines.append("\t".join([gene_id, name, *(str(np.float32(v)) for v in row)]))
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.fixture
def matrix_inputs(tmp_path: Path) -> SimpleNamespace:
    values = expression_values(len(GENES), len(MATRIX_SAMPLES))
    ids = [sample for sample, _ in MATRIX_SAMPLES]
    rows = [(s, "", t.split(" ")[0], t, "RNASEQ", "") for s, t in MATRIX_SAMPLES]
    rows.append(("GTEX-1117F-0004-SM-DNA01", "", "Blood", "Whole Blood", "WGS", ""))
    rows.append(("GTEX-111CU-3001-SM-EXC01", "", "Liver", LIVER, "EXCLUDE", ""))
    selected = [GENES[5], GENES[1], GENES[3], GENES[2]]
    return SimpleNamespace(
        values=values,
        ids=ids,
        selected=selected,
        gct=write_matrix_gct(tmp_path / "matrix.gct.gz", values, ids),
        attributes=write_attributes(tmp_path / "attributes.txt", rows),
        genes=write_genes(tmp_path / "selected_genes.tsv", selected),
        out={t: tmp_path / f"results/expression/{t}.parquet" for t in ("liver", "lung")},
    )


def test_matrix_route_equals_the_per_tissue_route_on_the_same_samples(
    matrix_inputs, tmp_path: Path
) -> None:
    m = matrix_inputs
    ingest_matrix(m.gct, m.attributes, m.genes, m.out, threads=2)
    gene_rows = [GENES.index(gene) for gene in m.selected]
    for tissue, smtsd in (("liver", LIVER), ("lung", LUNG)):
        columns = [i for i, (_, t) in enumerate(MATRIX_SAMPLES) if t == smtsd]
        table = read_expression(m.out[tissue])
        assert table.sample_ids == [m.ids[i] for i in columns]  # the matrix's order
        np.testing.assert_array_equal(table.matrix, m.values[gene_rows][:, columns].T)
        # The same samples as a per-tissue GCT 1.3 file give the same bytes.
        per_tissue = write_gct(
            tmp_path / f"gene_tpm_{tissue}.gct.gz", m.values[:, columns], table.sample_ids
        )
        out = tmp_path / f"per_tissue/{tissue}.parquet"
        ingest_tissue(per_tissue, m.attributes, m.genes, tissue, out)
        assert out.read_bytes() == m.out[tissue].read_bytes()


def test_matrix_samples_without_attributes_are_dropped(matrix_inputs, caplog) -> None:
    m = matrix_inputs
    rows = [(s, "", "Liver", t, "RNASEQ", "") for s, t in MATRIX_SAMPLES[1:]]
    write_attributes(m.attributes, rows)
    with caplog.at_level(logging.WARNING):
        ingest_matrix(m.gct, m.attributes, m.genes, m.out)
    assert f"1 of 6 samples are not in {m.attributes} and are dropped: {m.ids[0]}" in caplog.text
    assert read_expression(m.out["liver"]).sample_ids == [m.ids[2], m.ids[5]]


def test_matrix_tissue_without_samples_is_an_error(matrix_inputs) -> None:
    m = matrix_inputs
    out = {**m.out, "pancreas": m.out["liver"].with_name("pancreas.parquet")}
    with pytest.raises(ValueError, match=r"matrix.gct.gz: no sample of tissue\(s\) pancreas"):
        ingest_matrix(m.gct, m.attributes, m.genes, out)


def test_matrix_route_keeps_only_the_selected_samples_in_memory(matrix_inputs, monkeypatch) -> None:
    # The reader is asked for the configured tissues' samples only, not the whole matrix.
    from rnaseq_saliency import ingest

    asked = {}
    real = ingest.read_gct

    def spy(*args, **kwargs):
        asked.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "read_gct", spy)
    m = matrix_inputs
    ingest_matrix(m.gct, m.attributes, m.genes, {"lung": m.out["lung"]})
    assert asked["sample_ids"] == [m.ids[1], m.ids[4]]


def test_summary_accounts_for_every_attributes_row(matrix_inputs, caplog) -> None:
    m = matrix_inputs
    ingest_matrix(m.gct, m.attributes, m.genes, {"liver": m.out["liver"]})
    out = m.out["liver"].with_name("summary.tsv")
    with caplog.at_level(logging.INFO):
        summary = summarise_expression(m.attributes, {"liver": m.out["liver"]}, out)
    assert list(summary.columns) == list(EXPRESSION_SUMMARY_COLUMNS)
    back = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert back["attribute_rows"].sum() == len(read_sample_attributes(m.attributes)) == 8
    liver = back.set_index("smtsd").loc[LIVER]
    assert (liver["tissue"], liver["samples"], liver["attribute_rows"]) == ("liver", 3, 4)
    assert liver["ignored_why"] == "1 EXCLUDE: excluded from the release (QC)"
    lung = back.set_index("smtsd").loc[LUNG]
    assert (lung["tissue"], lung["samples"], lung["ignored_rows"]) == ("lung", 0, 2)
    assert "not in config key data.tissues" in lung["ignored_why"]
    cml = back.set_index("smtsd").loc["Cells - Leukemia cell line (CML)"]
    assert cml["tissue"] == "" and "no GTEx tissue expression file" in cml["ignored_why"]
    blood = back.set_index("smtsd").loc["Whole Blood"]
    assert blood["samples"] == 0 and blood["attribute_rows"] == 1
    assert "8 rows; kept 3 RNA-seq samples of the expression files (1 tissues)" in caplog.text
    assert "1 rows with SMAFRZE 'WGS' (whole-genome sequencing (DNA))" in caplog.text


def test_per_tissue_ingest_logs_the_ignored_attributes_rows(inputs, caplog) -> None:
    extra = [
        ("GTEX-111CU-3001-SM-EXC01", "", "Liver", LIVER, "EXCLUDE", ""),
        ("GTEX-111FC-0126-SM-NOTIN", "", "Liver", LIVER, "RNASEQ", ""),
    ]
    write_attributes(inputs.attributes, [*ATTRIBUTE_ROWS, *extra])
    with caplog.at_level(logging.INFO):
        run(inputs)
    assert (
        "liver: 2 of its 6 sample attributes rows ignored: 1 EXCLUDE: excluded from the "
        "release (QC); 1 RNA-seq: not in the expression file"
    ) in caplog.text
