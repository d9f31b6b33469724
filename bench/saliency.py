"""Time saliency maps: batched vs one backward pass per sample vs Captum's Saliency, in one run.

Usage: .venv/bin/python bench/saliency.py [--samples 2000] [--genes 19291] [--subset 200]

The default model (hidden 512-256-128, ReLU, dropout 0.2, 54 outputs) with random weights, on
random scaled input: saliency cost does not depend on what the weights are. Every variant
computes the same thing (gradient of the predicted class's logit, min-max scaled per sample):

- batched: ``rnaseq_saliency.saliency.saliency`` with ``--batch-size`` rows per pass;
- per sample: the same function with batch_size=1, one forward and backward pass per sample,
  as the original notebook did; timed on ``--subset`` samples and extrapolated linearly;
- Captum: ``captum.attr.Saliency`` on the same batches (predicted classes from one extra forward
  pass, as a Captum user needs them) with the same min-max post-processing, on the frozen
  eval-mode network, and once more with the parameters left trainable (as Captum's examples
  leave them; autograd.grad still computes input gradients only);
- post-processing alone: the numpy ``minmax_per_sample`` over the whole matrix, which the first
  version applied after the gradients, for scale.

Each variant runs ``--repeats`` times; the best time is reported. Results agree to 1e-5.

``--job TEST VAL`` instead times what one ``saliency`` job computes for a tissue with TEST and
VAL correctly classified samples: before issue 18, gradient maps of the test samples; now every
method of ``saliency.methods`` (config defaults) on both splits, and the deletion curves of both
splits (``faithfulness.faithfulness_rows``: 4 methods, the DE ranking and 10 random draws at 9
values of k). The job's start-up (Python, torch, the model: ``bench/job_overhead.py``) is not
included.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
from captum.attr import Saliency

from rnaseq_saliency.model import build_network, count_parameters
from rnaseq_saliency.saliency import frozen, minmax_per_sample, minmax_rows_, saliency


def captum_maps(network: torch.nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    explainer = Saliency(network)
    device = next(network.parameters()).device
    out = np.empty_like(x)
    for start in range(0, len(x), batch_size):
        batch = torch.from_numpy(x[start : start + batch_size]).to(device)
        with torch.no_grad():
            target = network(batch).argmax(dim=1)
        grads = explainer.attribute(batch.requires_grad_(True), target=target, abs=False)
        # The same post-processing as ours, so that only the gradient computation differs.
        out[start : start + batch_size] = minmax_rows_(grads.detach(), False).cpu().numpy()
    return out


def best_of(repeats: int, run: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    best, result = float("inf"), np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )


def time_job(network: torch.nn.Module, args: argparse.Namespace) -> None:
    """One saliency job's computation, before and after every method and the deletion curves."""
    from rnaseq_saliency.faithfulness import DeletionForward, faithfulness_rows
    from rnaseq_saliency.saliency import attribute
    from rnaseq_saliency.settings import DEFAULT_SALIENCY

    n_test, n_val = args.job
    rng = np.random.default_rng(args.seed)
    splits = {
        "test": rng.standard_normal((n_test, args.genes), np.float32),
        "val": rng.standard_normal((n_val, args.genes), np.float32),
    }
    de = rng.standard_normal(args.genes)
    rows: list[tuple[str, float]] = []
    means: dict[str, dict[str, np.ndarray]] = {"test": {}, "val": {}}
    settings = DEFAULT_SALIENCY._replace(
        ig_steps=args.ig_steps or DEFAULT_SALIENCY.ig_steps,
        smoothgrad_samples=args.smoothgrad_samples or DEFAULT_SALIENCY.smoothgrad_samples,
    )
    for method in settings.methods:
        options = settings.options_of(method)
        for split, x in splits.items():
            seconds, maps = best_of(
                args.repeats,
                lambda x=x, m=method, o=options: attribute(
                    network, x, method=m, target=0, batch_size=args.batch_size, **o
                ),
            )
            means[split][method] = maps.mean(axis=0)
            rows.append((f"{method}, {split} ({len(x)} samples)", seconds))
    forward = DeletionForward(network)
    for split, x in splits.items():
        seconds, _ = best_of(
            args.repeats,
            lambda x=x, s=split: faithfulness_rows(forward, x, 0, "t", s, means[s], de, 0),
        )
        rows.append((f"deletion curves, {split}", seconds))
    before = rows[0][1]  # gradient on the test samples: the job's computation until now
    after = sum(seconds for _, seconds in rows)
    print(f"# One saliency job: {n_test} test + {n_val} validation samples x {args.genes} genes, "
          f"{count_parameters(network):,} parameters, batch {args.batch_size}, ig_steps "
          f"{settings.ig_steps}, smoothgrad_samples {settings.smoothgrad_samples}")  # fmt: skip
    print(f"# {machine(next(network.parameters()).device)}")
    print("| computation | seconds | time vs gradient on test |")
    print("|---|---:|---:|")
    for name, seconds in [*rows, ("**all (now)**", after)]:
        print(f"| {name} | {seconds:.2f} | {seconds / before:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--genes", type=int, default=19291)
    parser.add_argument("--tissues", type=int, default=54)
    parser.add_argument("--subset", type=int, default=200, help="samples timed one at a time")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--job", type=int, nargs=2, metavar=("TEST", "VAL"), help="time one saliency job"
    )
    parser.add_argument("--ig-steps", type=int, default=0, help="with --job (0: the default)")
    parser.add_argument("--smoothgrad-samples", type=int, default=0, help="with --job")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    network = build_network(args.genes, args.tissues).eval().to(device)
    if args.job:
        time_job(network, args)
        return
    x = np.random.default_rng(args.seed).standard_normal((args.samples, args.genes), np.float32)
    subset = x[: args.subset]
    n, size = args.samples, args.batch_size
    # Warm-up: first calls pay for lazy imports and allocator growth, not for saliency.
    saliency(network, x[:8], batch_size=4)
    with frozen(network):
        captum_maps(network, x[:8], 4)

    batched_s, batched = best_of(args.repeats, lambda: saliency(network, x, batch_size=size))
    per_sample_s, per_sample = best_of(
        args.repeats, lambda: saliency(network, subset, batch_size=1)
    )
    per_sample_s *= n / args.subset
    with frozen(network):
        captum_s, captum = best_of(args.repeats, lambda: captum_maps(network, x, size))
    captum_trainable_s, _ = best_of(args.repeats, lambda: captum_maps(network, x, size))
    numpy_minmax_s, _ = best_of(args.repeats, lambda: minmax_per_sample(x))

    worst = max(
        float(np.abs(batched - captum).max()),
        float(np.abs(batched[: args.subset] - per_sample).max()),
    )
    if worst > 1e-5:
        raise SystemExit(f"variants disagree: max difference {worst:.2e}")
    print(
        f"# Saliency of {n} samples x {args.genes} genes, {count_parameters(network):,} "
        f"parameters, batch {size}"
    )
    print(f"# {machine(device)}")
    print(f"# max difference between variants: {worst:.1e}")
    print("| variant | seconds | samples/s | time vs batched |")
    print("|---|---:|---:|---:|")
    rows = [
        ("batched (ours)", batched_s),
        (f"one pass per sample (timed on {args.subset}, extrapolated)", per_sample_s),
        ("Captum Saliency, batched, frozen parameters", captum_s),
        ("Captum Saliency, batched, trainable parameters", captum_trainable_s),
        ("(numpy min-max of the whole matrix alone)", numpy_minmax_s),
    ]
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {n / seconds:,.0f} | {seconds / batched_s:.2f}x |")


if __name__ == "__main__":
    main()
