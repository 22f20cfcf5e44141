"""What the hidden units of a fitted relumlp model do on data.

Functions here take a fitted ``ReLUMLPClassifier`` / ``ReLUMLPRegressor`` and an X and
return arrays: hidden activations (or pre-activations) of a layer, and which units are
dead. Work is done in chunks of rows, so memory stays bounded on large X.

A unit is **dead** on X when its pre-activation ``z`` is <= 0 for every row of X: its
output is then 0 (relu) or on the negative branch (leaky_relu, prelu, elu, selu) for
all of X, and for relu no gradient reaches its incoming weights.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted, validate_data

from relumlp import _inference, _kernels

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike


def _validate(model, X):
    check_is_fitted(model)
    X = validate_data(model, X, accept_sparse=["csr", "csc"],
                      dtype=(np.float64, np.float32), reset=False)
    dtype = model.coefs_[0].dtype
    if sp.issparse(X):
        return X.tocsr().astype(dtype, copy=False)
    return np.ascontiguousarray(X, dtype=dtype)


def _hidden_passes(model, X):
    """Yield, per chunk of rows, the list of (Z, A) of every hidden layer: the kernels'
    prediction pass with every layer's pre-activations kept. The arrays are views,
    valid until the next chunk."""
    layout = model._current_layout()
    flat = model._current_flat(layout)
    ws = layout.workspace(max(1, min(_inference.CHUNK_ROWS, X.shape[0])), flat.dtype,
                          keep_z=True)
    out = np.empty((ws.rows, layout.n_outputs), dtype=flat.dtype)
    for start in range(0, X.shape[0], ws.rows):
        block = X[start:start + ws.rows]
        n = block.shape[0]
        _kernels.forward(flat, ws, _inference.as_input(block, flat.dtype), out[:n], 1)
        yield [ws.layer(l, n) for l in range(layout.n_layers - 1)]


def hidden_activations(model: Any, X: ArrayLike, layer: int = 0,
                       pre_activation: bool = False) -> np.ndarray:
    """Activations of one hidden layer of a fitted model.

    Parameters
    ----------
    model : ReLUMLPClassifier or ReLUMLPRegressor
        A fitted model.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Input data.
    layer : int, default=0
        Index of the hidden layer (0 is the first; negative indices count from the
        last hidden layer).
    pre_activation : bool, default=False
        Return ``z = a_prev @ W + b`` instead of ``f(z)``.

    Returns
    -------
    H : ndarray of shape (n_samples, n_units)
        In the model's dtype. Dropout is never applied.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from relumlp import ReLUMLPClassifier
    >>> from relumlp.diagnostics import hidden_activations
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = ReLUMLPClassifier((8, 4), max_iter=20, random_state=0).fit(X, y)
    >>> hidden_activations(clf, X, layer=1).shape
    (150, 4)
    """
    X = _validate(model, X)
    n_hidden = len(model.coefs_) - 1
    if not -n_hidden <= layer < n_hidden:
        raise ValueError(f"layer must be in [{-n_hidden}, {n_hidden}), got {layer}.")
    layer %= n_hidden
    parts = [layers[layer][0 if pre_activation else 1].copy()
             for layers in _hidden_passes(model, X)]
    if not parts:
        return np.empty((0, model.coefs_[layer].shape[1]), dtype=model.coefs_[0].dtype)
    return np.concatenate(parts)


def dead_units(model: Any, X: ArrayLike) -> list[np.ndarray]:
    """Which hidden units never activate on X.

    Parameters
    ----------
    model : ReLUMLPClassifier or ReLUMLPRegressor
        A fitted model.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Input data.

    Returns
    -------
    masks : list of ndarray of bool
        One boolean array per hidden layer, True where the unit's pre-activation is
        <= 0 for every row of X.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from relumlp import ReLUMLPClassifier
    >>> from relumlp.diagnostics import dead_units
    >>> X, y = load_digits(return_X_y=True)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     clf = ReLUMLPClassifier((32, 16), max_iter=5, random_state=0).fit(X / 16, y)
    >>> masks = dead_units(clf, X / 16)
    >>> [mask.shape for mask in masks]
    [(32,), (16,)]
    >>> all(mask.dtype == bool for mask in masks)
    True
    """
    X = _validate(model, X)
    masks = [np.ones(c.shape[1], dtype=bool) for c in model.coefs_[:-1]]
    for layers in _hidden_passes(model, X):
        for mask, (Z, _) in zip(masks, layers):
            mask &= (Z <= 0).all(axis=0)
    return masks


def activation_summary(model: Any, X: ArrayLike, as_frame: bool | str = "auto") -> Any:
    """Per hidden layer statistics of a fitted model on X, in one chunked pass.

    Parameters
    ----------
    model : ReLUMLPClassifier or ReLUMLPRegressor
        A fitted model.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Input data.
    as_frame : {'auto', True, False}, default='auto'
        Return a pandas DataFrame ('auto': when pandas is installed) or a list of dicts.

    Returns
    -------
    summary : pandas.DataFrame or list of dict
        One row per hidden layer: ``layer``, ``activation``, ``units``,
        ``dead_fraction`` (units whose pre-activation is <= 0 on every row of X),
        ``sparsity`` (share of pre-activations <= 0), ``mean_activation``,
        ``max_activation``, and for PReLU layers ``prelu_slopes_near_0`` and
        ``prelu_slopes_near_1`` (share of learned slopes within 0.05 of 0 and of 1:
        units that became ReLU-like or linear); None for other activations.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from relumlp import ReLUMLPClassifier
    >>> from relumlp.diagnostics import activation_summary
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = ReLUMLPClassifier((8, 4), max_iter=20, random_state=0).fit(X, y)
    >>> [row["units"] for row in activation_summary(clf, X, as_frame=False)]
    [8, 4]
    """
    X = _validate(model, X)
    layout = model._current_layout()
    widths = layout.units[1:-1]
    nonpos = [np.zeros(w, dtype=np.int64) for w in widths]
    total = [0.0] * len(widths)
    peak = [-np.inf] * len(widths)
    for layers in _hidden_passes(model, X):
        for i, (Z, A) in enumerate(layers):
            nonpos[i] += (Z <= 0).sum(axis=0)
            total[i] += float(A.sum(dtype=np.float64))
            peak[i] = max(peak[i], float(A.max(initial=-np.inf)))
    n = X.shape[0]
    rows = []
    for i, width in enumerate(widths):
        slopes = model.prelu_slopes_[i]
        rows.append({
            "layer": i,
            "activation": layout.activations[i],
            "units": width,
            "dead_fraction": float(np.mean(nonpos[i] == n)),
            "sparsity": float(nonpos[i].sum() / (n * width)) if n else float("nan"),
            "mean_activation": total[i] / (n * width) if n else float("nan"),
            "max_activation": peak[i],
            "prelu_slopes_near_0": (None if slopes is None
                                    else float(np.mean(np.abs(slopes) < 0.05))),
            "prelu_slopes_near_1": (None if slopes is None
                                    else float(np.mean(np.abs(slopes - 1) < 0.05))),
        })
    if as_frame == "auto":
        try:
            import pandas  # noqa: F401
        except ImportError:
            as_frame = False
    if as_frame:
        import pandas as pd

        return pd.DataFrame(rows)
    return rows
