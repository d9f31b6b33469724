"""The expression Parquet files that pass between rules.

Layout (chosen by measurement, see ``bench/ingest.py`` and BENCHMARKS.md): one row per sample
with the columns

- ``sample_id`` (string), ``donor_id`` (string);
- in augmented files also ``synthetic`` (bool) and ``source_sample_id`` (string: the real sample
  a synthetic row came from, ``a;b`` for two SMOTE parents, or the row's own id when real);
- ``expression``: a ``fixed_size_list<float32>`` with one value per gene,

and the gene ids, in model input order, in the schema metadata under ``rnaseq_saliency.gene_ids``.
A fixed-size list column reads back as one contiguous float32 buffer without copying, where a
19,000-column wide table pays for 19,000 column chunks and their metadata.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rnaseq_saliency.fileio import atomic_path

GENE_IDS_KEY = b"rnaseq_saliency.gene_ids"
# Fixed types, so that an empty file (a tissue with no training rows) has typed columns.
EXTRA_COLUMN_TYPES = {"synthetic": pa.bool_(), "source_sample_id": pa.string()}
EXPRESSION_COLUMN = "expression"
ROW_GROUP_SAMPLES = 128


@dataclass
class ExpressionTable:
    """Samples x genes float32 expression with the per-sample columns that travel with it."""

    sample_ids: list[str]
    donor_ids: list[str]
    gene_ids: list[str]
    matrix: np.ndarray  # (n_samples, n_genes) float32, C-contiguous
    extra: dict[str, list] = field(default_factory=dict)  # e.g. synthetic, source_sample_id

    def __post_init__(self) -> None:
        n_samples, n_genes = self.matrix.shape
        if len(self.sample_ids) != n_samples or len(self.donor_ids) != n_samples:
            raise ValueError("sample_ids and donor_ids must have one entry per matrix row")
        if len(self.gene_ids) != n_genes:
            raise ValueError("gene_ids must have one entry per matrix column")
        for name, values in self.extra.items():
            if len(values) != n_samples:
                raise ValueError(f"column {name!r} must have one entry per matrix row")


def write_expression(path: str | os.PathLike[str], table: ExpressionTable) -> None:
    """Write ``table`` to ``path`` atomically (a temporary file renamed into place)."""
    matrix = np.ascontiguousarray(table.matrix, dtype=np.float32)
    n_genes = matrix.shape[1]
    values = pa.array(matrix.reshape(-1), type=pa.float32())
    expression = pa.FixedSizeListArray.from_arrays(values, n_genes)
    columns: dict[str, pa.Array] = {
        "sample_id": pa.array(table.sample_ids, type=pa.string()),
        "donor_id": pa.array(table.donor_ids, type=pa.string()),
    }
    for name, column in table.extra.items():
        columns[name] = pa.array(column, type=EXTRA_COLUMN_TYPES.get(name))
    columns[EXPRESSION_COLUMN] = expression
    schema_metadata = {GENE_IDS_KEY: json.dumps(list(table.gene_ids)).encode()}
    arrow_table = pa.table(columns).replace_schema_metadata(schema_metadata)
    with atomic_path(path) as tmp:
        # Dictionary encoding only bloats float columns; zstd keeps TPM files compact.
        pq.write_table(
            arrow_table,
            tmp,
            compression="zstd",
            use_dictionary=["sample_id", "donor_id", *table.extra.keys()],
            # Row groups of a few hundred samples bound the writer's and reader's working
            # memory to a slice of the matrix (bench/ingest.py measured the difference).
            row_group_size=ROW_GROUP_SAMPLES,
        )


def read_gene_ids(path: str | os.PathLike[str]) -> list[str]:
    """The gene ids of an expression file, from its metadata, without reading the data."""
    metadata = pq.read_schema(path).metadata or {}
    if GENE_IDS_KEY not in metadata:
        raise ValueError(f"{path}: not an rnaseq-saliency expression file (no gene id metadata)")
    return json.loads(metadata[GENE_IDS_KEY])


def read_expression(path: str | os.PathLike[str]) -> ExpressionTable:
    """Read an expression file back into one contiguous float32 matrix.

    The matrix is preallocated and filled one row group at a time, so reading costs little
    more memory than the matrix itself.
    """
    parquet = pq.ParquetFile(path)
    metadata = parquet.schema_arrow.metadata or {}
    if GENE_IDS_KEY not in metadata or EXPRESSION_COLUMN not in parquet.schema_arrow.names:
        raise ValueError(f"{path}: not an rnaseq-saliency expression file")
    gene_ids = json.loads(metadata[GENE_IDS_KEY])
    n_genes = len(gene_ids)
    matrix = np.empty((parquet.metadata.num_rows, n_genes), dtype=np.float32)
    other = [name for name in parquet.schema_arrow.names if name != EXPRESSION_COLUMN]
    columns: dict[str, list] = {name: [] for name in other}
    start = 0
    for group in range(parquet.num_row_groups):
        batch = parquet.read_row_group(group)
        for name in other:
            columns[name].extend(batch.column(name).to_pylist())
        lists = batch.column(EXPRESSION_COLUMN).combine_chunks()
        if lists.type.list_size != n_genes:
            raise ValueError(
                f"{path}: {lists.type.list_size} values per sample but {n_genes} gene ids"
            )
        values = lists.values.to_numpy(zero_copy_only=False)
        matrix[start : start + len(lists)] = values.reshape(len(lists), n_genes)
        start += len(lists)
    return ExpressionTable(
        sample_ids=columns.pop("sample_id"),
        donor_ids=columns.pop("donor_id"),
        gene_ids=gene_ids,
        matrix=matrix,
        extra=columns,
    )
