"""The streaming GCT reader: real GTEx layouts, exact values, and every malformed-file error."""

from __future__ import annotations

import gzip
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from rnaseq_saliency import gct
from rnaseq_saliency.gct import GctFormatError, read_gct

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
    newline: str = "\n",
    compress: bool = True,
) -> Path:
    """Write a GCT 1.2 file as GTEx does: per-tissue files carry a leading ``id`` column."""
    rows = [[as_text(v) for v in row] for row in values]
    gene_ids = gene_ids if gene_ids is not None else [f"ENSG{i:011d}.1" for i in range(len(rows))]
    gene_names = gene_names if gene_names is not None else [f"GENE{i}" for i in range(len(rows))]
    if sample_ids is None:
        sample_ids = [f"GTEX-{i:04X}-0001-SM-{i:05X}" for i in range(len(rows[0]))]
    lines = [version, dims if dims is not None else f"{len(rows)}\t{len(sample_ids)}"]
    fixed = ["id", "Name", "Description"] if id_column else ["Name", "Description"]
    lines.append(header if header is not None else "\t".join(fixed + sample_ids))
    for i, (gene_id, name, row) in enumerate(zip(gene_ids, gene_names, rows, strict=True)):
        lines.append("\t".join(([str(i)] if id_column else []) + [gene_id, name, *row]))
    data = (newline.join(lines) + newline).encode()
    path.write_bytes(gzip.compress(data, compresslevel=6) if compress else data)
    return path


@pytest.fixture(params=[1, 3], ids=["inline", "threads"])
def threads(request, monkeypatch) -> int:
    """Read inline and with threads; small blocks so that files span many of them."""
    monkeypatch.setattr(gct, "_BLOCK_BYTES", 300)
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


def test_wrong_version_line(tmp_path: Path) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(2, 2), version="#1.3")
    expect_error(path, r":1: expected the GCT version line '#1.2'")


@pytest.mark.parametrize("dims", ["2", "2\tmany", "", "-2\t2"])
def test_unreadable_dims_line(tmp_path: Path, dims: str) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(2, 2), dims=dims)
    expect_error(path, r":2: expected the GCT dims line")


def test_dims_declare_more_genes_than_the_file_has(tmp_path: Path) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(3, 2), dims="4\t2")
    expect_error(path, r":2: the dims line declares 4 gene rows but the file has 3")


def test_dims_declare_fewer_genes_than_the_file_has(tmp_path: Path) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(3, 2), dims="2\t2")
    expect_error(path, r":6: more gene rows than the 2 that the dims line \(line 2\) declares")


def test_dims_declare_other_sample_count_than_header(tmp_path: Path) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(3, 2), dims="3\t5")
    expect_error(path, r":3: the header has 2 sample columns but the dims line .* declares 5")


@pytest.mark.parametrize(
    ("row", "found"),
    [(["1"], 1), (["1", "2", "3"], 3)],
)
def test_row_with_other_value_count_than_header(tmp_path: Path, row, found) -> None:
    rows = [["1", "2"], ["3", "4"], row, ["5", "6"]]
    path = write_gct(tmp_path / "x.gct.gz", rows)
    expect_error(path, rf":6: gene ENSG00000000002.1: {found} values, but the header .* 2 samples")


def test_row_without_annotation_fields(tmp_path: Path) -> None:
    path = write_gct(tmp_path / "x.gct", [["1"], ["2"]], compress=False)
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
def test_header_without_name_and_description(tmp_path: Path, header: str) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(2, 2), header=header)
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
def test_bad_value_names_line_gene_sample_and_value(tmp_path: Path, token: str, what: str) -> None:
    rows = [["1", "2", "3"], ["4", "5", "6"], ["7", token, "9"]]
    path = write_gct(tmp_path / "x.gct.gz", rows, sample_ids=["S-1", "S-2", "S-3"])
    expect_error(path, rf":6: gene ENSG00000000002.1, sample S-2: value {token!r} {what}")


def test_bad_value_deep_in_a_large_file_names_its_line(tmp_path: Path, threads: int) -> None:
    values = tpm_like(1000, 3).astype(str).tolist()
    values[876][2] = "x"
    path = write_gct(tmp_path / "x.gct.gz", values)
    pattern = r":880: gene ENSG00000000876.1, sample \S+: value 'x' is not a number"
    expect_error(path, pattern, threads=threads)


@pytest.mark.parametrize("bad_row", [3, 497])
def test_first_fault_in_file_order_is_reported(tmp_path: Path, threads: int, bad_row: int):
    # A bad value, then a repeated gene id at line 504: whether the bad value's block is
    # parsed already, still on a worker, or not yet submitted, the earlier line is reported.
    values = tpm_like(600, 2).astype(str).tolist()
    values[bad_row][0] = "bad"
    gene_ids = [f"ENSG{i:011d}.1" for i in range(600)]
    gene_ids[500] = gene_ids[499]
    path = write_gct(tmp_path / "x.gct.gz", values, gene_ids)
    expect_error(path, rf":{bad_row + 4}: .*value 'bad' is not a number", threads=threads)


def test_duplicate_sample_ids(tmp_path: Path) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(2, 3), sample_ids=["S-1", "S-2", "S-1"])
    expect_error(path, r":3: duplicate sample id\(s\): S-1")


def test_duplicate_gene_ids(tmp_path: Path) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(3, 2), ["ENSG1.1", "ENSG2.1", "ENSG1.1"])
    expect_error(path, r":6: gene id ENSG1.1 repeats \(first at line 4\)")


def test_requested_gene_missing_from_file(small) -> None:
    path, _ = small
    # A versioned id of another release is a different gene id for the reader.
    message = expect_error(
        path, r"1 requested gene id\(s\) are not in the file", ["ENSG00000223972.6", GENE_IDS[1]]
    )
    assert "ENSG00000223972.6" in message


def test_requested_gene_twice_is_a_caller_error(small) -> None:
    path, _ = small
    with pytest.raises(ValueError, match="requested twice"):
        read_gct(path, [GENE_IDS[0], GENE_IDS[0]])


@pytest.mark.parametrize("keep", [0.98, 0.5, 0.05])
def test_truncated_gzip(tmp_path: Path, keep: float, threads: int) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(400, 5))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    expect_error(path, r"truncated or corrupt gzip data", threads=threads)


def test_corrupt_gzip(tmp_path: Path, threads: int) -> None:
    path = write_gct(tmp_path / "x.gct.gz", tpm_like(400, 5))
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    expect_error(path, r"truncated or corrupt gzip data", threads=threads)


@pytest.mark.parametrize("text", ["", "#1.2\n", "#1.2\n2\t2\n"])
def test_file_ending_before_the_header(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.gct"
    path.write_text(text)
    expect_error(path, r"file ends before its")


def test_header_without_samples(tmp_path: Path) -> None:
    path = tmp_path / "x.gct"
    path.write_text("#1.2\n1\t0\nName\tDescription\nENSG1.1\tA\n")
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
