"""to_sklearn / from_sklearn: fitted models move both ways and keep training."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier, MLPRegressor

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
DIGITS = dict(n=400, scale="unit")  # the digits fixture: X[:400] / 16


def _targets(kind, digits):
    """The target of each kind of task, made from the digits (X, y)."""
    X, y = digits
    if kind == "multilabel":
        return np.stack([y % 2, y > 4, y == 3], axis=1).astype(int)
    y_reg = np.stack([X[:, 10] + X[:, 20], X[:, 30] - X[:, 40]], axis=1)
    return {"multiclass": y, "binary": y % 2, "regression": y_reg[:, 0],
            "multi-output": y_reg, "poisson": np.exp(y_reg[:, 0])}[kind]


def _pair(kind):
    if kind in ("multiclass", "binary", "multilabel"):
        return ReLUMLPClassifier, MLPClassifier, {}
    if kind == "poisson":
        return ReLUMLPRegressor, MLPRegressor, {"loss": "poisson"}
    return ReLUMLPRegressor, MLPRegressor, {}


def _outputs(model, X):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X), model.predict(X)
    return model.predict(X), model.predict(X)


def _assert_same_weights(a, b, tol=1e-12):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


KINDS = ["multiclass", "binary", "multilabel", "regression", "multi-output", "poisson"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_to_sklearn_predicts_the_same(digits, kind, activation):
    X = digits[0]
    ours, theirs, extra = _pair(kind)
    model = ours(hidden_layer_sizes=(12, 7), activation=activation, max_iter=5,
                 random_state=0, **extra).fit(X, _targets(kind, digits))
    mlp = model.to_sklearn()
    assert type(mlp) is theirs
    for a, b in zip(_outputs(mlp, X), _outputs(model, X)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert mlp.n_iter_ == model.n_iter_ and mlp.loss_curve_ == model.loss_curve_
    # A copy: the relumlp model's weights are not shared.
    mlp.coefs_[0][...] = 0
    assert np.abs(model.coefs_[0]).max() > 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_from_sklearn_predicts_and_continues_like_sklearn(digits, kind, solver):
    """A model moved over from scikit-learn predicts the same and keeps training as
    scikit-learn would: partial_fit and a warm-started fit give scikit-learn's weights."""
    X = digits[0]
    y = _targets(kind, digits)
    ours, theirs, extra = _pair(kind)
    mlp = theirs(hidden_layer_sizes=(12,), solver=solver, max_iter=4, random_state=0,
                 learning_rate_init=0.01, **extra).fit(X, y)
    model = ours.from_sklearn(mlp)
    assert type(model) is ours
    for a, b in zip(_outputs(model, X), _outputs(mlp, X)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

    mlp.partial_fit(X, y)
    model.partial_fit(X, y)
    _assert_same_weights(model, mlp, tol=1e-9)

    mlp.set_params(warm_start=True, max_iter=2)
    model.set_params(warm_start=True, max_iter=2)
    mlp.fit(X, y)
    model.fit(X, y)
    _assert_same_weights(model, mlp, tol=1e-9)
    assert model.n_iter_ == mlp.n_iter_


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_round_trip_keeps_training_state(digits, solver):
    X, y = digits
    model = ReLUMLPClassifier((10,), solver=solver, max_iter=3, random_state=0).fit(X, y)
    back = ReLUMLPClassifier.from_sklearn(model.to_sklearn())
    model.partial_fit(X, y)
    back.partial_fit(X, y)
    _assert_same_weights(model, back, tol=0)


def test_to_sklearn_float32_and_lbfgs(digits):
    X, y = digits[0].astype(np.float32), digits[1]
    model = ReLUMLPClassifier((10,), solver="lbfgs", max_iter=20, random_state=0).fit(X, y)
    mlp = model.to_sklearn()
    assert mlp.coefs_[0].dtype == np.float32
    np.testing.assert_allclose(mlp.predict_proba(X), model.predict_proba(X), rtol=1e-6,
                               atol=1e-7)
    assert (mlp.predict(X) == model.predict(X)).all()


def test_feature_names_move_both_ways(digits):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(digits[0], columns=[f"px{i}" for i in range(digits[0].shape[1])])
    model = ReLUMLPClassifier((8,), max_iter=2, random_state=0).fit(X, digits[1])
    mlp = model.to_sklearn()
    assert list(mlp.feature_names_in_) == list(X.columns)
    assert list(ReLUMLPClassifier.from_sklearn(mlp).feature_names_in_) == list(X.columns)


@pytest.mark.parametrize("activation", ["gelu", "leaky_relu", "prelu", ("relu", "elu")])
def test_to_sklearn_refuses_what_sklearn_lacks(digits, activation):
    X, y = digits
    model = ReLUMLPClassifier((6, 6), activation=activation, max_iter=2,
                              random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        model.to_sklearn()


def test_to_sklearn_per_layer_names_that_agree(digits):
    X, y = digits
    model = ReLUMLPClassifier((6, 6), activation=("tanh", "tanh"), max_iter=2,
                              random_state=0).fit(X, y)
    mlp = model.to_sklearn()
    assert mlp.activation == "tanh"
    np.testing.assert_allclose(mlp.predict_proba(X), model.predict_proba(X), atol=1e-12)


def test_errors_for_unfitted_and_wrong_type(digits):
    with pytest.raises(NotFittedError):
        ReLUMLPClassifier().to_sklearn()
    with pytest.raises(NotFittedError):
        ReLUMLPClassifier.from_sklearn(MLPClassifier())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(digits[0], digits[1] * 1.0)
    with pytest.raises(TypeError, match="MLPClassifier"):
        ReLUMLPClassifier.from_sklearn(reg)
