"""Build the demo dataset's committed inputs from the Human Protein Atlas reference data.

Run once by a developer (the outputs are committed); the workflow never runs it::

    python -m rnaseq_saliency.demo_build --shared ../shared/data

Inputs (``--shared``; see ``../shared/data/README.md``):

- ``hpa_tissue_consensus_ntpm.tsv.gz``: HPA consensus RNA expression, nTPM, genes x tissues.
  Empty cells are missing values, not zero expression.
- ``gtex_to_hpa_tissue_map.tsv``: for each GTEx v8 tissue label, a ``name:weight;...`` mix of HPA
  tissues that stands in for it.
- ``hpa_tissue_enriched_4x.tsv``: genes whose top HPA tissue is >= 4x the next one.
- ``gencode_v26_protein_coding.tsv.gz`` (the copy in ``rnaseq_saliency/data``): the 19,291
  protein-coding genes of GENCODE v26, the ids GTEx v8 uses.

Outputs (in ``rnaseq_saliency/data``):

- ``demo_profiles.tsv.gz``: one row per protein-coding gene with an HPA value in every HPA tissue
  that the map uses (genes with any empty cell there are dropped; ``_PAR_Y`` copies are left out),
  columns ``gene_id`` (versioned, GENCODE v26), ``gene_name``, ``tier`` and the 54 GTEx labels in
  GTEx table order, each the weighted HPA mix in nTPM (3 significant digits). Rows are in *demo
  priority order*; the demo takes the first ``n_genes`` rows. Tier ``enriched``: the HPA
  tissue-enriched genes of every HPA tissue that dominates (weight >= 0.5) some GTEx tissue, at most
  ``--per-tissue-cap`` per HPA tissue (strongest fold first), interleaved rank by rank across
  tissues, so a small demo still carries a few markers of every tissue. Tier ``variance``: every
  other gene, by decreasing variance of log2(1 + nTPM) across the 54 labels. The table stops at
  ``--pool`` genes to stay small (the committed file must stay well under 1.5 MB).
- ``hpa_tissue_enriched.gmt``: per GTEx label, the protein-coding genes (versioned GENCODE v26 ids)
  that HPA calls enriched (>= 4x) in an HPA tissue with weight >= 0.5 in that label's mix, strongest
  fold first. Labels whose mix has no such tissue with enriched genes (whole blood, arteries, nerve,
  fibroblasts, EBV lymphocytes: blood-cell columns are excluded from the 4x list, and HPA's smooth
  muscle has no 4x genes) have no set. Not HPA's official classification.

The HPA data are CC BY-SA 4.0 ("Human Protein Atlas, proteinatlas.org"); both outputs are derived
from them and keep that licence (``rnaseq_saliency/data/NOTICE.md``).
"""

from __future__ import annotations

import argparse
import gzip
import io
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.tissues import all_labels

#: A GTEx label's markers come from the HPA tissues that make up at least this share of its mix.
DOMINANT_WEIGHT = 0.5
#: Default number of genes kept in the committed table (about 1 MB gzipped).
DEFAULT_POOL = 12_000
#: Default cap on HPA-enriched genes per HPA tissue in the enriched tier (testis alone has ~1,000).
DEFAULT_PER_TISSUE_CAP = 100
#: Significant digits kept in the committed profiles: far below biological noise, and compact.
SIGNIFICANT_DIGITS = 3

PROFILES_NAME = "demo_profiles.tsv.gz"
GMT_NAME = "hpa_tissue_enriched.gmt"


def parse_tissue_map(path: str | Path) -> dict[str, dict[str, float]]:
    """Read ``gtex_to_hpa_tissue_map.tsv`` into ``{label: {hpa_tissue: weight}}``.

    Every one of the 54 GTEx labels must be there once, each mix's weights must be positive and sum
    to 1; errors name the file and line.
    """
    mixes: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if header[:2] != ["label", "hpa_mix"]:
            raise ValueError(f"{path}:1: expected columns 'label', 'hpa_mix'; got {header}")
        for line_no, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            label, mix_text = fields[0], fields[1] if len(fields) > 1 else ""
            if label in mixes:
                raise ValueError(f"{path}:{line_no}: label {label!r} appears twice")
            mix: dict[str, float] = {}
            for part in mix_text.split(";"):
                name, sep, weight_text = part.partition(":")
                try:
                    weight = float(weight_text)
                except ValueError:
                    weight = float("nan")
                if not sep or not name or not weight > 0:
                    raise ValueError(
                        f"{path}:{line_no}: bad mix entry {part!r}; expected hpa_tissue:weight"
                    )
                mix[name] = weight
            if abs(sum(mix.values()) - 1.0) > 1e-6:
                raise ValueError(
                    f"{path}:{line_no}: weights of {label!r} sum to {sum(mix.values())}"
                )
            mixes[label] = mix
    expected = all_labels()
    missing = [label for label in expected if label not in mixes]
    extra = [label for label in mixes if label not in expected]
    if missing or extra:
        raise ValueError(
            f"{path}: labels differ from the 54 GTEx v8 tissues: missing {missing}, unknown {extra}"
        )
    return {label: mixes[label] for label in expected}


