"""Issue 18's checks of a finished demo run, per saliency method: recovery and faithfulness.

Usage: .venv/bin/python bench/saliency_checks.py [WORKDIR]  (default: the repository, after
``bash quickstart.sh demo``)

Reads ``results/saliency/top_genes_by_method.tsv`` (each method's top ``saliency.top_n`` genes per
tissue, by mean attribution over the correctly classified test samples),
``results/saliency/faithfulness.tsv``, ``results/saliency/chosen_method.json`` and the demo's
designed genes (``resources/demo/demo_tissue_specific_genes.tsv``), and prints per method:

- **recovery**: |top-20 and designed| / min(20, designed genes) for pancreas, liver, testis and
  muscle_skeletal, and its median over the 17 tissues that have five or more designed genes and
  an HPA main tissue of their own (issue 18 lists them);
- **beats random**: the share of tissues whose top-20 deletion lowers the test-split logit margin
  more than deleting 20 random genes (mean of 10 draws);
- **top-20 margin drop**: its median over tissues, and its ratio to gradient's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
NAMED = ("pancreas", "liver", "testis", "muscle_skeletal")
SEVENTEEN = (
    "adrenal_gland",
    "brain_hypothalamus",
    "breast_mammary_tissue",
    "esophagus_mucosa",
    "fallopian_tube",
    "liver",
    "lung",
    "minor_salivary_gland",
    "muscle_skeletal",
    "pancreas",
    "pituitary",
    "prostate",
    "small_intestine_terminal_ileum",
    "spleen",
    "stomach",
    "testis",
    "thyroid",
)
K = 20


def recovery(top: pd.DataFrame, designed: pd.DataFrame, method: str, tissue: str) -> float:
    genes = set(designed.loc[designed["tissue"] == tissue, "gene_id"])
    rows = top.loc[(top["method"] == method) & (top["tissue"] == tissue) & (top["rank"] <= K)]
    if not genes or rows.empty:
        return float("nan")
    return len(set(rows["gene_id"]) & genes) / min(K, len(genes))


def checks(workdir: Path) -> pd.DataFrame:
    results = workdir / "results/saliency"
    top = pd.read_csv(results / "top_genes_by_method.tsv", sep="\t")
    designed = pd.read_csv(workdir / "resources/demo/demo_tissue_specific_genes.tsv", sep="\t")
    curves = pd.read_csv(results / "faithfulness.tsv", sep="\t")
    at_k = curves.loc[(curves["split"] == "test") & (curves["k"] == K)].dropna(
        subset=["margin_drop"]
    )
    chosen = json.loads((results / "chosen_method.json").read_text())["method"]
    gradient_drop = at_k.loc[at_k["method"] == "gradient", "margin_drop"].median()
    rows = []
    for method in dict.fromkeys(top["method"]):
        drops = at_k.loc[at_k["method"] == method]
        row = {"method": method + (" (chosen)" if method == chosen else "")}
        row.update({t: recovery(top, designed, method, t) for t in NAMED})
        row["median of 17"] = pd.Series(
            [recovery(top, designed, method, t) for t in SEVENTEEN]
        ).median()
        row["beats random"] = (drops["margin_drop"] > drops["random_margin_drop"]).mean()
        row["top-20 margin drop"] = drops["margin_drop"].median()
        row["x gradient"] = row["top-20 margin drop"] / gradient_drop
        rows.append(row)
    rows.extend(consensus_row(results, designed))
    return pd.DataFrame(rows)


def consensus_row(results: Path, designed: pd.DataFrame) -> list[dict[str, object]]:
    """With train.replicates > 1, the recovery of the lists the report shows: the consensus
    of the replicates' maps of the chosen method (no deletion curves are drawn for it)."""
    top = pd.read_csv(results / "top_genes_per_tissue.tsv", sep="\t")
    n_replicates = sum(column.startswith("rank_replicate_") for column in top.columns)
    if n_replicates < 2:
        return []
    top = top.assign(method="consensus")
    row: dict[str, object] = {"method": f"consensus of {n_replicates} (the report's lists)"}
    row.update({t: recovery(top, designed, "consensus", t) for t in NAMED})
    row["median of 17"] = pd.Series(
        [recovery(top, designed, "consensus", t) for t in SEVENTEEN]
    ).median()
    return [row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", nargs="?", default=str(ROOT), type=Path)
    table = checks(parser.parse_args().workdir)
    print(table.to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
