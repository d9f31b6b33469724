"""Streaming reader for GCT 1.2 expression matrices, as GTEx publishes them.

Layout (https://software.broadinstitute.org/cancer/software/gsea/wiki/index.php/Data_formats)::

    #1.2
    <n_genes>\\t<n_samples>
    id\\tName\\tDescription\\t<sample id>...     (GTEx per-tissue files)
    Name\\tDescription\\t<sample id>...         (whole-matrix files: no ``id`` column)
    0\\tENSG00000223972.5\\tDDX11L1\\t0\\t0.1...   one line per gene

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
import os
import queue
import threading
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

GCT_VERSION = "#1.2"
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


def _parse_dims(line: bytes, path: Path) -> tuple[int, int]:
    # Some GCT writers pad the first two lines with tabs; tolerate that, nothing else.
    fields = [f for f in line.split(b"\t") if f.strip()]
    try:
        n_rows, n_cols = (int(f) for f in fields)
    except ValueError:
        n_rows = n_cols = -1
    if n_rows < 0 or n_cols < 0:
        raise GctFormatError(
            f"{path}:2: expected the GCT dims line '<n_genes><TAB><n_samples>', found {line!r}"
        )
    return n_rows, n_cols


def _parse_header(line: bytes, path: Path, n_cols: int) -> tuple[int, list[str]]:
    """The number of leading annotation columns (3 with GTEx's ``id``, else 2) and sample ids."""
    fields = line.decode("utf-8", errors="replace").split("\t")
    if fields[:3] == ["id", "Name", "Description"]:
        n_fixed = 3
    elif fields[:2] == ["Name", "Description"]:
        n_fixed = 2
    else:
        raise GctFormatError(
            f"{path}:3: expected the header to start with 'Name<TAB>Description' (or "
            f"'id<TAB>Name<TAB>Description' in GTEx per-tissue files), found {fields[:3]}"
        )
    sample_ids = fields[n_fixed:]
    if len(sample_ids) != n_cols:
        raise GctFormatError(
            f"{path}:3: the header has {len(sample_ids)} sample columns but the dims line "
            f"(line 2) declares {n_cols}"
        )
    if not sample_ids:
        raise GctFormatError(f"{path}:3: the header names no samples")
    if any(not s for s in sample_ids):
        raise GctFormatError(f"{path}:3: the header has an empty sample id")
    repeated = sorted(s for s, count in Counter(sample_ids).items() if count > 1)
    if repeated:
        raise GctFormatError(f"{path}:3: duplicate sample id(s): {', '.join(repeated)}")
    return n_fixed, sample_ids


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


@dataclass
class _Target:
    """Where parsed blocks go, and what error messages need to name."""

    path: Path
    sample_ids: list[str]
    matrix: np.ndarray  # (n_samples, n_genes) float32

    def store(self, block: _Block) -> None:
        """Parse ``block`` and write it into its matrix columns (on a worker, if any)."""
        values = self.parse(block)
        columns = block.columns
        if columns == list(range(columns[0], columns[0] + len(columns))):
            self.matrix[:, columns[0] : columns[0] + len(columns)] = values.T  # file order
        else:
            self.matrix[:, columns] = values.T

    def parse(self, block: _Block) -> np.ndarray:
        """The block as an ``(n_lines, n_samples)`` float32 array; raise naming any bad value."""
        n_lines, n_cols = len(block.line_nos), len(self.sample_ids)
        raw = np.frombuffer(block.text, dtype=np.uint8)
        # Tabs (9) and newlines (10) end values; any other byte <= 10 is a stray control byte.
        ends = np.flatnonzero(raw <= 10)
        separators = raw[ends]
        if (
            ends.size != n_lines * n_cols
            or separators.min(initial=9) < 9
            or not np.array_equal(
                np.flatnonzero(separators == 10), np.arange(n_cols - 1, ends.size, n_cols)
            )
        ):
            raise self._diagnose(block)
        # Drop the separators: value i then spans packed[ends[i-1] - (i-1) : ends[i] - i].
        packed = block.text.translate(None, b"\t\n")
        offsets = np.empty(ends.size + 1, dtype=np.int32)
        offsets[0] = 0
        np.subtract(ends, np.arange(ends.size), out=offsets[1:], casting="unsafe")
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
    path: str | os.PathLike[str], gene_ids: Sequence[str] | None = None, threads: int = 1
) -> GctMatrix:
    """Read a GCT 1.2 file (gzip or plain text) into a samples x genes float32 matrix.

    Args:
        path: a ``.gct`` or ``.gct.gz`` file, with or without GTEx's leading ``id`` column.
        gene_ids: the versioned gene ids (``Name`` column) to read, in the order wanted as
            matrix columns; ``None`` reads every gene in file order.
        threads: 1 reads on the calling thread alone; more inflate on a thread of their own
            and parse on ``threads - 1`` workers (faster on idle cores, a little more CPU).

    Values are parsed as float32, correctly rounded from their decimal text. Only the lines
    of the genes asked for are parsed and checked; the others are skipped unread.

    Raises:
        GctFormatError: naming the file and line, for a wrong version line, a dims line that
            does not match the rows or columns, a header without ``Name``/``Description``,
            a value that is not a number, negative, NaN or infinite, duplicate sample or gene
            ids, a requested gene that is not in the file, or truncated or corrupt gzip data.
        ValueError: when ``gene_ids`` repeats an id.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    path = Path(path)
    lines = _numbered_lines(path, background=threads > 1)
    try:
        return _read(lines, path, gene_ids, threads - 1)
    finally:
        lines.close()


def _read(
    lines: Iterator[tuple[int, bytes, int, int]],
    path: Path,
    gene_ids: Sequence[str] | None,
    workers: int,
) -> GctMatrix:
    version = _next_line(lines, path, "version line")
    if version.rstrip(b"\t ") != GCT_VERSION.encode():
        raise GctFormatError(
            f"{path}:1: expected the GCT version line {GCT_VERSION!r}, found {version[:40]!r}"
        )
    n_rows, n_cols = _parse_dims(_next_line(lines, path, "dims line (line 2)"), path)
    n_fixed, sample_ids = _parse_header(_next_line(lines, path, "header (line 3)"), path, n_cols)

    wanted: dict[bytes, int] | None = None
    if gene_ids is not None:
        wanted = {}
        for column, gene_id in enumerate(gene_ids):
            if wanted.setdefault(gene_id.encode(), column) != column:
                raise ValueError(f"gene id {gene_id!r} is requested twice")
    n_out = n_rows if wanted is None else len(wanted)
    target = _Target(path, sample_ids, np.empty((n_cols, n_out), dtype=np.float32))
    out_ids: list[str] = [""] * n_out
    out_names: list[str] = [""] * n_out
    found = np.zeros(n_out, dtype=bool)
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
                if n_data > n_rows:
                    raise GctFormatError(
                        f"{path}:{line_no}: more gene rows than the {n_rows} that the dims "
                        "line (line 2) declares"
                    )
                # The first n_fixed fields are annotations, of which we need Name and
                # Description; then come the values.
                try:
                    name_start = buf.index(b"\t", start, end) + 1 if n_fixed == 3 else start
                    name_end = buf.index(b"\t", name_start, end)
                    values_start = buf.index(b"\t", name_end + 1, end) + 1
                except ValueError:
                    raise GctFormatError(
                        f"{path}:{line_no}: fewer fields than the header (line 3)"
                    ) from None
                gene_id = buf[name_start:name_end]
                if not gene_id:
                    raise GctFormatError(f"{path}:{line_no}: empty gene id (Name column)")
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
                out_ids[column] = gene_id.decode()
                out_names[column] = buf[name_end + 1 : values_start - 1].decode()
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

    if n_data != n_rows:
        raise GctFormatError(
            f"{path}:2: the dims line declares {n_rows} gene rows but the file has {n_data}"
        )
    if not found.all():
        assert gene_ids is not None  # with gene_ids=None every row is found
        missing = [gene_ids[i] for i in np.flatnonzero(~found)]
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise GctFormatError(
            f"{path}: {len(missing)} requested gene id(s) are not in the file (is it from "
            f"another GENCODE release than the gene list?): {shown}"
        )
    return GctMatrix(
        sample_ids=sample_ids, gene_ids=out_ids, gene_names=out_names, matrix=target.matrix
    )