def read_gencode() -> pd.DataFrame:
    """The packaged GENCODE v26 protein-coding table, with an unversioned ``base_id`` column."""
    path = resources.files("rnaseq_saliency").joinpath("data/gencode_v26_protein_coding.tsv.gz")
    with path.open("rb") as handle:
        genes = pd.read_csv(handle, sep="\t", compression="gzip", dtype={"chrom": str})
    genes["base_id"] = genes["gene_id"].str.split(".").str[0]
    return genes


def gtex_profiles(hpa: pd.DataFrame, mixes: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Weighted HPA mixes per GTEx label, for the genes with a value in every HPA tissue used.

    ``hpa``: genes x HPA tissues, NaN where HPA has no value. A gene with NaN in any needed tissue
    is dropped: an empty cell is missing data, and reading it as zero would invent a silent gene.
    """
    needed = sorted({name for mix in mixes.values() for name in mix})
    absent = [name for name in needed if name not in hpa.columns]
    if absent:
        raise ValueError(f"HPA table lacks tissue column(s) used by the tissue map: {absent}")
    complete = hpa[needed].dropna()
    columns = {
        label: sum((complete[name] * weight for name, weight in mix.items()), start=0.0)
        for label, mix in mixes.items()
    }
    return pd.DataFrame(columns, index=complete.index)


def marker_sets(
    enriched: pd.DataFrame,
    mixes: dict[str, dict[str, float]],
    gencode: pd.DataFrame,
    min_weight: float = DOMINANT_WEIGHT,
) -> dict[str, tuple[str, list[str]]]:
    """Per GTEx label: (description, versioned protein-coding gene ids), strongest fold first.

    ``enriched`` has columns ``gene_id`` (unversioned), ``hpa_tissue``, ``nTPM_top``,
    ``nTPM_second``. A gene joins the set of every label whose mix gives its HPA tissue at least
    ``min_weight``; labels left with no genes are omitted.
    """
    coding = gencode[~gencode["gene_id"].str.endswith("_PAR_Y")].set_index("base_id")["gene_id"]
    table = enriched[enriched["gene_id"].isin(coding.index)].copy()
    table["fold"] = table["nTPM_top"] / table["nTPM_second"].clip(lower=0.1)
    table = table.sort_values(["fold", "gene_id"], ascending=[False, True], kind="mergesort")
    sets: dict[str, tuple[str, list[str]]] = {}
    for label, mix in mixes.items():
        sources = sorted(name for name, weight in mix.items() if weight >= min_weight)
        genes = table.loc[table["hpa_tissue"].isin(sources), "gene_id"]
        if genes.empty:
            continue
        description = (
            f"HPA tissue-enriched (>=4x next tissue) in {'+'.join(sources)}; "
            "Human Protein Atlas, proteinatlas.org, CC BY-SA 4.0"
        )
        sets[label] = (description, [coding[gene] for gene in genes])
    return sets


def priority_order(
    profiles: pd.DataFrame,
    enriched: pd.DataFrame,
    sources: Sequence[str],
    per_tissue_cap: int = DEFAULT_PER_TISSUE_CAP,
) -> tuple[list[str], list[str]]:
    """Order the genes of ``profiles`` (unversioned ids) for demo selection; returns (ids, tiers).

    First the enriched tier: for each HPA tissue in ``sources``, its enriched genes present in
    ``profiles``, strongest fold first, at most ``per_tissue_cap``; taken rank by rank across
    tissues (all first markers, then all second markers, ...). Then every other gene by decreasing
    variance of log2(1 + nTPM) across labels. Ties break on the gene id, so the order is stable.
    """
    table = enriched[enriched["gene_id"].isin(profiles.index)]
    table = table[table["hpa_tissue"].isin(sources)].copy()
    table["fold"] = table["nTPM_top"] / table["nTPM_second"].clip(lower=0.1)
    table = table.sort_values(["fold", "gene_id"], ascending=[False, True], kind="mergesort")
    table["rank"] = table.groupby("hpa_tissue").cumcount()
    table = table[table["rank"] < per_tissue_cap]
    table = table.sort_values(["rank", "hpa_tissue"], kind="mergesort")
    first = list(table["gene_id"])
    taken = set(first)
    variance = np.log2(1.0 + profiles).var(axis=1)
    rest = pd.DataFrame({"gene_id": profiles.index, "variance": variance.to_numpy()})
    rest = rest[~rest["gene_id"].isin(taken)]
    rest = rest.sort_values(["variance", "gene_id"], ascending=[False, True], kind="mergesort")
    order = first + list(rest["gene_id"])
    return order, ["enriched"] * len(first) + ["variance"] * len(rest)


def _significant(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> list[str]:
    """Round to ``digits`` significant digits, printed positionally (``1230``, not ``1.23e+03``)."""
    return [
        np.format_float_positional(value, precision=digits, unique=True, fractional=False, trim="-")
        for value in values
    ]


def format_profiles(
    profiles: pd.DataFrame, gencode: pd.DataFrame, order: list[str], tiers: list[str]
) -> str:
    """The committed table's text: gene_id, gene_name, tier, then the labels, rows in ``order``."""
    coding = gencode[~gencode["gene_id"].str.endswith("_PAR_Y")].set_index("base_id")
    labels = list(profiles.columns)
    out = io.StringIO()
    out.write("\t".join(["gene_id", "gene_name", "tier", *labels]) + "\n")
    values = profiles.loc[order].to_numpy(dtype=np.float64)
    for base, tier, row in zip(order, tiers, values, strict=True):
        gene = coding.loc[base]
        out.write("\t".join([gene["gene_id"], gene["gene_name"], tier, *_significant(row)]) + "\n")
    return out.getvalue()


def format_gmt(sets: dict[str, tuple[str, list[str]]]) -> str:
    return "".join(
        "\t".join([label, description, *genes]) + "\n"
        for label, (description, genes) in sets.items()
    )


def write_gzip_text(path: str | Path, text: str) -> None:
    """gzip without a file name or time stamp in the header, so equal text gives equal bytes."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(text.encode("utf-8"))


def build(
    shared: str | Path,
    out_dir: str | Path,
    *,
    pool: int = DEFAULT_POOL,
    per_tissue_cap: int = DEFAULT_PER_TISSUE_CAP,
) -> dict[str, int]:
    """Write ``demo_profiles.tsv.gz`` and ``hpa_tissue_enriched.gmt`` into ``out_dir``.

    Returns counts for the log: genes in the table, enriched-tier genes, labels with markers.
    """
    shared = Path(shared)
    mixes = parse_tissue_map(shared / "gtex_to_hpa_tissue_map.tsv")
    hpa = pd.read_csv(shared / "hpa_tissue_consensus_ntpm.tsv.gz", sep="\t", index_col=0)
    enriched = pd.read_csv(shared / "hpa_tissue_enriched_4x.tsv", sep="\t")
    gencode = read_gencode()

    profiles = gtex_profiles(hpa, mixes)
    coding = gencode.loc[~gencode["gene_id"].str.endswith("_PAR_Y"), "base_id"]
    profiles = profiles[profiles.index.isin(coding)]
    sources = sorted(
        {
            name
            for mix in mixes.values()
            for name, weight in mix.items()
            if weight >= DOMINANT_WEIGHT
        }
    )
    order, tiers = priority_order(profiles, enriched, sources, per_tissue_cap)
    order, tiers = order[:pool], tiers[:pool]
    sets = marker_sets(enriched, mixes, gencode)

    out_dir = Path(out_dir)
    write_gzip_text(out_dir / PROFILES_NAME, format_profiles(profiles, gencode, order, tiers))
    with atomic_path(out_dir / GMT_NAME) as tmp:
        tmp.write_text(format_gmt(sets), encoding="utf-8")
    return {
        "genes": len(order),
        "enriched_tier": tiers.count("enriched"),
        "complete_genes": len(profiles),
        "labels_with_markers": len(sets),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared",
        default="../shared/data",
        help="directory with the HPA and tissue-map files (default ../shared/data)",
    )
    parser.add_argument(
        "--out-dir",
        default=str(Path(__file__).parent / "data"),
        help="where to write (default: the package's data directory)",
    )
    parser.add_argument("--pool", type=int, default=DEFAULT_POOL)
    parser.add_argument("--per-tissue-cap", type=int, default=DEFAULT_PER_TISSUE_CAP)
    args = parser.parse_args(argv)
    counts = build(args.shared, args.out_dir, pool=args.pool, per_tissue_cap=args.per_tissue_cap)
    print(", ".join(f"{key}={value}" for key, value in counts.items()))


if __name__ == "__main__":
    main()
