"""The streaming GCT reader: real GTEx layouts, exact values, and every malformed-file error."""

from __future__ import annotations

import gzip
import logging
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from rnaseq_saliency import gct
from rnaseq_saliency.gct import GctFormatError, read_gct, read_gct_header

GENE_IDS = [
    "ENSG00000223972.5",
    "ENSG00000182378.13",
    "ENSG00000182378.13_PAR_Y",
    "ENSG00000186092.4",
    "ENSG00000002586.18_PAR_Y",
]
GENE_NAMES = ["DDX11L1", "PLCXD1", "PLCXD1", "OR4F5", "CD99"]
SAMPLE_IDS = ["GTEX-1117F-0226-SM-5GZZ7", "GTEX-111CU-1826-SM-5GZYN", "GTEX-111FC-0226-SM-5N9B8"]


def tpm_like(n_genes: int, n_samples: int, seed: int = 0) -> np.ndarray:
    """float32 genes x samples values with many zeros, a wide dynamic range and integers."""
    rng = np.random.default_rng(seed)
    values = np.exp(rng.normal(0.0, 3.0, (n_genes, n_samples))).astype(np.float32)
    values[rng.random(values.shape) < 0.3] = 0.0
    values[:, 0] = np.round(values[:, 0])  # written as integers such as "12"
    return values


def as_text(value: float | str) -> str:
    # numpy prints the shortest decimal that reads back as the same float32 ("1e-05", "0.3").
    return value if isinstance(value, str) else str(np.float32(value))


def declare(version: str, n_rows: int, n_samples: int) -> str:
    """The dims line as GTEx writes it: 1.3 counts Name and Description as columns."""
    return f"{n_rows}\t{n_samples}" if version == "#1.2" else f"{n_rows}\t{n_samples + 2}\t0\t0"


def write_gct(
    path: Path,
    values: np.ndarray | list[list[str]],
    gene_ids: list[str] | None = None,
    gene_names: list[str] | None = None,
    sample_ids: list[str] | None = None,
    *,
    id_column: bool = True,
    version: str = "#1.2",
    dims: str | None = None,
    header: str | None = None,
    extra_columns: dict[str, list[str]] | None = None,
    column_metadata: list[list[str]] | None = None,
    newline: str = "\n",
    compress: bool = True,
) -> Path:
    """Write a GCT file as GTEx does: per-tissue files carry a leading ``id`` column.

    ``extra_columns`` are row-metadata columns after Name and Description; each
    ``column_metadata`` row is written after the header as given (GCT 1.3). ``dims`` defaults
    to GTEx's convention for ``version`` (``declare``).
    """
    rows = [[as_text(v) for v in row] for row in values]
    gene_ids = gene_ids if gene_ids is not None else [f"ENSG{i:011d}.1" for i in range(len(rows))]
    gene_names = gene_names if gene_names is not None else [f"GENE{i}" for i in range(len(rows))]
    extra_columns = extra_columns or {}
    if sample_ids is None:
        sample_ids = [f"GTEX-{i:04X}-0001-SM-{i:05X}" for i in range(len(rows[0]))]
    lines = [version, dims if dims is not None else declare(version, len(rows), len(sample_ids))]
    fixed = (["id"] if id_column else []) + ["Name", "Description", *extra_columns]
    lines.append(header if header is not None else "\t".join(fixed + sample_ids))
    lines.extend("\t".join(row) for row in column_metadata or [])
    for i, (gene_id, name, row) in enumerate(zip(gene_ids, gene_names, rows, strict=True)):
        extras = [column[i] for column in extra_columns.values()]
        lines.append("\t".join(([str(i)] if id_column else []) + [gene_id, name, *extras, *row]))
    data = (newline.join(lines) + newline).encode()
    path.write_bytes(gzip.compress(data, compresslevel=6) if compress else data)
    return path


def write_gct_in(version: str, *args, **kwargs) -> Path:
    """``write_gct`` in GCT ``version``."""
    return write_gct(*args, version=version, **kwargs)


@pytest.fixture(params=[1, 3], ids=["inline", "threads"])
def threads(request, monkeypatch) -> int:
    """Read inline and with threads; small blocks so that files span many of them."""
    monkeypatch.setattr(gct, "_BLOCK_BYTES", 300)
    return request.param


