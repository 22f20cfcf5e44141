"""
Initialisation
==============

Does the initialisation scheme keep the signal alive through a deep network? A deep
ReLU network and a deep SELU network (eight hidden layers of 128 units each) are
initialised with He (``he_uniform``, ``he_normal``: weight variance ``2 / fan_in``),
Glorot (``glorot_uniform``: ``2 / (fan_in + fan_out)``) and LeCun (``lecun_normal``:
``1 / fan_in``) and trained on scikit-learn's digits (scaled). For every hidden layer
we measure the variance of its activations over the training rows (all samples and
units together), at initialisation and after one epoch, and after training the test
accuracy. The weights at those two moments come from a scikit-learn callback: at the
start of every epoch, scikit-learn's callback protocol hands it ``fitted_estimator``,
a copy of the model with the weights of that moment, which
``relumlp.diagnostics.hidden_activations`` reads like any fitted model.

Run as a script, ``python examples/plot_initialisation.py [OUTPUT_DIR]`` (figures are
saved as PNG files only when OUTPUT_DIR is given), or cell by cell in a notebook
(``# %%`` cells). ``RELUMLP_EXAMPLE_QUICK=1`` runs a reduced version (narrower layers,
fewer epochs) of the same code.
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
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier
from relumlp.diagnostics import hidden_activations

# In a notebook, sys.argv holds the kernel's options ("-f ..."), not an output directory.
out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
if out_dir is not None:
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"

n_layers = 8
width, max_iter = (64, 4) if quick else (128, 20)
ACTIVATIONS = ["relu", "selu"]
INITS = ["he_uniform", "he_normal", "glorot_uniform", "lecun_normal"]

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# Weights at the start of the first two epochs
# --------------------------------------------
# A callback in scikit-learn's protocol (``sklearn.callback``): ``setup`` and
# ``teardown`` around the fit, ``on_fit_task_begin`` / ``on_fit_task_end`` around the
# fit and each of its epochs. The snapshot at the start of epoch 1 holds the initial
# weights, the one at the start of epoch 2 the weights after one epoch.


class EpochStartSnapshots:
    """Keep ``fitted_estimator`` at the start of the first ``n`` epochs."""

    def __init__(self, n=2):
        self.n = n
        self.models = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "epoch" and len(self.models) < self.n:
            self.models.append(fitted_estimator)

    def on_fit_task_end(self, estimator, context):
        return False  # never stop training


def layer_variances(model, X):
    """Variance of each hidden layer's activations on X, over samples and units."""
    return np.array([np.var(hidden_activations(model, X, layer=k))
                     for k in range(len(model.coefs_) - 1)])


variances, accuracy, n_iter = {}, {}, {}
for activation in ACTIVATIONS:
    for init in INITS:
        snapshots = EpochStartSnapshots()
        model = ReLUMLPClassifier((width,) * n_layers, activation=activation,
                                  weight_init=init, max_iter=max_iter, random_state=0)
        model.set_callbacks(snapshots)
        with warnings.catch_warnings():
            # A fixed, short epoch budget: most fits stop at max_iter.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        at_init, after_one = snapshots.models
        variances[activation, init] = {"init": layer_variances(at_init, X_train),
                                       "epoch 1": layer_variances(after_one, X_train)}
        accuracy[activation, init] = model.score(X_test, y_test)
        n_iter[activation, init] = model.n_iter_

input_variance = float(np.var(X_train))
# Last hidden layer's variance over the first's, at initialisation.
ratio_init = {key: v["init"][-1] / v["init"][0] for key, v in variances.items()}

# %%
# Per-layer variance
# ------------------
# The dotted line is the variance of the (scaled) input. He's ``2 / fan_in`` makes up
# for ReLU zeroing half of its inputs; SELU is built to keep unit variance with
# LeCun's ``1 / fan_in``.

layers = np.arange(1, n_layers + 1)
fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True, sharey="row")
for row, activation in zip(axes, ACTIVATIONS):
    for ax, moment in zip(row, ["init", "epoch 1"]):
        for init in INITS:
            ax.plot(layers, variances[activation, init][moment], marker="o", label=init)
        ax.axhline(input_variance, color="grey", linestyle=":", label="input")
        ax.set_yscale("log")
        when = "at initialisation" if moment == "init" else "after one epoch"
        ax.set_title(f"{activation}, {when}")
        ax.set_ylabel("activation variance")
axes[0, 0].legend(fontsize=8)
for ax in axes[1]:
    ax.set_xlabel("hidden layer")
