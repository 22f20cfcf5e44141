"""Plots of what ``relumlp.diagnostics`` and ``history_`` record.

matplotlib is an optional extra (``pip install relumlp[plot]``) imported inside each
function. Every function draws on ``ax`` (a new figure if None), returns the Axes (or
the Figure for multi-panel plots) and works headless with the Agg backend.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from relumlp.diagnostics import hidden_activations

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            "relumlp.plotting needs matplotlib: pip install relumlp[plot]"
        ) from exc
    return plt


def _axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _as_list(models, labels):
    if not isinstance(models, (list, tuple)):
        models = [models]
    if labels is None:
        labels = [_describe(m) for m in models]
    return list(models), list(labels)


def _describe(model):
    act = model.activation if isinstance(model.activation, str) else "/".join(
        model.activation)
    return f"{type(model).__name__}({act})"


def plot_training_curves(models: Any, ax: Any = None, labels: Any = None,
                         validation: bool = True) -> Any:
    """Training loss per epoch of one or several fitted models on one Axes.

    Parameters
    ----------
    models : estimator or list of estimators
        Fitted ReLUMLPClassifier / ReLUMLPRegressor (or anything with ``loss_curve_``).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure if None.
    labels : list of str, default=None
        Legend labels; default: class name and activation.
    validation : bool, default=True
        Also draw ``validation_scores_`` (dashed, on a twin y axis) where recorded.

    Returns
    -------
    ax : matplotlib Axes
        The loss axes; one line per model (plus one per validation curve on the twin).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import warnings
    >>> from sklearn.datasets import load_digits
    >>> from relumlp import ReLUMLPClassifier
    >>> from relumlp.plotting import plot_training_curves
    >>> X, y = load_digits(return_X_y=True)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     models = [ReLUMLPClassifier(activation=a, max_iter=5, random_state=0)
    ...               .fit(X / 16, y) for a in ("relu", "tanh")]
    >>> ax = plot_training_curves(models)
    >>> len(ax.get_lines())
    2
    """
    ax = _axes(ax)
    models, labels = _as_list(models, labels)
    twin = None
    for model, label in zip(models, labels):
        line, = ax.plot(np.arange(1, len(model.loss_curve_) + 1),
                        np.asarray(model.loss_curve_, dtype=float), label=label)
        scores = getattr(model, "validation_scores_", None)
        if validation and scores:
            twin = twin or ax.twinx()
            twin.plot(np.arange(1, len(scores) + 1), scores, linestyle="--",
                      color=line.get_color(), label=f"{label} validation")
            twin.set_ylabel("validation score")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.legend()
    return ax


def plot_dead_units(model: Any, ax: Any = None) -> Any:
    """Fraction of dead units per hidden layer over the epochs of ``history_``.

    Parameters
    ----------
    model : ReLUMLPClassifier or ReLUMLPRegressor
        A model fitted with ``record_history=True`` (the default) and a stochastic
        solver (lbfgs records no unit statistics).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure if None.

    Returns
    -------
    ax : matplotlib Axes
        One line per hidden layer.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import warnings
    >>> from sklearn.datasets import load_digits
    >>> from relumlp import ReLUMLPClassifier
    >>> from relumlp.plotting import plot_dead_units
    >>> X, y = load_digits(return_X_y=True)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     clf = ReLUMLPClassifier((32, 16), max_iter=5, random_state=0).fit(X / 16, y)
    >>> ax = plot_dead_units(clf)
    >>> len(ax.get_lines())  # one line per hidden layer
    2
    """
    ax = _axes(ax)
    records = [r for r in model.history_ if r.get("dead_fraction") is not None]
    if not records:
        raise ValueError("history_ has no dead-unit records: fit with a stochastic solver "
                         "and record_history=True.")
    dead = np.array([r["dead_fraction"] for r in records])
    epochs = [r["epoch"] for r in records]
    for layer in range(dead.shape[1]):
        ax.plot(epochs, dead[:, layer], marker="o", label=f"hidden layer {layer}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("dead fraction")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Dead units, {_describe(model)}")
    ax.legend()
    return ax


def plot_activation_histograms(model: Any, X: ArrayLike, layers: Any = None,
                               bins: int = 50, pre_activation: bool = False,
                               fig: Any = None, ax: Any = None) -> Any:
    """Histogram of each hidden layer's activations on X, one panel per layer.

    Parameters
    ----------
    model : ReLUMLPClassifier or ReLUMLPRegressor
        A fitted model.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data whose hidden activations are drawn.
    layers : int or list of int, default=None
        Hidden layers to draw (default: all, or the one layer a single ``ax`` holds).
    bins : int, default=50
        Bars per histogram.
    pre_activation : bool, default=False
        Histogram of z instead of f(z).
    fig : matplotlib Figure, default=None
        Where to draw (its axes are replaced); a new figure if None and no ``ax``.
    ax : matplotlib Axes or sequence of Axes, default=None
        Draw into these instead: one Axes for one layer, or one Axes per layer drawn.

    Returns
    -------
    fig : matplotlib Figure
        The figure drawn into: one Axes per layer, each with ``bins`` bars.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import warnings
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from relumlp import ReLUMLPClassifier
    >>> from relumlp.plotting import plot_activation_histograms
    >>> X, y = load_digits(return_X_y=True)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     clf = ReLUMLPClassifier((32, 16), max_iter=5, random_state=0).fit(X / 16, y)
    >>> fig = plot_activation_histograms(clf, X / 16)
    >>> len(fig.axes)  # one panel per hidden layer
    2
    >>> fig, (left, right) = plt.subplots(1, 2)
    >>> _ = plot_activation_histograms(clf, X / 16, layers=1, ax=left)  # one layer, one Axes
    >>> len(right.patches)  # the other Axes is left alone
    0
    """
    plt = _pyplot()
    n_hidden = len(model.coefs_) - 1
    if isinstance(layers, (int, np.integer)):
        layers = [layers]
    if ax is not None:
        if fig is not None:
            raise ValueError("Pass fig or ax, not both.")
        axes = list(np.ravel(ax, order="C")) if np.iterable(ax) else [ax]
        if layers is None:
            if len(axes) == 1 and n_hidden > 1:
                raise ValueError(
                    f"One Axes draws one layer, but the model has {n_hidden} hidden "
                    "layers: pass layers=<layer> or one Axes per layer.")
            layers = list(range(n_hidden))
        layers = list(layers)
        if len(axes) != len(layers):
            raise ValueError(f"{len(axes)} Axes for {len(layers)} layers {layers}: pass "
                             "one Axes per layer.")
        fig = axes[0].figure
    else:
        layers = list(range(n_hidden)) if layers is None else list(layers)
        fig = fig or plt.figure(figsize=(4 * len(layers), 3))
        axes = fig.subplots(1, len(layers), squeeze=False)[0]
    for panel, layer in zip(axes, layers):
        values = hidden_activations(model, X, layer=layer, pre_activation=pre_activation)
        panel.hist(values.ravel(), bins=bins)
        panel.set_title(f"layer {layer}")
        panel.set_xlabel("pre-activation" if pre_activation else "activation")
    return fig


def plot_activation_comparison(cv_results: dict, param: str = "param_activation",
                               ax: Any = None) -> Any:
    """Mean ± std test score per activation from ``GridSearchCV.cv_results_``.

    When several candidates share an activation (other parameters varied), the best
    one is shown. Mean fit time is written above each bar.

    Parameters
    ----------
    cv_results : dict
        ``GridSearchCV(...).cv_results_``.
    param : str, default='param_activation'
        The key of the activation parameter (e.g. 'param_clf__activation' in a
        Pipeline).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure if None.

    Returns
    -------
    ax : matplotlib Axes
        One bar per activation.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import warnings
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import GridSearchCV
    >>> from relumlp import ReLUMLPClassifier
    >>> from relumlp.plotting import plot_activation_comparison
    >>> X, y = load_digits(return_X_y=True)
    >>> search = GridSearchCV(ReLUMLPClassifier((16,), max_iter=5, random_state=0),
    ...                       {"activation": ["relu", "elu", "tanh"]}, cv=2)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     search = search.fit(X[:400] / 16, y[:400])
    >>> ax = plot_activation_comparison(search.cv_results_)
    >>> len(ax.patches)  # one bar per activation
    3
    """
    ax = _axes(ax)
    best = {}
    for act, mean, std, fit_time in zip(cv_results[param], cv_results["mean_test_score"],
                                        cv_results["std_test_score"],
                                        cv_results["mean_fit_time"]):
        key = act if isinstance(act, str) else "/".join(act)
        if key not in best or mean > best[key][0]:
            best[key] = (mean, std, fit_time)
    names = sorted(best)
    means = [best[n][0] for n in names]
    bars = ax.bar(names, means, yerr=[best[n][1] for n in names], capsize=3)
    for bar, name in zip(bars, names):
        # The fit time sits above the error bar's cap, not under it.
        ax.annotate(f"{best[name][2]:.2f}s", (bar.get_x() + bar.get_width() / 2,
                                             bar.get_height() + best[name][1]),
                    xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("mean test score")
    tops = [m + best[n][1] for m, n in zip(means, names)]
    ax.set_ylim(min(means) - 0.05, min(1.0, max(tops) + 0.03) if max(tops) < 1 else
                max(tops) + 0.03)
    ax.tick_params(axis="x", rotation=45)
    return ax
