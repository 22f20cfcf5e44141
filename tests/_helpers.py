"""Shared plain helpers of the test modules: data sets, small estimators, read-only
arrays and quiet fits (the shared pytest fixtures are in conftest.py)."""
import functools
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor

ESTIMATORS = [ReLUMLPClassifier, ReLUMLPRegressor]
ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


# ---------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=None)
def _load_digits():
    X, y = load_digits(return_X_y=True)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _digits(n=400, scale="standard", dtype=np.float64):
    """The first ``n`` rows of scikit-learn's digits (``n=None``: all 1797), as new
    arrays ``(X, y)``, the pixels (0 to 16) prepared by ``scale``:

    - ``"standard"``: StandardScaler fitted on those rows;
    - ``"unit"``: ``X / 16``, pixels in [0, 1];
    - ``"symmetric"``: ``X / 8 - 1``, pixels in [-1, 1].

    X is then cast to ``dtype`` (every value above is exact in float32 too, but the
    standardised ones)."""
    X, y = _load_digits()
    X, y = X[:n], y[:n].copy()
    if scale == "standard":
        X = StandardScaler().fit_transform(X)
    elif scale == "unit":
        X = X / 16
    elif scale == "symmetric":
        X = X / 8.0 - 1.0
    else:
        raise ValueError(f"unknown scale {scale!r}")
    return X.astype(dtype, copy=False), y


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _data_for(est_cls, n=400):
    return _digits(n) if est_cls is ReLUMLPClassifier else _diabetes()


def readonly(a):
    """A read-only copy of ``a``, as grid searches pass memory-mapped data."""
    a = np.array(a)
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------- estimators
def _small(est_cls, **params):
    base = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0,
                learning_rate_init=0.01)
    base.update(params)
    return est_cls(**base)


def _fit_quietly(est, X, y, **fit_params):
    """``est.fit(X, y, **fit_params)`` with ConvergenceWarning ignored; returns est."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **fit_params)


def _output(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _assert_params_equal(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert u.dtype == v.dtype
        assert np.array_equal(u, v)
