"""Deletion curves, AOPC and the choice of method (rnaseq_saliency.faithfulness)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from rnaseq_saliency.faithfulness import (
    AUTO_TOLERANCE,
    FAITHFULNESS_COLUMNS,
    K_GRID,
    RANDOM_AOPC_FLOOR,
    DeletionForward,
    aopc_table,
    choose_method,
    drop_curves,
    faithfulness_rows,
    k_grid,
    random_orders,
    read_chosen_method,
    read_faithfulness,
    run_choose_method,
    write_faithfulness,
)
from rnaseq_saliency.saliency import attribute

torch.set_num_threads(1)

N_GENES, N_CLASSES, PER_CLASS = 2000, 3, 5
# Class c is defined by genes 10c .. 10c + 4: raised in its samples, noise elsewhere.
DEFINING = {c: list(range(10 * c, 10 * c + PER_CLASS)) for c in range(N_CLASSES)}


def known_gene_set_problem() -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """A trained network and scaled inputs where each class is defined by a known gene set."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(N_CLASSES), 60)
    x = rng.normal(0.0, 1.0, (len(labels), N_GENES)).astype(np.float32)
    for c, genes in DEFINING.items():
        x[np.ix_(labels == c, genes)] += 2.5
    x -= x.mean(axis=0)  # scaled space: 0 is the training mean
    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Linear(N_GENES, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, N_CLASSES)
    )
    optimiser = torch.optim.Adam(network.parameters(), lr=0.01, weight_decay=1e-3)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(labels)
    for _ in range(200):
        optimiser.zero_grad()
        nn.functional.cross_entropy(network(inputs), targets).backward()
        optimiser.step()
    network.eval()
    return network, x, labels


@pytest.fixture(scope="module")
def problem() -> tuple[nn.Module, np.ndarray, np.ndarray]:
    return known_gene_set_problem()


