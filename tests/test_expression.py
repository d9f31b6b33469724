"""Expression Parquet files (rnaseq_saliency.expression) and the loaders built on them
(rnaseq_saliency.datasets): exact round trips, metadata, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnaseq_saliency import expression
from rnaseq_saliency.datasets import load_split_rows, load_training_rows, read_samples, tissue_of
from rnaseq_saliency.expression import (
    ExpressionTable,
    read_expression,
    read_gene_ids,
    write_expression,
)

GENES = ["ENSG00000186092.4", "ENSG00000182378.13", "ENSG00000182378.13_PAR_Y"]


def random_matrix(n_samples: int, n_genes: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = np.exp(rng.normal(0, 3, (n_samples, n_genes))).astype(np.float32)
    matrix[rng.random(matrix.shape) < 0.3] = 0.0
    return matrix


def table(prefix: str, n: int, seed: int = 0, **extra: list) -> ExpressionTable:
    ids = [f"GTEX-{prefix}{i}-0001-SM-{i}" for i in range(n)]
    return ExpressionTable(
        sample_ids=ids,
        donor_ids=["-".join(s.split("-")[:2]) for s in ids],
        gene_ids=list(GENES),
        matrix=random_matrix(n, len(GENES), seed),
        extra=dict(extra),
    )


# ------------------------------------------------------------------------------ expression


def test_round_trip_is_exact_and_contiguous(tmp_path: Path) -> None:
    original = table("A", 5)
    path = tmp_path / "liver.parquet"
    write_expression(path, original)
    back = read_expression(path)
    assert back.sample_ids == original.sample_ids and back.donor_ids == original.donor_ids
    assert back.gene_ids == GENES and back.extra == {}
    assert back.matrix.dtype == np.float32 and back.matrix.flags.c_contiguous
    np.testing.assert_array_equal(back.matrix, original.matrix)
    assert read_gene_ids(path) == GENES


def test_layout_is_one_fixed_size_list_column(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    write_expression(path, table("A", 2))
    schema = pq.read_schema(path)
    assert schema.names == ["sample_id", "donor_id", "expression"]
    assert schema.field("expression").type == pa.list_(pa.float32(), len(GENES))


def test_extra_columns_round_trip(tmp_path: Path) -> None:
    original = table("B", 3, synthetic=[False, True, True], source_sample_id=["s0", "s0;s1", "s2"])
    write_expression(tmp_path / "x.parquet", original)
    back = read_expression(tmp_path / "x.parquet")
    assert back.extra == {
        "synthetic": [False, True, True],
        "source_sample_id": ["s0", "s0;s1", "s2"],
    }


def test_any_float_matrix_is_stored_as_float32(tmp_path: Path) -> None:
    original = table("C", 3)
    values = np.asfortranarray(original.matrix.astype(np.float64))
    write_expression(tmp_path / "x.parquet", ExpressionTable(
        original.sample_ids, original.donor_ids, GENES, values
    ))  # fmt: skip
    np.testing.assert_array_equal(read_expression(tmp_path / "x.parquet").matrix, original.matrix)


def test_zero_samples_round_trip(tmp_path: Path) -> None:
    write_expression(tmp_path / "x.parquet", ExpressionTable([], [], GENES, np.zeros((0, 3))))
    back = read_expression(tmp_path / "x.parquet")
    assert back.matrix.shape == (0, 3) and back.gene_ids == GENES


def test_reads_files_split_into_many_row_groups(tmp_path: Path) -> None:
    # Another writer may split rows into row groups: the list column then arrives in chunks.
    original = table("D", 7, synthetic=[False] * 7)
    write_expression(tmp_path / "one.parquet", original)
    pq.write_table(
        pq.read_table(tmp_path / "one.parquet"), tmp_path / "many.parquet", row_group_size=2
    )
    back = read_expression(tmp_path / "many.parquet")
    np.testing.assert_array_equal(back.matrix, original.matrix)
    assert back.sample_ids == original.sample_ids


def test_shape_mismatches_are_rejected() -> None:
    with pytest.raises(ValueError, match="one entry per matrix row"):
        ExpressionTable(["a"], ["A", "B"], GENES, np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="one entry per matrix column"):
        ExpressionTable(["a"], ["A"], GENES[:2], np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="'synthetic' must have one entry per matrix row"):
        ExpressionTable(["a"], ["A"], GENES, np.zeros((1, 3), np.float32), {"synthetic": []})


def test_other_parquet_files_are_rejected_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    with pytest.raises(ValueError, match=rf"{path}: not an rnaseq-saliency expression file"):
        read_expression(path)
    with pytest.raises(ValueError, match=rf"{path}: not an rnaseq-saliency expression file"):
        read_gene_ids(path)


def test_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "liver.parquet"
    write_expression(path, table("E", 2))
    before = path.read_bytes()

    def crash(arrow_table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(expression.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        write_expression(path, table("E", 3))
    with pytest.raises(OSError, match="disk full"):
        write_expression(tmp_path / "new.parquet", table("E", 3))
    # The old file is intact, the new one absent, and no temporary file is left over.
    assert [p.name for p in tmp_path.iterdir()] == ["liver.parquet"]
    assert path.read_bytes() == before


# ------------------------------------------------------------------------------ datasets


@pytest.fixture
def two_tissues(tmp_path: Path) -> tuple[list[Path], dict[str, ExpressionTable], pd.DataFrame]:
    tables = {"liver": table("L", 4, seed=1), "lung": table("U", 3, seed=2)}
    files = []
    for tissue, content in tables.items():
        files.append(tmp_path / f"expression/{tissue}.parquet")
        write_expression(files[-1], content)
    rows = []
    splits = {"liver": ["train", "test", "train", "val"], "lung": ["val", "train", "test"]}
    for tissue, content in tables.items():
        for sample, donor, split in zip(
            content.sample_ids, content.donor_ids, splits[tissue], strict=True
        ):
            rows.append({"sample_id": sample, "donor_id": donor, "tissue": tissue, "split": split})
    samples_path = tmp_path / "samples.tsv"
    pd.DataFrame(rows).to_csv(samples_path, sep="\t", index=False)
    return files, tables, read_samples(samples_path)


def test_tissue_of() -> None:
    assert tissue_of("results/expression/brain_spinal_cord_cervical_c-1.parquet") == (
        "brain_spinal_cord_cervical_c-1"
    )


def test_load_split_rows_gathers_one_split_across_tissues(two_tissues) -> None:
    files, tables, samples = two_tissues
    rows = load_split_rows(files, samples, "train")
    assert rows.tissues == ["liver", "liver", "lung"]
    assert rows.sample_ids == [tables["liver"].sample_ids[i] for i in (0, 2)] + [
        tables["lung"].sample_ids[1]
    ]
    expected = np.vstack([tables["liver"].matrix[[0, 2]], tables["lung"].matrix[[1]]])
    np.testing.assert_array_equal(rows.matrix, expected)
    assert rows.matrix.dtype == np.float32 and rows.gene_ids == GENES
    assert not rows.synthetic.any()


def test_load_split_rows_rejects_files_with_other_genes(two_tissues, tmp_path: Path) -> None:
    files, tables, samples = two_tissues
    other = tables["lung"]
    write_expression(files[1], ExpressionTable(
        other.sample_ids, other.donor_ids, GENES[::-1], other.matrix
    ))  # fmt: skip
    with pytest.raises(ValueError, match=r"lung.parquet: its genes differ"):
        load_split_rows(files, samples, "val")
    with pytest.raises(ValueError, match="unknown split"):
        load_split_rows(files, samples, "training")


def test_read_samples_checks_columns_and_split_names(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("sample_id\ttissue\tsplit\nS1\tliver\ttrain\n")
    with pytest.raises(ValueError, match=r"a.tsv: missing column\(s\) \['donor_id'\]"):
        read_samples(tmp_path / "a.tsv")
    (tmp_path / "b.tsv").write_text("sample_id\tdonor_id\ttissue\tsplit\nS1\tD\tliver\tholdout\n")
    with pytest.raises(ValueError, match=r"b.tsv: unknown split value\(s\) \['holdout'\]"):
        read_samples(tmp_path / "b.tsv")


def test_load_training_rows_keeps_synthetic_flags(tmp_path: Path) -> None:
    liver = table("L", 3, seed=3, synthetic=[False, False, True])
    lung = table("U", 2, seed=4)  # a real-only file has no synthetic column
    empty = ExpressionTable([], [], GENES, np.zeros((0, 3), np.float32), {"synthetic": []})
    files = [
        tmp_path / "liver.parquet",
        tmp_path / "kidney_medulla.parquet",
        tmp_path / "lung.parquet",
    ]
    for path, content in zip(files, [liver, empty, lung], strict=True):
        write_expression(path, content)
    rows = load_training_rows(files)
    assert rows.tissues == ["liver"] * 3 + ["lung"] * 2
    assert rows.synthetic.tolist() == [False, False, True, False, False]
    np.testing.assert_array_equal(rows.matrix, np.vstack([liver.matrix, lung.matrix]))
    assert rows.sample_ids == liver.sample_ids + lung.sample_ids
