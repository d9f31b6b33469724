"""Streaming reader for GCT 1.2 and 1.3 expression matrices, as GTEx publishes them.

Layouts (https://software.broadinstitute.org/cancer/software/gsea/wiki/index.php/Data_formats,
and real GTEx v8 files)::

    #1.3                                        GTEx per-tissue files (v8, v10)
    56200\t<samples + 2>\t0\t0                   rows, columns, row-metadata columns,
                                                column-metadata rows
    id\tName\tDescription\t<sample id>...
    0\tENSG00000223972.5\tDDX11L1\t0.0673...     ``id`` counts from 0

    #1.2                                        whole-matrix files (``..._gene_tpm.gct.gz``)
    56200\t17382
    Name\tDescription\t<sample id>...
    ENSG00000223972.5\tDDX11L1\t0.0673...

GCT 1.3's column count is the number of sample columns in the format's definition, while real
GTEx per-tissue files count every named column except ``id`` (4 samples + Name + Description =
6); both are accepted, nothing else. The third field counts the row-metadata columns after
``id``; GTEx writes 0 and does not count Name and Description, the definition counts them. Any
further row-metadata columns after Name and Description are skipped (``GctHeader.skipped``
names them); the ``#1.3`` column-metadata rows that follow the header are read past, and are
not genes. Either version may or may not have the leading ``id`` column.

A GTEx v8 per-tissue file holds 56,200 genes; the largest (muscle, 803 samples) is about 230 MB
of text, which we never hold. Three stages hand over at most a few MB at a time:

1. the gzip stream is inflated in chunks of at most 1 MiB;
2. each line's gene id is found in the chunk without copying the line (most of a GTEx file
   is genes we skip), and the value text of the wanted genes is copied into ~1 MiB blocks;
3. a block is parsed in a few vectorised calls (Arrow's string -> float32 cast: strict and
   correctly rounded) and written into the preallocated samples x genes matrix.

With ``threads=1`` (the default: a Snakemake job gets one core unless its rule asks for more)
all three run one after the other on the calling thread. With more threads, stage 1 runs on
its own thread and stage 3 on ``threads - 1`` workers; zlib, numpy and Arrow release the GIL,
so the stages overlap. Measured in ``bench/ingest.py`` (BENCHMARKS.md): parsing value by
value in Python (``float()``, ``np.fromstring`` per line) costs several times the
decompression; this design keeps the read near ``zcat`` time and its memory near the size of
the output matrix.

Only the lines of the genes asked for are parsed and checked, value by value; the others are
skipped unread (the gzip checksum still covers every byte).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

GCT_VERSIONS = ("#1.2", "#1.3")
_GZIP_MAGIC = b"\x1f\x8b"
_READ_BYTES = 256 << 10  # compressed bytes per read (inflate to about 1 MiB)
_CHUNK_BYTES = 1 << 20  # at most this many decompressed bytes per chunk
_QUEUED_CHUNKS = 2  # chunks waiting between the inflating thread and the line finder
# A parse block: big enough that per-call overheads vanish, small enough that its text and
# temporaries (a few MiB) stay far below the output matrix.
_BLOCK_BYTES = 1 << 20
_MAX_LINE_BYTES = 64 << 20  # far above any GCT line (17,382 GTEx samples: ~150 kB)


class GctFormatError(ValueError):
    """A GCT file that does not follow the format; the message names the file and line."""


@dataclass
class GctMatrix:
    """The genes read from a GCT file, transposed to samples x genes."""

    sample_ids: list[str]
    gene_ids: list[str]  # versioned Ensembl ids (the ``Name`` column)
    gene_names: list[str]  # gene symbols (the ``Description`` column)
    matrix: np.ndarray  # (n_samples, n_genes) float32, C-contiguous


def _raw_chunks(path: Path) -> Iterator[bytes]:
    """The decompressed content of a gzip (or plain-text) file, in chunks of at most 1 MiB."""
    with open(path, "rb", buffering=0) as raw:
        data = raw.read(_READ_BYTES)
        if not data.startswith(_GZIP_MAGIC):
            while data:
                yield data
                data = raw.read(_CHUNK_BYTES)
            return
        inflater = zlib.decompressobj(wbits=31)  # 31: expect a gzip header and trailer
        while True:
            if not data:
                data = raw.read(_READ_BYTES)
                if not data:
                    break
            if inflater.eof:
                # Another gzip member may follow (concatenated files, bgzip); zero padding
                # after the last one is tolerated, as gzip(1) does.
                data = data.lstrip(b"\0")
                if not data:
                    continue
                inflater = zlib.decompressobj(wbits=31)
            # max_length bounds each chunk, even for a stream that inflates 1000-fold.
            out = inflater.decompress(data, _CHUNK_BYTES)
            if out:
                yield out
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        if not inflater.eof:
            raise EOFError("the file ends before the gzip end-of-stream marker")


def _background_chunks(path: Path) -> Iterator[bytes]:
    """``_raw_chunks`` produced on a thread, so that decompression overlaps our parsing.

    A small queue bounds the memory in flight. Errors of the producer (EOFError, zlib.error,
    OSError) are raised here, in the consumer; closing this generator stops the producer.
    """
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=_QUEUED_CHUNKS)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> bool:
        while not stop.is_set():  # the consumer may stop early: never block forever
            try:
                chunks.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for chunk in _raw_chunks(path):
                if not put(chunk):
                    return
            put(None)
        except BaseException as err:  # handed over to the consumer, which raises it
            put(err)

    thread = threading.Thread(target=produce, name="gct-gunzip", daemon=True)
    thread.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _numbered_lines(path: Path, background: bool) -> Iterator[tuple[int, bytes, int, int]]:
    """Yield ``(line number, buffer, start, end)``: the line is ``buffer[start:end]``.

    Lines are found in place, not copied. ``end`` excludes the newline and a Windows carriage
    return. ``background`` inflates on a thread of its own.
    """
    line_no = 0
    pending = b""
    try:
        source = _background_chunks(path) if background else _raw_chunks(path)
        with contextlib.closing(source) as chunks:
            for chunk in chunks:
                buf = pending + chunk if pending else chunk
                start = 0
                while (end := buf.find(b"\n", start)) >= 0:
                    line_no += 1
                    yield line_no, buf, start, end - 1 if buf[end - 1 : end] == b"\r" else end
                    start = end + 1
                pending = buf[start:]
                if len(pending) > _MAX_LINE_BYTES:
                    raise GctFormatError(
                        f"{path}:{line_no + 1}: a line longer than {_MAX_LINE_BYTES} bytes; "
                        "is this a GCT file?"
                    )
    except (EOFError, zlib.error) as err:
        # EOFError: the stream stops before gzip's end marker (an interrupted download).
        raise GctFormatError(
            f"{path}: truncated or corrupt gzip data after line {line_no}: {err}"
        ) from err
    if pending:
        yield line_no + 1, pending, 0, len(pending) - pending.endswith(b"\r")


def _next_line(lines: Iterator[tuple[int, bytes, int, int]], path: Path, what: str) -> bytes:
    try:
        _, buf, start, end = next(lines)
    except StopIteration:
        raise GctFormatError(f"{path}: file ends before its {what}") from None
    return buf[start:end]


@dataclass(frozen=True)
class GctHeader:
    """What a GCT file's first lines declare, and where its data rows start."""

    version: str  # "#1.2" or "#1.3"
    n_rows: int  # gene rows declared by the dims line
    sample_ids: list[str]
    n_fixed: int  # annotation columns before the samples (id, Name, Description, others)
    name_column: int  # index of ``Name`` among them (0, or 1 after ``id``)
    skipped: list[str]  # row-metadata columns after Name and Description, not read
    n_column_metadata: int  # GCT 1.3 column-metadata rows between the header and the genes


