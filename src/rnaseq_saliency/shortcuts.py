"""Shortcut check: do a tissue's most salient genes say "tissue", or "donor sex", "sample quality"?

A classifier can recognise a tissue by something other than its biology: the donors' sex (a
tissue sampled mostly from men), mitochondrial or ribosomal load, or how the sample was taken
(RNA integrity, ischemic time, the sequencing batch). For each tissue this module takes the top
``saliency.shortcut_top_k`` genes of the ranking the workflow uses (the mean saliency matrix that
rule ``top_genes`` writes, of the chosen method) and reports two kinds of checks.

Gene lists, from the release's GTF (chromosome and gene name):

- ``chrY``: genes on chrY, which includes GENCODE's ``_PAR_Y`` copies of pseudo-autosomal genes;
- ``XIST_TSIX``: XIST and TSIX, the X-inactivation genes (female-specific), where the model has
  them;
- ``chrM``: mitochondrially encoded genes;
- ``ribosomal``: ribosomal protein genes, the RPL/RPS families (RPL3, RPS4X, RPLP0, RPSA,
  RPL36AL, ...), not the kinases RPS6KA*/RPS6KB* nor the mitochondrial MRPL/MRPS;
- ``histone``: histone genes by name, in GENCODE v26's (HIST1H2BK, H2AFZ, H3F3A) and v39's
  (H2BC12, H2AZ1, H3-3A) nomenclature.

Associations, in the tissue's real training samples (``results/split/samples.tsv``, split
``train``; never validation or test samples, never synthetic ones): is the gene's expression
associated with a covariate of the sample or its donor?

- numeric ``SMRIN`` (RNA integrity) and ``SMTSISCH`` (ischemic time, minutes): Spearman rank
  correlation;
- categorical ``SEX`` and ``AGE`` (GTEx's decade brackets; subject phenotypes file) and
  ``SMGEBTCH`` (genotype or expression batch; sample attributes file): Kruskal-Wallis rank test
  over the groups of at least ``MIN_GROUP_SIZE`` samples (Mann-Whitney's two-group case for sex).

A test needs ``MIN_SAMPLES`` samples with a value (and, for a categorical covariate, two groups of
``MIN_GROUP_SIZE``); below that the covariate is reported as not tested (``n_samples`` 0), never as
"no association". The p-values of all of a tissue's tests (genes x covariates) are corrected
together (Benjamini-Hochberg); a gene is associated at FDR below ``FDR_LEVEL``.

Each check's ``share`` is the fraction of the top genes it hits. A check is flagged when its share
exceeds ``saliency.shortcut_max_share`` (default 0.05: 3 or more of the top 50 genes; chance
associations at this FDR seldom reach 2), with a warning in the log; a tissue is flagged when any
of its checks is. In sex-specific tissues (testis, prostate, uterus, ovary, vagina,
both cervix sites, fallopian tube) sex genes are expected: ``chrY``, ``XIST_TSIX`` and ``SEX`` are
reported there, never flagged.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from rnaseq_saliency.datasets import read_samples
from rnaseq_saliency.expression import read_expression
from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.genes import read_gtf_genes
from rnaseq_saliency.gtex import donor_id
from rnaseq_saliency.saliency import rank_genes, read_ranking_with_genes

log = logging.getLogger(__name__)

MIN_SAMPLES = 10  # training samples with a covariate value, for any test of that covariate
MIN_GROUP_SIZE = 3  # samples in a group of a categorical covariate; smaller groups are left out
FDR_LEVEL = 0.05  # Benjamini-Hochberg, over all the tests of one tissue
SEX_SPECIFIC_TISSUES = frozenset(
    {
        "testis",
        "prostate",
        "uterus",
        "ovary",
        "vagina",
        "cervix_ectocervix",
        "cervix_endocervix",
        "fallopian_tube",
    }
)
NUMERIC_COVARIATES = ("SMRIN", "SMTSISCH")
CATEGORICAL_COVARIATES = ("SEX", "AGE", "SMGEBTCH")
ATTRIBUTE_COVARIATES = ("SMRIN", "SMTSISCH", "SMGEBTCH")
SUBJECT_COVARIATES = ("SEX", "AGE")
GENE_CHECKS = ("chrY", "XIST_TSIX", "chrM", "ribosomal", "histone")
SEX_CHECKS = frozenset({"chrY", "XIST_TSIX", "SEX"})
SHORTCUT_COLUMNS = [
    "tissue", "check", "kind", "n_top", "n_samples", "n_hits", "share", "flagged", "genes",
]  # fmt: skip
_SEX_NAMES = {"1": "male", "2": "female"}
_RIBOSOMAL = re.compile(r"^(RP[LS]\d+[A-Z]?\d*L?\d*|RPLP[0-2]|RPSA)$")
_KINASE = re.compile(r"^RPS6K")
_HISTONE = re.compile(
    r"^(HIST[1-4]H[0-9A-Z]+|H1F[0-9A-Z]+|H2AF[0-9A-Z]+|H2BF[0-9A-Z]+|H3F3[A-C]|H1-\d+"
    r"|H2A[BCJPWXZ]\d*|H2B[CUW]\d*|H3C\d+|H3-\d+[A-Z]?|H3Y\d|H4C\d+|H4-\d+|MACROH2A\d)$"
)


def is_ribosomal_protein(name: str) -> bool:
    """RPL/RPS ribosomal protein genes (``RPL3``, ``RPS4Y1``, ``RPLP0``), not ``RPS6KA1``."""
    return bool(_RIBOSOMAL.match(name)) and not _KINASE.match(name)


def is_histone(name: str) -> bool:
    """Histone genes by GENCODE name, old (``HIST1H4C``, ``H2AFZ``) or new (``H4C3``, ``H2AZ1``)."""
    return bool(_HISTONE.match(name))


def gene_list_hits(names: Sequence[str], chroms: Sequence[str]) -> dict[str, np.ndarray]:
    """For each gene-list check (``GENE_CHECKS``), which of the genes it hits (bool arrays)."""
    names_array = np.asarray(names, dtype=object)
    chrom_array = np.asarray(chroms, dtype=object)
    return {
        "chrY": chrom_array == "chrY",
        "XIST_TSIX": np.isin(names_array, ["XIST", "TSIX"]),
        "chrM": np.isin(chrom_array, ["chrM", "chrMT", "MT"]),
        "ribosomal": np.array([is_ribosomal_protein(n) for n in names], dtype=bool),
        "histone": np.array([is_histone(n) for n in names], dtype=bool),
    }


def gene_chromosomes(gtf_path: str | os.PathLike[str], gene_ids: Sequence[str]) -> list[str]:
    """The chromosome of each gene, from the release's GTF.

    Raises:
        ValueError: naming the GTF and the first genes it lacks.
    """
    gtf = read_gtf_genes(gtf_path).set_index("gene_id")["chrom"]
    missing = [g for g in gene_ids if g not in gtf.index]
    if missing:
        raise ValueError(
            f"{gtf_path}: {len(missing)} model gene(s) are not in this GTF, e.g. {missing[:5]}; "
            "is it the release the genes were selected from?"
        )
    return gtf.loc[list(gene_ids)].tolist()


def _read_table(path: str | os.PathLike[str], key: str, columns: Sequence[str]) -> pd.DataFrame:
    """A GTEx annotation table (TSV) with ``key`` and ``columns``, as strings, indexed by key."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in (key, *columns) if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; a GTEx annotation file has them")
    repeated = table[key][table[key].duplicated()].tolist()
    if repeated:
        raise ValueError(f"{path}: {key} values repeat: {repeated[:5]}")
    return table.set_index(key)[list(columns)]


