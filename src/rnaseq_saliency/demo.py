"""The bundled demo dataset: GTEx-shaped files generated from Human Protein Atlas profiles.

``write_demo_dataset`` writes the files a GTEx v8 user downloads, under their published names
(``rnaseq_saliency.gtex``), so the demo goes through the same reader as real data:

- ``gene_tpm_2017-06-05_v8_<label>.gct.gz`` for each of the 54 tissues (``gene_reads_...`` with
  ``measure="reads"``): GCT 1.3 exactly as the real per-tissue files (``#1.3``, dims
  ``<genes> <samples + 2> 0 0``, a leading 0-based ``id`` column), versioned GENCODE v26 ids in
  ``Name`` and gene symbols in ``Description``; genes in genome order, samples sorted by id;
- (rule ``demo_matrix``, with ``data.layout: matrix``) the whole-matrix file
  ``GTEx_Analysis_2017-06-05_v8_RNASeQCv1.1.9_gene_tpm.gct.gz``, built from the per-tissue
  files by ``merge_gct_files``: every sample in one GCT 1.2 file, as GTEx's whole-matrix files;
- ``GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt``: SAMPID, SMTS, SMTSD, SMAFRZE and other
  real columns, filled plausibly, with non-RNA-seq rows (WGS, WES, EXCLUDE) and the leukemia cell
  line (CML, ``K-562-...``) rows that have no per-tissue file, as in the real file;
- ``GTEx_Analysis_v8_Annotations_SubjectPhenotypesDS.txt``: SUBJID, SEX (1 male, 2 female), AGE,
  DTHHRDY of the demo donors;
- ``gencode.v26.GRCh38.genes.gtf``: the demo genes in the GTEx collapsed-model style (a ``gene`` and
  a ``transcript`` line per gene, ``gene_type "protein_coding"``), real coordinates;
- ``demo_tissue_specific_genes.tsv`` (``tissue``, ``gene_id``, ``gene_name``): the genes that are
  tissue-specific by construction, for checking what the saliency maps find (below).

Size. Genes: the first ``n_genes`` rows of the committed table ``data/demo_profiles.tsv.gz``
(HPA-enriched markers of every tissue first, then high-variance genes; ``demo_build``), written in
genome order, always with the planted shortcut's genes (below). Samples per tissue:
``max(min_samples_per_tissue, round(n_v8 * sample_scale))`` where ``n_v8`` is the tissue's GTEx
v8 RNA-seq sample count, which keeps GTEx's imbalance (muscle 803 -> 80, kidney medulla 4 -> 4 at
the default 0.1): 1,757 samples with the defaults. Donors:
``round(948 * sample_scale)`` (948 donors gave v8 RNA-seq samples), raised if a tissue needs more
donors of one sex than there are; 2 of 3 male, as in GTEx. Each donor gives at most one sample per
tissue and, like GTEx donors, samples to many tissues: a tissue's donors are drawn from the eligible
donors with a per-donor propensity, so donors differ in how many tissues they gave. Testis and
prostate come only from male donors; uterus, ovary, vagina, both cervix sites and the fallopian
tube only from female donors.

Expression model, per gene g, tissue t, donor d and sample j (natural logs):

1. Tissue mean ``m_tg``: the committed HPA mix for ``t`` (nTPM), floored at 0.01 so that silent
   genes still leak a read now and then, times ``exp(delta_tg)``. ``delta_t`` is a tissue-specific
   deviation on a random 4% of genes, normal with sd 0.35. It gives every tissue a signature of its
   own; for tissues that share an HPA profile (brain cortex / frontal cortex BA9 / cingulate
   cortex BA24, the basal ganglia, both cerebellum samples, both skins, kidney cortex and medulla,
   the heart chambers, tibial artery and aorta) it is the only difference, so they are hard but
   possible to tell apart, as in GTEx.
2. True expression ``x_jg = m_tg * exp(s_t * sigma_g * z_jg + 0.5 * sigma_g * u_dg)``: ``sigma_g``
   a gene-specific biological dispersion (log-normal around 0.3), ``s_t`` a tissue heterogeneity
   factor (log-normal around 1), ``z`` per-sample noise and ``u_dg`` a donor effect shared by all of
   that donor's tissues (both standard normal). Y-chromosome genes are silent in female donors.
3. Sampling: ``N_j`` reads land in genes (log-normal, median 40 million). Gene g gets
   ``Poisson(N_j * x_jg * L_g / (1e6 * 2500))`` reads, where ``L_g`` is a stand-in for its exonic
   length from its genomic span (``effective_length``) and 2,500 bp an average transcript length,
   so the TPM-scale ``x`` returns as TPM: ``TPM_jg = reads_jg * 1e6 * 2500 / (N_j * L_g)``, rounded
   to 3 decimals. Lowly expressed genes get zeros. With ``measure="reads"`` the read counts are
   written instead; the same seed gives the same samples and counts either way.

Planted shortcut (ischemic time in ``colon_transverse``; ``SHORTCUT_*`` below). In real GTEx,
ischemic time (SMTSISCH, minutes from death to tissue stabilisation) differs between tissues
with the order of collection, and immediate-early stress genes (FOS, JUN, EGR1, ATF3, the NR4A
family) rise with it (Ferreira et al. 2018, Nat Commun, doi 10.1038/s41467-017-02772-x). The
demo plants one such confounder so that the shortcut check (``shortcuts``) has something real to
find: ``colon_transverse`` samples get a long ischemic time, uniform in ``SHORTCUT_MINUTES``
(600-1,600 minutes; every other tissue keeps 60-1,400, whole blood 5-60), and in that tissue
alone the stress genes ``SHORTCUT_GENES`` (FOSB, ATF3, NR4A1, NR4A3, IER3, KLF4, CYR61, MYC) get
``SHORTCUT_SLOPE * SMTSISCH / 60`` added to their log expression (0.2 per hour: 7x at 10 hours,
200x at 27). So they are up in that tissue (a classifier can learn them as colon markers) and,
within it, correlate with SMTSISCH. The draws come from a stream of their own: every other
tissue's files, and every attribute but this tissue's SMTSISCH, are what they were without the
shortcut. The planted genes are always among the demo's genes: with ``n_genes`` too small to
reach them in the profile table, they take the places of the last genes that would be chosen.

Tissue-specific genes: a demo gene in the HPA marker set of tissue t
(``data/hpa_tissue_enriched.gmt``: genes HPA finds >= 4x enriched in t's main HPA tissue) whose
demo mean ``m_tg`` is at least twice its mean in every tissue outside t's marker group (tissues
that share t's markers, like the three cortex samples, are one group).

Deterministic: every random draw comes from ``numpy.random.SeedSequence(seed)``, and gzip headers
carry no time stamp or file name, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rnaseq_saliency import gtex
from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.genes import read_gmt
from rnaseq_saliency.tissues import Tissue, tissue_table

log = logging.getLogger(__name__)
# The HPA tissue-enriched gene sets shipped with the package (demo_build writes them).
MARKERS_GMT = resources.files(__package__).joinpath("data/hpa_tissue_enriched.gmt")

V8_DONORS = 948
MALE_FRACTION = 0.666  # 653 of 980 GTEx v8 subjects
MALE_ONLY = frozenset({"testis", "prostate"})
FEMALE_ONLY = frozenset(
    {"uterus", "ovary", "vagina", "cervix_ectocervix", "cervix_endocervix", "fallopian_tube"}
)
# GTEx v8 subject phenotypes (gtex_v8_subject_phenotypes.txt): age bins and Hardy scale counts.
AGE_BINS = {"20-29": 84, "30-39": 78, "40-49": 153, "50-59": 315, "60-69": 317, "70-79": 33}
HARDY = {"0": 511, "1": 35, "2": 239, "3": 57, "4": 119, "": 19}

# Expression model constants (module docstring). The deviation size was tuned so that a
# logistic regression on the default demo confuses brain sub-regions, both cerebellum samples and
# kidney cortex/medulla often, and distinct tissues almost never (about 97% accuracy overall).
EXPRESSION_FLOOR = 0.01  # nTPM; HPA zeros would otherwise be exact zeros in every sample
DEVIATION_FRACTION = 0.04  # share of genes carrying a tissue's own deviation
DEVIATION_SD = 0.35  # natural-log units of that deviation
DISPERSION_MEDIAN = 0.3  # typical within-tissue sd of log expression across samples
DONOR_SHARE = 0.5  # donor effect sd, relative to the gene's dispersion
READS_MEDIAN = 40e6  # reads counted in genes per sample
MEAN_TRANSCRIPT_LENGTH = 2500.0  # bp; ties TPM to reads (see effective_length)
SPECIFICITY_FOLD = 2.0  # demo mean over the highest tissue outside the marker group
TPM_DECIMALS = 3  # a single read on a 20 kb gene is ~0.002 TPM; fewer decimals would zero it

# The planted shortcut (module docstring): a tissue confounded with long ischemic time, and the
# stress-response genes that rise with ischemic time in that tissue.
SHORTCUT_TISSUE = "colon_transverse"
SHORTCUT_GENES = ("FOSB", "ATF3", "NR4A1", "NR4A3", "IER3", "KLF4", "CYR61", "MYC")
SHORTCUT_MINUTES = (600, 1600)  # SMTSISCH range of the confounded tissue's samples
SHORTCUT_SLOPE = 0.2  # natural-log units of expression per hour of ischemic time

SUBJECT_FILE = gtex.subjects_file_name("v8")
SPECIFIC_GENES_FILE = "demo_tissue_specific_genes.tsv"
CML_SMTSD = "Cells - Leukemia cell line (CML)"
_ALNUM = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_PATHOLOGY_NOTES = (
    "2 pieces, no abnormalities",
    "1 piece, well preserved",
    "2 pieces, mild autolysis",
    "3 pieces, ~10% fibrous tissue",
    "2 pieces, adequate",
)

ATTRIBUTE_COLUMNS = (
    "SAMPID", "SMATSSCR", "SMCENTER", "SMPTHNTS", "SMRIN", "SMTS", "SMTSD", "SMUBRID", "SMTSISCH",
    "SMTSPAX", "SMNABTCH", "SMNABTCHT", "SMNABTCHD", "SMGEBTCH", "SMGEBTCHD", "SMGEBTCHT",
    "SMAFRZE", "SMMAPRT", "SMRDTTL",
)  # fmt: skip

# SMTS (broad tissue) for labels whose first word does not give it.
_SMTS = {
    "whole_blood": "Blood",
    "cells_ebv-transformed_lymphocytes": "Blood",
    "cells_cultured_fibroblasts": "Skin",
    "muscle_skeletal": "Muscle",
    "minor_salivary_gland": "Salivary Gland",
    "adrenal_gland": "Adrenal Gland",
    "small_intestine_terminal_ileum": "Small Intestine",
    "breast_mammary_tissue": "Breast",
    "fallopian_tube": "Fallopian Tube",
}
_SMTS_PREFIX = {
    "brain": "Brain", "adipose": "Adipose Tissue", "artery": "Blood Vessel", "heart": "Heart",
    "skin": "Skin", "esophagus": "Esophagus", "colon": "Colon", "nerve": "Nerve",
    "kidney": "Kidney", "cervix": "Cervix Uteri",
}  # fmt: skip


def smts(label: str) -> str:
    """The GTEx broad tissue (SMTS) of a tissue label: ``brain_cortex`` -> ``Brain``."""
    if label in _SMTS:
        return _SMTS[label]
    head = label.split("_")[0]
    return _SMTS_PREFIX.get(head, head.capitalize())


def samples_per_tissue(sample_scale: float, min_samples_per_tissue: int) -> dict[str, int]:
    """``max(min_samples_per_tissue, round(n_v8 * sample_scale))`` per tissue, halves rounded up."""
    if not 0 < sample_scale <= 1:
        raise ValueError(f"config key demo.sample_scale: must be in (0, 1], got {sample_scale}")
    if min_samples_per_tissue < 1:
        raise ValueError(
            f"config key demo.min_samples_per_tissue: must be >= 1, got {min_samples_per_tissue}"
        )
    return {
        t.label: max(min_samples_per_tissue, math.floor(t.n_samples_v8 * sample_scale + 0.5))
        for t in tissue_table()
    }


def effective_length(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A stand-in for a gene's exonic length (bp), from its genomic span.

    The collapsed gene model's exons are not in the demo's gene table; mature transcripts are a
    small, sub-linear share of long genes: ``min(span, 1000 + span / 10)``, at most 20 kb.
    """
    span = (np.asarray(end, dtype=np.float64) - np.asarray(start, dtype=np.float64)) + 1.0
    return np.minimum(np.minimum(span, 1000.0 + span / 10.0), 20_000.0)


