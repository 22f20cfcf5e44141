"""relumlp.plotting draws what it should (headless), and the examples run."""
import warnings

import matplotlib.pyplot as plt  # Agg: tests/conftest.py
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from relumlp import ReLUMLPClassifier, plotting

DIGITS = dict(n=None, scale="unit")  # the digits fixture: every row, X / 16


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = ReLUMLPClassifier((10, 6), max_iter=4, random_state=0).fit(X, y)
        b = ReLUMLPClassifier((10, 6), max_iter=3, early_stopping=True,
                              random_state=0).fit(X, y)
    yield X, y, a, b
    plt.close("all")


def test_training_curves(fitted):
    X, y, a, b = fitted
    ax = plotting.plot_training_curves([a, b], labels=["a", "b"])
    assert len(ax.get_lines()) == 2
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), a.loss_curve_)
    twin = [other for other in ax.figure.axes if other is not ax]
    assert len(twin) == 1 and len(twin[0].get_lines()) == 1  # b's validation scores


def test_dead_units(fitted):
    X, y, a, _ = fitted
    _, ax = plt.subplots()
    assert plotting.plot_dead_units(a, ax=ax) is ax
    assert len(ax.get_lines()) == 2  # one per hidden layer
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(),
                               [r["dead_fraction"][1] for r in a.history_])


def test_activation_histograms(fitted):
    X, y, a, _ = fitted
    fig = plotting.plot_activation_histograms(a, X, bins=20)
    assert len(fig.axes) == 2
    assert all(len(ax.patches) == 20 for ax in fig.axes)


def test_activation_histograms_into_given_axes(fitted):
    X, y, a, _ = fitted
    from relumlp.diagnostics import hidden_activations

    # One Axes, one layer: drawn there, nothing else created.
    fig, (left, right) = plt.subplots(1, 2)
    assert plotting.plot_activation_histograms(a, X, layers=1, bins=15, ax=left) is fig
    assert len(left.patches) == 15 and len(right.patches) == 0 and len(fig.axes) == 2
    heights = np.histogram(hidden_activations(a, X, layer=1).ravel(), bins=15)[0]
    np.testing.assert_array_equal([p.get_height() for p in left.patches], heights)
    # A sequence of Axes (here a 1 x 2 grid): one layer each, in order.
    fig, axes = plt.subplots(1, 2)
    plotting.plot_activation_histograms(a, X, bins=10, ax=axes, pre_activation=True)
    assert [ax.get_title() for ax in axes] == ["layer 0", "layer 1"]
    assert all(len(ax.patches) == 10 for ax in axes)
    # Mismatches say what to pass.
    with pytest.raises(ValueError, match="one Axes per layer"):
        plotting.plot_activation_histograms(a, X, ax=axes[0])
    with pytest.raises(ValueError, match="one Axes per layer"):
        plotting.plot_activation_histograms(a, X, layers=[0], ax=axes)
    with pytest.raises(ValueError, match="fig or ax"):
        plotting.plot_activation_histograms(a, X, ax=axes, fig=fig)
    plt.close("all")


def test_activation_comparison(fitted):
    X, y, _, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(ReLUMLPClassifier((8,), max_iter=3, random_state=0),
                              {"activation": ["relu", "tanh", "elu"], "alpha": [1e-4, 1]},
                              cv=2).fit(X[:300], y[:300])
    ax = plotting.plot_activation_comparison(search.cv_results_)
    assert len(ax.patches) == 3
    assert sorted(t.get_text() for t in ax.get_xticklabels()) == ["elu", "relu", "tanh"]


def test_dying_relu_example_runs(run_example, tmp_path, capsys):
    run_example("plot_dying_relu.py")
    assert (tmp_path / "dying_relu_dead_units.png").stat().st_size > 1000
    assert (tmp_path / "dying_relu_loss.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "leaky_relu" in printed and "test accuracy" in printed
