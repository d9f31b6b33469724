"""Names derived from configuration values."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _number(value: float) -> str:
    return f"{value:g}"


def run_name(config: dict[str, Any]) -> str:
    """A readable, stable TensorBoard run name for everything that shapes a training run.

    The readable part names the hyper-parameters people compare; the hash covers every value
    that reaches training (model, train, augment, split, data), so two different runs never
    share a directory.
    """
    model, train, augment = config["model"], config["train"], config["augment"]
    if model["preset"] == "original":
        shape = "original"
    else:
        hidden = "-".join(str(width) for width in model["hidden"])
        shape = f"h{hidden}_{model['activation']}_do{_number(model['dropout'])}"
    readable = (
        f"{shape}_lr{_number(train['lr'])}_bs{train['batch_size']}"
        f"_wd{_number(train['weight_decay'])}_aug-{augment['method']}{augment['min_samples']}"
        f"_seed{train['seed']}"
    )
    shaping = {key: config.get(key) for key in ("data", "split", "augment", "model", "train")}
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:8]
    return f"{readable}_{digest}"
