"""Epoch time of the classifier on a GTEx-sized training set: default model vs the original preset.

A GTEx v8 training set after augmentation is about 32,000 rows x 19,291 genes (54 tissues). The
benchmark times the training loop's own step (``rnaseq_saliency.training.train_batches``: batch
gather, forward, backward, AdamW step) on random float32 input of that width, for a fixed number
of batches, and extrapolates to one epoch of ``--rows`` rows. The rows come from a smaller pool
(``--pool-rows``) so that the benchmark does not need the 2.5 GB of a full training set: the
per-batch cost depends on the batch size and the widths, not on the size of the matrix the batch
is cut from. Validation after each epoch (about a tenth as many rows, forward only) is not timed.

    .venv/bin/python bench/train.py                 # this machine's CPU
    .venv/bin/python bench/train.py --device cuda   # a GPU (mixed precision, as in training)

Prints a Markdown table to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from dataclasses import dataclass

import numpy as np
import torch

from rnaseq_saliency.model import count_parameters, resolve_architecture
from rnaseq_saliency.model import network_from_architecture as build
from rnaseq_saliency.training import resolve_device, train_batches

N_GENES = 19_291
N_TISSUES = 54


@dataclass
class Case:
    name: str
    preset: str
    hidden: tuple[int, int, int]
    batch_size: int
    batches: int  # timed batches
    warmup: int = 2


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def time_case(
    case: Case, x: torch.Tensor, y: torch.Tensor, device: torch.device, rows: int, seed: int
) -> dict[str, object]:
    torch.manual_seed(seed)
    architecture = resolve_architecture(N_GENES, N_TISSUES, case.hidden, 0.2, "relu", case.preset)
    network = build(architecture).to(device).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, weight_decay=1e-4)
    amp = device.type == "cuda"
    grad_scaler = torch.amp.GradScaler("cuda", enabled=amp)
    generator = torch.Generator().manual_seed(seed)

    def run(n_batches: int) -> float:
        order = torch.randint(0, x.shape[0], (n_batches * case.batch_size,), generator=generator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        # train_batches ends with .item(), which waits for the GPU.
        batches = order.to(device)
        train_batches(network, optimizer, grad_scaler, x, y, batches, case.batch_size, amp=amp)
        return time.perf_counter() - started

    run(case.warmup)
    seconds = run(case.batches)
    per_sample = seconds / (case.batches * case.batch_size)
    result = {
        "case": case.name,
        "parameters": count_parameters(network),
        "batch_size": case.batch_size,
        "timed_batches": case.batches,
        "seconds": seconds,
        "samples_per_s": 1.0 / per_sample,
        "epoch_s": per_sample * rows,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument(
        "--rows", type=int, default=32_400, help="rows of one epoch (the v8 rehearsal's 32,400)"
    )
    parser.add_argument("--pool-rows", type=int, default=4096, help="rows held in memory")
    parser.add_argument("--default-batches", type=int, default=40)
    parser.add_argument("--original-batches", type=int, default=20)
    parser.add_argument("--original-256-batches", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rng = np.random.default_rng(args.seed)
    # Scaled input is roughly standard normal per gene; random values cost the same to multiply.
    x = torch.from_numpy(rng.standard_normal((args.pool_rows, N_GENES), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, N_TISSUES, args.pool_rows))
    x, y = x.to(device), y.to(device)
    scale = 1 if device.type == "cpu" else 20  # a GPU needs more batches to time reliably
    cases = [
        Case("default 512-256-128 relu", "default", (512, 256, 128), 256, args.default_batches),
        Case("small 256-128-64 relu", "default", (256, 128, 64), 256, args.default_batches),
        Case("original preset", "original", (7000, 2916, 540), 16, args.original_batches),
        Case("original preset", "original", (7000, 2916, 540), 256, args.original_256_batches),
    ]
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {cpu_name()}"
    print(
        f"device: {device} ({machine}); nproc {os.cpu_count()}; torch threads "
        f"{torch.get_num_threads()}; torch {torch.__version__}; epoch = {args.rows:,} rows x "
        f"{N_GENES:,} genes, {N_TISSUES} tissues; rows drawn from a pool of {args.pool_rows:,}"
    )
    results = []
    for case in cases:
        case.batches *= scale
        results.append(time_case(case, x, y, device, args.rows, args.seed))
        r = results[-1]
        print(f"  {r['case']} bs {r['batch_size']}: {r['samples_per_s']:.1f} samples/s", flush=True)
    reference = results[0]["epoch_s"]
    print()
    print(
        "| model | parameters | batch size | timed batches | samples/s "
        f"| epoch ({args.rows:,} rows) | time vs default |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        epoch_s = float(r["epoch_s"])  # type: ignore[arg-type]
        epoch = f"{epoch_s:.0f} s" if epoch_s < 600 else f"{epoch_s / 60:.0f} min"
        print(
            f"| {r['case']} | {r['parameters']:,} | {r['batch_size']} | {r['timed_batches']} "
            f"| {r['samples_per_s']:.1f} | {epoch} | {epoch_s / reference:.1f} |"
        )


if __name__ == "__main__":
    main()