@dataclass(frozen=True)
class DemoGenes:
    """The demo's genes in genome order, with their per-tissue HPA mean profiles."""

    gene_id: list[str]
    gene_name: list[str]
    chrom: list[str]
    start: np.ndarray
    end: np.ndarray
    strand: list[str]
    profiles: np.ndarray  # (n_genes, n_tissues) nTPM, tissues in tissue_table() order
    # GENCODE gene_type per gene for the GTF; None: all protein_coding (the demo's genes).
    gene_type: list[str] | None = None


def _read_package_text(name: str, *, gzipped: bool = False) -> str:
    resource = resources.files("rnaseq_saliency").joinpath(f"data/{name}")
    data = resource.read_bytes()
    return (gzip.decompress(data) if gzipped else data).decode("utf-8")


def _chosen_rows(names: Sequence[str], n_genes: int) -> list[int]:
    """Rows of the profile table the demo uses: the first ``n_genes``, except that the planted
    shortcut's genes are always in (they replace the last rows when they lie further down)."""
    planted = [row for row, name in enumerate(names) if name in SHORTCUT_GENES][:n_genes]
    taken = set(planted)
    others = [row for row in range(len(names)) if row not in taken][: n_genes - len(planted)]
    return sorted(others + planted)


def load_demo_genes(n_genes: int) -> DemoGenes:
    """The first ``n_genes`` genes of the committed profile table (with the planted shortcut's
    genes, ``_chosen_rows``), with GENCODE coordinates."""
    lines = _read_package_text("demo_profiles.tsv.gz", gzipped=True).splitlines()
    header = lines[0].split("\t")
    labels = [t.label for t in tissue_table()]
    if header[3:] != labels:
        raise ValueError("data/demo_profiles.tsv.gz: tissue columns differ from the 54 GTEx labels")
    pool = len(lines) - 1
    if not 1 <= n_genes <= pool:
        raise ValueError(
            f"config key demo.n_genes: the demo's profile table holds {pool} genes; "
            f"got {n_genes} (allowed 1..{pool})"
        )
    table = [line.split("\t") for line in lines[1:]]
    rows = [table[i] for i in _chosen_rows([row[1] for row in table], n_genes)]
    wanted = {row[0]: row for row in rows}
    gencode = _read_package_text("gencode_v26_protein_coding.tsv.gz", gzipped=True).splitlines()
    found = []
    for line in gencode[1:]:  # gene_id gene_name chrom start end strand, in genome order
        fields = line.split("\t")
        if fields[0] in wanted:
            found.append(fields)
    if len(found) != n_genes:
        missing = sorted(set(wanted) - {fields[0] for fields in found})
        raise ValueError(f"data/demo_profiles.tsv.gz: gene ids not in GENCODE v26: {missing[:5]}")
    profiles = np.array([wanted[fields[0]][3:] for fields in found], dtype=np.float64)
    return DemoGenes(
        gene_id=[fields[0] for fields in found],
        gene_name=[fields[1] for fields in found],
        chrom=[fields[2] for fields in found],
        start=np.array([int(fields[3]) for fields in found]),
        end=np.array([int(fields[4]) for fields in found]),
        strand=[fields[5] for fields in found],
        profiles=profiles,
    )


