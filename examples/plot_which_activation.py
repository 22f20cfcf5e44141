"""
Which activation?
=================

Does the choice among relumlp's eleven hidden activations matter, and where? Every
activation (relu, leaky_relu, prelu, elu, selu, gelu, silu, softplus, tanh, logistic,
identity) is cross-validated with ``GridSearchCV`` over ``activation`` in a
``Pipeline(StandardScaler, ReLUMLPClassifier)`` on two tasks: scikit-learn's digits,
which even a linear model solves well, and a generated one that needs a nonlinear
boundary (two concentric circles hidden in a random 2-D plane of a 10-D space, the
other eight directions pure noise). Per activation we report the mean ± std accuracy
over shuffled stratified folds and the mean fit time (both from ``cv_results_``), and,
after a refit on the whole dataset, the fraction of hidden units that are dead at the
end of training (pre-activation <= 0 on every training row, from
``relumlp.diagnostics.activation_summary``). Every network has one hidden layer of 64
units and the same epoch budget, so the scores also reflect how fast each activation
trains.

Run as a script, ``python examples/plot_which_activation.py [OUTPUT_DIR]`` (figures
are saved as PNG files only when OUTPUT_DIR is given), or cell by cell in a notebook
(``# %%`` cells). ``RELUMLP_EXAMPLE_QUICK=1`` runs a reduced version (fewer folds,
epochs and samples) of the same code.
"""
# %%
import os
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.datasets import load_digits, make_circles
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier
from relumlp.diagnostics import activation_summary
from relumlp.plotting import plot_activation_comparison

# In a notebook, sys.argv holds the kernel's options ("-f ..."), not an output directory.
out_dir = None
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"

ACTIVATIONS = ["relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "softplus",
               "tanh", "logistic", "identity"]

# %%
# Two datasets
# ------------
# The circles task: the class is whether a point lies on the inner or the outer circle
# of a 2-D plane; a random rotation spreads that plane over all ten features, so no
# single feature, and no linear combination of them, separates the classes.


def make_hidden_circles(n_samples, n_features=10, noise_scale=0.5, random_state=0):
    rng = np.random.RandomState(random_state)
    X_plane, y = make_circles(n_samples, noise=0.08, factor=0.6, random_state=random_state)
    X = np.hstack([X_plane, noise_scale * rng.standard_normal((n_samples, n_features - 2))])
    rotation, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    return X @ rotation, y


# Per dataset: X, y, max_iter, batch_size. Small batches give the short epoch budget
# enough optimizer steps.
if quick:
    n_splits, hidden = 3, (32,)
    datasets = {"digits": (*load_digits(return_X_y=True), 10, 64),
                "circles": (*make_hidden_circles(600), 60, 32)}
else:
    n_splits, hidden = 5, (64,)
    datasets = {"digits": (*load_digits(return_X_y=True), 30, 64),
                "circles": (*make_hidden_circles(1200), 50, 64)}

# %%
# Cross-validation over ``activation``
# ------------------------------------
# digits is ordered by writer, so the folds are shuffled. ``refit=False``: the
# refits below train every activation, not only the best one.

searches, refitted = {}, {}
for name, (X, y, max_iter, batch_size) in datasets.items():
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", ReLUMLPClassifier(hidden, max_iter=max_iter,
                                               batch_size=batch_size, random_state=0))])
    search = GridSearchCV(pipe, {"mlp__activation": ACTIVATIONS}, refit=False,
                          cv=StratifiedKFold(n_splits, shuffle=True, random_state=0))
    with warnings.catch_warnings():
        # The epoch budget is the same for every activation and deliberately short:
        # some stop at max_iter before the loss has converged.
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
        refitted[name] = {act: clone(pipe).set_params(mlp__activation=act).fit(X, y)
                          for act in ACTIVATIONS}
    searches[name] = search

# %%
# One row per dataset and activation: CV scores, fit time, and the dead units of the
# refitted network on the training data. For relu a dead unit passes no gradient
# and is lost for good; for the other activations "dead" only means the unit sits on
# its negative branch for every row. ``history_`` counted dead units during the last
# epoch; that count is kept as a cross-check.

