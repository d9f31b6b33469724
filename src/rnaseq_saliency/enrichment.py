"""What a tissue's salient genes mean: preranked gene-set enrichment (GSEA prerank), offline.

For each tissue, the full ranking of the model's genes by mean saliency (the matrix rule
``top_genes`` writes, of the chosen method; the ranking itself is the background) is tested
against gene-set libraries given as GMT files: by default the shipped Human Protein Atlas
tissue-enriched sets (``saliency.gene_sets: [hpa]``), plus any GMT the user lists there (MSigDB
cell-type signatures, GO; README says where to download them). The test is gseapy's
``prerank`` (Subramanian et al. 2005, PNAS; the weighted Kolmogorov-Smirnov running sum, weight
1), with ``saliency.enrichment_permutations`` gene-label permutations seeded by
``saliency.seed``: the same seed gives the same table.

Nothing here reaches a network: libraries are read from local files into dicts before gseapy sees
them (given a name instead of a dict, gseapy would fetch an Enrichr library).

Members match the model's genes on the unversioned Ensembl id (``ENSG00000175535.6`` matches
``ENSG00000175535``) or, for members that are no Ensembl id, on the gene symbol, whichever the GMT
uses; the log says, per library, how many members matched. A set is tested when
``MIN_SET_SIZE`` to ``MAX_SET_SIZE`` of its members are model genes.

Output per tissue: one row per tested set, by decreasing NES: the library (``hpa`` or the GMT's
file name), the set, its size in the GMT and among the model's genes, ES, NES, the nominal p,
the FDR q (GSEA's, across the tissue's sets and libraries) and the leading-edge genes (symbols).
A positive NES: the set's genes sit among the tissue's most salient genes. A p of 0 means no
permutation reached the observed score: p < 1 / permutations.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.genes import read_gmt
from rnaseq_saliency.saliency import read_ranking_with_genes
from rnaseq_saliency.saliency_validation import marker_indices

log = logging.getLogger(__name__)

HPA_GMT = resources.files("rnaseq_saliency").joinpath("data/hpa_tissue_enriched.gmt")
HPA = "hpa"  # the config word, and the library name, of the shipped HPA sets
MIN_SET_SIZE = 5  # model genes in a set, for it to be tested (the HPA sets hold up to 100)
MAX_SET_SIZE = 1000
ENRICHMENT_COLUMNS = [
    "tissue", "library", "set", "n_members", "n_matched", "ES", "NES", "p", "FDR", "leading_edge",
]  # fmt: skip
SUMMARY_FDR = 0.25  # GSEA's customary cut for the sets worth a look (summary figure)
SUMMARY_MAX_SETS = 40
_SEPARATOR = "::"  # library::set, the key gseapy sees (set names may repeat across libraries)


class Library(NamedTuple):
    """One GMT file's gene sets, matched to the model's genes."""

    name: str  # hpa, or the GMT file's name without .gmt
    members: dict[str, list[str]]  # set -> members as the GMT lists them
    matched: dict[str, list[str]]  # set -> the model gene ids they matched


def library_name(path: str | os.PathLike[str]) -> str:
    """``hpa`` for the shipped HPA file, else the file name without ``.gmt`` (or ``.txt``)."""
    if Path(path).resolve() == Path(str(HPA_GMT)).resolve():
        return HPA
    name = Path(path).name
    for suffix in (".gmt", ".txt"):
        name = name.removesuffix(suffix)
    return name


def read_libraries(
    paths: Sequence[str | os.PathLike[str]], gene_ids: Sequence[str], gene_names: Sequence[str]
) -> list[Library]:
    """Read each GMT and match its members to the model's genes (module docstring).

    Raises:
        ValueError: for two files with one library name, or a library no member of which is a
            model gene (is it for another species, or keyed on other ids?), naming the file.
    """
    libraries: list[Library] = []
    for path in paths:
        name = library_name(path)
        if name in {library.name for library in libraries}:
            raise ValueError(f"{path}: a second gene-set library called {name!r}; rename one")
        members = read_gmt(path)
        ids = np.asarray(gene_ids, dtype=object)
        matched = {
            s: ids[marker_indices(m, gene_ids, gene_names)].tolist() for s, m in members.items()
        }
        n_members = len({g for m in members.values() for g in m})
        n_matched = len({g for m in matched.values() for g in m})
        if n_matched == 0:
            raise ValueError(
                f"{path}: none of its {n_members} members is a model gene (members match on "
                "unversioned Ensembl ids or on gene symbols)"
            )
        testable = sum(MIN_SET_SIZE <= len(m) <= MAX_SET_SIZE for m in matched.values())
        log.info(
            "%s (%s): %d sets; %d distinct members, %d model genes matched; %d sets with "
            "%d-%d matched genes are tested",
            name, path, len(members), n_members, n_matched, testable, MIN_SET_SIZE, MAX_SET_SIZE,
        )  # fmt: skip
        libraries.append(Library(name, members, matched))
    return libraries


def _testable_sets(libraries: Sequence[Library]) -> dict[str, list[str]]:
    return {
        f"{library.name}{_SEPARATOR}{name}": genes
        for library in libraries
        for name, genes in library.matched.items()
        if MIN_SET_SIZE <= len(genes) <= MAX_SET_SIZE
    }


def prerank_tissue(
    tissue: str,
    scores: pd.Series,
    libraries: Sequence[Library],
    names_of: dict[str, str],
    *,
    permutations: int,
    seed: int,
    threads: int = 1,
) -> pd.DataFrame:
    """GSEA prerank of one tissue's ranking (``scores``: mean saliency by gene id) against the
    libraries; ``ENRICHMENT_COLUMNS``, by decreasing NES. No set to test: no rows."""
    import gseapy

    sets = _testable_sets(libraries)
    ranking = scores.dropna().astype(np.float64)
    if not sets or ranking.empty:
        return pd.DataFrame(columns=ENRICHMENT_COLUMNS)
    with warnings.catch_warnings():
        # gseapy 1.3 calls pandas methods that pandas 3 deprecates: noise, not our concern.
        warnings.filterwarnings("ignore", module="gseapy")
        result = gseapy.prerank(
            rnk=ranking, gene_sets=sets, permutation_num=permutations, seed=seed,
            threads=threads, min_size=MIN_SET_SIZE, max_size=MAX_SET_SIZE, outdir=None,
            no_plot=True, verbose=False,
        ).res2d  # fmt: skip
    keys = result["Term"].astype(str)
    library = keys.str.split(_SEPARATOR, n=1).str[0]
    set_name = keys.str.split(_SEPARATOR, n=1).str[1]
    sizes = {
        f"{lib.name}{_SEPARATOR}{name}": len(set(members))
        for lib in libraries
        for name, members in lib.members.items()
    }
    table = pd.DataFrame(
        {
            "tissue": tissue,
            "library": library,
            "set": set_name,
            "n_members": [sizes[key] for key in keys],
            "n_matched": [len(sets[key]) for key in keys],
            "ES": result["ES"].astype(float),
            "NES": result["NES"].astype(float),
            "p": result["NOM p-val"].astype(float),
            "FDR": result["FDR q-val"].astype(float),
            "leading_edge": [
                ",".join(names_of.get(g, g) for g in str(genes).split(";") if g)
                for genes in result["Lead_genes"]
            ],
        }
    )
    return table.sort_values(["NES", "set"], ascending=[False, True]).reset_index(drop=True)


def write_enrichment(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """``results/enrichment/{tissue}.tsv``, atomically."""
    with atomic_path(path) as tmp:
        table[ENRICHMENT_COLUMNS].to_csv(
            tmp, sep="\t", index=False, float_format="%.4g", lineterminator="\n"
        )


def read_enrichment(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a ``write_enrichment`` table back, checking its columns."""
    table = pd.read_csv(path, sep="\t", dtype={"set": str, "library": str, "leading_edge": str},
                        keep_default_na=False, na_values={c: ["nan", "NaN", ""] for c in
                                                          ("ES", "NES", "p", "FDR")})  # fmt: skip
    missing = [c for c in ENRICHMENT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {ENRICHMENT_COLUMNS}")
    return table[ENRICHMENT_COLUMNS]


def _top_text(table: pd.DataFrame) -> str:
    if table.empty:
        return ""
    top = table.iloc[0]
    return f"; top {top['library']}:{top['set']} NES {top['NES']:.2f} FDR {top['FDR']:.3g}"


def summary_sets(tables: dict[str, pd.DataFrame], per_tissue: int = 2) -> list[tuple[str, str]]:
    """The (library, set) columns of the summary figure: each tissue's ``per_tissue`` best sets
    by NES among those with FDR < ``SUMMARY_FDR``, in order of first appearance, at most
    ``SUMMARY_MAX_SETS``."""
    chosen: list[tuple[str, str]] = []
    for table in tables.values():
        best = table.loc[(table["NES"] > 0) & (table["FDR"] < SUMMARY_FDR)].head(per_tissue)
        for key in zip(best["library"], best["set"], strict=True):
            if key not in chosen:
                chosen.append(key)
    return chosen[:SUMMARY_MAX_SETS]


def plot_enrichment_summary(
    tables: dict[str, pd.DataFrame], out_png: str | os.PathLike[str]
) -> None:
    """Tissues x top sets: NES as colour, ``*`` where FDR < 0.05 (``summary_sets`` picks the
    sets); a placeholder figure when no tissue has a set below the FDR cut."""
    from rnaseq_saliency.plotting import pyplot, save_png

    plt = pyplot()
    columns = summary_sets(tables)
    tissues = list(tables)
    nes = np.full((len(tissues), len(columns)), np.nan)
    fdr = np.full_like(nes, np.nan)
    for row, tissue in enumerate(tissues):
        indexed = tables[tissue].set_index(["library", "set"])
        for col, key in enumerate(columns):
            if key in indexed.index:
                nes[row, col], fdr[row, col] = indexed.loc[key, ["NES", "FDR"]]
    width = max(6.0, 0.35 * len(columns) + 3.5)
    figure, ax = plt.subplots(figsize=(width, max(3.0, 0.3 * len(tissues) + 2.0)))
    if not columns:
        ax.text(0.5, 0.5, f"no set with FDR < {SUMMARY_FDR} in any tissue", ha="center")
        ax.set_axis_off()
    else:
        limit = float(np.nanmax(np.abs(nes))) if np.isfinite(nes).any() else 1.0
        image = ax.imshow(nes, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        for row, col in zip(*np.nonzero(fdr < 0.05), strict=True):
            ax.text(col, row, "*", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(columns)), [f"{lib}:{name}" for lib, name in columns],
                      rotation=90, fontsize=7)  # fmt: skip
        ax.set_yticks(range(len(tissues)), tissues, fontsize=7)
        figure.colorbar(image, ax=ax, label="NES (GSEA prerank of mean saliency)")
    ax.set_title("Gene-set enrichment of each tissue's saliency ranking (* FDR < 0.05)")
    figure.tight_layout()
    save_png(figure, out_png, dpi=120)
    plt.close(figure)


def run_enrichment_summary(
    table_paths: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    out_png: str | os.PathLike[str],
) -> None:
    """Rule ``enrichment_summary``: the tissues x top sets figure from the per-tissue tables."""
    if len(table_paths) != len(tissues):
        raise ValueError(f"{len(table_paths)} enrichment tables for {len(tissues)} tissues")
    tables = {
        tissue: read_enrichment(path) for tissue, path in zip(tissues, table_paths, strict=True)
    }
    plot_enrichment_summary(tables, out_png)
    log.info("summary of %d tissue(s) and %d set(s)", len(tables), len(summary_sets(tables)))


def run_enrichment(
    *,
    mean_matrix_path: str | os.PathLike[str],
    genes_path: str | os.PathLike[str],
    gene_set_paths: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    out_paths: Sequence[str | os.PathLike[str]],
    permutations: int,
    seed: int,
    threads: int = 1,
) -> dict[str, pd.DataFrame]:
    """Rule ``enrichment``: each tissue's table into its path of ``out_paths`` (same order as
    ``tissues``). A tissue without saliency maps gets a table with no rows (and a warning)."""
    if permutations < 1:
        raise ValueError(
            f"config key saliency.enrichment_permutations: expected >= 1, got {permutations}"
        )
    if len(out_paths) != len(tissues):
        raise ValueError(f"{len(out_paths)} output paths for {len(tissues)} tissues")
    matrix, genes = read_ranking_with_genes(mean_matrix_path, genes_path)
    ids, names = genes["gene_id"].tolist(), genes["gene_name"].tolist()
    libraries = read_libraries(gene_set_paths, ids, names)
    names_of = dict(zip(ids, names, strict=True))
    tables = {}
    for tissue, out in zip(tissues, out_paths, strict=True):
        if tissue not in matrix.columns or matrix[tissue].isna().all():
            log.warning("%s: no saliency maps, no enrichment", tissue)
            table = pd.DataFrame(columns=ENRICHMENT_COLUMNS)
        else:
            table = prerank_tissue(
                tissue, matrix[tissue], libraries, names_of,
                permutations=permutations, seed=seed, threads=threads,
            )  # fmt: skip
        write_enrichment(out, table)
        log.info("%s: %d sets tested%s", tissue, len(table), _top_text(table))
        tables[tissue] = table
    return tables
