"""
Training-set size
=================

How much data does a one-hidden-layer network need on scikit-learn's digits, and
does the activation matter when data is scarce? scikit-learn's
``LearningCurveDisplay.from_estimator`` trains a ``Pipeline`` (``StandardScaler``,
then ``ReLUMLPClassifier``) on growing subsets of each training fold of a shuffled,
stratified 5-fold split, once with relu, once with the smooth gelu and once with
leaky_relu, and draws the training and validation accuracy (mean ± std over the
folds) against the number of training samples. The printed table lists the
validation accuracy per size and activation. A minibatch of 32 rows gives even the
smallest subsets several optimizer steps per epoch; training stops when the loss
stops improving or after ``max_iter`` epochs.

Run as a script (``python examples/plot_training_set_size.py [OUTPUT_DIR]``) or cell
by cell in a notebook (``# %%`` cells). The figure is saved as a PNG file only when
OUTPUT_DIR is given; otherwise it stays open. ``RELUMLP_EXAMPLE_QUICK=1`` runs fewer
sizes, folds and epochs and a narrower network (used by the test suite and the docs
build).
"""
# %%
import os
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import LearningCurveDisplay, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier

# In a notebook, sys.argv holds the kernel's options ("-f ..."), not an output directory.
given = len(sys.argv) > 1 and not sys.argv[1].startswith("-")
out_dir = Path(sys.argv[1]) if given else None
if out_dir is not None:
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"

X, y = load_digits(return_X_y=True)
if quick:
    train_sizes, n_splits, hidden, max_iter = np.linspace(0.1, 1.0, 3), 3, (32,), 20
else:
    train_sizes, n_splits, hidden, max_iter = np.linspace(0.1, 1.0, 6), 5, (64,), 50
activations = ("relu", "gelu", "leaky_relu")
cv = StratifiedKFold(n_splits, shuffle=True, random_state=0)

# %%
fig, axes = plt.subplots(1, len(activations), figsize=(4.2 * len(activations), 3.8),
                         sharey=True)
displays = {}
for ax, activation in zip(axes, activations):
    pipe = make_pipeline(StandardScaler(), ReLUMLPClassifier(
        hidden, activation=activation, batch_size=32, max_iter=max_iter, random_state=0))
    with warnings.catch_warnings():
        # On the larger subsets Adam can still be improving after max_iter epochs.
        warnings.simplefilter("ignore", ConvergenceWarning)
        displays[activation] = LearningCurveDisplay.from_estimator(
            pipe, X, y, train_sizes=train_sizes, cv=cv, scoring="accuracy",
            score_name="Accuracy", shuffle=True, random_state=0, ax=ax)
    # scikit-learn labels the held-out folds "Test"; here they are the validation folds.
    displays[activation].lines_[1].set_label("Validation")
    ax.set_title(activation)
    ax.legend(loc="lower right")
fig.suptitle(f"Digits, one hidden layer of {hidden[0]} units: mean ± std over "
             f"{n_splits} folds")
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "training_set_size.png", dpi=80)

# %%
# The numbers behind the curves: one row per training size, one column per fold.
curves = {activation: {"train_sizes": d.train_sizes, "train_scores": d.train_scores,
                       "test_scores": d.test_scores}
          for activation, d in displays.items()}
sizes = curves[activations[0]]["train_sizes"]
print(f"Validation accuracy (mean ± std over {n_splits} folds)\n")
print("| training samples | " + " | ".join(activations) + " |")
print("| ---: |" + " ---: |" * len(activations))
for i, size in enumerate(sizes):
    cells = [f"{curves[a]['test_scores'][i].mean():.3f} ± "
             f"{curves[a]['test_scores'][i].std():.3f}" for a in activations]
    print(f"| {size} | " + " | ".join(cells) + " |")

# %%
mean = {a: c["test_scores"].mean(axis=1) for a, c in curves.items()}
std = {a: c["test_scores"].std(axis=1) for a, c in curves.items()}
relu_gain = mean["relu"][-1] - mean["relu"][0]
last_step = mean["relu"][-1] - mean["relu"][-2]
spread = {i: max(m[i] for m in mean.values()) - min(m[i] for m in mean.values())
          for i in (0, len(sizes) - 1)}
leader = {i: max(activations, key=lambda a: mean[a][i]) for i in spread}


def compare(i):
    """Is the best activation at size index i ahead of the others by more than one std?"""
    noise = max(s[i] for s in std.values())
    if spread[i] <= noise:
        return (f"at {sizes[i]} samples the activations are within one std of each other "
                f"(spread {spread[i]:.3f}, largest std {noise:.3f})")
    return (f"at {sizes[i]} samples {leader[i]} leads by {spread[i]:.3f} "
            f"(more than the largest std, {noise:.3f})")


finding = (
    f"relu's validation accuracy goes from {mean['relu'][0]:.3f} with {sizes[0]} "
    f"training samples to {mean['relu'][-1]:.3f} with {sizes[-1]} "
    f"({relu_gain:+.3f}); the last step "
    f"({sizes[-2]} to {sizes[-1]}) adds {last_step:+.3f}"
    + (", within one std: the curve has flattened" if abs(last_step) <= std["relu"][-1]
       else "")
    + f". {compare(0)[0].upper()}{compare(0)[1:]}; {compare(len(sizes) - 1)}.")
print(f"\nFinding: {finding}")