@pytest.fixture(params=["#1.2", "#1.3"], ids=["gct1.2", "gct1.3"])
def version(request) -> str:
    """Each bad-input case in both GCT versions."""
    return request.param


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, np.ndarray]:
    values = tpm_like(len(GENE_IDS), len(SAMPLE_IDS))
    path = write_gct(tmp_path / "gene_tpm_liver.gct.gz", values, GENE_IDS, GENE_NAMES, SAMPLE_IDS)
    return path, values


# ------------------------------------------------------------------------------ reading


def test_reads_per_tissue_file_with_exact_values(small) -> None:
    path, values = small
    result = read_gct(path)
    assert result.sample_ids == SAMPLE_IDS
    assert result.gene_ids == GENE_IDS
    assert result.gene_names == GENE_NAMES
    assert result.matrix.dtype == np.float32 and result.matrix.flags.c_contiguous
    np.testing.assert_array_equal(result.matrix, values.T)  # bit-exact, samples x genes


def test_reads_whole_matrix_layout_without_id_column(tmp_path: Path) -> None:
    values = tpm_like(4, 3)
    path = write_gct(tmp_path / "whole.gct.gz", values, id_column=False)
    result = read_gct(path)
    assert result.gene_ids == [f"ENSG{i:011d}.1" for i in range(4)]
    np.testing.assert_array_equal(result.matrix, values.T)


def test_reads_requested_genes_in_requested_order_par_y_distinct(small) -> None:
    path, values = small
    wanted = ["ENSG00000002586.18_PAR_Y", "ENSG00000182378.13", "ENSG00000182378.13_PAR_Y"]
    result = read_gct(path, wanted)
    assert result.gene_ids == wanted
    assert result.gene_names == ["CD99", "PLCXD1", "PLCXD1"]
    np.testing.assert_array_equal(result.matrix, values[[4, 1, 2]].T)


# ------------------------------------------------------------------------------ GCT 1.3


REAL_KIDNEY_MEDULLA = (
    # The first lines of a real GTEx v8 per-tissue file, as downloaded (4 samples).
    "#1.3\n"
    "56200\t6\t0\t0\n"
    "id\tName\tDescription\tGTEX-R55E-2026-SM-EZ6L1\tGTEX-RU72-1926-SM-EAZ3F\t"
    "GTEX-T5JC-1626-SM-EZ6KW\tGTEX-TKQ2-0626-SM-EZ6LB\n"
    "0\tENSG00000223972.5\tDDX11L1\t0.0673\t0.0000\t0.0000\t0.0000\n"
)


def test_reads_the_real_gtex_per_tissue_preamble(tmp_path: Path) -> None:
    # The real file's first gene line, then two more, with the dims line's row count to match.
    text = REAL_KIDNEY_MEDULLA.replace("56200\t", "3\t") + (
        "1\tENSG00000227232.5\tWASH7P\t4.2140\t11.3200\t3.7890\t6.0000\n"
        "2\tENSG00000278267.1\tMIR6859-1\t0.0000\t0.0000\t1.5500\t0.0000\n"
    )
    path = tmp_path / "gene_tpm_2017-06-05_v8_kidney_medulla.gct.gz"
    path.write_bytes(gzip.compress(text.encode()))
    result = read_gct(path)
    assert result.sample_ids[0] == "GTEX-R55E-2026-SM-EZ6L1" and len(result.sample_ids) == 4
    assert result.gene_ids == ["ENSG00000223972.5", "ENSG00000227232.5", "ENSG00000278267.1"]
    assert result.gene_names == ["DDX11L1", "WASH7P", "MIR6859-1"]
    expected = np.array([[0.0673, 0, 0, 0], [4.214, 11.32, 3.789, 6], [0, 0, 1.55, 0]], np.float32)
    np.testing.assert_array_equal(result.matrix, expected.T)
    header = read_gct_header(path)
    assert (header.version, header.n_rows, header.n_fixed, header.skipped) == ("#1.3", 3, 3, [])


@pytest.mark.parametrize("id_column", [True, False], ids=["id", "no-id"])
@pytest.mark.parametrize("counting", ["samples", "named columns"])
def test_gct13_both_column_counts_with_and_without_id(
    tmp_path: Path, id_column: bool, counting: str
) -> None:
    values = tpm_like(4, 3)
    n_cols = 3 if counting == "samples" else 3 + 2  # Name and Description; never ``id``
    path = write_gct(
        tmp_path / "x.gct.gz",
        values,
        version="#1.3",
        dims=f"4\t{n_cols}\t0\t0",
        id_column=id_column,
    )
    result = read_gct(path)
    assert result.gene_names == [f"GENE{i}" for i in range(4)]
    np.testing.assert_array_equal(result.matrix, values.T)