class Wrapped(nn.Module):
    """The same network, not as a Sequential: DeletionForward must mask real inputs."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_k_grid_is_capped_and_unique() -> None:
    assert k_grid(1000) == list(K_GRID)
    assert k_grid(30) == [1, 2, 5, 10, 20, 30]
    assert k_grid(0) == []


def test_the_first_layer_shortcut_equals_masked_inputs(problem) -> None:
    network, x, _ = problem
    fast = DeletionForward(network)
    slow = DeletionForward(Wrapped(network))
    assert fast.fast and not slow.fast
    orders = np.stack([np.random.default_rng(s).permutation(N_GENES)[:200] for s in range(3)])
    ks = k_grid(200)
    np.testing.assert_allclose(fast.logits(x[:20], orders, ks), slow.logits(x[:20], orders, ks),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    # And each deletion is the network on an input with those genes at 0.
    masked = x[:20].copy()
    masked[:, orders[1, :5]] = 0.0
    with torch.no_grad():
        direct = network(torch.from_numpy(masked)).numpy()
    np.testing.assert_allclose(fast.logits(x[:20], orders, ks)[1, ks.index(5)], direct, atol=1e-4)
    np.testing.assert_allclose(fast.intact(x[:3]), network(torch.from_numpy(x[:3])).detach(),
                               atol=1e-5)  # fmt: skip


def test_drops_are_measured_from_the_intact_input(problem) -> None:
    network, x, labels = problem
    samples = x[labels == 1]
    curves = drop_curves(DeletionForward(network), samples, 1, np.array([DEFINING[1]]), [1, 5])
    with torch.no_grad():
        before = network(torch.from_numpy(samples)).double()
        after_x = samples.copy()
        after_x[:, DEFINING[1]] = 0.0
        after = network(torch.from_numpy(after_x)).double()

    def margin(z: torch.Tensor) -> torch.Tensor:
        others = torch.cat([z[:, :1], z[:, 2:]], dim=1)
        return z[:, 1] - others.max(dim=1).values

    expected = (margin(before) - margin(after)).mean().item()
    assert curves["margin"][0, 1] == pytest.approx(expected, rel=1e-4)
    expected_logit = (before[:, 1] - after[:, 1]).mean().item()
    assert curves["logit"][0, 1] == pytest.approx(expected_logit, rel=1e-4)
    log_prob = torch.log_softmax(before, 1)[:, 1] - torch.log_softmax(after, 1)[:, 1]
    assert curves["log_prob"][0, 1] == pytest.approx(log_prob.mean().item(), rel=1e-4)


def test_a_ranking_of_the_defining_genes_beats_random_three_times(problem) -> None:
    network, x, labels = problem
    forward = DeletionForward(network)
    for c in range(N_CLASSES):
        samples = x[labels == c]
        maps = attribute(network, samples, method="input_x_gradient", target=c)
        mean = maps.mean(axis=0)
        # The method ranks the class's genes first ...
        assert set(np.argsort(-mean)[:PER_CLASS]) == set(DEFINING[c])
        de = np.zeros(N_GENES)
        de[DEFINING[c]] = 1.0
        rows = faithfulness_rows(forward, samples, c, f"class{c}", "val", {"ixg": mean}, de, 0)
        aopc = aopc_table(rows).iloc[0]
        # ... and deleting them costs the margin at least three times what random genes cost.
        assert aopc["aopc"] >= 3 * aopc["random_aopc"], aopc
        assert aopc["aopc_ratio"] >= 3
        assert rows["de_margin_drop"].iloc[-1] > rows["random_margin_drop"].iloc[-1]
    # A ranking that leaves every defining gene out of its top 500 does not.
    samples = x[labels == 0]
    worst = np.arange(N_GENES, dtype=float)  # genes 1999, 1998, ... first
    rows = faithfulness_rows(forward, samples, 0, "class0", "val", {"bad": worst}, worst, 0)
    aopc = aopc_table(rows).iloc[0]
    assert aopc["aopc"] < 3 * max(aopc["random_aopc"], RANDOM_AOPC_FLOOR)


def test_random_orders_are_seeded_per_tissue() -> None:
    a, b = random_orders(50, 20, 0, "liver"), random_orders(50, 20, 0, "liver")
    np.testing.assert_array_equal(a, b)
    assert a.shape == (10, 20)
    assert not np.array_equal(a, random_orders(50, 20, 0, "lung"))


def test_faithfulness_rows_cover_every_method_and_k_and_empty_splits(problem) -> None:
    network, x, labels = problem
    samples = x[labels == 2][:4]
    means = {"gradient": np.arange(N_GENES, dtype=float), "input_x_gradient": -np.arange(N_GENES)}
    rows = faithfulness_rows(DeletionForward(network), samples, 2, "t", "test", means,
                             np.full(N_GENES, np.nan), 0)  # fmt: skip
    assert list(rows.columns) == FAITHFULNESS_COLUMNS
    assert len(rows) == 2 * len(K_GRID)
    assert rows["de_margin_drop"].isna().all()  # no DE statistic for this tissue
    empty = faithfulness_rows(DeletionForward(network), samples[:0], 2, "t", "val", means,
                              np.zeros(N_GENES), 0)  # fmt: skip
    assert len(empty) == len(rows) and (empty["n_samples"] == 0).all()
    assert empty["margin_drop"].isna().all()


def curves_table(val: dict[str, float], test: dict[str, float], tissues: int = 3) -> pd.DataFrame:
    """A faithfulness table whose AOPC per (method, split) is the given value in every tissue."""
    rows = []
    for split, values in (("val", val), ("test", test)):
        for method, value in values.items():
            for t in range(tissues):
                for k in (1, 2, 5):
                    rows.append({"tissue": f"t{t}", "method": method, "split": split, "k": k,
                                 "n_samples": 3, "margin_drop": value, "logit_drop": value,
                                 "log_prob_drop": value, "random_margin_drop": 0.5,
                                 "de_margin_drop": 1.0})  # fmt: skip
    return pd.DataFrame(rows, columns=FAITHFULNESS_COLUMNS)


def test_auto_chooses_on_validation_rows_only() -> None:
    methods = ["gradient", "input_x_gradient", "integrated_gradients"]
    val = {"gradient": 1.0, "input_x_gradient": 4.0, "integrated_gradients": 3.0}
    chosen, details = choose_method(curves_table(val, {m: 1.0 for m in methods}), methods)
    assert chosen == "input_x_gradient"
    assert details["val_margin_aopc"]["input_x_gradient"] == pytest.approx(4.0)
    assert details["val_aopc_ratio"]["gradient"] == pytest.approx(2.0)
    # Whatever the test rows say, the choice stays: they never reach it.
    for test in ({"gradient": 99.0, "input_x_gradient": 0.0, "integrated_gradients": 50.0},
                 {m: np.nan for m in methods}):  # fmt: skip
        assert choose_method(curves_table(val, test), methods)[0] == "input_x_gradient"
    # Validation rows do decide it.
    val["integrated_gradients"] = 9.0
    assert choose_method(curves_table(val, {m: 1.0 for m in methods}), methods)[0] == (
        "integrated_gradients"
    )


def test_ties_go_to_the_cheaper_method() -> None:
    methods = ["integrated_gradients", "smoothgrad", "input_x_gradient", "gradient"]
    within = 1.0 - AUTO_TOLERANCE / 2
    val = {"integrated_gradients": 4.0, "smoothgrad": 4.0 * within, "input_x_gradient": 4 * within,
           "gradient": 1.0}  # fmt: skip
    chosen, details = choose_method(curves_table(val, val), methods)
    assert chosen == "input_x_gradient"
    assert set(details["tied"]) == {"integrated_gradients", "smoothgrad", "input_x_gradient"}
    val["input_x_gradient"] = 4.0 * (1.0 - 2 * AUTO_TOLERANCE)
    assert choose_method(curves_table(val, val), methods)[0] == "smoothgrad"


def test_no_validation_samples_is_a_clear_error() -> None:
    methods = ["gradient"]
    table = curves_table({"gradient": np.nan}, {"gradient": 2.0})
    with pytest.raises(ValueError, match="no tissue has correctly classified validation"):
        choose_method(table, methods)


def test_the_rule_writes_the_table_and_the_choice(tmp_path: Path) -> None:
    methods = ["gradient", "input_x_gradient"]
    table = curves_table({"gradient": 1.0, "input_x_gradient": 2.0}, {m: 1.0 for m in methods})
    parts = []
    for tissue, rows in table.groupby("tissue"):
        parts.append(tmp_path / f"{tissue}.tsv")
        write_faithfulness(parts[-1], rows)
    out, chosen = tmp_path / "faithfulness.tsv", tmp_path / "chosen_method.json"
    assert run_choose_method(parts, methods, "auto", out, chosen) == "input_x_gradient"
    assert len(read_faithfulness(out)) == len(table)
    record = json.loads(chosen.read_text())
    assert record["method"] == "input_x_gradient" and record["mode"] == "auto"
    assert record["tolerance"] == AUTO_TOLERANCE
    # A forced method is written as such, with the same evidence beside it.
    assert run_choose_method(parts, methods, "gradient", out, chosen) == "gradient"
    record = json.loads(chosen.read_text())
    assert record["mode"] == "forced"
    assert record["val_margin_aopc"]["input_x_gradient"] == pytest.approx(2.0)
    assert read_chosen_method(chosen) == "gradient"
