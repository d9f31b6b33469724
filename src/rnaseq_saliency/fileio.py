"""Writing files so that a crash never leaves a half-written file at its final path."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file sits in the same directory, so the final ``os.replace`` is atomic.
    On an exception the temporary file is removed and the final path is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file 0600; give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_gene_matrix(path: str | os.PathLike[str], matrix: Any) -> None:
    """A genes x columns pandas table (index ``gene_id``) as zstd Parquet, atomically."""
    with atomic_path(path) as tmp:
        matrix.to_parquet(tmp, engine="pyarrow", compression="zstd", index=True)


def read_gene_matrix(path: str | os.PathLike[str], what: str) -> Any:
    """Read a ``write_gene_matrix`` table; ``what`` names it in the error for another file."""
    import pandas as pd

    matrix = pd.read_parquet(path, engine="pyarrow")
    if matrix.index.name != "gene_id":
        raise ValueError(f"{path}: not {what} (index is not gene_id)")
    return matrix