@pytest.mark.parametrize("n_cols", [4, 6, 2, 0])
def test_gct13_any_other_column_count_is_an_error(tmp_path: Path, n_cols: int) -> None:
    # 3 samples: 3 (definition) and 5 (GTEx: + Name + Description) are right; 6 would count id.
    path = write_gct(
        tmp_path / "x.gct.gz", tpm_like(2, 3), version="#1.3", dims=f"2\t{n_cols}\t0\t0"
    )
    expect_error(path, rf":3: the header has 3 sample columns but .* declares {n_cols} \(or 5 ")


def test_gct13_column_metadata_rows_are_read_past(tmp_path: Path) -> None:
    values = tpm_like(3, 2)
    metadata = [
        ["SMTSD", "na", "na", "Liver", "Lung"],
        ["SMRIN", "na", "na", "7.1", "6.4"],
    ]
    path = write_gct(
        tmp_path / "x.gct.gz", values, version="#1.3", dims="3\t2\t0\t2", column_metadata=metadata
    )
    result = read_gct(path)
    assert result.gene_ids == [f"ENSG{i:011d}.1" for i in range(3)]  # no "SMTSD" gene
    np.testing.assert_array_equal(result.matrix, values.T)
    # Line numbers still count the metadata rows: the first gene is line 6.
    bad = values.astype(str).tolist()
    bad[0][1] = "x"
    path = write_gct(
        tmp_path / "y.gct.gz", bad, version="#1.3", dims="3\t2\t0\t2", column_metadata=metadata
    )
    expect_error(path, r":6: gene ENSG00000000000.1, sample \S+: value 'x'")


def test_gct13_short_or_missing_column_metadata_rows(tmp_path: Path) -> None:
    short = [["SMTSD", "na", "na", "Liver"]]
    path = write_gct(
        tmp_path / "x.gct.gz",
        tpm_like(2, 2),
        version="#1.3",
        dims="2\t2\t0\t1",
        column_metadata=short,
    )
    expect_error(path, r":4: column-metadata row 1 of 1 has 4 fields, but the header .* has 5")
    path = tmp_path / "y.gct"
    path.write_text("#1.3\n2\t2\t0\t2\nid\tName\tDescription\tS1\tS2\nSMTSD\tna\tna\tA\tB\n")
    expect_error(path, r"file ends before its 2 column-metadata rows .* found 1")


@pytest.mark.parametrize("n_row_metadata", [3, 0], ids=["counted", "gtex-style"])
def test_gct13_row_metadata_beyond_name_and_description_is_skipped(
    tmp_path: Path, n_row_metadata: int, caplog
) -> None:
    values = tpm_like(2, 2)
    extra = {"Chromosome": ["chr1", "chrY"]}
    # Counted (the definition: Name, Description, Chromosome) or, as GTEx counts, not at all:
    # then the extra column only matches when the column count includes it.
    n_cols = 2 if n_row_metadata else 2 + 3
    dims = f"2\t{n_cols}\t{n_row_metadata}\t0"
    path = write_gct(tmp_path / "x.gct.gz", values, version="#1.3", dims=dims, extra_columns=extra)
    if n_row_metadata == 0:
        # GTEx writes 0 and counts Name and Description as columns: an extra column is then
        # read as a sample, and its first value stops the read with a clear error.
        expect_error(path, r":4: gene ENSG00000000000.1, sample Chromosome: value 'chr1'")
        return
    with caplog.at_level(logging.INFO, logger="rnaseq_saliency.gct"):
        result = read_gct(path)
    assert result.gene_names == ["GENE0", "GENE1"]
    np.testing.assert_array_equal(result.matrix, values.T)
    assert read_gct_header(path).skipped == ["Chromosome"]
    assert "row-metadata column(s) Chromosome after Name and Description are not read" in (
        caplog.text
    )


def test_gct13_one_row_metadata_column_cannot_hold_name_and_description(tmp_path: Path) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(2, 2), version="#1.3", dims="2\t2\t1\t0")
    expect_error(path, r":2: the dims line declares 1 row-metadata column")


