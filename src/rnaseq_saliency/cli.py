"""The ``rnaseq-saliency`` command, for people who use a trained model outside Snakemake.

``rnaseq-saliency predict --model results/model --input my_samples.gct --output out/`` writes
``out/predictions.tsv``, ``out/saliency_top_genes.tsv`` and ``out/figures/`` exactly as the
workflow's ``predict`` rule does (both call ``rnaseq_saliency.predict.run_predict``).

A problem with the user's files or arguments prints one line, ``rnaseq-saliency: error: ...``,
and exits with status 2 (argparse's status for usage errors), without a traceback: the message
names the file, line or option to fix. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rnaseq_saliency import __version__

PROG = "rnaseq-saliency"
EXIT_ERROR = 2
PREDICTIONS_FILE = "predictions.tsv"
TOP_GENES_FILE = "saliency_top_genes.tsv"
FIGURES_DIR = "figures"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to --help) instead of two."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from rnaseq_saliency.predict import DEFAULT_MAX_MISSING_FRACTION, DEFAULT_TOP_N
    from rnaseq_saliency.saliency import METHOD_OPTIONS, METHODS

    parser = _Parser(
        prog=PROG,
        description="A GTEx tissue classifier explained with saliency maps.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser(
        "predict",
        help="classify new samples and list the genes that drove each call",
        description=(
            "Classify new samples with a trained model (the workflow's results/model) and "
            "explain each call with its most salient genes. Writes predictions.tsv (top-3 "
            "tissues with probabilities), saliency_top_genes.tsv and figures/<sample>.png "
            "into the output directory."
        ),
        epilog=(
            "Input: a GCT file (GTEx layout, with or without the id column) or a TSV/CSV "
            "matrix with genes in rows (Ensembl ids, versioned or not, in the first column) "
            "and samples in columns; plain or gzip. Values are TPM or read counts, as the "
            "model was trained, not log-transformed. Genes match the model's on the id without "
            "version; missing genes are filled with the training mean and counted."
        ),
    )
    predict.add_argument(
        "--model",
        required=True,
        type=Path,
        metavar="DIR",
        help="directory holding model.safetensors and model.json (e.g. results/model)",
    )
    predict.add_argument(
        "--input",
        required=True,
        type=Path,
        metavar="FILE",
        help="expression of the samples (GCT, TSV or CSV)",
    )
    predict.add_argument(
        "--output",
        required=True,
        type=Path,
        metavar="DIR",
        help="directory to write the results into",
    )
    predict.add_argument(
        "--top-n",
        type=_positive_int,
        metavar="N",
        default=DEFAULT_TOP_N,
        help="salient genes listed and drawn per sample (default: %(default)s)",
    )
    predict.add_argument(
        "--method",
        metavar="METHOD",
        default="auto",
        help=f"saliency method: one of {', '.join(METHODS)}; the path of a workflow's "
        "chosen_method.json; or auto, the choice in saliency/chosen_method.json beside the "
        "model directory, else gradient (default: %(default)s)",
    )
    predict.add_argument(
        "--abs",
        action="store_true",
        help="rank genes by the absolute attribution (default: signed, as the workflow's default)",
    )
    predict.add_argument(
        "--max-missing-fraction",
        type=_fraction,
        metavar="F",
        default=DEFAULT_MAX_MISSING_FRACTION,
        help="fail when more than this fraction of the model's genes are missing from the input "
        "(default: %(default)s)",
    )
    ig = METHOD_OPTIONS["integrated_gradients"]
    smooth = METHOD_OPTIONS["smoothgrad"]
    predict.add_argument(
        "--ig-steps",
        type=_positive_int,
        metavar="N",
        default=ig["n_steps"],
        help="integrated_gradients: steps of the path integral (default: %(default)s)",
    )
    predict.add_argument(
        "--smoothgrad-samples",
        type=_positive_int,
        metavar="N",
        default=smooth["nt_samples"],
        help="smoothgrad: noisy copies per sample (default: %(default)s)",
    )
    predict.add_argument(
        "--smoothgrad-stdev",
        type=_positive_float,
        metavar="SD",
        default=smooth["stdevs"],
        help="smoothgrad: noise sd in scaled units (default: %(default)s)",
    )
    predict.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        default=512,
        help="samples per backward pass (default: %(default)s)",
    )
    predict.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="smoothgrad noise seed (default: 0)",
    )
    predict.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="CPU threads (default: torch's)",
    )
    predict.add_argument(
        "--no-figures",
        action="store_true",
        help="write no per-sample figure (faster for many samples; the tables hold the numbers)",
    )
    predict.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    return parser


def _predict(args: argparse.Namespace) -> None:
    from rnaseq_saliency.predict import run_predict
    from rnaseq_saliency.settings import SaliencySettings

    run_predict(
        model_dir=args.model,
        input_path=args.input,
        predictions_path=args.output / PREDICTIONS_FILE,
        top_genes_path=args.output / TOP_GENES_FILE,
        figures_dir=args.output / FIGURES_DIR,
        top_n=args.top_n,
        max_missing_fraction=args.max_missing_fraction,
        method=args.method,
        saliency=SaliencySettings(
            methods=(),
            abs=args.abs,
            batch_size=args.batch_size,
            ig_steps=args.ig_steps,
            smoothgrad_samples=args.smoothgrad_samples,
            smoothgrad_stdev=args.smoothgrad_stdev,
            seed=args.seed,
        ),
        threads=args.threads,
        figures=not args.no_figures,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point; returns the exit status (0, or 2 for an error)."""
    import logging

    from rnaseq_saliency.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(None)
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        _predict(args)
    except (ValueError, OSError, KeyError) as err:
        # The package's messages name the file and what to fix; one line is enough.
        message = " ".join(str(err).split()) or type(err).__name__
        if isinstance(err, KeyError):
            message = f"missing key {message} (is the model directory complete?)"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