fig.suptitle(f"{n_layers} hidden layers of {width} units on digits")
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "initialisation_variance.png", dpi=80)

# %%
# Tables and finding
# ------------------

print(f"Activation variance per hidden layer at initialisation ({n_layers} x {width} "
      f"units; input variance {input_variance:.3f})\n")
print("| activation | weight_init | " + " | ".join(f"layer {k}" for k in layers) + " |")
print("| --- | --- |" + " ---: |" * n_layers)
for (activation, init), v in variances.items():
    print(f"| {activation} | {init} | " + " | ".join(f"{x:.3g}" for x in v["init"]) + " |")

print(f"\nLast over first hidden layer's variance, and test accuracy after {max_iter} "
      "epochs\n")
print("| activation | weight_init | ratio at init | ratio after 1 epoch "
      "| test accuracy | epochs |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for (activation, init), v in variances.items():
    print(f"| {activation} | {init} | {ratio_init[activation, init]:.3g} "
          f"| {v['epoch 1'][-1] / v['epoch 1'][0]:.3g} "
          f"| {accuracy[activation, init]:.3f} | {n_iter[activation, init]} |")


# %%
# The finding calls the variance "kept" when the last hidden layer's lies within a
# factor 3 of the first's, and gives the mean factor per layer, ``ratio ** (1 / 7)``.


def describe(key):
    ratio = ratio_init[key]
    verb = "kept" if 1 / 3 <= ratio <= 3 else "shrank" if ratio < 1 else "grew"
    return f"{key[1]} {verb} it (x{ratio:.3g}, x{ratio ** (1 / (n_layers - 1)):.2f} per layer)"


best = max(accuracy, key=accuracy.get)
worst = min(accuracy, key=accuracy.get)
finding = (
    "at initialisation, from the first to the last hidden layer, the activation "
    "variance of the deep ReLU net: "
    + ", ".join(describe(("relu", init)) for init in INITS)
    + "; of the deep SELU net: "
    + ", ".join(describe(("selu", init)) for init in INITS)
    + f"; after {max_iter} epochs of Adam (one seed each) the test accuracies ranged from "
    f"{accuracy[worst]:.3f} ({worst[0]}, {worst[1]}) to {accuracy[best]:.3f} "
    f"({best[0]}, {best[1]})."
)

# %%
# The default
# -----------
# relumlp's default ``weight_init="auto"`` is scikit-learn's initialisation (Glorot-like
# uniform bounds, intercepts drawn too) whenever every hidden activation is one of
# scikit-learn's, relu included: the default model is then scikit-learn's, the same
# weights for the same ``random_state``. He initialisation is one parameter away. Does
# the default lose anything on a usual network? One hidden layer of 100 units, 50
# epochs of Adam, several train/test splits and seeds.

splits, seeds, epochs = (2, 2, 10) if quick else (3, 6, 50)
default_scores = {}
for init in ["sklearn", "he_uniform"]:
    scores = []
    for split in range(splits):
        Xa, Xb, ya, yb = train_test_split(*load_digits(return_X_y=True), stratify=y,
                                          random_state=split)
        scale = StandardScaler().fit(Xa)
        for seed in range(seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                shallow = ReLUMLPClassifier((100,), weight_init=init, max_iter=epochs,
                                            random_state=seed)
                shallow.fit(scale.transform(Xa), ya)
            scores.append(shallow.score(scale.transform(Xb), yb))
    default_scores[init] = np.array(scores)

print(f"\nOne hidden layer of 100 relu units, {epochs} epochs of Adam, {splits} splits x "
      f"{seeds} seeds\n")
print("| initialisation | mean test accuracy | std | fits |")
print("| --- | ---: | ---: | ---: |")
for init, scores in default_scores.items():
    name = "default (scikit-learn's)" if init == "sklearn" else init
    print(f"| {name} | {scores.mean():.4f} | {scores.std():.4f} | {scores.size} |")

finding += (
    f" The default, scikit-learn's initialisation for relu, reached "
    f"{default_scores['sklearn'].mean():.4f} ± {default_scores['sklearn'].std():.4f} "
    f"over {default_scores['sklearn'].size} fits of a 100-unit network against "
    f"{default_scores['he_uniform'].mean():.4f} ± {default_scores['he_uniform'].std():.4f} "
    "with He uniform: He brings nothing there, and the default stays scikit-learn's model."
)
print("\nFinding: " + finding)