def test_selected_samples_in_requested_order(small) -> None:
    path, values = small
    wanted = [SAMPLE_IDS[2], SAMPLE_IDS[0]]
    result = read_gct(path, GENE_IDS[1:3], sample_ids=wanted)
    assert result.sample_ids == wanted
    np.testing.assert_array_equal(result.matrix, values[1:3][:, [2, 0]].T)
    assert result.matrix.flags.c_contiguous


def test_selected_sample_missing_or_repeated(small) -> None:
    path, _ = small
    with pytest.raises(GctFormatError, match=r":3: 1 requested sample id\(s\) .*: GTEX-NOPE"):
        read_gct(path, sample_ids=[SAMPLE_IDS[0], "GTEX-NOPE"])
    with pytest.raises(ValueError, match="requested twice"):
        read_gct(path, sample_ids=[SAMPLE_IDS[0], SAMPLE_IDS[0]])


def test_plain_text_and_windows_line_endings(tmp_path: Path) -> None:
    values = tpm_like(3, 2)
    path = write_gct(tmp_path / "x.gct", values, newline="\r\n", compress=False)
    result = read_gct(path)
    assert result.sample_ids == [f"GTEX-{i:04X}-0001-SM-{i:05X}" for i in range(2)]
    np.testing.assert_array_equal(result.matrix, values.T)


def test_many_blocks_and_chunk_boundaries(tmp_path: Path, monkeypatch, threads: int) -> None:
    # Tiny reads and chunks split lines and numbers across chunk boundaries; 700 genes make
    # several parse blocks that the worker thread fills out of order of arrival.
    monkeypatch.setattr(gct, "_READ_BYTES", 61)
    monkeypatch.setattr(gct, "_CHUNK_BYTES", 97)
    values = tpm_like(700, 7, seed=1)
    path = write_gct(tmp_path / "big.gct.gz", values)
    every = read_gct(path, threads=threads)
    np.testing.assert_array_equal(every.matrix, values.T)
    rng = np.random.default_rng(2)
    rows = rng.permutation(700)[:300]
    subset = read_gct(path, [f"ENSG{i:011d}.1" for i in rows], threads=threads)
    np.testing.assert_array_equal(subset.matrix, values[rows].T)


def test_concatenated_gzip_members_read_as_one_file(tmp_path: Path) -> None:
    values = tpm_like(6, 2)
    whole = write_gct(tmp_path / "one.gct", values, compress=False).read_bytes()
    cut = whole.index(b"\n", len(whole) // 2) + 1
    path = tmp_path / "two_members.gct.gz"
    path.write_bytes(gzip.compress(whole[:cut]) + gzip.compress(whole[cut:]))
    np.testing.assert_array_equal(read_gct(path).matrix, values.T)


def test_unread_genes_are_not_parsed(tmp_path: Path) -> None:
    # Documented: only the genes asked for are parsed, so a bad value elsewhere is not seen.
    rows = [["1", "2"], ["oops", "3"]]
    path = write_gct(tmp_path / "x.gct.gz", rows)
    assert read_gct(path, ["ENSG00000000000.1"]).matrix.tolist() == [[1.0], [2.0]]
    with pytest.raises(GctFormatError, match=r":5: .*'oops' is not a number"):
        read_gct(path)


# ------------------------------------------------------------------------------ bad input


def expect_error(
    path: Path, pattern: str, gene_ids: list[str] | None = None, threads: int = 1
) -> str:
    """Read ``path`` expecting a GctFormatError whose message names the file and matches."""
    with pytest.raises(GctFormatError) as caught:
        read_gct(path, gene_ids, threads=threads)
    message = str(caught.value)
    assert str(path) in message
    assert re.search(pattern, message), message
    return message


def test_error_is_a_value_error() -> None:
    assert issubclass(GctFormatError, ValueError)


@pytest.mark.parametrize("line", ["#1.4", "#1.2.1", "1.3", "#gct"])
def test_wrong_version_line(tmp_path: Path, line: str) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(2, 2), version=line, dims="2\t2")
    expect_error(path, r":1: expected the GCT version line '#1.2' or '#1.3'")