def tissue_specific_genes(
    means: np.ndarray, gene_ids: Sequence[str], labels: Sequence[str], markers: dict[str, list[str]]
) -> list[tuple[str, int]]:
    """(tissue, gene row) pairs: demo genes in the tissue's marker set whose mean is at least
    ``SPECIFICITY_FOLD`` times their mean in every tissue that does not share the marker."""
    row_of = {gene: row for row, gene in enumerate(gene_ids)}
    holders: dict[int, set[int]] = {}
    for column, label in enumerate(labels):
        for gene in markers.get(label, []):
            if gene in row_of:
                holders.setdefault(row_of[gene], set()).add(column)
    pairs = []
    for column, label in enumerate(labels):
        for gene in markers.get(label, []):
            row = row_of.get(gene)
            if row is None:
                continue
            others = [c for c in range(len(labels)) if c not in holders[row]]
            if others and means[row, column] >= SPECIFICITY_FOLD * means[row, others].max():
                pairs.append((label, row))
    return pairs


@dataclass
class Donors:
    ids: list[str]
    male: np.ndarray  # bool per donor
    age: list[str]
    hardy: list[str]


def _random_codes(rng: np.random.Generator, n: int, width: int, taken: set[str]) -> list[str]:
    """``n`` distinct upper-case alphanumeric codes not in ``taken`` (which is updated)."""
    codes: list[str] = []
    while len(codes) < n:
        code = "".join(rng.choice(_ALNUM, size=width))
        if code not in taken:
            taken.add(code)
            codes.append(code)
    return codes