def read_covariates(
    attributes_path: str | os.PathLike[str],
    subjects_path: str | os.PathLike[str],
    sample_ids: Sequence[str],
) -> pd.DataFrame:
    """The covariates of ``sample_ids``: SMRIN, SMTSISCH (float, NaN where empty), SEX (``male``
    / ``female``), AGE and SMGEBTCH (strings, empty where unknown), indexed by sample id.

    Raises:
        ValueError: naming the file, for a missing column or a sample (or donor) it lacks.
    """
    attributes = _read_table(attributes_path, "SAMPID", ATTRIBUTE_COVARIATES)
    subjects = _read_table(subjects_path, "SUBJID", SUBJECT_COVARIATES)
    absent = [s for s in sample_ids if s not in attributes.index]
    if absent:
        raise ValueError(f"{attributes_path}: no row for sample(s) {absent[:5]}")
    donors = [donor_id(s) for s in sample_ids]
    absent = sorted({d for d in donors if d not in subjects.index})
    if absent:
        raise ValueError(f"{subjects_path}: no row for donor(s) {absent[:5]}")
    table = attributes.loc[list(sample_ids)].copy()
    for column in NUMERIC_COVARIATES:
        table[column] = pd.to_numeric(table[column].replace("", np.nan), errors="coerce")
    table["SEX"] = [_SEX_NAMES.get(v, v) for v in subjects.loc[donors, "SEX"]]
    table["AGE"] = subjects.loc[donors, "AGE"].to_numpy()
    return table


