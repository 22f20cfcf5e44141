"""
Deep ReLU networks on raw inputs: clipping, batch norm, layer norm
==================================================================

"ReLU networks explode on large, unscaled inputs; normalization layers and gradient
clipping are the remedies." Measured: a ``ReLUMLPClassifier`` with six hidden layers
of 64 units trained by SGD with momentum 0.9 at a large learning rate
(``learning_rate_init=0.01``) on scikit-learn's digits *unscaled* (raw pixel values 0-16, times 10: inputs up to
160), for a fixed budget of epochs, with nothing, gradient clipping
(``max_grad_norm=1``), batch normalization, layer normalization, and, for comparison,
``leaky_relu`` and ``elu`` instead of relu. Over several seeds (each sets the split and
the weights) we count the fits that diverge (Adam, whose steps do not grow with the
gradient, diverged in none of these configurations in a trial run at lr 0.02) (a non-finite loss: ``DivergedError``),
and report test accuracy (mean ± std over the fits that did not diverge) and the
fraction of dead hidden units at the end (``history_``'s ``dead_fraction``, averaged
over the six layers).

Run as a script, ``python examples/plot_normalization_deep.py [OUTPUT_DIR]`` (figures
are saved as PNG files only when OUTPUT_DIR is given), or cell by cell in a notebook
(``# %%`` cells). ``RELUMLP_EXAMPLE_QUICK=1`` runs a reduced version (fewer seeds and
epochs) of the same code.
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

from relumlp import DivergedError, ReLUMLPClassifier

# In a notebook, sys.argv holds the kernel's options ("-f ..."), not an output directory.
out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
if out_dir is not None:
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"

seeds = range(2) if quick else range(6)
epochs = 5 if quick else 40
hidden = (64,) * 6
LR = 0.01  # SGD with momentum 0.9: a large step for inputs up to 160
X, y = load_digits(return_X_y=True)
X = 10 * X  # raw pixel values 0-16, scaled up: large, unnormalised inputs

CONFIGS = {
    "relu, nothing": {},
    "relu, max_grad_norm=1": {"max_grad_norm": 1.0},
    "relu, batch norm": {"normalization": "batch"},
    "relu, layer norm": {"normalization": "layer"},
    "leaky_relu, nothing": {"activation": "leaky_relu"},
    "elu, nothing": {"activation": "elu"},
}

# %%
# Training
# --------
# The same split, initial weights and epoch budget for every configuration of a seed.

results = {name: {"diverged": 0, "accuracy": [], "dead": []} for name in CONFIGS}
for seed in seeds:
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25,
                                                        random_state=seed, stratify=y)
    for name, params in CONFIGS.items():
        model = ReLUMLPClassifier(hidden_layer_sizes=hidden, solver="sgd",
                                  learning_rate_init=LR, momentum=0.9,
                                  max_iter=epochs, n_iter_no_change=epochs + 1,
                                  random_state=seed, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                model.fit(X_train, y_train)
            except DivergedError:
                results[name]["diverged"] += 1
                continue
        results[name]["accuracy"].append(model.score(X_test, y_test))
        results[name]["dead"].append(float(np.mean(model.history_[-1]["dead_fraction"])))

# %%
# Table and figure
# ----------------

n_fits = len(seeds)
print(f"Digits x 10 (unscaled), MLP {hidden}, SGD lr {LR} momentum 0.9, {epochs} epochs, "
      f"{n_fits} seeds\n")
print("| configuration | diverged | test accuracy | dead units at the end |")
print("| --- | ---: | ---: | ---: |")
summary = {}
for name, r in results.items():
    acc = np.array(r["accuracy"])
    dead = np.array(r["dead"])
    summary[name] = (r["diverged"] / n_fits, acc.mean() if acc.size else np.nan,
                     acc.std() if acc.size else np.nan, dead.mean() if dead.size else np.nan)
    rate, mean, std, dead_mean = summary[name]
    acc_text = f"{mean:.4f} ± {std:.4f}" if acc.size else "—"
    dead_text = f"{dead_mean:.3f}" if dead.size else "—"
    print(f"| {name} | {r['diverged']}/{n_fits} | {acc_text} | {dead_text} |")

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
names = list(CONFIGS)
x = np.arange(len(names))
axes[0].bar(x, [np.nan_to_num(summary[n][1]) for n in names],
            yerr=[np.nan_to_num(summary[n][2]) for n in names])
axes[0].set_ylabel("test accuracy (fits that did not diverge)")
axes[1].bar(x, [np.nan_to_num(summary[n][3]) for n in names], color="tab:red")
axes[1].set_ylabel("dead hidden units at the end")
for ax in axes:
    ax.set_xticks(x, names, rotation=40, ha="right")
fig.suptitle(f"Six hidden layers on inputs up to 160, SGD lr {LR}, {epochs} epochs")
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "normalization_deep.png", dpi=80)

# %%
# Finding
# -------

best = max(names, key=lambda n: (-summary[n][0], np.nan_to_num(summary[n][1], nan=-1)))
plain = summary["relu, nothing"]


def describe(name):
    rate, mean, std, dead = summary[name]
    if np.isnan(mean):
        return f"{name}: every fit diverged"
    return (f"{name}: {rate:.0%} diverged, accuracy {mean:.3f}, "
            f"{dead:.0%} dead units")


print("\nFinding: " + "; ".join(describe(n) for n in names)
      + f". Best: {best}" + (
          f" (plain relu: {plain[1]:.3f})." if not np.isnan(plain[1]) else "."))
