"""Which genes the model sees: read the release's gene model (GTF) and apply ``data.input_filter``.

The filter is ``protein_coding`` (GENCODE ``gene_type``; for GTEx v8 exactly the 19,291 genes of
``data/gencode_v26_protein_coding.tsv.gz``), ``all``, or the path of a text file of Ensembl ids.
Selected genes keep the GTF's order, which becomes the model's input order.

Ids in a list may carry a version or not; they match on the id without its version, so a list
written against another GENCODE release still finds its genes. GENCODE gives the copies of
pseudo-autosomal genes on chrY their own id with a ``_PAR_Y`` suffix (``ENSG00000182378.13`` on
chrX, ``ENSG00000182378.13_PAR_Y`` on chrY); they are distinct genes here: a list selects the
chrY copy only by writing the suffix.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rnaseq_saliency.fileio import atomic_path

log = logging.getLogger(__name__)

FILTER_KEYWORDS = ("protein_coding", "all")
SELECTED_COLUMNS = ["gene_id", "gene_name"]
_PAR_Y = "_PAR_Y"
# GTF attributes: `key "quoted value";` or `key bare_value;` (GENCODE writes `level 2;`).
_ATTRIBUTE = re.compile(r'(\S+)\s+(?:"([^"]*)"|([^;\s]+))\s*(?:;|$)')


@dataclass
class SelectionReport:
    """What a gene filter did, for the log."""

    input_filter: str
    n_gtf_genes: int
    n_selected: int
    n_listed: int = 0  # distinct ids in an id list (0 for the keyword filters)
    unmatched: list[str] = field(default_factory=list)  # listed ids with no gene in the GTF

    def summary(self) -> str:
        if self.input_filter in FILTER_KEYWORDS:
            return (
                f"input filter {self.input_filter!r}: {self.n_selected} of "
                f"{self.n_gtf_genes} GTF genes selected"
            )
        text = (
            f"id list {self.input_filter}: {self.n_listed - len(self.unmatched)} of "
            f"{self.n_listed} ids matched, {self.n_selected} genes selected"
        )
        if self.unmatched:
            text += f"; {len(self.unmatched)} unmatched: {', '.join(self.unmatched)}"
        return text


def _text_lines(path: Path) -> Iterator[str]:
    """The lines of a text file, gunzipped on the fly when it is gzip (by content, not name).

    Raises ValueError naming the file for truncated or corrupt gzip data and for bytes that
    are not UTF-8.
    """
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        line_no = 0
        try:
            for line in io.TextIOWrapper(stream, encoding="utf-8"):
                line_no += 1
                yield line
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise ValueError(
                f"{path}: truncated or corrupt gzip data after line {line_no}: {err}"
            ) from err
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text after line {line_no}: {err}") from err


def _parse_attributes(text: str) -> dict[str, str]:
    """``gene_id "ENSG..."; level 2; ...`` -> a dict of the attributes (first value wins)."""
    attributes: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(text):
        attributes.setdefault(match[1], match[2] if match[2] is not None else match[3])
    return attributes


def read_gtf_genes(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The ``gene`` records of a GENCODE GTF, in file order.

    Reads GTEx's collapsed gene models (``gencode.v26.GRCh38.genes.gtf``) and full GENCODE
    GTFs, plain or gzip. Ensembl GTFs name the type ``gene_biotype``; it is accepted too.

    Returns:
        DataFrame with string columns ``gene_id``, ``gene_name``, ``gene_type`` and ``chrom``
        (the sequence name, ``chrY``, ``chrM``).

    Raises:
        ValueError: naming the file and line, for a line without 9 tab-separated fields, a
            gene without ``gene_id``, ``gene_name`` or ``gene_type``, a repeated gene id,
            or a file with no gene records at all.
    """
    path = Path(path)
    ids: list[str] = []
    names: list[str] = []
    types: list[str] = []
    chroms: list[str] = []
    first_seen: dict[str, int] = {}
    for line_no, line in enumerate(_text_lines(path), start=1):
        if line.startswith("#") or not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 9:
            raise ValueError(
                f"{path}:{line_no}: a GTF line has 9 tab-separated fields, this one {len(fields)}"
            )
        if fields[2] != "gene":
            continue  # transcripts and exons: the gene line carries all we need
        attributes = _parse_attributes(fields[8])
        gene_type = attributes.get("gene_type", attributes.get("gene_biotype"))
        missing = [k for k in ("gene_id", "gene_name") if k not in attributes]
        if gene_type is None:
            missing.append("gene_type")
        if missing:
            raise ValueError(f"{path}:{line_no}: gene record without {', '.join(missing)}")
        gene_id = attributes["gene_id"]
        first = first_seen.setdefault(gene_id, line_no)
        if first != line_no:
            raise ValueError(f"{path}:{line_no}: gene id {gene_id} repeats (first at line {first})")
        ids.append(gene_id)
        names.append(attributes["gene_name"])
        types.append(gene_type)
        chroms.append(fields[0])
    if not ids:
        raise ValueError(f"{path}: no 'gene' records; is this a GTF gene model?")
    return pd.DataFrame(
        {"gene_id": ids, "gene_name": names, "gene_type": types, "chrom": chroms}, dtype=str
    )


