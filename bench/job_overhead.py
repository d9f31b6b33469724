"""Measure the fixed cost of one per-tissue job on the demo: what 54 jobs of a rule pay 54 times.

Usage::

    python bench/job_overhead.py                  # prints Markdown tables
    python bench/job_overhead.py --repeats 5 --json overhead.json

The per-tissue rules are found in ``workflow/rules/*.smk`` (those with ``{tissue}`` in their
output and a ``script:``). Snakemake runs such a job as ``python <script>``: its own preamble
(which unpickles the job's ``snakemake`` object, importing part of Snakemake), then the adapter.
This bench writes each adapter behind a real preamble (``snakemake.script.PythonScript``) for one
demo tissue and times four layers, each a fresh process, interleaved over ``--repeats`` rounds:

1. ``interpreter``: an empty script (Python start-up and ``site``);
2. ``+ preamble``: the Snakemake preamble alone;
3. ``+ adapter imports``: the preamble and the adapter's top-level ``import`` lines;
4. ``job``: the whole adapter on demo inputs (its work and the imports it does at run time).

It also runs layers 3 and 4 once under ``python -X importtime`` to list the imports each job
does at run time (torch, matplotlib, ...) and any heavy library (``HEAVY``) loaded at import
time, and times ``import rnaseq_saliency.<module>`` alone for the modules the adapters import.

Inputs come from the demo as ``config/config.yaml`` configures it (``write_demo_dataset``): the
selected genes, two tissues ingested, a donor-free split of their samples, a model with the
configured architecture and random weights (saliency's cost does not depend on the values),
predictions that call every test sample correct, their saliency maps and top-genes table. They
are prepared in a child process, so the measuring process stays small: Linux hands a parent's
peak RSS to a child's ``ru_maxrss``, and this one's stays near 20 MiB, under any job's.

Timings are wall seconds (median over the repeats, min in brackets) and CPU seconds (user +
system) of the process; on a shared machine, CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "workflow" / "rules"
TISSUE = "liver"  # the measured tissue (a mid-sized demo tissue: 23 samples)
OTHER_TISSUE = "whole_blood"  # a second tissue, so top genes and heatmaps have two columns
# Libraries that a per-tissue job should load only when its work needs them.
HEAVY = (
    "torch", "matplotlib", "seaborn", "sklearn", "scipy", "captum", "tensorboard",
    "safetensors", "imblearn", "PIL", "tqdm", "IPython",
)  # fmt: skip
LAYERS = ("interpreter", "preamble", "imports", "job")
LAYER_TITLES = {
    "interpreter": "interpreter (empty script)",
    "preamble": "+ Snakemake preamble",
    "imports": "+ adapter imports",
    "job": "whole job on the demo",
}
# Context for the module table: what the package's modules build on.
REFERENCE_IMPORTS = {
    "numpy": "import numpy",
    "pandas": "import pandas",
    "pyarrow.parquet": "import pyarrow.parquet",
    "torch": "import torch",
    "matplotlib.pyplot (Agg)": "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot",
    "sklearn.neighbors": "import sklearn.neighbors",
}


# ------------------------------------------------------------------ finding the rules


def per_tissue_rules(rules_dir: Path = RULES_DIR) -> dict[str, str]:
    """``{rule: script path relative to the repository}`` for rules with ``{tissue}`` outputs.

    A small reader of the .smk layout (``rule name:``, then directives one indent deeper), not a
    Snakemake parser; rules built in loops (``rule:`` with ``name=``) are named by that value.
    A script used by several rules is listed once, under its first rule.
    """
    found: dict[str, str] = {}
    header = re.compile(r"^(\s*)rule(?:\s+(\w+))?\s*:")
    directive = re.compile(r"^(\s*)(\w+):")
    for path in sorted(rules_dir.glob("*.smk")):
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            match = header.match(lines[i])
            if not match:
                i += 1
                continue
            indent, name = len(match.group(1)), match.group(2)
            body: list[str] = []
            i += 1
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                body.append(lines[i])
                i += 1
            sections: dict[str, list[str]] = {}
            current = None
            depth = None
            for line in body:
                d = directive.match(line)
                if d and (depth is None or len(d.group(1)) == depth):
                    depth = len(d.group(1))
                    current = d.group(2)
                    sections[current] = [line[d.end() :]]
                elif current:
                    sections[current].append(line)
            text = {key: "\n".join(value) for key, value in sections.items()}
            if name is None:
                named = re.search(r"""name\s*[=:]\s*f?["']([^"']+)["']""", "\n".join(body))
                name = named.group(1) if named else f"{path.stem}:anonymous"
            script = re.search(r"""["']([^"']+\.py)["']""", text.get("script", ""))
            if "{tissue}" in text.get("output", "") and script:
                relative = os.path.relpath((path.parent / script.group(1)).resolve(), ROOT)
                if relative not in found.values():
                    found[name] = relative
    return found


def adapter_imports(script: Path) -> str:
    """The adapter's top-level import statements, as source."""
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    return "\n".join(
        ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    )