def _categorical(rng: np.random.Generator, counts: dict[str, int], n: int) -> list[str]:
    names = list(counts)
    weights = np.array([counts[name] for name in names], dtype=np.float64)
    return [names[i] for i in rng.choice(len(names), size=n, p=weights / weights.sum())]


def make_donors(rng: np.random.Generator, counts: dict[str, int], sample_scale: float) -> Donors:
    """Donors enough for every tissue (one sample per tissue per donor), about 2/3 male."""
    need_any = max(counts.values())
    need_male = max(counts[label] for label in MALE_ONLY)
    need_female = max(counts[label] for label in FEMALE_ONLY)
    n_total = max(math.floor(V8_DONORS * sample_scale + 0.5), need_any, need_male + need_female)
    n_female = max(round(n_total * (1 - MALE_FRACTION)), need_female)
    n_male = max(n_total - n_female, need_male)
    male = np.array([True] * n_male + [False] * n_female)
    rng.shuffle(male)
    ids = [f"GTEX-{code}" for code in _random_codes(rng, male.size, 5, set())]
    return Donors(
        ids=ids,
        male=male,
        age=_categorical(rng, AGE_BINS, male.size),
        hardy=_categorical(rng, HARDY, male.size),
    )


def assign_donors(
    rng: np.random.Generator, donors: Donors, counts: dict[str, int]
) -> dict[str, np.ndarray]:
    """For each tissue, the indices of its donors: eligible by sex, drawn by donor propensity."""
    propensity = rng.beta(4.0, 1.5, size=len(donors.ids))
    chosen: dict[str, np.ndarray] = {}
    for label, n in counts.items():
        if label in MALE_ONLY:
            eligible = np.flatnonzero(donors.male)
        elif label in FEMALE_ONLY:
            eligible = np.flatnonzero(~donors.male)
        else:
            eligible = np.arange(len(donors.ids))
        p = propensity[eligible] / propensity[eligible].sum()
        chosen[label] = np.sort(rng.choice(eligible, size=n, replace=False, p=p))
    return chosen


def tissue_means(rng: np.random.Generator, profiles: np.ndarray) -> np.ndarray:
    """Floored HPA means times each tissue's own sparse log-normal deviation (model step 1)."""
    n_genes, n_tissues = profiles.shape
    deviation = np.zeros_like(profiles)
    n_dev = max(1, round(DEVIATION_FRACTION * n_genes))
    for column in range(n_tissues):
        rows = rng.choice(n_genes, size=n_dev, replace=False)
        deviation[rows, column] = rng.normal(0.0, DEVIATION_SD, size=n_dev)
    return np.maximum(profiles, EXPRESSION_FLOOR) * np.exp(deviation)


def draw_heterogeneity(rng: np.random.Generator) -> float:
    """A tissue's heterogeneity factor ``s_t`` (log-normal around 1; model step 2)."""
    return math.exp(rng.normal(0.0, 0.2))


def draw_library(rng: np.random.Generator, n: int) -> np.ndarray:
    """Reads counted in genes, ``N_j``, for ``n`` samples (log-normal; model step 3)."""
    return np.exp(rng.normal(math.log(READS_MEDIAN), 0.35, size=n))


