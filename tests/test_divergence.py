"""Divergence: a non-finite loss or weight stops fit, restores the last finite weights
and says so (ValueError naming the learning rate, or with early stopping a
ConvergenceWarning); no NaN is ever left in coefs_."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from relumlp import ReLUMLPRegressor



@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_divergence_restores_last_finite_weights(solver):
    """A diverging fit raises scikit-learn's ValueError (naming the learning rate) and
    leaves the weights of the last finite epoch, usable for predict and warm_start."""
    rng = np.random.RandomState(0)
    X = 1e150 * rng.uniform(size=(20, 3))
    y = rng.standard_normal(20)
    reg = ReLUMLPRegressor(solver=solver, learning_rate_init=1e3, random_state=0,
                           max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="non-finite parameter weights") as info:
            reg.fit(X, y)
    if solver != "lbfgs":
        assert "learning_rate_init=1000.0" in str(info.value)
    assert all(np.isfinite(c).all() for c in reg.coefs_ + reg.intercepts_)
    assert reg.predict(X[:2]).shape == (2,)
    if solver == "sgd":
        return  # plain SGD's last finite weights are astronomically large
    # Scaled data and a sane learning rate continue from the restored weights.
    reg.set_params(warm_start=True, learning_rate_init=1e-3, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X * 1e-150, y)
    assert all(np.isfinite(c).all() for c in reg.coefs_)


def test_divergence_with_early_stopping_keeps_best_weights():
    """With early stopping, divergence ends training with a ConvergenceWarning, a NaN
    validation score for the diverged epoch and the best weights restored (as in
    scikit-learn, which carries on through NaN epochs)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    reg = ReLUMLPRegressor(activation="identity", solver="sgd", learning_rate_init=1,
                           max_iter=20, early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(ConvergenceWarning, match="learning_rate_init=1"):
            reg.fit(X, y)
    assert np.isnan(reg.validation_scores_[-1])
    assert all(np.isfinite(c).all() for c in reg.coefs_)
    assert np.isfinite(reg.predict(X)).all()