rows = []
for name, search in searches.items():
    res = search.cv_results_
    X = datasets[name][0]
    for i, act in enumerate(res["param_mlp__activation"]):
        pipe = refitted[name][act]
        summary = activation_summary(pipe["mlp"], pipe["scale"].transform(X),
                                     as_frame=False)
        units = [layer["units"] for layer in summary]
        rows.append({
            "dataset": name, "activation": act,
            "mean_accuracy": res["mean_test_score"][i],
            "std_accuracy": res["std_test_score"][i],
            "rank": int(res["rank_test_score"][i]),
            "mean_fit_time": res["mean_fit_time"][i],
            "n_iter": pipe["mlp"].n_iter_,
            "dead_fraction": np.average([layer["dead_fraction"] for layer in summary],
                                        weights=units),
            "dead_fraction_last_epoch": float(np.mean(
                pipe["mlp"].history_[-1]["dead_fraction"])),
        })
results = pd.DataFrame(rows).set_index(["dataset", "activation"])

# %%
# Figures
# -------
# First figure: ``plot_activation_comparison`` with the pipeline's parameter name; the
# mean fit time is written above each bar. Second figure: dead units of the refitted
# networks.

fig, axes = plt.subplots(1, len(searches), figsize=(6 * len(searches), 4))
for ax, (name, search) in zip(axes, searches.items()):
    plot_activation_comparison(search.cv_results_, param="param_mlp__activation", ax=ax)
    ax.set_title(f"{name}: {n_splits}-fold CV accuracy (mean ± std)")
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "which_activation_cv.png", dpi=80)

fig, ax = plt.subplots(figsize=(8, 3.8))
names = sorted(ACTIVATIONS)  # plot_activation_comparison's order
width = 0.8 / len(searches)
for k, name in enumerate(searches):
    ax.bar(np.arange(len(names)) + (k - (len(searches) - 1) / 2) * width,
           [results.loc[(name, act), "dead_fraction"] for act in names], width, label=name)
if results["dead_fraction"].max() == 0:
    # All bars have height 0: say so rather than leave an empty-looking plot.
    ax.text(0.5, 0.5, "no dead units on any dataset", transform=ax.transAxes,
            ha="center", va="center")
ax.set_xticks(np.arange(len(names)), names, rotation=45)
ax.set_ylim(0, max(0.1, 1.15 * results["dead_fraction"].max()))
ax.set_ylabel("dead fraction of hidden units")
ax.set_title("Dead units at the end of training (refit on all data)")
ax.legend()
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "which_activation_dead_units.png", dpi=80)

# %%
# Tables and findings
# -------------------

for name in searches:
    table = results.loc[name].sort_values("rank")
    X, y, max_iter, batch_size = datasets[name]
    print(f"\n{name} ({X.shape[0]} samples, {X.shape[1]} features, {n_splits}-fold CV, "
          f"hidden_layer_sizes={hidden}, max_iter={max_iter}, batch_size={batch_size})\n")
    print("| rank | activation | CV accuracy (mean ± std) | mean fit time (s) "
          "| epochs (refit) | dead units (refit) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for r in table.itertuples():
        print(f"| {r.rank} | {r.Index} | {r.mean_accuracy:.3f} ± {r.std_accuracy:.3f} "
              f"| {r.mean_fit_time:.3f} | {r.n_iter} | {r.dead_fraction:.2f} |")


def compare(acc, std, a, b):
    verb = "beat" if acc[a] > acc[b] else ("tied with" if acc[a] == acc[b] else "lost to")
    close = 0 < abs(acc[a] - acc[b]) <= max(std[a], std[b])
    noise = ", within one fold std" if close else ""
    return f"{a} {verb} {b} ({acc[a]:.3f} vs {acc[b]:.3f}{noise})"


def finding(name):
    table = results.loc[name].sort_values("mean_accuracy", ascending=False)
    acc, std, dead = table["mean_accuracy"], table["std_accuracy"], table["dead_fraction"]
    best, worst = acc.index[0], acc.index[-1]
    close = [act for act in acc.index[1:] if acc[best] - acc[act] <= std[best]]
    text = (f"on {name}, {best} ranked first ({acc[best]:.3f} ± {std[best]:.3f}) and "
            f"{worst} last ({acc[worst]:.3f}); ")
    text += {0: "no other activation is", 1: "1 other activation is"}.get(
        len(close), f"{len(close)} other activations are")
    text += " within one fold std of the best; "
    text += f"{compare(acc, std, 'relu', 'tanh')}, {compare(acc, std, 'relu', 'logistic')}; "
    text += (f"the most dead units: {dead.idxmax()} ({dead.max():.2f}, relu "
             f"{dead['relu']:.2f})" if dead.max() > 0
             else "no activation ended with dead units")
    return text


print("\nFinding: " + "; ".join(finding(name) for name in searches) + ".")