def simulate_tissue(
    rng: np.random.Generator,
    mean: np.ndarray,
    dispersion: np.ndarray,
    donor_effect: np.ndarray,
    donor_rows: np.ndarray,
    female_silent: np.ndarray,
    male: np.ndarray,
    length: np.ndarray,
    *,
    heterogeneity: float | None = None,
    library: np.ndarray | None = None,
    log_shift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reads, TPM and library sizes of one tissue's samples (model steps 2 and 3).

    ``heterogeneity`` (``s_t``) and ``library`` (``N_j``) are drawn from ``rng`` unless given:
    a caller that simulates a tissue in blocks of genes (bench/make_gtex_scale.py) draws them
    once with ``draw_heterogeneity`` and ``draw_library`` and passes the same ones to every
    block, so that each sample keeps one library size across all its genes. ``log_shift``
    (genes x samples, natural logs) is added to the log expression: the planted shortcut. It
    draws nothing, so the other draws are the same with or without it.
    """
    n_genes, n = mean.size, donor_rows.size
    if heterogeneity is None:
        heterogeneity = draw_heterogeneity(rng)
    noise = rng.standard_normal((n_genes, n))
    log_x = (
        np.log(mean)[:, None]
        + heterogeneity * dispersion[:, None] * noise
        + DONOR_SHARE * dispersion[:, None] * donor_effect[:, donor_rows]
    )
    if log_shift is not None:
        log_x += log_shift
    x = np.exp(log_x)
    x[np.ix_(female_silent, ~male[donor_rows])] = 0.0
    if library is None:
        library = draw_library(rng, n)
    scale = length[:, None] * library[None, :] / (1e6 * MEAN_TRANSCRIPT_LENGTH)
    reads = rng.poisson(x * scale)
    tpm = np.round(reads / scale, TPM_DECIMALS)
    return reads, tpm, library


def write_gct(
    path: str | Path,
    gene_ids: Sequence[str],
    gene_names: Sequence[str],
    sample_ids: Sequence[str],
    values: np.ndarray | Iterable[np.ndarray],
    *,
    integer: bool,
) -> None:
    """A GTEx per-tissue GCT file (gzip), GCT 1.3 exactly as GTEx v8 writes it.

    ``#1.3``; dims ``<genes> <samples + 2> 0 0`` (the column count includes Name and
    Description); header ``id Name Description samples...``; ``id`` counts from 0.

    ``values`` is the genes x samples matrix, or an iterable of consecutive row blocks of it
    (generated on the fly, so a GTEx-sized file never sits in memory whole).
    """
    n_genes, n_samples = len(gene_ids), len(sample_ids)
    blocks = [values] if isinstance(values, np.ndarray) else values
    fmt = str if integer else "%.10g".__mod__
    preamble = f"#1.3\n{n_genes}\t{n_samples + 2}\t0\t0\nid\tName\tDescription\t"
    # No file name or time stamp in the gzip header: the same values give the same bytes.
    # Level 1: compression dominated the run time at the default level 6, for 15% smaller files.
    with (
        atomic_path(path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as gz,
        io.TextIOWrapper(gz, encoding="utf-8", newline="\n") as text,
    ):
        text.write(preamble + "\t".join(sample_ids) + "\n")
        row = 0
        for block in blocks:
            if block.ndim != 2 or block.shape[1] != n_samples or row + len(block) > n_genes:
                raise ValueError(
                    f"{path}: value block of shape {block.shape} at gene row {row} does not fit "
                    f"{n_genes} genes x {n_samples} samples"
                )
            for line in block.tolist():
                text.write(
                    f"{row}\t{gene_ids[row]}\t{gene_names[row]}\t"
                    + "\t".join(map(fmt, line))
                    + "\n"
                )
                row += 1
        if row != n_genes:
            raise ValueError(f"{path}: values for {row} genes, but {n_genes} gene ids")


def _write_table(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(row) + "\n")


def write_gtf(path: str | Path, genes: DemoGenes) -> None:
    """The demo genes as a GTEx collapsed gene model: a gene and a transcript line per gene."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(
            "##description: evidence-based annotation of the human genome (GRCh38), version 26 "
            "(Ensembl 88), collapsed gene model; rnaseq-saliency demo subset\n"
            "##provider: GENCODE\n##format: gtf\n"
        )
        for i, gene in enumerate(genes.gene_id):
            name = genes.gene_name[i]
            kind = "protein_coding" if genes.gene_type is None else genes.gene_type[i]
            source = "ENSEMBL" if genes.chrom[i] == "chrM" else "HAVANA"
            where = (
                f"{genes.chrom[i]}\t{source}\t{{}}\t{genes.start[i]}\t{genes.end[i]}\t.\t"
                f"{genes.strand[i]}\t.\t"
            )
            attributes = f'gene_id "{gene}"; gene_type "{kind}"; gene_name "{name}"; level 2;'
            handle.write(where.format("gene") + attributes + "\n")
            handle.write(
                where.format("transcript") + attributes + f' transcript_id "{gene}"; '
                f'transcript_type "{kind}"; transcript_name "{name}";\n'
            )


def _date(rng: np.random.Generator) -> str:
    day = int(rng.integers(0, 5 * 365))  # GTEx processed samples from 2011 to 2016
    ordinal = np.datetime64("2011-06-01") + np.timedelta64(day, "D")
    year, month, dom = str(ordinal).split("-")
    return f"{month}/{dom}/{year}"