def _parse_dims(line: bytes, path: Path, version: str) -> list[int]:
    # Some GCT writers pad the first two lines with tabs; tolerate that, nothing else.
    fields = [f for f in line.split(b"\t") if f.strip()]
    expected = 2 if version == "#1.2" else 4
    try:
        dims = [int(f) for f in fields]
    except ValueError:
        dims = []
    if len(dims) != expected or min(dims) < 0:
        shape = (
            "'<n_genes><TAB><n_samples>'"
            if version == "#1.2"
            else "'<n_genes><TAB><n_columns><TAB><n_row_metadata><TAB><n_column_metadata>'"
        )
        raise GctFormatError(
            f"{path}:2: expected the GCT {version[1:]} dims line {shape}, found {line!r}"
        )
    return dims


def _parse_header(line: bytes, path: Path, version: str, dims: list[int]) -> GctHeader:
    """Check the header line against the dims line (module docstring: both conventions)."""
    fields = line.decode("utf-8", errors="replace").split("\t")
    name_column = 1 if fields[:1] == ["id"] else 0
    if fields[name_column : name_column + 2] != ["Name", "Description"]:
        raise GctFormatError(
            f"{path}:3: expected the header to start with 'Name<TAB>Description' (or "
            f"'id<TAB>Name<TAB>Description' in GTEx per-tissue files), found {fields[:3]}"
        )
    n_rows, n_cols = dims[0], dims[1]
    n_row_metadata = dims[2] if version == "#1.3" else 0
    if n_row_metadata == 1:
        raise GctFormatError(
            f"{path}:2: the dims line declares 1 row-metadata column, but the header names "
            "two (Name and Description); expected 0 (as GTEx writes) or at least 2"
        )
    n_fixed = name_column + max(n_row_metadata, 2)
    sample_ids = fields[n_fixed:]
    named = n_fixed - name_column  # every named column except ``id``
    if n_cols not in (len(sample_ids), len(sample_ids) + named) or (
        version == "#1.2" and n_cols != len(sample_ids)
    ):
        also = f" (or {len(sample_ids) + named} counting {named} named columns)"
        raise GctFormatError(
            f"{path}:3: the header has {len(sample_ids)} sample columns but the dims line "
            f"(line 2) declares {n_cols}" + (also if version == "#1.3" else "")
        )
    if not sample_ids:
        raise GctFormatError(f"{path}:3: the header names no samples")
    if any(not s for s in sample_ids):
        raise GctFormatError(f"{path}:3: the header has an empty sample id")
    repeated = sorted(s for s, count in Counter(sample_ids).items() if count > 1)
    if repeated:
        raise GctFormatError(f"{path}:3: duplicate sample id(s): {', '.join(repeated)}")
    return GctHeader(
        version=version,
        n_rows=n_rows,
        sample_ids=sample_ids,
        n_fixed=n_fixed,
        name_column=name_column,
        skipped=fields[name_column + 2 : n_fixed],
        n_column_metadata=dims[3] if version == "#1.3" else 0,
    )


