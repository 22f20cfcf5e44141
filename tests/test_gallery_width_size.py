"""The width/depth and training-set-size gallery examples, run in their quick mode.

Each example runs as a script into tmp_path; pytest turns warnings into errors, so this
also checks that the examples are warning-clean. Thresholds leave a margin below what
quick mode reaches (relu's width-256 net: training 0.98, validation 0.96; the depth-8
logistic net's first-layer gradient norm after epoch 1: 5e-6 of relu's).
"""
import math

import matplotlib.pyplot as plt
import numpy as np


def test_width_depth_example(run_example, tmp_path, capsys):
    ns = run_example("plot_width_depth.py")
    # The figures are saved and left open for sphinx-gallery's scraper.
    assert len(plt.get_fignums()) == 3
    for name in ["width_depth_sweeps.png", "width_depth_activations.png",
                 "width_depth_grad_norms.png"]:
        assert (tmp_path / name).stat().st_size > 1000

    printed = capsys.readouterr().out
    assert "| width | training accuracy | validation accuracy | fit time (s) |" in printed
    assert "| depth | training accuracy | validation accuracy | fit time (s) |" in printed
    assert ("| depth | activation | weight_init | final training loss | training accuracy "
            "| validation accuracy |") in printed
    for width in ns["widths"]:
        assert f"\n| {width} | " in printed
    for activation in ns["activations"]:
        init = "auto" if activation == "selu" else "sklearn"
        assert f"| {max(ns['deep_depths'])} | {activation} | {init} |" in printed
    assert printed.count("Finding: ") == 3
    assert printed.rstrip().splitlines()[-1].startswith("Finding: ")

    # (a), (b): one score per fold; the widest net fits its training folds better than
    # it predicts the validation folds, and every sweep learns far above chance (0.1).
    n_folds = ns["cv"].get_n_splits()
    for results in (ns["width_results"], ns["depth_results"]):
        for r in results.values():
            assert {len(v) for v in r.values()} == {n_folds}
            assert np.all(r["fit_time"] > 0)
    widest = ns["width_results"][max(ns["widths"])]
    assert np.mean(widest["train"]) >= np.mean(widest["validation"])
    assert np.mean(widest["validation"]) > 0.9
    assert min(np.mean(r["validation"]) for r in ns["depth_results"].values()) > 0.7

    # (c): one gradient norm per weight matrix, finite and positive; logistic's vanish
    # towards the input of the deepest net, relu's do not.
    deepest = max(ns["deep_depths"])
    grad_norms = ns["grad_norms"]
    assert set(grad_norms) == set(ns["activations"])
    for norms in grad_norms.values():
        for when in ("first", "last"):
            assert norms[when].shape == (deepest + 1,)
            assert np.all(np.isfinite(norms[when])) and np.all(norms[when] > 0)
    relu, logistic = grad_norms["relu"]["first"], grad_norms["logistic"]["first"]
    assert logistic[0] < 1e-3 * relu[0]
    assert logistic[0] < 1e-3 * logistic[-1]
    assert relu[0] > 1e-2 * relu[-1]
    assert "logistic's first-layer gradient norm is" in ns["findings"]["activation"]

    deep = ns["deep_results"]
    assert deep[deepest, "logistic"]["loss"] > 0.9 * math.log(10)
    assert deep[deepest, "selu"]["loss"] < 0.5 * math.log(10)
    for (depth, activation), model in ns["deep_models"].items():
        assert model.n_iter_ == len(model.history_) == ns["deep_epochs"]
        assert len(model.coefs_) == depth + 1


def test_training_set_size_example(run_example, tmp_path, capsys):
    ns = run_example("plot_training_set_size.py")
    assert len(plt.get_fignums()) == 1
    assert (tmp_path / "training_set_size.png").stat().st_size > 1000

    printed = capsys.readouterr().out
    assert "| training samples | relu | gelu | leaky_relu |" in printed
    curves = ns["curves"]
    sizes = curves["relu"]["train_sizes"]
    assert len(sizes) == len(ns["train_sizes"]) and np.all(np.diff(sizes) > 0)
    for size in sizes:
        assert f"\n| {size} | " in printed
    assert printed.rstrip().splitlines()[-1].startswith("Finding: relu's validation")

    n_splits = ns["cv"].get_n_splits()
    for activation in ns["activations"]:
        c = curves[activation]
        assert c["test_scores"].shape == c["train_scores"].shape == (len(sizes), n_splits)
        assert np.array_equal(c["train_sizes"], sizes)
        # More data helps, and the networks fit their training subsets better than
        # they predict the held-out fold.
        assert c["test_scores"][-1].mean() > c["test_scores"][0].mean() + 0.1
        assert c["train_scores"][-1].mean() >= c["test_scores"][-1].mean()
        assert c["test_scores"][-1].mean() > 0.9