@pytest.mark.parametrize(
    ("version", "dims"),
    [
        ("#1.2", "2"),
        ("#1.2", "2\tmany"),
        ("#1.2", ""),
        ("#1.2", "-2\t2"),
        ("#1.2", "2\t2\t0\t0"),  # 1.3's four fields under a 1.2 version line
        ("#1.3", "2\t4"),  # 1.2's two fields under a 1.3 version line
        ("#1.3", "2\t4\t0"),
        ("#1.3", "2\t4\t0\tnone"),
        ("#1.3", ""),
        ("#1.3", "2\t4\t0\t-1"),
    ],
)
def test_unreadable_dims_line(tmp_path: Path, version: str, dims: str) -> None:
    path = write_gct_in(version, tmp_path / "x.gct.gz", tpm_like(2, 2), dims=dims)
    expect_error(path, rf":2: expected the GCT {version[1:]} dims line")


def test_dims_declare_more_genes_than_the_file_has(tmp_path: Path, version: str) -> None:
    path = write_gct_in(version, tmp_path / "x.gct.gz", tpm_like(3, 2), dims=declare(version, 4, 2))
    expect_error(path, r":2: the dims line declares 4 gene rows but the file has 3")


def test_dims_declare_fewer_genes_than_the_file_has(tmp_path: Path, version: str) -> None:
    path = write_gct_in(version, tmp_path / "x.gct.gz", tpm_like(3, 2), dims=declare(version, 2, 2))
    expect_error(path, r":6: more gene rows than the 2 that the dims line \(line 2\) declares")


def test_dims_declare_other_sample_count_than_header(tmp_path: Path, version: str) -> None:
    path = write_gct_in(version, tmp_path / "x.gct.gz", tpm_like(3, 2), dims=declare(version, 3, 5))
    declared = 5 if version == "#1.2" else 7
    expect_error(
        path, rf":3: the header has 2 sample columns but the dims line .* declares {declared}"
    )


@pytest.mark.parametrize(
    ("row", "found"),
    [(["1"], 1), (["1", "2", "3"], 3)],
)
def test_row_with_other_value_count_than_header(tmp_path: Path, version: str, row, found) -> None:
    rows = [["1", "2"], ["3", "4"], row, ["5", "6"]]
    path = write_gct_in(version, tmp_path / "x.gct.gz", rows)
    expect_error(path, rf":6: gene ENSG00000000002.1: {found} values, but the header .* 2 samples")


def test_row_without_annotation_fields(tmp_path: Path, version: str) -> None:
    path = write_gct_in(version, tmp_path / "x.gct", [["1"], ["2"]], compress=False)
    text = path.read_text().replace("1\tENSG00000000001.1\tGENE1\t2", "ENSG00000000001.1")
    path.write_text(text)
    expect_error(path, r":5: fewer fields than the header")


@pytest.mark.parametrize(
    "header",
    [
        "id\tGene\tDescription\tS1\tS2",
        "id\tName\tSymbol\tS1\tS2",
        "Description\tName\tS1\tS2",
        "Name\tS1\tS2",
    ],
)
def test_header_without_name_and_description(tmp_path: Path, version: str, header: str) -> None:
    path = write_gct_in(version, tmp_path / "x.gct.gz", tpm_like(2, 2), header=header)
    expect_error(path, r":3: expected the header to start with 'Name<TAB>Description'")


@pytest.mark.parametrize(
    ("token", "what"),
    [
        ("abc", "is not a number"),
        ("", "is not a number"),
        ("1.5.2", "is not a number"),
        (" 2", "is not a number"),
        ("NA", "is not a number"),
        ("-0.5", "is negative or infinite"),
        ("inf", "is negative or infinite"),
        ("nan", "is NaN"),
        ("NaN", "is NaN"),
    ],
)
def test_bad_value_names_line_gene_sample_and_value(
    tmp_path: Path, version: str, token: str, what: str
) -> None:
    rows = [["1", "2", "3"], ["4", "5", "6"], ["7", token, "9"]]
    path = write_gct_in(version, tmp_path / "x.gct.gz", rows, sample_ids=["S-1", "S-2", "S-3"])
    expect_error(path, rf":6: gene ENSG00000000002.1, sample S-2: value {token!r} {what}")


def test_bad_value_deep_in_a_large_file_names_its_line(
    tmp_path: Path, version: str, threads: int
) -> None:
    values = tpm_like(1000, 3).astype(str).tolist()
    values[876][2] = "x"
    path = write_gct_in(version, tmp_path / "x.gct.gz", values)
    pattern = r":880: gene ENSG00000000876.1, sample \S+: value 'x' is not a number"
    expect_error(path, pattern, threads=threads)


