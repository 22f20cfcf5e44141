"""Shared data and helpers of the estimator test modules."""
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor

ESTIMATORS = [ReLUMLPClassifier, ReLUMLPRegressor]
ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


# ---------------------------------------------------------------------------- data
def _digits(n=400):
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:n]), y[:n]


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _data_for(est_cls, n=400):
    return _digits(n) if est_cls is ReLUMLPClassifier else _diabetes()


def _small(est_cls, **params):
    base = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0,
                learning_rate_init=0.01)
    base.update(params)
    return est_cls(**base)


def _output(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _assert_params_equal(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert u.dtype == v.dtype
        assert np.array_equal(u, v)
