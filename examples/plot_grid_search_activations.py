"""
Choosing an activation with GridSearchCV
========================================

``ReLUMLPClassifier`` is a scikit-learn estimator, so it goes into a ``Pipeline`` and
``GridSearchCV`` like ``MLPClassifier``. Here a search over eight hidden activations
and three L2 penalties (``alpha``) on scikit-learn's digits, with 3-fold
cross-validation, ranks the candidates; ``plot_activation_comparison`` draws the best
candidate of each activation with its mean fit time, and the printed table lists them
all. The best pipeline, refitted on the whole training set, is then scored on
held-out data.

Run as a script (``python examples/plot_grid_search_activations.py [OUTPUT_DIR]``) or
cell by cell in a notebook (``# %%`` cells). The figure is saved as a PNG file only
when OUTPUT_DIR is given. ``RELUMLP_EXAMPLE_QUICK=1`` runs a smaller
search (used by the test suite).
"""
# %%
import os
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier
from relumlp.plotting import plot_activation_comparison

# Figures are saved only into a directory given on the command line; in a notebook
# sys.argv holds the kernel's options ("-f ..."), and the figures are just shown.
out_dir = None
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"

# %%
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

if quick:
    activations = ["relu", "leaky_relu", "gelu", "logistic"]
    alphas = [1e-4, 10.0]
    hidden, max_iter = (32,), 30
else:
    activations = ["relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "tanh", "logistic"]
    alphas = [1e-4, 1e-1, 10.0]
    hidden, max_iter = (64,), 60

# make_pipeline names each step after its class: parameters are "relumlpclassifier__*".
pipe = make_pipeline(StandardScaler(),
                     ReLUMLPClassifier(hidden, max_iter=max_iter, random_state=0))
param_grid = {"relumlpclassifier__activation": activations,
              "relumlpclassifier__alpha": alphas}
search = GridSearchCV(pipe, param_grid, cv=3)
with warnings.catch_warnings():
    # max_iter is kept small so the example runs in seconds: Adam stops before it has
    # fully converged.
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)

# %%
fig, ax = plt.subplots(figsize=(7, 4))
plot_activation_comparison(search.cv_results_, param="param_relumlpclassifier__activation",
                           ax=ax)
ax.set_title("Digits, 3-fold CV: best alpha per activation (mean fit time on bars)")
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "grid_search_activations.png", dpi=80)

# %%
res = search.cv_results_
print("| activation | alpha | CV accuracy (mean ± std) | mean fit time (s) |")
print("| --- | ---: | ---: | ---: |")
for i in sorted(range(len(res["params"])), key=lambda i: res["rank_test_score"][i]):
    print(f"| {res['param_relumlpclassifier__activation'][i]} "
          f"| {res['param_relumlpclassifier__alpha'][i]:g} "
          f"| {res['mean_test_score'][i]:.3f} ± {res['std_test_score'][i]:.3f} "
          f"| {res['mean_fit_time'][i]:.3f} |")

best = {k.split("__")[1]: v for k, v in search.best_params_.items()}
print(f"\nbest params: {best} (CV accuracy {search.best_score_:.3f})")
print(f"test accuracy of the refitted best pipeline: {search.score(X_test, y_test):.3f}")
