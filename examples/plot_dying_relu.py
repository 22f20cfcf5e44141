"""
The dying-ReLU problem, made visible
====================================

The same deep, narrow network is trained on scikit-learn's digits with relu,
leaky_relu, prelu, elu and gelu and a large learning rate. ``history_`` records, per
epoch and hidden layer, the fraction of dead units (pre-activation <= 0 for every
sample of the epoch); the plot shows how many units each activation loses, and the
printed table the final accuracy.

Run as a script (``python examples/plot_dying_relu.py [OUTPUT_DIR]``) or cell by cell
in a notebook (``# %%`` cells). Figures are saved as PNG files only when OUTPUT_DIR is
given.
"""
# %%
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier
from relumlp.diagnostics import activation_summary
from relumlp.plotting import plot_dead_units, plot_training_curves

# Figures are saved only into a directory given on the command line; in a notebook
# sys.argv holds the kernel's options ("-f ..."), and the figures are just shown.
out_dir = None
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)

# %%
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

models = {}
for activation in ["relu", "leaky_relu", "prelu", "elu", "gelu"]:
    model = ReLUMLPClassifier((12,) * 6, activation=activation, learning_rate_init=0.1,
                              max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    models[activation] = model

# %%
fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), sharey=True)
for ax, (activation, model) in zip(axes, models.items()):
    plot_dead_units(model, ax=ax)
    ax.set_title(activation)
    ax.legend(fontsize=6)
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "dying_relu_dead_units.png", dpi=80)

fig, ax = plt.subplots(figsize=(6, 4))
plot_training_curves(list(models.values()), ax=ax, labels=list(models))
if out_dir is not None:
    fig.savefig(out_dir / "dying_relu_loss.png", dpi=80)

# %%
print(f"{'activation':<12}{'test accuracy':>14}{'dead units (test data)':>24}")
for activation, model in models.items():
    summary = activation_summary(model, X_test, as_frame=False)
    dead = sum(r["dead_fraction"] * r["units"] for r in summary) / sum(
        r["units"] for r in summary)
    print(f"{activation:<12}{model.score(X_test, y_test):>14.3f}{dead:>24.2f}")