# ------------------------------------------------- demo inputs (run in a child process)


@dataclass(frozen=True)
class _Inputs:
    """The data files the per-tissue rules' adapters read, written under the work directory."""

    gct: dict[str, Path]  # per tissue
    attributes: Path
    genes_tsv: Path
    expression: dict[str, Path]  # per tissue
    samples_tsv: Path
    predictions_tsv: Path


def _write_demo_inputs(
    work: Path, config: dict[str, Any], tissues: list[str]
) -> tuple[_Inputs, list[Any]]:
    """The demo dataset, the gene selection, the tissues' expression files and a split in which
    every fifth sample is a (correctly predicted) test sample. Returns the inputs and the
    non-test rows, for the model's scaler."""
    from rnaseq_saliency import demo, gtex
    from rnaseq_saliency.expression import read_expression
    from rnaseq_saliency.genes import select_genes, write_selected_genes
    from rnaseq_saliency.ingest import ingest_tissue

    release, measure = config["data"]["release"], config["data"]["measure"]
    raw = work / "raw"
    d = config["demo"]
    demo.write_demo_dataset(
        raw,
        seed=d["seed"],
        n_genes=d["n_genes"],
        sample_scale=d["sample_scale"],
        min_samples_per_tissue=d["min_samples_per_tissue"],
        release=release,
        measure=measure,
    )
    gtf = raw / gtex.gtf_file_name(release)
    attributes = raw / gtex.attributes_file_name(release)
    genes_tsv = work / "selected_genes.tsv"
    selected, _ = select_genes(gtf, config["data"]["input_filter"])
    write_selected_genes(selected, genes_tsv)

    gct = {t: raw / gtex.tissue_file_name(release, measure, t) for t in tissues}
    expression = {t: work / "expression" / f"{t}.parquet" for t in tissues}
    samples_rows, prediction_rows, train_blocks = [], [], []
    for t in tissues:
        ingest_tissue(gct[t], attributes, genes_tsv, t, expression[t])
        table = read_expression(expression[t])
        for k, (sample, donor) in enumerate(zip(table.sample_ids, table.donor_ids, strict=True)):
            split = "test" if k % 5 == 0 else "val" if k % 5 == 1 else "train"
            samples_rows.append((sample, donor, t, split))
            if split == "test":
                prediction_rows.append((sample, t, "test", t, "0.9", "true"))
            else:
                train_blocks.append(table.matrix[k])
    samples_tsv = work / "samples.tsv"
    predictions_tsv = work / "predictions.tsv"
    write_tsv(samples_tsv, ("sample_id", "donor_id", "tissue", "split"), samples_rows)
    write_tsv(
        predictions_tsv,
        ("sample_id", "tissue", "split", "predicted", "probability", "correct"),
        prediction_rows,
    )
    inputs = _Inputs(gct, attributes, genes_tsv, expression, samples_tsv, predictions_tsv)
    return inputs, train_blocks