def _read_header(lines: Iterator[tuple[int, bytes, int, int]], path: Path) -> GctHeader:
    """Read the version, dims and header lines and any column-metadata rows after them."""
    version_line = _next_line(lines, path, "version line").rstrip(b"\t ")
    version = next((v for v in GCT_VERSIONS if version_line == v.encode()), None)
    if version is None:
        raise GctFormatError(
            f"{path}:1: expected the GCT version line '#1.2' or '#1.3', found {version_line[:40]!r}"
        )
    dims = _parse_dims(_next_line(lines, path, "dims line (line 2)"), path, version)
    header = _parse_header(_next_line(lines, path, "header (line 3)"), path, version, dims)
    n_fields = header.n_fixed + len(header.sample_ids)
    for row in range(header.n_column_metadata):
        try:
            line_no, buf, start, end = next(lines)
        except StopIteration:
            raise GctFormatError(
                f"{path}: file ends before its {header.n_column_metadata} column-metadata "
                f"rows (the dims line's fourth field); found {row}"
            ) from None
        found = buf.count(b"\t", start, end) + 1
        if found != n_fields:
            raise GctFormatError(
                f"{path}:{line_no}: column-metadata row {row + 1} of "
                f"{header.n_column_metadata} has {found} fields, but the header (line 3) "
                f"has {n_fields}"
            )
    return header


def read_gct_header(path: str | os.PathLike[str]) -> GctHeader:
    """The declared layout and sample ids of a GCT file, without reading its genes."""
    path = Path(path)
    lines = _numbered_lines(path, background=False)
    try:
        return _read_header(lines, path)
    finally:
        lines.close()


