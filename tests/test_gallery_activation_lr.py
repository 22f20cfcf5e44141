"""The "Which activation?" and "Learning rate" gallery examples, run in quick mode.

Each example runs as a script (runpy) with RELUMLP_EXAMPLE_QUICK=1 and an output
directory, so these also check that it is warning-clean (pytest turns warnings into
errors), saves its figures, leaves them open for sphinx-gallery, prints tables built
from the run and reaches the quality its findings describe. The thresholds leave a
margin below what quick mode reaches (digits best CV accuracy 0.92; circles best 0.82
against 0.49 for identity; sgd at 0.01 validation accuracy 0.95).
"""
import matplotlib.pyplot as plt
import numpy as np
import pytest

ACTIVATIONS = ["relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "softplus",
               "tanh", "logistic", "identity"]


def test_which_activation_example(run_example, tmp_path, capsys):
    ns = run_example("plot_which_activation.py")
    for png in ["which_activation_cv.png", "which_activation_dead_units.png"]:
        assert (tmp_path / png).stat().st_size > 1000
    assert len(plt.get_fignums()) == 2  # left open for sphinx-gallery's scraper

    printed = capsys.readouterr().out
    header = ("| rank | activation | CV accuracy (mean ± std) | mean fit time (s) "
              "| epochs (refit) | dead units (refit) |")
    assert printed.count(header) == 2
    for activation in ACTIVATIONS:
        assert printed.count(f"| {activation} |") == 2, activation
    assert printed.count("\nFinding: ") == 1

    results = ns["results"]
    assert list(results.index.levels[0]) == ["circles", "digits"]
    for name in ["digits", "circles"]:
        table = results.loc[name]
        assert sorted(table.index) == sorted(ACTIVATIONS)
        best = table.sort_values("rank").iloc[0]
        # The printed row of the best activation carries the numbers of cv_results_.
        assert (f"| 1 | {best.name} | {best.mean_accuracy:.3f} ± {best.std_accuracy:.3f} |"
                in printed)
        assert ns["searches"][name].cv_results_["mean_test_score"].max() == pytest.approx(
            table["mean_accuracy"].max())
        assert table["dead_fraction"].between(0, 1).all()
        # Two independent counts of dead units: history_ during the last epoch and
        # diagnostics on the final weights.
        difference = table["dead_fraction"] - table["dead_fraction_last_epoch"]
        assert difference.abs().max() <= 0.1
    digits, circles = results.loc["digits"], results.loc["circles"]
    assert digits["mean_accuracy"].max() > 0.85
    # The circles task needs a nonlinear boundary: the ReLU family beats a linear network.
    relu_family = circles.loc[["relu", "leaky_relu", "prelu", "elu", "gelu", "silu"]]
    linear = circles.loc["identity", "mean_accuracy"]
    assert relu_family["mean_accuracy"].max() > linear + 0.15
    assert circles.loc["identity", "mean_accuracy"] < 0.65


def test_learning_rate_example(run_example, tmp_path, capsys):
    ns = run_example("plot_learning_rate.py")
    assert (tmp_path / "learning_rate.png").stat().st_size > 1000
    assert len(plt.get_fignums()) == 1

    printed = capsys.readouterr().out
    assert ("| learning_rate_init | sgd: train accuracy | sgd: validation accuracy "
            "| adam: train accuracy | adam: validation accuracy |") in printed
    assert ("| learning_rate_init | sgd: final loss | sgd: epochs | adam: final loss "
            "| adam: epochs |") in printed
    rates = ns["rates"]
    assert len(rates) >= 5 and rates[0] == pytest.approx(1e-4) and rates[-1] == 1
    for rate in rates:
        assert printed.count(f"\n| {rate:.3g} |") == 2, rate  # first column
    assert "| diverged |" in printed
    assert "FitFailedWarning raised by scikit-learn:" in printed
    assert printed.count("\nFinding: ") == 1

    results, diverged = ns["results"], ns["diverged_rates"]
    # At least one sgd rate diverges on unscaled digits, and it is reported as such.
    assert diverged["sgd"]
    assert all(results.loc[("sgd", r), "diverged"] for r in diverged["sgd"])
    assert np.isnan(results.loc["sgd"].loc[diverged["sgd"], "final_loss"]).all()
    # Adam's steps are bounded by the rate: nothing below 1e-2 diverges.
    assert not [r for r in diverged["adam"] if r < 1e-2]
    # Divergence also shows in the validation curve: all folds failed, scores NaN.
    failed = ns["failed_rates"]["sgd"]
    assert set(failed) & set(diverged["sgd"])
    assert all(results.loc[("sgd", r), "failed_folds"] == ns["n_splits"] for r in failed)
    assert all(isinstance(n, int) for n in ns["fit_failed_warnings"].values())
    # Rates that trained give finite losses and sensible accuracy.
    trained = results[~results["diverged"]]
    assert np.isfinite(trained["final_loss"]).all()
    near_1e_2 = rates[np.argmin(np.abs(np.log10(rates) + 2))]
    assert results.loc[("sgd", near_1e_2), "validation_accuracy"] > 0.9
    assert results.loc["adam", "validation_accuracy"].max() > 0.9
