"""
Learning rate
=============

How large can ``learning_rate_init`` be, and does the answer depend on the solver?
``learning_rate_init`` is swept over log-spaced values from 1e-4 to 1 for
``solver="sgd"`` (with scikit-learn's default Nesterov momentum 0.9) and
``solver="adam"`` on scikit-learn's digits, with the pixel values left unscaled
(0-16), as when a ``StandardScaler`` is forgotten. For every rate we measure the train
and validation accuracy over stratified folds with scikit-learn's
``ValidationCurveDisplay.from_estimator``, and the final training loss
(``loss_curve_[-1]``) of a fit on all the data. When the loss of a fit becomes
non-finite, relumlp stops with ``relumlp.DivergedError`` (a ``ValueError``);
the validation curve records such fits as NaN (``error_score=np.nan``) and the loss
table says "diverged". The network has two hidden layers of 64 leaky_relu units:
with relu, runaway updates can kill the units instead (see ``plot_dying_relu.py``),
which ends training at a huge but finite loss and hides the divergence.

Run as a script, ``python examples/plot_learning_rate.py [OUTPUT_DIR]`` (the figure is
saved as a PNG file only when OUTPUT_DIR is given), or cell by cell in a notebook
(``# %%`` cells). ``RELUMLP_EXAMPLE_QUICK=1`` runs a reduced version (fewer rates,
folds and epochs) of the same code.
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
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
from sklearn.model_selection import StratifiedKFold, ValidationCurveDisplay

from relumlp import ReLUMLPClassifier
from relumlp import DivergedError

# In a notebook, sys.argv holds the kernel's options ("-f ..."), not an output directory.
out_dir = None
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"

if quick:
    rates, n_splits, max_iter = np.logspace(-4, 0, 5), 3, 10
else:
    rates, n_splits, max_iter = np.logspace(-4, 0, 9), 5, 50
SOLVERS = ["sgd", "adam"]

X, y = load_digits(return_X_y=True)  # pixel values 0-16, deliberately not scaled
base = ReLUMLPClassifier((64, 64), activation="leaky_relu", max_iter=max_iter,
                         random_state=0)

# %%
# Final training loss
# -------------------
# One fit per rate on all the data. ``DivergedError`` leaves the weights of the last
# finite epoch; ``n_iter_`` counts the finite epochs, so the loss went non-finite in
# epoch ``n_iter_ + 1``.

fits = {}
for solver in SOLVERS:
    for rate in rates:
        model = clone(base).set_params(solver=solver, learning_rate_init=rate)
        try:
            with warnings.catch_warnings():
                # max_iter is small so the example runs in seconds: some rates stop
                # before the loss has converged.
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
            fits[solver, rate] = {"final_loss": model.loss_curve_[-1],
                                  "epochs": model.n_iter_, "diverged": False}
        except DivergedError:
            fits[solver, rate] = {"final_loss": np.nan, "epochs": model.n_iter_ + 1,
                                  "diverged": True}
diverged_rates = {s: [r for r in rates if fits[s, r]["diverged"]] for s in SOLVERS}

# %%
# Validation curves and the figure
# --------------------------------
# A fit that raises is scored ``error_score=np.nan``. scikit-learn may summarise such
# failures in a ``FitFailedWarning``: it is recorded here and counted, and the NaN
# scores tell which rates failed in how many folds. Left and middle: the validation
# curves, with a red cross under every rate whose fits failed (the curves have gaps
# there). Right: the final training loss; a cross at the top marks divergence.

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
xlim = (rates[0] / 2, rates[-1] * 2)  # every panel spans all the rates
displays, fit_failed_warnings, failed_rates = {}, {}, {}
for ax, solver in zip(axes, SOLVERS):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("always", FitFailedWarning)
        display = ValidationCurveDisplay.from_estimator(
            clone(base).set_params(solver=solver), X, y,
            param_name="learning_rate_init", param_range=rates,
            cv=StratifiedKFold(n_splits, shuffle=True, random_state=0),
            error_score=np.nan, score_name="accuracy", ax=ax)
    fit_failed_warnings[solver] = sum(issubclass(w.category, FitFailedWarning)
                                      for w in caught)
    for w in caught:  # record=True swallows every warning: pass on all the others
        if not issubclass(w.category, FitFailedWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    displays[solver] = display
    failed_rates[solver] = [r for r, test in zip(rates, display.test_scores)
                            if np.isnan(test).any()]
    if failed_rates[solver]:
        ax.scatter(failed_rates[solver], [0.03] * len(failed_rates[solver]), marker="x",
                   color="tab:red", transform=ax.get_xaxis_transform(), zorder=3,
                   label="fit failed (diverged)")
    ax.set_xlim(xlim)
    ax.legend(fontsize=8)
    ax.set_title(f"solver={solver!r}: {n_splits}-fold CV")

ax = axes[2]
for solver in SOLVERS:
    line, = ax.plot(rates, [fits[solver, r]["final_loss"] for r in rates], marker="o",
                    label=solver)
    if diverged_rates[solver]:
        ax.scatter(diverged_rates[solver], [0.95] * len(diverged_rates[solver]),
                   marker="x", color=line.get_color(), transform=ax.get_xaxis_transform(),
                   label=f"{solver}: diverged")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlim(xlim)
bottom, top = ax.get_ylim()
ax.set_ylim(bottom, top * 30)  # headroom for the crosses
ax.set_xlabel("learning_rate_init")
ax.set_ylabel("final training loss (loss_curve_[-1])")
ax.set_title(f"Fit on all data, max_iter={max_iter}")
ax.legend(fontsize=8)
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "learning_rate.png", dpi=80)

# %%
# One row per solver and rate.

results = pd.DataFrame([
    {"solver": solver, "learning_rate_init": rate,
     "train_accuracy": np.mean(displays[solver].train_scores[k]),
     "validation_accuracy": np.mean(displays[solver].test_scores[k]),
     "validation_std": np.std(displays[solver].test_scores[k]),
     "failed_folds": int(np.isnan(displays[solver].test_scores[k]).sum()),
     **fits[solver, rate]}
    for solver in SOLVERS for k, rate in enumerate(rates)
]).set_index(["solver", "learning_rate_init"])

# %%
# Tables and findings
# -------------------


def cv_cell(r):
    if r.failed_folds:
        return f"failed in {r.failed_folds}/{n_splits} folds"
    return f"{r.validation_accuracy:.3f} ± {r.validation_std:.3f}"


def loss_cell(r):
    return "diverged" if r.diverged else f"{r.final_loss:.3g}"


print(f"\nValidation curve ({n_splits}-fold CV, unscaled digits, max_iter={max_iter})\n")
print("| learning_rate_init | " + " | ".join(
    f"{s}: train accuracy | {s}: validation accuracy" for s in SOLVERS) + " |")
print("| ---: |" + " ---: | ---: |" * len(SOLVERS))
for rate in rates:
    cells = []
    for s in SOLVERS:
        r = results.loc[(s, rate)]
        train = "—" if r.failed_folds else f"{r.train_accuracy:.3f}"
        cells += [train, cv_cell(r)]
    print(f"| {rate:.3g} | " + " | ".join(cells) + " |")
print("\nFitFailedWarning raised by scikit-learn: " + ", ".join(
    f"{s} {fit_failed_warnings[s]}" for s in SOLVERS) + "; rates with failed (NaN) "
      "folds: " + "; ".join(f"{s} " + (", ".join(f"{r:.3g}" for r in failed_rates[s])
                                                or "none") for s in SOLVERS))

print(f"\nFinal training loss (fit on all {X.shape[0]} samples, max_iter={max_iter})\n")
print("| learning_rate_init | " + " | ".join(
    f"{s}: final loss | {s}: epochs" for s in SOLVERS) + " |")
print("| ---: |" + " ---: | ---: |" * len(SOLVERS))
for rate in rates:
    cells = []
    for s in SOLVERS:
        r = results.loc[(s, rate)]
        cells += [loss_cell(r), str(r.epochs)]
    print(f"| {rate:.3g} | " + " | ".join(cells) + " |")
print("\nepochs: epochs run; for a diverged fit, the epoch whose loss became non-finite.")


def finding(solver):
    table = results.loc[solver]
    scores = table["validation_accuracy"].where(table["failed_folds"] == 0)
    div = diverged_rates[solver]
    text = (f"{solver} diverged at learning_rate_init >= {min(div):.3g} "
            f"({len(div)} of {len(rates)} rates)" if div else f"{solver} never diverged")
    if div and any(r > min(div) for r in rates if r not in div):
        text += " (but not at every rate above it)"
    if scores.notna().any():
        best = scores.idxmax()
        good = [r for r in rates if scores[r] >= scores[best] - 0.02]
        text += f", best validation accuracy {scores[best]:.3f} at {best:.3g}"
        text += (f", with {len(good) - 1} other rate(s) within 0.02 of it (range "
                 f"{min(good):.3g} to {max(good):.3g})" if len(good) > 1
                 else ", no other rate within 0.02 of it")
        below = [r for r in rates if div and r < min(div)]
        if below and best == max(below):
            text += "; its best rate is the largest one below the divergence"
    return text


print("\nFinding: " + "; ".join(finding(s) for s in SOLVERS) + ".")