class _Block:
    """The value text of up to ``_BLOCK_BYTES`` of wanted genes' lines, parsed together."""

    def __init__(self) -> None:
        self.text = bytearray()  # each line's value fields, each line ending in a newline
        self.starts: list[int] = []  # where each line begins in ``text``
        self.line_nos: list[int] = []
        self.gene_ids: list[bytes] = []
        self.columns: list[int] = []  # output column of each line's gene

    def add(
        self, buf: bytes, start: int, end: int, line_no: int, gene_id: bytes, column: int
    ) -> None:
        self.starts.append(len(self.text))
        self.text += memoryview(buf)[start:end]
        self.text += b"\n"
        self.line_nos.append(line_no)
        self.gene_ids.append(gene_id)
        self.columns.append(column)

    def line(self, row: int) -> bytes:
        end = self.starts[row + 1] if row + 1 < len(self.starts) else len(self.text)
        return bytes(self.text[self.starts[row] : end - 1])


_COUNTING = np.arange(0)


def _counting(n: int) -> np.ndarray:
    """``np.arange(n)`` as a view of one shared, read-only array: no allocation per block."""
    global _COUNTING
    counting = _COUNTING
    if counting.size < n:
        counting = np.arange(max(n, 2 * counting.size))
        counting.flags.writeable = False
        _COUNTING = counting  # a race only builds it twice
    return counting[:n]