def _write_model(
    work: Path, config: dict[str, Any], inputs: _Inputs, train_blocks: list[Any]
) -> Path:
    """An untrained model of the configured architecture, scaled on the non-test rows."""
    import numpy as np

    from rnaseq_saliency import model
    from rnaseq_saliency.genes import read_selected_genes
    from rnaseq_saliency.tissues import tissue_table

    genes = read_selected_genes(inputs.genes_tsv)
    labels = [t.label for t in tissue_table()]
    architecture = model.architecture_from_config(len(genes), len(labels), config["model"])
    network = model.network_from_architecture(architecture)
    model_dir = work / "model"
    model.save_model(
        model_dir,
        network,
        architecture,
        model.Scaler.fit(np.stack(train_blocks)),
        genes["gene_id"].tolist(),
        genes["gene_name"].tolist(),
        labels,
    )
    return model_dir


def _saliency_options(config: dict[str, Any]) -> dict[str, Any]:
    """The saliency rule's settings from the config, as run_tissue_saliency takes them."""
    from rnaseq_saliency.settings import SaliencySettings

    return {"settings": SaliencySettings.from_config(config)}


def _write_saliency(
    work: Path,
    inputs: _Inputs,
    model_dir: Path,
    tissues: list[str],
    saliency_options: dict[str, Any],
) -> tuple[Path, Path, Path]:
    """The DE statistic, the tissues' maps and curves, the chosen method, then the top-genes
    table and mean matrix made from them."""
    from rnaseq_saliency.differential import run_de_statistic
    from rnaseq_saliency.faithfulness import run_choose_method
    from rnaseq_saliency.saliency import maps_path, run_tissue_saliency, run_top_genes

    de = work / "de_statistic.parquet"
    expression = [inputs.expression[t] for t in tissues]
    run_de_statistic(expression, inputs.samples_tsv, inputs.genes_tsv, tissues, de)
    methods = saliency_options["settings"].methods
    root = str(work / "saliency")
    curves = [work / "faithfulness" / f"{t}.tsv" for t in tissues]
    for t, curve in zip(tissues, curves, strict=True):
        paths = {m: Path(maps_path(m, t, root)) for m in methods}
        for path in [*paths.values(), curve]:
            path.parent.mkdir(parents=True, exist_ok=True)
        run_tissue_saliency(
            model_dir,
            inputs.predictions_tsv,
            inputs.expression[t],
            de,
            paths,
            curve,
            t,
            threads=1,
            **saliency_options,
        )
    # The bench's split has no validation samples, so the choice is forced.
    chosen = work / "chosen_method.json"
    run_choose_method(curves, methods, methods[0], work / "faithfulness.tsv", chosen)
    top_genes, mean_matrix = work / "top_genes.tsv", work / "mean_saliency.parquet"
    maps = [maps_path(m, t, root) for m in methods for t in tissues]
    run_top_genes(maps, tissues, chosen, inputs.genes_tsv, top_genes, mean_matrix)
    return top_genes, mean_matrix, de


