"""Write relu_analysis.ipynb, without outputs, from the cells below.

The notebook is committed without outputs and executed by tests/test_notebook.py in a
real Jupyter kernel. Edit the cells here, then run
``python examples/notebooks/make_relu_analysis.py``; the test checks that the committed
notebook is what this script writes. Cell tags name what the test expects a cell to
display: ``plot`` (an image/png), ``estimator-repr`` (the estimator's HTML repr),
``history-table``, ``summary-table`` and ``grid-table`` (an HTML DataFrame table).
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK = Path(__file__).with_name("relu_analysis.ipynb")


def md(text):
    return new_markdown_cell(text.strip())


def code(text, *tags):
    cell = new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


CELLS = [
    md("""
# What the hidden units of a ReLU network do

This notebook trains a `ReLUMLPClassifier` on scikit-learn's digits with the per-epoch
history switched on (`record_history=True`, the default), reads that history as a
DataFrame, looks for dead units on held-out data, draws the distribution of the hidden
activations, and finally compares activations with a small `GridSearchCV`.

It needs `relumlp`, `matplotlib` and `pandas` (`pip install "relumlp[plot]" pandas`)
and runs in a few seconds: every fit uses a fixed `random_state`.
"""),
    code("""
%matplotlib inline
import warnings

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import relumlp
from relumlp import ReLUMLPClassifier
from relumlp.diagnostics import activation_summary, dead_units
from relumlp.plotting import (
    plot_activation_comparison,
    plot_activation_histograms,
    plot_dead_units,
    plot_training_curves,
)

# max_iter is kept small so that the notebook runs in seconds: Adam stops before it
# has fully converged, which scikit-learn reports with a ConvergenceWarning.
warnings.simplefilter("ignore", ConvergenceWarning)
print("relumlp", relumlp.__version__, "| OpenMP build:", relumlp.openmp_enabled())
"""),
    md("""
## Data

8×8 images of handwritten digits, 1797 rows, 64 features. A quarter is held out, and
the features are standardised with statistics of the training part.
"""),
    code("""
X, y = load_digits(return_X_y=True)
X_raw_train, X_raw_test, y_train, y_test = train_test_split(X, y, stratify=y,
                                                            random_state=0)
scaler = StandardScaler().fit(X_raw_train)
X_train, X_test = scaler.transform(X_raw_train), scaler.transform(X_raw_test)
X_train.shape, X_test.shape
"""),
    md("""
## A fitted model

Two hidden relu layers. The parameters and fitted attributes are those of
scikit-learn's `MLPClassifier`; a fitted estimator as the last expression of a cell
shows its HTML summary.
"""),
    code("""
model = ReLUMLPClassifier((64, 32), max_iter=30, random_state=0, record_history=True)
model.fit(X_train, y_train)
model
""", "estimator-repr"),
    code("""
print(f"test accuracy: {model.score(X_test, y_test):.3f} after {model.n_iter_} epochs")
"""),
    md("""
## The training history

`history_` holds one record per epoch: loss, validation score (when there is a
validation set), learning rate, time, and per hidden layer the fraction of dead units
(pre-activation ≤ 0 for every sample of the epoch), the sparsity (share of
pre-activations ≤ 0) and the gradient norm. `history_frame()` flattens it into a
DataFrame: column `dead_fraction_0` is the first hidden layer.
"""),
    code("""
history = model.history_frame()
history.round(4)
""", "history-table"),
    code("""
fig, (ax_loss, ax_dead) = plt.subplots(1, 2, figsize=(10, 3.5))
plot_training_curves(model, ax=ax_loss)
plot_dead_units(model, ax=ax_dead)
fig.tight_layout()
""", "plot"),
    md("""
## Dead units on held-out data

`dead_units(model, X)` returns, per hidden layer, a boolean mask of the units whose
pre-activation is ≤ 0 for every row of `X`; `activation_summary(model, X)` adds the
sparsity and the mean and largest activation per layer.
"""),
    code("""
for layer, mask in enumerate(dead_units(model, X_test)):
    print(f"hidden layer {layer}: {mask.sum()} of {mask.size} units dead on the test set")
activation_summary(model, X_test).round(3)
""", "summary-table"),
    md("""
This well-behaved network has no dead units. A deep, narrow one trained with a large
learning rate loses many: six layers of 12 units, learning rate 0.1, relu against
leaky_relu and elu.
"""),
    code("""
deep = {}
for activation in ["relu", "leaky_relu", "elu"]:
    deep[activation] = ReLUMLPClassifier(
        (12,) * 6, activation=activation, learning_rate_init=0.1, max_iter=15,
        random_state=0,
    ).fit(X_train, y_train)

pd.DataFrame({
    activation: {
        "test accuracy": clf.score(X_test, y_test),
        **{f"dead units, layer {layer}": int(mask.sum())
           for layer, mask in enumerate(dead_units(clf, X_test))},
    }
    for activation, clf in deep.items()
}).round(3)
""", "summary-table"),
    code("""
fig, axes = plt.subplots(1, len(deep), figsize=(12, 3.2), sharey=True)
for ax, (activation, clf) in zip(axes, deep.items()):
    plot_dead_units(clf, ax=ax)
    ax.set_title(activation)
    ax.legend(fontsize=6)
fig.tight_layout()
""", "plot"),
    md("""
## Activation histograms

The distribution of each hidden layer's outputs on the test set. relu outputs are
exactly 0 for every negative pre-activation, hence the spike at 0; the pre-activations
(`pre_activation=True`) show what the unit receives.
"""),
    code("""
fig = plot_activation_histograms(model, X_test, bins=40)
fig.suptitle("relu (64, 32): activations on the test set")
fig.tight_layout()
""", "plot"),
    code("""
fig = plot_activation_histograms(model, X_test, bins=40, pre_activation=True)
fig.suptitle("relu (64, 32): pre-activations on the test set")
fig.tight_layout()
""", "plot"),
    md("""
## Choosing an activation with GridSearchCV

`activation` is a plain string parameter, so `GridSearchCV` searches it like any
other. In a `Pipeline` built by `make_pipeline`, the parameter is
`relumlpclassifier__activation`.
"""),
    code("""
pipe = make_pipeline(StandardScaler(),
                     ReLUMLPClassifier((32,), max_iter=30, random_state=0))
search = GridSearchCV(
    pipe,
    {"relumlpclassifier__activation": ["relu", "leaky_relu", "elu", "gelu", "tanh"]},
    cv=3,
)
search.fit(X_raw_train, y_train)  # unscaled: the pipeline scales each training fold

results = pd.DataFrame(search.cv_results_)
results[["param_relumlpclassifier__activation", "mean_test_score", "std_test_score",
         "mean_fit_time", "rank_test_score"]].sort_values("rank_test_score").round(3)
""", "grid-table"),
    code("""
ax = plot_activation_comparison(search.cv_results_,
                                param="param_relumlpclassifier__activation")
ax.set_title("digits, 3-fold CV (mean fit time above the bars)")
print(f"best: {search.best_params_}, test accuracy {search.score(X_raw_test, y_test):.3f}")
""", "plot"),
    md("""
With so few epochs the activations are close; the gallery examples in the
documentation vary the learning rate, depth, width, training-set size,
regularisation and initialisation for each of them.
"""),
]


def build():
    nb = new_notebook(cells=CELLS)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    # Stable cell ids, so that regenerating the notebook gives the same file.
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"
    nbformat.validate(nb)
    return nb


if __name__ == "__main__":
    nbformat.write(build(), NOTEBOOK)
    print(f"wrote {NOTEBOOK}")
