"""
Dropout and L1/L2
=================

A wide network on a small training set fits it perfectly: does dropout, an L2 penalty
(``alpha``) or an L1 penalty (``alpha_l1``) buy validation accuracy, and at what cost
in training accuracy? A ``ReLUMLPClassifier`` with two hidden layers of 256 and 128
units is trained with Adam (``learning_rate_init=0.003``, a fixed budget of 30 epochs)
on 25 % of scikit-learn's digits (scaled, float32) and scored on the other 75 %. We
measure train and validation accuracy, mean ± std over three random
splits (the seed sets both the split and the weights), for dropout rates 0 to 0.6 and
for ``alpha`` and ``alpha_l1`` on log ranges, and for L1 how many first-layer weights
it drives to zero.

relumlp's L1 penalty is a subgradient (``alpha_l1 * sign(w)`` added to the gradient,
no proximal step), so it never sets a weight exactly to 0: the count of exact zeros
is printed to show it. With Adam every weight moves by about ``learning_rate_init``
per step whatever the size of its gradient, so a weight the penalty has pushed to zero
keeps flipping sign within about ``learning_rate_init`` of 0. The sparsity reported is
therefore the fraction of first-layer weights (``coefs_[0]``) with
``|w| < learning_rate_init``. The same step size caps how far a weight can travel in
the epoch budget (``n_steps * learning_rate_init``), which is printed next to the size
of the initial weights.

Run as a script, ``python examples/plot_dropout_regularisation.py [OUTPUT_DIR]``
(figures are saved as PNG files only when OUTPUT_DIR is given), or cell by cell in a
notebook (``# %%`` cells). ``RELUMLP_EXAMPLE_QUICK=1`` runs a reduced version (a
smaller network, fewer epochs, one split, fewer penalty values) of the same code.
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

# In a notebook, sys.argv holds the kernel's options ("-f ..."), not an output directory.
out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
if out_dir is not None:
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"

if quick:
    hidden, max_iter, seeds = (64, 32), 30, [0]
    alphas_l2 = np.logspace(-3, 1.5, 3)
    alphas_l1 = np.logspace(-3, 0.5, 3)
else:
    hidden, max_iter, seeds = (256, 128), 30, [0, 1, 2]
    alphas_l2 = np.logspace(-3, 1.5, 5)
    alphas_l1 = np.logspace(-3, 0.5, 5)
dropout_rates = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
learning_rate_init = 0.003
SPARSITY_THRESHOLD = learning_rate_init  # Adam's step size: L1-zeroed weights jitter below it

# %%
# Data and one training run
# -------------------------
# 25 % of digits for training, so that the network overfits; the rest for validation.
# Every run has the same epoch budget and no penalty other than the one varied
# (``alpha=0`` unless ``alpha`` is the parameter studied).

X, y = load_digits(return_X_y=True)
splits = []
for seed in seeds:
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, train_size=0.25, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    splits.append((scaler.transform(X_train).astype(np.float32), y_train,
                   scaler.transform(X_val).astype(np.float32), y_val))


def run(**params):
    """Train on every split; return train and validation accuracies and the models."""
    train, val, models = [], [], []
    for seed, (X_train, y_train, X_val, y_val) in zip(seeds, splits):
        model = ReLUMLPClassifier(hidden, learning_rate_init=learning_rate_init,
                                  max_iter=max_iter, random_state=seed,
                                  **{"alpha": 0.0, **params})
        with warnings.catch_warnings():
            # The epoch budget is fixed and short: most runs stop at max_iter.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        train.append(model.score(X_train, y_train))
        val.append(model.score(X_val, y_val))
        models.append(model)
    return np.array(train), np.array(val), models


# %%
# Dropout
# -------

dropout_train, dropout_val = [], []
for rate in dropout_rates:
    train, val, _ = run(dropout=rate)
    dropout_train.append(train)
    dropout_val.append(val)
dropout_train, dropout_val = np.array(dropout_train), np.array(dropout_val)
dropout_train_mean, dropout_train_std = dropout_train.mean(1), dropout_train.std(1)
dropout_val_mean, dropout_val_std = dropout_val.mean(1), dropout_val.std(1)

fig, ax = plt.subplots(figsize=(6, 4))
for name, mean, std in [("train", dropout_train_mean, dropout_train_std),
                        ("validation", dropout_val_mean, dropout_val_std)]:
    ax.errorbar(dropout_rates, mean, yerr=std, marker="o", capsize=3, label=name)
ax.set_xlabel("dropout rate (both hidden layers)")
ax.set_ylabel(f"accuracy (mean ± std, {len(seeds)} splits)")
ax.set_title(f"Dropout, MLP {hidden} on 25 % of digits")
ax.legend()
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "dropout_regularisation_dropout.png", dpi=80)

# %%
# L2 and L1 penalties
# -------------------
# For L1, the share of first-layer weights below the threshold (near zero) and of
# weights exactly zero.


def summarise(train, val):
    return train.mean(), train.std(), val.mean(), val.std()


l2 = []
for alpha in alphas_l2:
    train, val, _ = run(alpha=alpha)
    l2.append(summarise(train, val))
l2_train_mean, l2_train_std, l2_val_mean, l2_val_std = np.array(l2).T

l1, l1_sparsity, l1_exact_zeros = [], [], []
for alpha_l1 in alphas_l1:
    train, val, models = run(alpha_l1=alpha_l1)
    l1.append(summarise(train, val))
    l1_sparsity.append(np.mean([np.mean(np.abs(m.coefs_[0]) < SPARSITY_THRESHOLD)
                                for m in models]))
    l1_exact_zeros.append(np.mean([np.mean(m.coefs_[0] == 0) for m in models]))
l1_train_mean, l1_train_std, l1_val_mean, l1_val_std = np.array(l1).T
l1_sparsity, l1_exact_zeros = np.array(l1_sparsity), np.array(l1_exact_zeros)

# The step budget: Adam moves a weight by about learning_rate_init per step, and the
# He-uniform initial weights of the first layer lie in U(-b, b), b = sqrt(6 / 64).
n_train = len(splits[0][1])
n_steps = models[0].n_iter_ * int(np.ceil(n_train / min(200, n_train)))
reach = n_steps * learning_rate_init
init_bound = np.sqrt(6 / X.shape[1])

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
curves = [("alpha (L2)", alphas_l2, l2_train_mean, l2_train_std, l2_val_mean, l2_val_std),
          ("alpha_l1 (L1)", alphas_l1, l1_train_mean, l1_train_std, l1_val_mean, l1_val_std)]
for ax, (name, alphas, train_mean, train_std, val_mean, val_std) in zip(axes, curves):
    ax.errorbar(alphas, train_mean, yerr=train_std, marker="o", capsize=3, label="train")
    ax.errorbar(alphas, val_mean, yerr=val_std, marker="o", capsize=3, label="validation")
    ax.set_xscale("log")
    ax.set_xlabel(name)
    ax.set_ylabel(f"accuracy (mean ± std, {len(seeds)} splits)")
    ax.set_title(f"{name.split()[0]}, MLP {hidden}")
axes[0].legend(loc="lower left")
twin = axes[1].twinx()
twin.plot(alphas_l1, l1_sparsity, "s--", color="tab:green",
          label=f"first-layer |w| < {SPARSITY_THRESHOLD:g}")
twin.set_ylim(0, 1)
twin.set_ylabel("share of first-layer weights near 0", color="tab:green")
lines = axes[1].get_legend_handles_labels()
twin_lines = twin.get_legend_handles_labels()
axes[1].legend(lines[0] + twin_lines[0], lines[1] + twin_lines[1], loc="center left")
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "dropout_regularisation_penalties.png", dpi=80)

# %%
# Tables and finding
# ------------------


def pm(mean, std):
    return f"{mean:.3f} ± {std:.3f}"


print(f"MLP {hidden}, {max_iter} epochs, Adam (learning_rate_init={learning_rate_init:g}), "
      f"{n_train} training / "
      f"{len(splits[0][3])} validation rows, {len(seeds)} split(s)\n")
print("| dropout | train accuracy | validation accuracy | gap |")
print("| ---: | ---: | ---: | ---: |")
for k, rate in enumerate(dropout_rates):
    print(f"| {rate:.1f} | {pm(dropout_train_mean[k], dropout_train_std[k])} "
          f"| {pm(dropout_val_mean[k], dropout_val_std[k])} "
          f"| {dropout_train_mean[k] - dropout_val_mean[k]:.3f} |")

print("\n| alpha (L2) | train accuracy | validation accuracy |")
print("| ---: | ---: | ---: |")
for k, alpha in enumerate(alphas_l2):
    print(f"| {alpha:.3g} | {pm(l2_train_mean[k], l2_train_std[k])} "
          f"| {pm(l2_val_mean[k], l2_val_std[k])} |")

print(f"\n| alpha_l1 (L1) | train accuracy | validation accuracy "
      f"| first-layer \\|w\\| < {SPARSITY_THRESHOLD:g} | exactly 0 |")
print("| ---: | ---: | ---: | ---: | ---: |")
for k, alpha_l1 in enumerate(alphas_l1):
    print(f"| {alpha_l1:.3g} | {pm(l1_train_mean[k], l1_train_std[k])} "
          f"| {pm(l1_val_mean[k], l1_val_std[k])} | {l1_sparsity[k]:.3f} "
          f"| {l1_exact_zeros[k]:.3f} |")
print(f"\nAdam steps per run: {n_steps}; at about {learning_rate_init:g} per step a "
      f"weight travels at most ~{reach:.2f}; the initial first-layer weights lie in "
      f"(-{init_bound:.2f}, {init_bound:.2f}).")

# %%
# The finding compares each regulariser's best validation accuracy with the weakest
# setting (dropout 0, the smallest penalty) and sets the difference against the std
# over splits of the two runs compared.

gap = dropout_train_mean - dropout_val_mean
train_drop = dropout_train_mean[0] - dropout_train_mean[-1]
# The best setting other than the weakest one.
best, best_l2, best_l1 = (1 + int(np.argmax(m[1:]))
                          for m in (dropout_val_mean, l2_val_mean, l1_val_mean))


def change(mean, std, k):
    """How the validation accuracy at index k compares with index 0."""
    delta = round(float(mean[k] - mean[0]), 3) + 0.0  # + 0.0: no "-0.000"
    text = f"changed validation accuracy by {delta:+.3f}"
    if len(seeds) > 1:
        noise = max(std[0], std[k])
        text += (f" ({'larger' if abs(delta) > noise else 'no larger'} than the std over "
                 f"splits, {noise:.3f})")
    return text


zeros = ("no weight was exactly 0" if l1_exact_zeros.max() == 0
         else f"up to {l1_exact_zeros.max():.1%} were exactly 0")
finding = (
    f"dropout {dropout_rates[-1]:.1f} "
    f"{'lowered' if train_drop > 0 else 'did not lower'} train accuracy "
    f"({dropout_train_mean[0]:.3f} -> {dropout_train_mean[-1]:.3f}) and "
    f"{'narrowed' if gap[-1] < gap[0] else 'did not narrow'} the train-validation gap "
    f"({gap[0]:.3f} -> {gap[-1]:.3f}); the best rate above 0, {dropout_rates[best]:.1f}, "
    f"{change(dropout_val_mean, dropout_val_std, best)} relative to no dropout "
    f"({dropout_val_mean[0]:.3f} -> {dropout_val_mean[best]:.3f}); the best larger "
    f"alpha ({alphas_l2[best_l2]:.3g}) {change(l2_val_mean, l2_val_std, best_l2)} "
    f"relative to alpha={alphas_l2[0]:.3g}; the best larger alpha_l1 "
    f"({alphas_l1[best_l1]:.3g}) {change(l1_val_mean, l1_val_std, best_l1)} relative "
    f"to alpha_l1={alphas_l1[0]:.3g}; the share of first-layer weights with |w| < "
    f"{SPARSITY_THRESHOLD:g} {'rose' if l1_sparsity[-1] > l1_sparsity[0] else 'did not rise'}"
    f" with alpha_l1 ({l1_sparsity[0]:.2f} -> {l1_sparsity[-1]:.2f}) and {zeros} "
    "(subgradient L1, no proximal step)."
)
print("\nFinding: " + finding)