def _rule_specs(
    work: Path,
    config: dict[str, Any],
    inputs: _Inputs,
    model_dir: Path,
    saliency_tables: tuple[Path, Path, Path],
    saliency_options: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """What each known per-tissue rule's adapter reads (the rule's input, output and params
    names): a rule this table lacks is timed up to its imports only."""
    from rnaseq_saliency import model
    from rnaseq_saliency.settings import AugmentSettings, TopGenesSettings

    out = work / "jobs-out"
    top_genes, mean_matrix, de = saliency_tables
    methods = saliency_options["settings"].methods
    return {
        "ingest": {
            "input": {
                "gct": inputs.gct[TISSUE],
                "attributes": inputs.attributes,
                "genes": inputs.genes_tsv,
            },
            "output": [out / "expression" / f"{TISSUE}.parquet"],
            "params": {"tissue": TISSUE},
        },
        "augment": {
            "input": {"expression": inputs.expression[TISSUE], "samples": inputs.samples_tsv},
            "output": [out / "augmented" / f"{TISSUE}.parquet"],
            "params": {"tissue": TISSUE, "settings": AugmentSettings.from_config(config)},
        },
        "saliency": {
            "input": {
                "weights": model_dir / model.WEIGHTS_FILE,
                "model_json": model_dir / "model.json",
                "predictions": inputs.predictions_tsv,
                "expression": inputs.expression[TISSUE],
                "de_statistic": de,
            },
            "output": {
                "maps": [out / "maps" / m / f"{TISSUE}.parquet" for m in methods],
                "faithfulness": out / "faithfulness" / f"{TISSUE}.tsv",
            },
            "params": {"tissue": TISSUE, **saliency_options},
        },
        "saliency_heatmap": {
            "input": {"top_genes": top_genes, "mean_matrix": mean_matrix},
            "output": [out / "heatmaps" / f"{TISSUE}.png"],
            "params": {"tissue": TISSUE, "settings": TopGenesSettings.from_config(config)},
        },
    }


def _output_files(output: list[Path] | dict[str, Any]) -> Any:
    """A job's output as Snakemake hands it to a script: positional, or named (a name may
    stand for a list, as an ``expand`` does)."""
    from snakemake.iocontainers import OutputFiles

    if not isinstance(output, dict):
        return OutputFiles([str(p) for p in output])
    files = OutputFiles()
    for name, value in output.items():
        paths = [str(p) for p in value] if isinstance(value, list) else [str(value)]
        start = len(files)
        files.extend(paths)
        files._set_name(name, start, len(files) if isinstance(value, list) else None)
    return files


def _preamble(
    work: Path, config: dict[str, Any], rule: str, source_path: Path, spec: dict[str, Any]
) -> str:
    """The preamble Snakemake puts before a rule's script, for one job of ``rule``."""
    from snakemake.iocontainers import (
        InputFiles,
        Log,
        Params,
        ResourceList,
        Wildcards,
    )
    from snakemake.script import PythonScript
    from snakemake.sourcecache import LocalSourceFile

    return PythonScript.generate_preamble(
        LocalSourceFile(str(source_path)),
        None,
        None,
        str(ROOT),
        InputFiles(fromdict={k: str(v) for k, v in spec["input"].items()}),
        _output_files(spec["output"]),
        Params(fromdict=spec["params"]),
        Wildcards(fromdict={"tissue": TISSUE}),
        1,
        ResourceList(fromdict={"_cores": 1, "_nodes": 1}),
        Log([str(work / "logs" / f"{rule}.log")]),
        config,
        rule,
        None,
        None,
        None,
        None,
        None,
        0,
        None,
        True,
        None,
        True,
        # As PythonScript.get_preamble: the adapter sees its own path as __file__.
        preamble_addendum=f"__real_file__ = __file__; __file__ = {str(source_path)!r};",
    )


def _write_layer_scripts(
    work: Path,
    config: dict[str, Any],
    rules: dict[str, str],
    specs: dict[str, dict[str, Any]],
) -> None:
    """Per rule, the layer scripts under ``work/jobs/<rule>/``: the preamble alone, with the
    adapter's imports, and (for rules in ``specs``) with the whole adapter."""
    (work / "jobs").mkdir(exist_ok=True)
    (work / "jobs" / "empty.py").write_text("", encoding="utf-8")
    for rule, script in rules.items():
        spec = specs.get(rule, {"input": {}, "output": [], "params": {"tissue": TISSUE}})
        source_path = ROOT / script
        preamble = _preamble(work, config, rule, source_path, spec)
        layers = {
            "preamble": preamble,
            "imports": preamble + adapter_imports(source_path) + "\n",
        }
        if rule in specs:
            layers["job"] = preamble + source_path.read_text(encoding="utf-8")
        directory = work / "jobs" / rule
        directory.mkdir(parents=True, exist_ok=True)
        for layer, text in layers.items():
            (directory / f"{layer}.py").write_text(text, encoding="utf-8")


def prepare(work: Path, rules: dict[str, str]) -> None:
    """Write the demo inputs and, per rule, the layer scripts under ``work/jobs/<rule>/``."""
    import yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    tissues = [TISSUE, OTHER_TISSUE]
    inputs, train_blocks = _write_demo_inputs(work, config, tissues)
    model_dir = _write_model(work, config, inputs, train_blocks)
    saliency_options = _saliency_options(config)
    saliency_tables = _write_saliency(work, inputs, model_dir, tissues, saliency_options)
    specs = _rule_specs(work, config, inputs, model_dir, saliency_tables, saliency_options)
    _write_layer_scripts(work, config, rules, specs)


def write_tsv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    from rnaseq_saliency.fileio import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\t".join(header) + "\n")
        handle.writelines("\t".join(row) + "\n" for row in rows)


# ------------------------------------------------------------------------ measuring


def job_env() -> dict[str, str]:
    """The environment Snakemake gives script jobs: the repository's src/ on PYTHONPATH."""
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def run_process(argv: list[str], stderr_path: Path | None = None) -> dict[str, float]:
    """Run ``argv`` from the repository root; its wall and CPU seconds and peak RSS (MiB)."""
    with open(stderr_path or os.devnull, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=ROOT, env=job_env(), stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        detail = stderr_path.read_text(errors="replace")[-2000:] if stderr_path else ""
        raise RuntimeError(f"{' '.join(argv)} failed ({process.returncode}):\n{detail}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024,  # Linux: KiB
    }


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "wall_median": statistics.median(r["wall"] for r in runs),
        "wall_min": min(r["wall"] for r in runs),
        "cpu_median": statistics.median(r["cpu"] for r in runs),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "runs": len(runs),
    }


def parse_importtime(text: str) -> list[tuple[int, str, float]]:
    """``-X importtime`` lines as (depth, module, cumulative ms), in the order printed."""
    entries = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        entries.append((depth, name.strip(), int(cumulative) / 1000))
    return entries


def importtime(script: Path, work: Path) -> list[tuple[int, str, float]]:
    log = work / "importtime.txt"
    run_process([sys.executable, "-X", "importtime", str(script)], stderr_path=log)
    return parse_importtime(log.read_text(errors="replace"))


def heavy_in(entries: list[tuple[int, str, float]]) -> list[str]:
    loaded = {name.split(".")[0] for _, name, _ in entries}
    return [package for package in HEAVY if package in loaded]


def measure(work: Path, rules: dict[str, str], repeats: int) -> dict[str, Any]:
    jobs = work / "jobs"
    layer_files = {
        rule: {
            "interpreter": jobs / "empty.py",
            **{
                layer: jobs / rule / f"{layer}.py"
                for layer in LAYERS[1:]
                if (jobs / rule / f"{layer}.py").exists()
            },
        }
        for rule in rules
    }
    runs: dict[str, dict[str, list[dict[str, float]]]] = {rule: {} for rule in rules}
    errors = work / "job-stderr.txt"
    # Interleaved rounds: load that drifts during the run spreads over every layer alike.
    for _ in range(repeats):
        for rule, files in layer_files.items():
            for layer, path in files.items():
                record = run_process([sys.executable, str(path)], stderr_path=errors)
                runs[rule].setdefault(layer, []).append(record)
    result: dict[str, Any] = {}
    for rule, files in layer_files.items():
        at_imports = importtime(files["imports"], work)
        entry: dict[str, Any] = {
            "script": rules[rule],
            "layers": {layer: summarise(r) for layer, r in runs[rule].items()},
            "heavy_at_import": heavy_in(at_imports),
            "imported_at_import": len(at_imports),
        }
        if "job" in files:
            at_job = importtime(files["job"], work)
            before = {name for _, name, _ in at_imports}
            # Imports the job did at run time: top-level entries (depth 0) new since layer 3.
            late = [(n, ms) for d, n, ms in at_job if d == 0 and n not in before]
            entry["run_time_imports"] = sorted(late, key=lambda item: -item[1])
            entry["run_time_import_ms"] = sum(ms for _, ms in late)
            entry["heavy_at_run_time"] = [
                p for p in heavy_in(at_job) if p not in entry["heavy_at_import"]
            ]
        result[rule] = entry
    return result


def module_table(rules: dict[str, str], repeats: int) -> dict[str, dict[str, Any]]:
    """``import X`` alone, in a fresh process: the adapters' package modules and references."""
    modules: list[str] = []
    for script in rules.values():
        tree = ast.parse((ROOT / script).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rnaseq_"):
                if node.module not in modules:
                    modules.append(node.module)
    statements = {m: f"import {m}" for m in modules} | REFERENCE_IMPORTS
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in statements}
    for _ in range(repeats):
        for name, code in statements.items():
            runs[name].append(run_process([sys.executable, "-c", code]))
    table = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, code in statements.items():
            script = Path(tmp) / "module.py"
            script.write_text(code + "\n", encoding="utf-8")
            entries = importtime(script, Path(tmp))
            table[name] = {
                **summarise(runs[name]),
                "heavy": heavy_in(entries),
                "package_module": name in modules,
            }
    return table


# ------------------------------------------------------------------------- reporting


def seconds(summary: dict[str, float]) -> str:
    return f"{summary['wall_median']:.2f} ({summary['wall_min']:.2f})"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| rule (adapter) | layer | wall s | CPU s | peak RSS MiB |",
        "|---|---|---:|---:|---:|",
    ]
    for rule, entry in result["rules"].items():
        for layer in LAYERS:
            summary = entry["layers"].get(layer)
            if summary is None:
                continue
            lines.append(
                f"| {rule} ({entry['script']}) | {LAYER_TITLES[layer]} | {seconds(summary)} "
                f"| {summary['cpu_median']:.2f} | {summary['rss_mib']:.0f} |"
            )
    lines += [
        "",
        "| rule | fixed cost: imports layer wall s (CPU s) | run-time imports ms (-X importtime) "
        "| x 54 jobs, wall min | heavy libraries at import time | run-time imports, largest |",
        "|---|---:|---:|---:|---|---|",
    ]
    for rule, entry in result["rules"].items():
        imports = entry["layers"]["imports"]
        late_ms = entry.get("run_time_import_ms", 0.0)
        fixed = imports["wall_median"] + late_ms / 1000
        largest = ", ".join(f"{n} {ms:.0f}" for n, ms in entry.get("run_time_imports", [])[:4])
        lines.append(
            f"| {rule} | {imports['wall_median']:.2f} ({imports['cpu_median']:.2f}) | "
            f"{late_ms:.0f} | {fixed * 54 / 60:.1f} | "
            f"{', '.join(entry['heavy_at_import']) or 'none'} | {largest or '-'} |"
        )
    lines += [
        "",
        "| import alone | wall s | CPU s | peak RSS MiB | heavy libraries loaded |",
        "|---|---:|---:|---:|---|",
    ]
    for name, row in result["modules"].items():
        label = f"`{name}`" if row["package_module"] else f"{name} (reference)"
        lines.append(
            f"| {label} | {seconds(row)} | {row['cpu_median']:.2f} | {row['rss_mib']:.0f} | "
            f"{', '.join(row['heavy']) or 'none'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every layer (3)")
    parser.add_argument("--work-dir", help="keep the demo inputs and job scripts here")
    parser.add_argument("--json", help="also write the figures here as JSON")
    parser.add_argument("--prepare", help=argparse.SUPPRESS)  # internal: the child's task
    args = parser.parse_args(argv)
    rules = per_tissue_rules()
    if args.prepare:
        prepare(Path(args.prepare), rules)
        return 0
    if not rules:
        raise SystemExit(f"no per-tissue rule with a script: found in {RULES_DIR}")
    with tempfile.TemporaryDirectory(prefix="job_overhead.") as tmp:
        work = Path(args.work_dir or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        run_process(
            [sys.executable, str(Path(__file__).resolve()), "--prepare", str(work)],
            stderr_path=work / "prepare-stderr.txt",
        )
        prepared = time.perf_counter() - started
        result = {
            "rules": measure(work, rules, args.repeats),
            "modules": module_table(rules, args.repeats),
            "repeats": args.repeats,
            "prepare_seconds": round(prepared, 1),
            "machine": {
                "nproc": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            },
        }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(markdown(result))
    print(f"\nmachine: {result['machine']}; repeats {args.repeats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