def _numeric_p(values: np.ndarray, covariate: np.ndarray) -> tuple[float, int]:
    from scipy.stats import spearmanr

    known = np.isfinite(covariate)
    if known.sum() < MIN_SAMPLES:
        return np.nan, 0
    x, y = values[known], covariate[known]
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, int(known.sum())
    return float(spearmanr(x, y).pvalue), int(known.sum())


def _categorical_p(values: np.ndarray, covariate: np.ndarray) -> tuple[float, int]:
    from scipy.stats import kruskal

    labels, counts = np.unique(covariate[covariate != ""], return_counts=True)
    kept = labels[counts >= MIN_GROUP_SIZE]
    in_groups = np.isin(covariate, kept)
    if kept.size < 2 or in_groups.sum() < MIN_SAMPLES:
        return np.nan, 0
    if np.ptp(values[in_groups]) == 0:
        return np.nan, int(in_groups.sum())
    groups = [values[covariate == label] for label in kept]
    return float(kruskal(*groups).pvalue), int(in_groups.sum())


def association_table(expression: np.ndarray, covariates: pd.DataFrame) -> pd.DataFrame:
    """Per gene (columns of ``expression``, samples x genes) and covariate: the test's p-value
    (NaN: not tested), its number of samples and its Benjamini-Hochberg q over all the tests."""
    from scipy.stats import false_discovery_control

    rows = []
    for name in (*NUMERIC_COVARIATES, *CATEGORICAL_COVARIATES):
        numeric = name in NUMERIC_COVARIATES
        covariate = covariates[name].to_numpy(dtype=np.float64 if numeric else object)
        for gene in range(expression.shape[1]):
            test = _numeric_p if numeric else _categorical_p
            p, n = test(expression[:, gene], covariate)
            rows.append((gene, name, p, n))
    table = pd.DataFrame(rows, columns=["gene", "covariate", "p", "n_samples"])
    tested = table["p"].notna()
    table["q"] = np.nan
    if tested.any():
        table.loc[tested, "q"] = false_discovery_control(table.loc[tested, "p"].to_numpy())
    return table


class TissueInput(NamedTuple):
    """What one tissue's checks read: its top genes (rank order) and their training samples."""

    tissue: str
    names: list[str]  # gene names of the top genes
    chroms: list[str]
    expression: np.ndarray  # training samples x top genes
    covariates: pd.DataFrame  # one row per training sample