def _attribute_row(
    rng: np.random.Generator, sample_id: str, tissue: Tissue | None, freeze: str, total_reads: int
) -> dict[str, str]:
    """One attributes row; RNA-seq fields stay empty for DNA (WGS/WES) rows, as in GTEx."""
    if tissue is None:  # whole-blood DNA sample
        return {"SAMPID": sample_id, "SMTS": "Blood", "SMTSD": "Whole Blood",
                "SMUBRID": "0013756", "SMCENTER": "B1", "SMAFRZE": freeze,
                "SMNABTCH": f"BP-{rng.integers(10000, 99999)}",
                "SMNABTCHT": "DNA isolation_Whole Blood_QIAGEN Puregene (Manual)",
                "SMNABTCHD": _date(rng)}  # fmt: skip
    blood = tissue.label == "whole_blood"
    return {
        "SAMPID": sample_id,
        "SMATSSCR": "" if blood else str(int(rng.choice(4, p=[0.3, 0.5, 0.17, 0.03]))),
        "SMCENTER": str(rng.choice(["B1", "C1", "D1"], p=[0.5, 0.3, 0.2])),
        "SMPTHNTS": "" if blood else str(rng.choice(_PATHOLOGY_NOTES)),
        "SMRIN": f"{min(10.0, max(3.0, rng.normal(7.0, 1.0))):.1f}",
        "SMTS": smts(tissue.label),
        "SMTSD": tissue.smtsd,
        "SMUBRID": tissue.uberon,
        "SMTSISCH": str(int(rng.integers(5, 60) if blood else rng.integers(60, 1400))),
        "SMTSPAX": "" if blood else str(int(rng.integers(240, 1440))),
        "SMNABTCH": f"BP-{rng.integers(10000, 99999)}",
        "SMNABTCHT": (
            "RNA isolation_PAXgene Blood RNA (Manual)"
            if blood
            else "RNA isolation_PAXgene Tissue miRNA"
        ),
        "SMNABTCHD": _date(rng),
        "SMGEBTCH": f"LCSET-{rng.integers(1000, 9999)}",
        "SMGEBTCHD": _date(rng),
        "SMGEBTCHT": "TruSeq.v1",
        "SMAFRZE": freeze,
        "SMMAPRT": f"{rng.uniform(0.93, 0.995):.5f}",
        "SMRDTTL": str(total_reads),
    }


class _Streams(NamedTuple):
    """One independent random stream per part of the simulation, so that a change in one part
    does not shift the draws of the others."""

    donor: np.random.Generator
    assign: np.random.Generator
    mean: np.random.Generator
    gene: np.random.Generator
    attr: np.random.Generator
    tissues: list[np.random.Generator]
    shortcut: np.random.Generator


def _streams(seed: int, n_tissues: int) -> _Streams:
    """The demo's random streams, all spawned from ``seed``. The shortcut's stream is spawned
    last: a child's draws depend only on its index, so the others are as they were before it."""
    streams = np.random.SeedSequence(seed).spawn(5 + n_tissues + 1)
    donor_rng, assign_rng, mean_rng, gene_rng, attr_rng = (
        np.random.default_rng(s) for s in streams[:5]
    )
    tissue_rngs = [np.random.default_rng(s) for s in streams[5:-1]]
    shortcut_rng = np.random.default_rng(streams[-1])
    return _Streams(donor_rng, assign_rng, mean_rng, gene_rng, attr_rng, tissue_rngs, shortcut_rng)