def match_key(gene_id: str) -> str:
    """The id without its version, keeping a ``_PAR_Y`` suffix: genes match on this.

    ``ENSG00000186092.4`` -> ``ENSG00000186092``;
    ``ENSG00000182378.13_PAR_Y`` and ``ENSG00000182378_PAR_Y`` -> ``ENSG00000182378_PAR_Y``.
    """
    base, par, _ = gene_id.partition(_PAR_Y)
    return base.split(".", 1)[0] + par


def read_id_list(path: str | os.PathLike[str]) -> list[str]:
    """Ensembl ids from a text file, one per line; blank lines and ``#`` comments are skipped.

    Raises ValueError naming the line of one that holds more than one word, and the file when
    it lists no id at all.
    """
    path = Path(path)
    ids: list[str] = []
    for line_no, line in enumerate(_text_lines(path), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if len(text.split()) != 1:
            raise ValueError(
                f"{path}:{line_no}: expected one Ensembl gene id per line, found {text!r}"
            )
        ids.append(text)
    if not ids:
        raise ValueError(f"{path}: the gene id list is empty")
    return ids


def select_genes(
    gtf_path: str | os.PathLike[str],
    input_filter: str,
    id_list_path: str | os.PathLike[str] | None = None,
) -> tuple[pd.DataFrame, SelectionReport]:
    """Apply ``data.input_filter`` to the genes of a GTF.

    Args:
        gtf_path: the release's gene model.
        input_filter: ``protein_coding``, ``all``, or the path of an id list.
        id_list_path: where to read that id list, when it is one (the workflow passes the rule's
            input file); defaults to ``input_filter`` itself.

    Returns:
        The selected genes (``gene_id``, ``gene_name``) in GTF order, and a report of what
        matched, which is also logged (unmatched ids listed one by one).

    Raises:
        ValueError: when nothing is selected, naming the id list (or the GTF).
    """
    genes = read_gtf_genes(gtf_path)
    report = SelectionReport(input_filter=str(input_filter), n_gtf_genes=len(genes), n_selected=0)
    if input_filter == "protein_coding":
        keep = genes["gene_type"] == "protein_coding"
    elif input_filter == "all":
        keep = pd.Series(True, index=genes.index)
    else:
        list_path = Path(id_list_path if id_list_path is not None else input_filter)
        listed = list(dict.fromkeys(read_id_list(list_path)))  # drop repeats, keep order
        keys = genes["gene_id"].map(match_key)
        wanted = {match_key(gene_id) for gene_id in listed}
        keep = keys.isin(wanted)
        matched = set(keys[keep])
        report.input_filter = str(list_path)
        report.n_listed = len(listed)
        report.unmatched = [gene_id for gene_id in listed if match_key(gene_id) not in matched]
        if not keep.any():
            raise ValueError(
                f"{list_path}: none of its {len(listed)} gene ids matches a gene of {gtf_path} "
                f"(ids match without their version; first ids: {', '.join(listed[:5])})"
            )
    selected = genes.loc[keep, SELECTED_COLUMNS].reset_index(drop=True)
    report.n_selected = len(selected)
    if selected.empty:
        raise ValueError(f"{gtf_path}: no gene passes input filter {input_filter!r}")
    log.info("%s", report.summary())
    if report.unmatched:
        log.warning("%d listed id(s) match no gene of %s", len(report.unmatched), gtf_path)
    return selected, report


def write_selected_genes(genes: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``gene_id``, ``gene_name`` as TSV, atomically, in model input order."""
    with atomic_path(path) as tmp:
        genes[SELECTED_COLUMNS].to_csv(tmp, sep="\t", index=False, lineterminator="\n")


def read_selected_genes(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``results/genes/selected_genes.tsv``, checking its columns and that ids are unique."""
    genes = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in SELECTED_COLUMNS if c not in genes.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {SELECTED_COLUMNS}")
    repeated = genes["gene_id"][genes["gene_id"].duplicated()].tolist()
    if repeated:
        raise ValueError(f"{path}: gene ids repeat: {', '.join(repeated[:10])}")
    if genes.empty:
        raise ValueError(f"{path}: no genes listed")
    return genes[SELECTED_COLUMNS]


def run_select_genes(
    gtf_path: str | os.PathLike[str],
    input_filter: str,
    id_list_paths: list[str],
    out_path: str | os.PathLike[str],
) -> pd.DataFrame:
    """Rule ``select_genes``: apply ``data.input_filter`` to the GTF and write the selection.

    ``id_list_paths`` is the rule's input list: empty, or the id list that ``input_filter``
    names (so that editing that file reruns the selection).
    """
    genes, _ = select_genes(
        gtf_path, input_filter, id_list_path=id_list_paths[0] if id_list_paths else None
    )
    write_selected_genes(genes, out_path)
    log.info("wrote %d genes to %s", len(genes), out_path)
    return genes


def read_gmt(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Gene sets of a GMT file: ``name<TAB>description<TAB>gene<TAB>gene...`` per line.

    Blank lines and lines starting with ``#`` are skipped; a line without a gene, or a set name
    seen twice, is an error naming the file and line.
    """
    sets: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            if not text.strip() or text.startswith("#"):
                continue
            fields = text.split("\t")
            genes = [g.strip() for g in fields[2:] if g.strip()]
            if len(fields) < 3 or not genes:
                raise ValueError(
                    f"{path}:{number}: expected 'name<TAB>description<TAB>gene...', "
                    f"got {len(fields)} field(s) and no gene"
                )
            name = fields[0].strip()
            if name in sets:
                raise ValueError(f"{path}:{number}: gene set {name!r} appears twice")
            sets[name] = genes
    return sets