def _row(
    tissue: str, check: str, kind: str, hits: np.ndarray, names: list[str], n: int, max_share: float
) -> dict:
    share = float(hits.mean()) if hits.size else 0.0
    exempt = tissue in SEX_SPECIFIC_TISSUES and check in SEX_CHECKS
    return {
        "tissue": tissue,
        "check": check,
        "kind": kind,
        "n_top": int(hits.size),
        "n_samples": n,
        "n_hits": int(hits.sum()),
        "share": share,
        "flagged": bool(share > max_share and not exempt),
        "genes": ",".join(name for name, hit in zip(names, hits, strict=True) if hit),
    }


def tissue_shortcuts(data: TissueInput, max_share: float) -> pd.DataFrame:
    """One tissue's checks: one row per gene list and per covariate (``SHORTCUT_COLUMNS``),
    flagged where the share of top genes hit exceeds ``max_share``."""
    rows = [
        _row(data.tissue, check, "gene_list", hits, data.names, 0, max_share)
        for check, hits in gene_list_hits(data.names, data.chroms).items()
    ]
    tests = association_table(data.expression, data.covariates)
    for name, block in tests.groupby("covariate", sort=False):
        hits = (block["q"] < FDR_LEVEL).to_numpy()
        n = int(block["n_samples"].max())
        rows.append(_row(data.tissue, str(name), "association", hits, data.names, n, max_share))
    return pd.DataFrame(rows, columns=SHORTCUT_COLUMNS)