def shortcut_shift(
    rng: np.random.Generator, gene_names: Sequence[str], n_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """The planted shortcut for ``SHORTCUT_TISSUE``'s samples (module docstring).

    Returns each sample's ischemic time (SMTSISCH, whole minutes) and the genes x samples shift
    of log expression: ``SHORTCUT_SLOPE * minutes / 60`` on the ``SHORTCUT_GENES``, 0 elsewhere.
    """
    low, high = SHORTCUT_MINUTES
    minutes = rng.integers(low, high + 1, size=n_samples)
    planted = np.array([name in SHORTCUT_GENES for name in gene_names])
    shift = np.zeros((len(gene_names), n_samples))
    shift[planted] = SHORTCUT_SLOPE * minutes[None, :] / 60.0
    return minutes, shift


@dataclass(frozen=True)
class _GeneEffects:
    """What every tissue's simulation shares: tissue means (genes x tissues) and per-gene
    dispersion, donor effects, Y-chromosome silencing and effective lengths."""

    means: np.ndarray
    dispersion: np.ndarray
    donor_effect: np.ndarray
    female_silent: np.ndarray
    length: np.ndarray


def _gene_effects(streams: _Streams, genes: DemoGenes, n_genes: int, n_donors: int) -> _GeneEffects:
    """Draw the tissue means and the per-gene effects (model steps 1 and 2)."""
    means = tissue_means(streams.mean, genes.profiles)
    dispersion = np.clip(
        DISPERSION_MEDIAN * np.exp(streams.gene.normal(0.0, 0.4, n_genes)), 0.08, 1.5
    )
    donor_effect = streams.gene.standard_normal((n_genes, n_donors))
    female_silent = np.array([chrom == "chrY" for chrom in genes.chrom])
    length = effective_length(genes.start, genes.end)
    return _GeneEffects(means, dispersion, donor_effect, female_silent, length)


def _write_tissue_file(
    path: Path,
    measure: str,
    genes: DemoGenes,
    donors: Donors,
    effects: _GeneEffects,
    mean: np.ndarray,
    donor_rows: np.ndarray,
    rng: np.random.Generator,
    taken_sm: set[str],
    shortcut: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Simulate one tissue's samples and write its GCT file, samples sorted by id.

    ``shortcut``: ``shortcut_shift``'s ischemic times and log shift, for the confounded tissue.
    Returns the sample ids, their reads in genes (library sizes) and their planted ischemic
    times (None without a shortcut), in file order.
    """
    site = f"{rng.integers(1, 3000):04d}"  # one aliquot code per tissue, like GTEx's
    sm_codes = _random_codes(rng, donor_rows.size, 5, taken_sm)
    sample_ids = [
        f"{donors.ids[d]}-{site}-SM-{code}" for d, code in zip(donor_rows, sm_codes, strict=True)
    ]
    reads, tpm, library = simulate_tissue(
        rng, mean, effects.dispersion, effects.donor_effect, donor_rows,
        effects.female_silent, donors.male, effects.length,
        log_shift=None if shortcut is None else shortcut[1],
    )  # fmt: skip
    order = np.argsort(sample_ids)
    sample_ids = [sample_ids[i] for i in order]
    values = reads[:, order] if measure == "reads" else tpm[:, order]
    write_gct(path, genes.gene_id, genes.gene_name, sample_ids, values, integer=measure == "reads")
    return sample_ids, library[order], None if shortcut is None else shortcut[0][order]


def _write_annotations(
    out: Path, release: str, attributes: list[dict[str, str]], donors: Donors
) -> None:
    """The sample attributes file (sorted by sample id) and the subject phenotypes file."""
    attributes.sort(key=lambda row: row["SAMPID"])
    _write_table(
        out / gtex.attributes_file_name(release),
        ATTRIBUTE_COLUMNS,
        ([row.get(column, "") for column in ATTRIBUTE_COLUMNS] for row in attributes),
    )
    _write_table(
        out / SUBJECT_FILE,
        ("SUBJID", "SEX", "AGE", "DTHHRDY"),
        sorted(
            (donor, "1" if male else "2", age, hardy)
            for donor, male, age, hardy in zip(
                donors.ids, donors.male, donors.age, donors.hardy, strict=True
            )
        ),
    )


def _write_specific_genes(
    out: Path, means: np.ndarray, genes: DemoGenes, labels: list[str]
) -> list[tuple[str, int]]:
    """The tissue-specific genes table; returns its (tissue, gene row) entries."""
    markers = read_gmt(MARKERS_GMT)
    specific = tissue_specific_genes(means, genes.gene_id, labels, markers)
    _write_table(
        out / SPECIFIC_GENES_FILE,
        ("tissue", "gene_id", "gene_name"),
        ((label, genes.gene_id[row], genes.gene_name[row]) for label, row in specific),
    )
    return specific


def write_demo_dataset(
    out_dir: str | Path,
    *,
    seed: int,
    n_genes: int,
    sample_scale: float,
    min_samples_per_tissue: int,
    release: str = "v8",
    measure: str = "tpm",
) -> None:
    """Write the demo dataset's GTEx-named files into ``out_dir`` (see the module docstring)."""
    if release != "v8":
        raise ValueError(
            f"config key data.release: the demo dataset mimics GTEx v8 (GENCODE v26 ids); "
            f"got {release!r}. Use data.release: v8 with data.source: demo."
        )
    gtex.tissue_file_name(release, measure, "liver")  # validates measure
    out = Path(out_dir)
    tissues = tissue_table()
    labels = [t.label for t in tissues]
    counts = samples_per_tissue(sample_scale, min_samples_per_tissue)
    genes = load_demo_genes(n_genes)
    streams = _streams(seed, len(tissues))
    donors = make_donors(streams.donor, counts, sample_scale)
    chosen = assign_donors(streams.assign, donors, counts)
    effects = _gene_effects(streams, genes, n_genes, len(donors.ids))

    taken_sm: set[str] = set()
    attributes: list[dict[str, str]] = []
    for tissue, rng, label in zip(tissues, streams.tissues, labels, strict=True):
        shortcut = None
        if label == SHORTCUT_TISSUE:
            shortcut = shortcut_shift(streams.shortcut, genes.gene_name, chosen[label].size)
        sample_ids, library, ischemia = _write_tissue_file(
            out / gtex.tissue_file_name(release, measure, label), measure, genes, donors,
            effects, effects.means[:, labels.index(label)], chosen[label], rng, taken_sm,
            shortcut,
        )  # fmt: skip
        for j, (sample_id, reads_in_genes) in enumerate(zip(sample_ids, library, strict=True)):
            total = int(reads_in_genes / 0.6)  # about 60% of GTEx reads are counted in genes
            row = _attribute_row(streams.attr, sample_id, tissue, "RNASEQ", total)
            if ischemia is not None:  # drawn above all the same, so later rows keep their draws
                row["SMTSISCH"] = str(int(ischemia[j]))
            attributes.append(row)

    attributes.extend(_extra_attribute_rows(streams.attr, donors, tissues, taken_sm))
    _write_annotations(out, release, attributes, donors)
    write_gtf(out / gtex.gtf_file_name(release), genes)
    specific = _write_specific_genes(out, effects.means, genes, labels)
    n_rnaseq = sum(counts.values())
    log.info(
        "demo dataset in %s: %d genes, %d tissues, %d RNA-seq samples, %d donors "
        "(%d male), %d tissue-specific gene entries, seed %d",
        out, n_genes, len(labels), n_rnaseq, len(donors.ids), int(donors.male.sum()),
        len(specific), seed,
    )  # fmt: skip


def _extra_attribute_rows(
    rng: np.random.Generator, donors: Donors, tissues: Sequence[Tissue], taken_sm: set[str]
) -> list[dict[str, str]]:
    """Rows the real file has but the per-tissue files do not: DNA samples, QC-excluded RNA
    samples and the leukemia cell line (CML, no per-tissue file)."""
    rows = []
    n = len(donors.ids)
    dna = rng.choice(n, size=max(1, n // 4), replace=False)
    for d in np.sort(dna):
        for freeze in ("WGS", "WES") if rng.random() < 0.5 else ("WGS",):
            code = _random_codes(rng, 1, 5, taken_sm)[0]
            rows.append(_attribute_row(rng, f"{donors.ids[d]}-0004-SM-{code}", None, freeze, 0))
    for d in np.sort(rng.choice(n, size=max(1, n // 20), replace=False)):
        tissue = tissues[int(rng.integers(len(tissues)))]
        if (tissue.label in MALE_ONLY and not donors.male[d]) or (
            tissue.label in FEMALE_ONLY and donors.male[d]
        ):
            continue
        code = _random_codes(rng, 1, 5, taken_sm)[0]
        row = _attribute_row(rng, f"{donors.ids[d]}-3001-SM-{code}", tissue, "EXCLUDE", 0)
        row["SMRIN"], row["SMRDTTL"] = "3.1", str(int(rng.integers(2_000_000, 8_000_000)))
        rows.append(row)
    for _ in range(2):
        code = _random_codes(rng, 1, 5, taken_sm)[0]
        cml = Tissue(label="cells_leukemia_cell_line_cml", smtsd=CML_SMTSD, n_samples_v8=0,
                     uberon="EFO_0002067")  # fmt: skip
        row = _attribute_row(rng, f"K-562-SM-{code}", cml, "RNASEQ", 60_000_000)
        # A cell line: no autolysis, pathology notes or ischemic time.
        row.update(SMTS="Bone Marrow", SMATSSCR="", SMPTHNTS="", SMTSISCH="", SMTSPAX="")
        rows.append(row)
    return rows


def merge_gct_files(
    paths: Sequence[str | Path], out_path: str | Path, *, compresslevel: int = 1
) -> None:
    """Join per-tissue GCT files into one whole-matrix GCT 1.2 file, as GTEx publishes it.

    ``#1.2``, ``<genes> <samples>``, ``Name Description samples...`` with no ``id`` column;
    the samples of each file in turn, in the files' order; each value's text is copied as it
    is, so the matrix holds exactly the per-tissue values. Streams line by line: a GTEx-sized
    matrix never sits in memory. Every file must list the same genes in the same order.

    Raises:
        ValueError: naming the file and line, when a file's genes differ from the first's.
    """
    handles = [gzip.open(path, "rt", encoding="utf-8", newline="\n") for path in paths]
    try:
        headers = [_gct_preamble(handle, path) for handle, path in zip(handles, paths, strict=True)]
        n_genes = headers[0][0]
        samples = [sample for _, file_samples in headers for sample in file_samples]
        with (
            atomic_path(out_path) as tmp,
            open(tmp, "wb") as raw,
            gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel
            ) as gz,
            io.TextIOWrapper(gz, encoding="utf-8", newline="\n") as text,
        ):
            text.write(f"#1.2\n{n_genes}\t{len(samples)}\nName\tDescription\t")
            text.write("\t".join(samples) + "\n")
            for row in range(n_genes):
                lines = [handle.readline().rstrip("\n") for handle in handles]
                if not all(lines):
                    path = paths[[bool(line) for line in lines].index(False)]
                    raise ValueError(f"{path}: ends before gene row {row + 1} of {n_genes}")
                # Per-tissue lines: id, Name, Description, values.
                first = lines[0].split("\t", 3)
                parts = ["\t".join(first[1:])]
                for line, path in zip(lines[1:], paths[1:], strict=True):
                    fields = line.split("\t", 3)
                    if fields[1:3] != first[1:3]:
                        raise ValueError(
                            f"{path}:{row + 4}: gene {fields[1:3]}, but {paths[0]} has "
                            f"{first[1:3]} on that line; the files must list the same genes"
                        )
                    parts.append(fields[3])
                text.write("\t".join(parts) + "\n")
    finally:
        for handle in handles:
            handle.close()
    log.info("%d per-tissue files -> %s (%d samples)", len(paths), out_path, len(samples))


def _gct_preamble(handle: io.TextIOBase, path: str | Path) -> tuple[int, list[str]]:
    """The gene count and sample ids of a per-tissue GCT 1.3 file (``write_gct``'s layout)."""
    version = handle.readline().rstrip("\n")
    dims = handle.readline().rstrip("\n").split("\t")
    header = handle.readline().rstrip("\n").split("\t")
    if version != "#1.3" or len(dims) != 4 or header[:3] != ["id", "Name", "Description"]:
        raise ValueError(f"{path}: not a GTEx per-tissue GCT 1.3 file (lines 1-3)")
    return int(dims[0]), header[3:]


def write_demo_outputs(outputs: Sequence[str | Path], **settings: Any) -> None:
    """Rule ``demo``: ``write_demo_dataset`` into the one directory of the rule's ``outputs``.

    The writer names its files as GTEx does, so every output must sit in that directory and
    be written by it; ``settings`` are ``write_demo_dataset``'s keyword arguments.

    Raises:
        ValueError: when the outputs are not all in one directory.
        FileNotFoundError: naming any output the writer did not produce.
    """
    paths = [Path(path) for path in outputs]
    out_dir = paths[0].parent
    elsewhere = [str(path) for path in paths if path.parent != out_dir]
    if elsewhere:
        raise ValueError(f"rule demo: outputs {elsewhere} are not in {out_dir} with the others")
    write_demo_dataset(out_dir, **settings)
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"rule demo: the demo writer did not produce {missing}")