@dataclass
class _Target:
    """Where parsed blocks go, and what error messages need to name."""

    path: Path
    sample_ids: list[str]  # every sample column of the file
    matrix: np.ndarray  # (n_kept_samples, n_genes) float32
    kept: np.ndarray | None = None  # file columns of the matrix rows; None: every sample
    out_ids: list[str] = field(default_factory=list)  # Name of each matrix column
    out_names: list[str] = field(default_factory=list)  # Description of each matrix column

    def store(self, block: _Block) -> None:
        """Parse ``block`` and write it into its matrix columns (on a worker, if any)."""
        values = self.parse(block)
        by_gene = self.matrix.T  # genes x samples, a view
        columns = block.columns
        if columns == list(range(columns[0], columns[0] + len(columns))):
            rows = by_gene[columns[0] : columns[0] + len(columns)]  # file order
            if self.kept is None:
                rows[...] = values
            else:
                np.take(values, self.kept, axis=1, out=rows)
        else:
            by_gene[columns] = values if self.kept is None else values[:, self.kept]

    def parse(self, block: _Block) -> np.ndarray:
        """The block as an ``(n_lines, n_samples)`` float32 array; raise naming any bad value."""
        n_lines, n_cols = len(block.line_nos), len(self.sample_ids)
        raw = np.frombuffer(block.text, dtype=np.uint8)
        # Tabs (9) and newlines (10) end values; any other byte <= 10 is a stray control byte.
        ends = np.flatnonzero(raw <= 10)
        if ends.size != n_lines * n_cols:
            raise self._diagnose(block)
        # Each line: n_cols - 1 tabs, then its newline.
        separators = raw[ends].reshape(n_lines, n_cols)
        if not ((separators[:, :-1] == 9).all() and (separators[:, -1] == 10).all()):
            raise self._diagnose(block)
        # Drop the separators: value i then spans packed[ends[i-1] - (i-1) : ends[i] - i].
        packed = block.text.translate(None, b"\t\n")
        offsets = np.empty(ends.size + 1, dtype=np.int32)
        offsets[0] = 0
        np.subtract(ends, _counting(ends.size), out=offsets[1:], casting="unsafe")
        tokens = pa.StringArray.from_buffers(ends.size, pa.py_buffer(offsets), pa.py_buffer(packed))
        try:
            values = pc.cast(tokens, pa.float32()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            raise self._diagnose(block) from None
        # NaN fails both comparisons; negatives and infinities fail one.
        if not (values.min() >= 0 and values.max() < np.inf):
            raise self._diagnose(block)
        return values.reshape(n_lines, n_cols)

    def _diagnose(self, block: _Block) -> GctFormatError:
        """The error naming the first bad line or value of a block (a slow path, errors only)."""
        n_cols = len(self.sample_ids)
        for row, line_no in enumerate(block.line_nos):
            where = f"{self.path}:{line_no}: gene {block.gene_ids[row].decode('utf-8', 'replace')}"
            texts = block.line(row).decode("utf-8", errors="replace").split("\t")
            if len(texts) != n_cols:
                return GctFormatError(
                    f"{where}: {len(texts)} values, but the header (line 3) has {n_cols} samples"
                )
            for col, text in enumerate(texts):
                # The same parser as the fast path, so both agree on what a number is.
                try:
                    value = pc.cast(pa.array([text], type=pa.string()), pa.float32())[0].as_py()
                except pa.ArrowInvalid:
                    problem = "is not a number"
                else:
                    if value >= 0 and value < np.inf:
                        continue
                    problem = "is NaN" if value != value else "is negative or infinite"
                return GctFormatError(
                    f"{where}, sample {self.sample_ids[col]}: value {text!r} {problem}; "
                    "expression values must be finite numbers >= 0"
                )
        return GctFormatError(  # not reached for any input we know of; kept as a safety net
            f"{self.path}:{block.line_nos[0]}-{block.line_nos[-1]}: values that do not parse"
        )


class _InlineExecutor:
    """The part of ThreadPoolExecutor we use, running each task at once on the caller's thread."""

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def submit(self, task: Callable[[_Block], None], block: _Block) -> Future[None]:
        done: Future[None] = Future()
        try:
            done.set_result(task(block))
        except BaseException as err:  # kept for .result(), as a thread pool would
            done.set_exception(err)
        return done


def read_gct(
    path: str | os.PathLike[str],
    gene_ids: Sequence[str] | None = None,
    threads: int = 1,
    sample_ids: Sequence[str] | None = None,
) -> GctMatrix:
    """Read a GCT 1.2 or 1.3 file (gzip or plain text) into a samples x genes float32 matrix.

    Args:
        path: a ``.gct`` or ``.gct.gz`` file, with or without GTEx's leading ``id`` column.
        gene_ids: the versioned gene ids (``Name`` column) to read, in the order wanted as
            matrix columns; ``None`` reads every gene in file order.
        threads: 1 reads on the calling thread alone; more inflate on a thread of their own
            and parse on ``threads - 1`` workers (faster on idle cores, a little more CPU).
        sample_ids: the samples to keep, in the order wanted as matrix rows; ``None`` keeps
            every sample in file order. The matrix holds only these (a whole-matrix file's
            selected tissues), though every value of a read gene is still parsed and checked.

    Values are parsed as float32, correctly rounded from their decimal text. Only the lines
    of the genes asked for are parsed and checked; the others are skipped unread.

    Raises:
        GctFormatError: naming the file and line, for a wrong version line, a dims line that
            does not match the rows or columns, a header without ``Name``/``Description``,
            a value that is not a number, negative, NaN or infinite, duplicate sample or gene
            ids, a requested gene or sample that is not in the file, a short column-metadata
            block, or truncated or corrupt gzip data.
        ValueError: when ``gene_ids`` or ``sample_ids`` repeats an id.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    path = Path(path)
    lines = _numbered_lines(path, background=threads > 1)
    try:
        header = _read_header(lines, path)
        if header.skipped:
            log.info(
                "%s: row-metadata column(s) %s after Name and Description are not read",
                path,
                ", ".join(header.skipped),
            )
        target = _make_target(path, header, gene_ids, sample_ids)
        wanted = _positions(gene_ids, "gene") if gene_ids is not None else None
        found = _read_rows(lines, path, header, wanted, target, threads - 1)
    finally:
        lines.close()
    if not found.all():
        assert gene_ids is not None  # with gene_ids=None every row is found
        missing = [gene_ids[i] for i in np.flatnonzero(~found)]
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise GctFormatError(
            f"{path}: {len(missing)} requested gene id(s) are not in the file (is it from "
            f"another GENCODE release than the gene list?): {shown}"
        )
    return GctMatrix(
        sample_ids=header.sample_ids if sample_ids is None else list(sample_ids),
        gene_ids=target.out_ids,
        gene_names=target.out_names,
        matrix=target.matrix,
    )


def _positions(ids: Sequence[str], what: str) -> dict[bytes, int]:
    """Each requested id's output position; a repeated id is the caller's error."""
    positions: dict[bytes, int] = {}
    for position, item in enumerate(ids):
        if positions.setdefault(item.encode(), position) != position:
            raise ValueError(f"{what} id {item!r} is requested twice")
    return positions


def _make_target(
    path: Path,
    header: GctHeader,
    gene_ids: Sequence[str] | None,
    sample_ids: Sequence[str] | None,
) -> _Target:
    kept = None
    n_samples = len(header.sample_ids)
    if sample_ids is not None:
        _positions(sample_ids, "sample")
        column = {sample: i for i, sample in enumerate(header.sample_ids)}
        absent = [s for s in sample_ids if s not in column]
        if absent:
            raise GctFormatError(
                f"{path}:3: {len(absent)} requested sample id(s) are not in the header: "
                + ", ".join(absent[:10])
                + (", ..." if len(absent) > 10 else "")
            )
        kept = np.array([column[s] for s in sample_ids], dtype=np.intp)
        n_samples = kept.size
    n_out = header.n_rows if gene_ids is None else len(gene_ids)
    return _Target(
        path,
        header.sample_ids,
        np.empty((n_samples, n_out), dtype=np.float32),
        kept,
        out_ids=[""] * n_out,
        out_names=[""] * n_out,
    )


def _read_rows(
    lines: Iterator[tuple[int, bytes, int, int]],
    path: Path,
    header: GctHeader,
    wanted: dict[bytes, int] | None,
    target: _Target,
    workers: int,
) -> np.ndarray:
    """Read the gene rows into ``target``; return which output columns were found."""
    found = np.zeros(target.matrix.shape[1], dtype=bool)
    first_seen: dict[bytes, int] = {}
    n_data = 0
    block = _Block()
    pending: deque[Future[None]] = deque()
    # With workers, blocks are parsed while this thread finds the next lines; at most one
    # block per worker waits, which bounds the memory in flight.
    pool: ThreadPoolExecutor | _InlineExecutor = (
        ThreadPoolExecutor(workers, thread_name_prefix="gct-parse")
        if workers
        else _InlineExecutor()
    )
    with pool:
        try:
            for line_no, buf, start, end in lines:
                if start == end:
                    continue  # a stray blank line (often the last) carries no gene
                n_data += 1
                if n_data > header.n_rows:
                    raise GctFormatError(
                        f"{path}:{line_no}: more gene rows than the {header.n_rows} that the "
                        "dims line (line 2) declares"
                    )
                name_start, name_end, description_end, values_start = _annotation_bounds(
                    buf, start, end, header, path, line_no
                )
                gene_id = buf[name_start:name_end]
                first = first_seen.setdefault(gene_id, line_no)
                if first != line_no:
                    raise GctFormatError(
                        f"{path}:{line_no}: gene id {gene_id.decode()} repeats "
                        f"(first at line {first})"
                    )
                column = n_data - 1 if wanted is None else wanted.get(gene_id, -1)
                if column < 0:
                    continue
                found[column] = True
                target.out_ids[column] = gene_id.decode()
                target.out_names[column] = buf[name_end + 1 : description_end].decode()
                block.add(buf, values_start, end, line_no, gene_id, column)
                if len(block.text) >= _BLOCK_BYTES:
                    pending.append(pool.submit(target.store, block))
                    block = _Block()
                    if len(pending) > workers:
                        pending.popleft().result()
            if block.line_nos:
                pending.append(pool.submit(target.store, block))
            while pending:
                pending.popleft().result()
        except GctFormatError:
            # Report the first fault in file order: blocks still being parsed, and the one
            # being filled, hold earlier lines.
            while pending:
                pending.popleft().result()
            if block.line_nos:
                target.parse(block)
            raise
    if n_data != header.n_rows:
        raise GctFormatError(
            f"{path}:2: the dims line declares {header.n_rows} gene rows but the file has {n_data}"
        )
    return found


def _annotation_bounds(
    buf: bytes, start: int, end: int, header: GctHeader, path: Path, line_no: int
) -> tuple[int, int, int, int]:
    """Where a data line's Name starts and ends, where Description ends and values start.

    The annotation fields are found by their tabs; skipped row-metadata columns are not read.
    """
    try:
        name_start = start
        for _ in range(header.name_column):
            name_start = buf.index(b"\t", name_start, end) + 1
        name_end = buf.index(b"\t", name_start, end)
        description_end = buf.index(b"\t", name_end + 1, end)
        values_start = description_end + 1
        for _ in range(header.n_fixed - header.name_column - 2):
            values_start = buf.index(b"\t", values_start, end) + 1
    except ValueError:
        raise GctFormatError(f"{path}:{line_no}: fewer fields than the header (line 3)") from None
    if name_start == name_end:
        raise GctFormatError(f"{path}:{line_no}: empty gene id (Name column)")
    return name_start, name_end, description_end, values_start