def write_shortcuts(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """``results/saliency/shortcuts.tsv``, atomically."""
    with atomic_path(path) as tmp:
        table[SHORTCUT_COLUMNS].to_csv(
            tmp, sep="\t", index=False, float_format="%.4g", lineterminator="\n"
        )


def read_shortcuts(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``results/saliency/shortcuts.tsv`` back, checking its columns."""
    table = pd.read_csv(path, sep="\t", dtype={"genes": str}, keep_default_na=False)
    missing = [c for c in SHORTCUT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {SHORTCUT_COLUMNS}")
    table["flagged"] = table["flagged"].astype(str) == "True"
    return table[SHORTCUT_COLUMNS]


def plot_shortcuts(table: pd.DataFrame, out_png: str | os.PathLike[str], max_share: float) -> None:
    """Tissues x checks: the share of each tissue's top genes that hit each check; flagged
    cells boxed and flagged tissues named in red; grey where a covariate was not tested."""
    from rnaseq_saliency.plotting import pyplot, save_png

    plt = pyplot()
    checks = [*GENE_CHECKS, *NUMERIC_COVARIATES, *CATEGORICAL_COVARIATES]
    tissues = list(dict.fromkeys(table["tissue"]))
    indexed = table.set_index(["tissue", "check"])
    share = np.full((len(tissues), len(checks)), np.nan)
    for row, tissue in enumerate(tissues):
        for col, check in enumerate(checks):
            entry = indexed.loc[(tissue, check)]
            if entry["kind"] == "gene_list" or entry["n_samples"] > 0:
                share[row, col] = entry["share"]
    figure, ax = plt.subplots(figsize=(7.5, max(3.0, 0.28 * len(tissues) + 2.2)))
    cmap = plt.get_cmap("Reds").with_extremes(bad="0.85")
    image = ax.imshow(np.ma.masked_invalid(share), cmap=cmap, vmin=0, vmax=max(0.2, 2 * max_share),
                      aspect="auto")  # fmt: skip
    flagged = table.loc[table["flagged"], ["tissue", "check"]].itertuples(index=False)
    for tissue, check in flagged:
        row, col = tissues.index(tissue), checks.index(check)
        ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, lw=2, ec="black"))
    ax.set_xticks(range(len(checks)), checks, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(tissues)), tissues, fontsize=7)
    for label in ax.get_yticklabels():
        if table.loc[table["tissue"] == label.get_text(), "flagged"].any():
            label.set_color("red")
    figure.colorbar(image, ax=ax, label="share of top genes")
    ax.set_title(
        f"Shortcut check: flagged (boxed) above a share of {max_share:g}; grey: not tested",
        fontsize=9,
    )
    figure.tight_layout()
    save_png(figure, out_png, dpi=120)
    plt.close(figure)


def _tissue_input(
    tissue: str,
    scores: np.ndarray,
    genes: pd.DataFrame,
    chroms: list[str],
    expression_path: str | os.PathLike[str],
    train_ids: set[str],
    covariates_of: tuple[str | os.PathLike[str], str | os.PathLike[str]],
    top_k: int,
) -> TissueInput:
    """Gather one tissue's top genes and their expression in its real training samples."""
    top = rank_genes(scores)[: min(top_k, len(scores))]
    table = read_expression(expression_path)
    if table.gene_ids != genes["gene_id"].tolist():
        raise ValueError(f"{expression_path}: its genes differ from the selected genes")
    rows = [i for i, sample in enumerate(table.sample_ids) if sample in train_ids]
    samples = [table.sample_ids[i] for i in rows]
    return TissueInput(
        tissue=tissue,
        names=genes["gene_name"].iloc[top].tolist(),
        chroms=[chroms[i] for i in top],
        expression=table.matrix[np.ix_(rows, top)].astype(np.float64),
        covariates=read_covariates(*covariates_of, samples),
    )


def _warn_flagged(table: pd.DataFrame, max_share: float) -> None:
    for tissue, block in table.loc[table["flagged"]].groupby("tissue", sort=False):
        checks = ", ".join(
            f"{row.check} {row.n_hits}/{row.n_top} ({row.genes})" for row in block.itertuples()
        )
        log.warning(
            "possible shortcut in %s: more than %.0f%% of its top genes hit %s",
            tissue, 100 * max_share, checks,
        )  # fmt: skip


def run_shortcuts(
    *,
    mean_matrix_path: str | os.PathLike[str],
    genes_path: str | os.PathLike[str],
    gtf_path: str | os.PathLike[str],
    samples_path: str | os.PathLike[str],
    expression_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    attributes_path: str | os.PathLike[str],
    subjects_path: str | os.PathLike[str],
    top_k: int,
    max_share: float,
    out_path: str | os.PathLike[str],
    figure_path: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Rule ``shortcuts``: every tissue's checks (module docstring) into ``out_path``; a
    warning in the log for each flagged tissue. A tissue without saliency maps has no rows."""
    if top_k < 1:
        raise ValueError(f"config key saliency.shortcut_top_k: expected >= 1, got {top_k}")
    if not 0 <= max_share < 1:
        raise ValueError(f"config key saliency.shortcut_max_share: expected 0 <= value < 1, "
                         f"got {max_share}")  # fmt: skip
    if len(expression_files) != len(tissues):
        raise ValueError(f"{len(expression_files)} expression files for {len(tissues)} tissues")
    matrix, genes = read_ranking_with_genes(mean_matrix_path, genes_path)
    chroms = gene_chromosomes(gtf_path, genes["gene_id"].tolist())
    samples = read_samples(samples_path)
    blocks = []
    for tissue, path in zip(tissues, expression_files, strict=True):
        if tissue not in matrix.columns or matrix[tissue].isna().all():
            log.warning("%s: no saliency maps, no shortcut check", tissue)
            continue
        train = samples.loc[(samples["tissue"] == tissue) & (samples["split"] == "train")]
        data = _tissue_input(
            tissue, matrix[tissue].to_numpy(dtype=np.float64), genes, chroms, path,
            set(train["sample_id"]), (attributes_path, subjects_path), top_k,
        )  # fmt: skip
        blocks.append(tissue_shortcuts(data, max_share))
        log.info("%s: top %d genes checked on %d training samples",
                 tissue, len(data.names), len(data.covariates))  # fmt: skip
    table = (
        pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(columns=SHORTCUT_COLUMNS)
    )
    write_shortcuts(out_path, table)
    if figure_path is not None:
        plot_shortcuts(table, figure_path, max_share)
    _warn_flagged(table, max_share)
    flagged = sorted(set(table.loc[table["flagged"], "tissue"]))
    log.info("%d of %d tissue(s) flagged: %s", len(flagged), len(blocks), ", ".join(flagged))
    return table
