"""Names derived from configuration values."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rnaseq_saliency.settings import TrainingSettings


def _number(value: float) -> str:
    return f"{value:g}"


def run_name(settings: TrainingSettings, started: datetime) -> str:
    """A readable TensorBoard run name: the hyper-parameters people compare, then the start time.

    The time makes every training run a directory of its own, so that a retrain never
    overwrites an earlier run's logs and ``tensorboard --logdir results/tensorboard`` shows them
    side by side; and the name is no declared output, so the rule's outputs never depend on a
    config value (which would keep Snakemake from comparing the params of an edited config).
    """
    if settings.preset == "original":
        shape = "original"
    else:
        hidden = "-".join(str(width) for width in settings.hidden)
        shape = f"h{hidden}_{settings.activation}_do{_number(settings.dropout)}"
    return (
        f"{started:%Y%m%d-%H%M%S}_{shape}_lr{_number(settings.lr)}_bs{settings.batch_size}"
        f"_wd{_number(settings.weight_decay)}_seed{settings.seed}"
    )