@pytest.mark.parametrize("bad_row", [3, 497])
def test_first_fault_in_file_order_is_reported(
    tmp_path: Path, version: str, threads: int, bad_row: int
):
    # A bad value, then a repeated gene id at line 504: whether the bad value's block is
    # parsed already, still on a worker, or not yet submitted, the earlier line is reported.
    values = tpm_like(600, 2).astype(str).tolist()
    values[bad_row][0] = "bad"
    gene_ids = [f"ENSG{i:011d}.1" for i in range(600)]
    gene_ids[500] = gene_ids[499]
    path = write_gct_in(version, tmp_path / "x.gct.gz", values, gene_ids)
    expect_error(path, rf":{bad_row + 4}: .*value 'bad' is not a number", threads=threads)


def test_duplicate_sample_ids(tmp_path: Path, version: str) -> None:
    path = write_gct_in(
        version, tmp_path / "x.gct.gz", tpm_like(2, 3), sample_ids=["S-1", "S-2", "S-1"]
    )
    expect_error(path, r":3: duplicate sample id\(s\): S-1")


def test_duplicate_gene_ids(tmp_path: Path, version: str) -> None:
    path = write_gct_in(
        version, tmp_path / "x.gct.gz", tpm_like(3, 2), ["ENSG1.1", "ENSG2.1", "ENSG1.1"]
    )
    expect_error(path, r":6: gene id ENSG1.1 repeats \(first at line 4\)")


def test_requested_gene_missing_from_file(small, version: str) -> None:
    path, _ = small
    # A versioned id of another release is a different gene id for the reader.
    message = expect_error(
        path, r"1 requested gene id\(s\) are not in the file", ["ENSG00000223972.6", GENE_IDS[1]]
    )
    assert "ENSG00000223972.6" in message


def test_requested_gene_twice_is_a_caller_error(small, version: str) -> None:
    path, _ = small
    with pytest.raises(ValueError, match="requested twice"):
        read_gct(path, [GENE_IDS[0], GENE_IDS[0]])


@pytest.mark.parametrize("keep", [0.98, 0.5, 0.05])
def test_truncated_gzip(tmp_path: Path, version: str, keep: float, threads: int) -> None:
    path = write_gct_in(version, tmp_path / "x.gct.gz", tpm_like(400, 5))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    expect_error(path, r"truncated or corrupt gzip data", threads=threads)


def test_corrupt_gzip(tmp_path: Path, version: str, threads: int) -> None:
    path = write_gct_in(version, tmp_path / "x.gct.gz", tpm_like(400, 5))
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    expect_error(path, r"truncated or corrupt gzip data", threads=threads)


@pytest.mark.parametrize("text", ["", "#1.2\n", "#1.2\n2\t2\n", "#1.3\n", "#1.3\n2\t4\t0\t0\n"])
def test_file_ending_before_the_header(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.gct"
    path.write_text(text)
    expect_error(path, r"file ends before its")


def test_header_without_samples(tmp_path: Path, version: str) -> None:
    path = tmp_path / "x.gct"
    dims = declare(version, 1, 0)
    path.write_text(f"{version}\n{dims}\nName\tDescription\nENSG1.1\tA\n")
    expect_error(path, r":3: the header names no samples")


def test_no_thread_outlives_a_read(tmp_path: Path, threads: int) -> None:
    values = tpm_like(900, 3).astype(str).tolist()
    good = write_gct(tmp_path / "good.gct.gz", values)
    values[10][1] = "bad"
    bad = write_gct(tmp_path / "bad.gct.gz", values)
    before = threading.active_count()
    for _ in range(3):
        read_gct(good, threads=threads)
        with pytest.raises(GctFormatError):
            read_gct(bad, threads=threads)
    assert threading.active_count() == before


def test_threads_must_be_positive(small) -> None:
    with pytest.raises(ValueError, match="threads must be >= 1"):
        read_gct(small[0], threads=0)


def test_short_and_long_rows_do_not_cancel_out(tmp_path: Path) -> None:
    # A row one value short and the next one value long hold the right total between them:
    # the count must be checked per line, or values would shift silently between genes.
    rows = [["1", "2", "3"], ["4", "5"], ["6", "7", "8", "9"], ["1", "2", "3"]]
    path = write_gct(tmp_path / "x.gct.gz", rows)
    expect_error(path, r":5: gene ENSG00000000001.1: 2 values, but the header .* 3 samples")
