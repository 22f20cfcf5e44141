"""relumlp against scikit-learn's MLPClassifier / MLPRegressor from identical weights.

Both estimators draw the same initial weights from the same ``random_state`` (and consume
the shuffling / validation-split random streams identically), so in float64 every
recorded quantity must agree to rounding error: ``loss_curve_``, every ``coefs_`` /
``intercepts_``, ``n_iter_`` and ``t_``.

One documented exception: for multi-output squared error scikit-learn reports the loss
averaged over outputs while following the gradient of its sum (scikit-learn issue
#8349); relumlp reports the sum. The weights agree; with ``alpha=0`` relumlp's loss is
exactly ``n_outputs`` times scikit-learn's.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor, _kernels

from _helpers import _diabetes, _digits

RTOL = 1e-8
ATOL = 1e-12
# relumlp's default initialisation is scikit-learn's for scikit-learn's activations:
# every comparison below runs the default model.
SKLEARN_INIT = {}
SOLVERS = ["sgd", "adam"]
ACTIVATIONS = ["relu", "tanh", "logistic", "identity"]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ---------------------------------------------------------------------------- data
# _digits(n): the first n digits, standardised; _diabetes(): standardised, both from
# _helpers.py.
def _binary(n=400):
    X, y = _digits(n)
    return X, (y >= 5).astype(int)


def _multilabel(n=400):
    X, y = _digits(n)
    Y = np.column_stack([y >= 5, y % 2 == 0, y % 3 == 0]).astype(int)
    return X, Y


def _diabetes_2d():
    X, y = _diabetes()
    return X, np.column_stack([y, 0.5 * y**2 - 0.5])


def _diabetes_counts():
    X, _ = load_diabetes(return_X_y=True)
    y = load_diabetes().target / 100.0  # non-negative rates
    return StandardScaler().fit_transform(X), y


# ---------------------------------------------------------------------------- helpers
def _ours(ours_cls, **params):
    return ours_cls(**SKLEARN_INIT, **params)


def _fit_pair(ours_cls, ref_cls, X, y, fit_kwargs=None, **params):
    fit_kwargs = fit_kwargs or {}
    ours = _ours(ours_cls, **params).fit(X, y, **fit_kwargs)
    ref = ref_cls(**params).fit(X, y, **fit_kwargs)
    return ours, ref


def _loss_scale(ref):
    """relumlp's loss / scikit-learn's: n_outputs for multi-output squared error."""
    if isinstance(ref, MLPRegressor) and ref.loss == "squared_error" and ref.n_outputs_ > 1:
        # exact only without the L2 term, which both report once, not per output
        assert ref.alpha == 0, "compare multi-output squared-error losses with alpha=0"
        return ref.n_outputs_
    return 1


def _assert_same_model(ours, ref, rtol=RTOL, atol=ATOL):
    assert ours.n_iter_ == ref.n_iter_
    assert ours.t_ == ref.t_
    assert len(ours.coefs_) == len(ref.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.dtype == np.float64
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    scale = _loss_scale(ref)
    assert len(ours.loss_curve_) == len(ref.loss_curve_) >= ours.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, scale * np.asarray(ref.loss_curve_),
                               rtol=rtol, atol=atol)
    np.testing.assert_allclose(ours.loss_, scale * ref.loss_, rtol=rtol, atol=atol)


def _base_params(solver, activation, **extra):
    params = dict(hidden_layer_sizes=(16, 8), solver=solver, activation=activation,
                  max_iter=5, shuffle=False, random_state=0, learning_rate_init=0.01,
                  batch_size=64)
    params.update(extra)
    return params


def _initial_weights_pair(ours, ref, X, y):
    # A step of 1e-300 leaves every weight at its initial value.
    params = dict(solver="sgd", learning_rate_init=1e-300, momentum=0.0, max_iter=1,
                  alpha=0.0, shuffle=False)
    ours.set_params(**params).fit(X, y)
    ref.set_params(**params).fit(X, y)
    return ours, ref


@pytest.mark.parametrize("hidden", [(16, 8), (5,), ()],
                         ids=["2-hidden", "1-hidden", "no-hidden"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_initial_weights_identical(activation, hidden):
    X, y = _digits(200)
    for ours_cls, ref_cls in [(ReLUMLPClassifier, MLPClassifier),
                              (ReLUMLPRegressor, MLPRegressor)]:
        ours, ref = _initial_weights_pair(
            _ours(ours_cls, hidden_layer_sizes=hidden, activation=activation, random_state=3),
            ref_cls(hidden_layer_sizes=hidden, activation=activation, random_state=3), X, y)
        for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver, early_stopping",
                         [("sgd", False), ("sgd", True), ("adam", False), ("adam", True),
                          ("lbfgs", False)])  # lbfgs has no early stopping
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_default_model_is_sklearns(activation, solver, early_stopping):
    # The default weight_init='auto' is scikit-learn's initialisation, random draws
    # included, for scikit-learn's activations: with nothing but the same parameters
    # and random_state, the fitted model is scikit-learn's.
    # logistic and tanh (and a classifier's output layer) call exp/tanh: relumlp's
    # vector math (libmvec) is up to 3 ulp from libm, scikit-learn's (scipy's expit,
    # NumPy's tanh) is neither, and lbfgs's line search amplifies last bits: there the
    # weights agree to atol 1e-12 (measured worst 3.4e-13 on a weight of 4e-4).
    # With relumlp's scalar libm level the tighter 1e-13 holds as before.
    transcendental = activation in ("logistic", "tanh")
    levels = [(_kernels.vector_math(), 1e-12 if transcendental else 1e-13)]
    if transcendental and _kernels.vector_math() != "scalar":
        levels.append(("scalar", 1e-13))
    X, y = _digits(300)
    for level, atol in levels:
        previous = _kernels.set_vector_math(level)
        try:
            for ours_cls, ref_cls, target in [
                    (ReLUMLPClassifier, MLPClassifier, y),
                    (ReLUMLPRegressor, MLPRegressor, (y - 4.5) / 3)]:
                params = dict(hidden_layer_sizes=(12, 6), activation=activation,
                              solver=solver, max_iter=6, early_stopping=early_stopping,
                              random_state=7, learning_rate_init=0.01)
                ours = ours_cls(**params).fit(X, target)
                ref = ref_cls(**params).fit(X, target)
                assert ours.get_params()["weight_init"] == "auto"
                assert ours.n_iter_ == ref.n_iter_
                for a, b in zip(ours.coefs_ + ours.intercepts_,
                                ref.coefs_ + ref.intercepts_):
                    np.testing.assert_allclose(a, b, rtol=1e-10, atol=atol, err_msg=level)
                if early_stopping:
                    np.testing.assert_allclose(ours.validation_scores_,
                                               ref.validation_scores_, rtol=1e-10)
        finally:
            _kernels.set_vector_math(previous)


@pytest.mark.parametrize("activation", ["leaky_relu", "prelu", "elu", "gelu", "silu",
                                        "softplus", "selu"])
def test_default_initialisation_of_the_rest_of_the_family(activation):
    # Activations scikit-learn lacks keep the family's own default: He uniform (LeCun
    # normal for selu) with intercepts at 0, not scikit-learn's draws.
    X, y = _digits(200)
    ours, _ = _initial_weights_pair(
        ReLUMLPClassifier(hidden_layer_sizes=(16,), activation=activation, random_state=0),
        MLPClassifier(hidden_layer_sizes=(16,), random_state=0), X, y)
    sk = ReLUMLPClassifier(hidden_layer_sizes=(16,), activation=activation,
                           weight_init="sklearn", random_state=0)
    sk, _ = _initial_weights_pair(sk, MLPClassifier(hidden_layer_sizes=(16,)), X, y)
    assert not np.array_equal(ours.coefs_[0], sk.coefs_[0])
    # Intercepts start at 0 (the 1e-300 step moves them by less than 1e-290).
    assert all(np.abs(b).max() < 1e-290 for b in ours.intercepts_)
    fan_in = X.shape[1]
    if activation == "selu":   # LeCun normal: std sqrt(1 / fan_in)
        assert abs(ours.coefs_[0].std() / np.sqrt(1 / fan_in) - 1) < 0.1
    else:                      # He uniform: bound sqrt(6 / fan_in) (less with a leak)
        assert np.abs(ours.coefs_[0]).max() <= np.sqrt(6 / fan_in)
        assert np.abs(ours.coefs_[0]).max() > 0.9 * np.sqrt(6 / fan_in) / np.sqrt(1.1)


def test_mixed_layers_keep_the_family_default():
    # One layer outside scikit-learn's activations: every layer by its own scheme.
    X, y = _digits(200)
    mixed, _ = _initial_weights_pair(
        ReLUMLPClassifier(hidden_layer_sizes=(16, 8), activation=("relu", "gelu"),
                          random_state=0),
        MLPClassifier(hidden_layer_sizes=(16, 8), random_state=0), X, y)
    assert all(np.abs(b).max() < 1e-290 for b in mixed.intercepts_)


# ---------------------------------------------------------------------------- classifier
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_classifier_multiclass(solver, activation):
    X, y = _digits()
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y,
                          **_base_params(solver, activation))
    assert ours.out_activation_ == ref.out_activation_ == "softmax"
    _assert_same_model(ours, ref)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_classifier_binary(solver, activation):
    X, y = _binary()
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y,
                          **_base_params(solver, activation))
    assert ours.out_activation_ == ref.out_activation_ == "logistic"
    _assert_same_model(ours, ref)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_classifier_multilabel(solver, activation):
    X, Y = _multilabel()
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, Y,
                          **_base_params(solver, activation))
    assert ours.n_outputs_ == ref.n_outputs_ == 3
    _assert_same_model(ours, ref)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


# ---------------------------------------------------------------------------- regressor
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_regressor_one_output(solver, activation):
    X, y = _diabetes()
    ours, ref = _fit_pair(ReLUMLPRegressor, MLPRegressor, X, y,
                          **_base_params(solver, activation))
    _assert_same_model(ours, ref)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_regressor_two_outputs(solver, activation):
    X, Y = _diabetes_2d()
    ours, ref = _fit_pair(ReLUMLPRegressor, MLPRegressor, X, Y,
                          **_base_params(solver, activation, alpha=0.0))
    assert ours.n_outputs_ == ref.n_outputs_ == 2
    _assert_same_model(ours, ref)  # loss_curve_ == 2 * scikit-learn's
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("solver", SOLVERS)
def test_regressor_two_outputs_with_penalty(solver):
    # With alpha > 0 the weights still agree. Per epoch scikit-learn reports D + L (D the
    # data term averaged over the two outputs, L the L2 term) and relumlp 2 D + L, so
    # scikit-learn's loss < relumlp's < twice scikit-learn's.
    X, Y = _diabetes_2d()
    ours, ref = _fit_pair(ReLUMLPRegressor, MLPRegressor, X, Y,
                          **_base_params(solver, "tanh", alpha=0.5, shuffle=True))
    assert ours.n_iter_ == ref.n_iter_ and ours.t_ == ref.t_
    _assert_same_model_weights(ours, ref)
    ours_curve, ref_curve = np.asarray(ours.loss_curve_), np.asarray(ref.loss_curve_)
    assert np.all(ours_curve > ref_curve)
    assert np.all(ours_curve < 2 * ref_curve)


def test_multioutput_stopping_rule_follows_reported_loss():
    # relumlp's tol rule runs on the loss it reports (the sum over outputs), so the
    # epoch at which it stops is the one its own loss_curve_ dictates.
    X, Y = _diabetes_2d()
    tol, patience = 1e-3, 3
    ours = _ours(ReLUMLPRegressor, hidden_layer_sizes=(16,), max_iter=300, tol=tol,
                 n_iter_no_change=patience, learning_rate_init=0.01,
                 random_state=0).fit(X, Y)
    assert ours.n_iter_ < 300
    best, count = np.inf, 0
    for epoch, loss in enumerate(ours.loss_curve_, start=1):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count > patience:
            break
    assert epoch == ours.n_iter_ == len(ours.loss_curve_)


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    "ours_cls, ref_cls, data",
    [(ReLUMLPClassifier, MLPClassifier, _digits), (ReLUMLPClassifier, MLPClassifier, _binary),
     (ReLUMLPClassifier, MLPClassifier, _multilabel),
     (ReLUMLPRegressor, MLPRegressor, _diabetes),
     (ReLUMLPRegressor, MLPRegressor, _diabetes_2d)],
    ids=["multiclass", "binary", "multilabel", "regression", "regression-2d"],
)
def test_shuffle(solver, ours_cls, ref_cls, data):
    X, y = data()
    alpha = 0.0 if data is _diabetes_2d else 1e-4
    ours, ref = _fit_pair(ours_cls, ref_cls, X, y,
                          **_base_params(solver, "relu", shuffle=True, random_state=3,
                                         alpha=alpha))
    _assert_same_model(ours, ref)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(
    "ours_cls, ref_cls, data",
    [(ReLUMLPClassifier, MLPClassifier, _digits), (ReLUMLPClassifier, MLPClassifier, _binary),
     (ReLUMLPRegressor, MLPRegressor, _diabetes_2d)],
    ids=["multiclass", "binary", "regression-2d"],
)
def test_sample_weight(solver, shuffle, ours_cls, ref_cls, data):
    X, y = data()
    sw = np.random.RandomState(1).uniform(0.1, 3.0, X.shape[0])
    params = _base_params(solver, "tanh", shuffle=shuffle,
                          alpha=0.0 if data is _diabetes_2d else 1e-4)
    ours, ref = _fit_pair(ours_cls, ref_cls, X, y, fit_kwargs=dict(sample_weight=sw),
                          **params)
    _assert_same_model(ours, ref)
    # sample weights really change the model
    unweighted = _ours(ours_cls, **params).fit(X, y)
    assert not np.allclose(unweighted.coefs_[0], ours.coefs_[0], rtol=1e-3)


def test_sample_weight_zero_rows():
    X, y = _digits()
    sw = np.ones(X.shape[0])
    sw[::3] = 0.0
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y,
                          fit_kwargs=dict(sample_weight=sw), **_base_params("adam", "relu"))
    _assert_same_model(ours, ref)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_momentum(shuffle, nesterov, momentum):
    X, y = _digits()
    params = _base_params("sgd", "relu", shuffle=shuffle, nesterovs_momentum=nesterov,
                          momentum=momentum)
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y, **params)
    _assert_same_model(ours, ref)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(
    "ours_cls, ref_cls, data",
    [(ReLUMLPClassifier, MLPClassifier, _digits), (ReLUMLPRegressor, MLPRegressor, _diabetes)],
    ids=["classifier", "regressor"],
)
def test_sgd_invscaling(shuffle, ours_cls, ref_cls, data):
    X, y = data()
    params = _base_params("sgd", "relu", shuffle=shuffle, learning_rate="invscaling",
                          learning_rate_init=0.5, power_t=0.25)
    ours, ref = _fit_pair(ours_cls, ref_cls, X, y, **params)
    _assert_same_model(ours, ref)
    assert ref._optimizer.learning_rate < 0.5  # the schedule did act
    np.testing.assert_allclose(ours._optimizer.learning_rate, ref._optimizer.learning_rate,
                               rtol=1e-14)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(
    "ours_cls, ref_cls, data",
    [(ReLUMLPClassifier, MLPClassifier, _digits), (ReLUMLPRegressor, MLPRegressor, _diabetes)],
    ids=["classifier", "regressor"],
)
def test_sgd_adaptive(shuffle, ours_cls, ref_cls, data):
    # A huge tol makes every epoch "not improving": the learning rate is divided by 5
    # every n_iter_no_change + 1 epochs, until it drops below 1e-6 and training stops.
    X, y = data()
    params = _base_params("sgd", "relu", shuffle=shuffle, learning_rate="adaptive",
                          learning_rate_init=0.05, tol=1e3, n_iter_no_change=1, max_iter=30)
    ours, ref = _fit_pair(ours_cls, ref_cls, X, y, **params)
    _assert_same_model(ours, ref)
    assert ref.n_iter_ < 30  # stopped by the adaptive rule, not by max_iter
    assert ref._optimizer.learning_rate <= 1e-6
    np.testing.assert_allclose(ours._optimizer.learning_rate, ref._optimizer.learning_rate,
                               rtol=1e-14)


@pytest.mark.parametrize("solver", SOLVERS)
def test_tol_stopping(solver):
    X, y = _digits()
    params = _base_params(solver, "relu", tol=1e3, n_iter_no_change=2, max_iter=50)
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y, **params)
    assert ref.n_iter_ == 4  # epoch 1 always improves on inf, then 3 > n_iter_no_change
    _assert_same_model(ours, ref)
    assert ours.best_loss_ == pytest.approx(ref.best_loss_, rel=RTOL)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("with_sample_weight", [False, True])
@pytest.mark.parametrize(
    "ours_cls, ref_cls, data",
    [(ReLUMLPClassifier, MLPClassifier, _digits), (ReLUMLPClassifier, MLPClassifier, _binary),
     (ReLUMLPClassifier, MLPClassifier, _multilabel),
     (ReLUMLPRegressor, MLPRegressor, _diabetes)],
    ids=["multiclass", "binary", "multilabel", "regressor"],
)
def test_early_stopping(solver, with_sample_weight, ours_cls, ref_cls, data):
    X, y = data()
    fit_kwargs = {}
    if with_sample_weight:
        fit_kwargs["sample_weight"] = np.random.RandomState(2).uniform(0.5, 2, X.shape[0])
    params = _base_params(solver, "relu", shuffle=True, early_stopping=True,
                          validation_fraction=0.2, n_iter_no_change=3, max_iter=25,
                          learning_rate_init=0.05, random_state=7)
    ours, ref = _fit_pair(ours_cls, ref_cls, X, y, fit_kwargs=fit_kwargs, **params)
    # restored (best) weights
    _assert_same_model(ours, ref)
    assert ours.best_loss_ is None and ref.best_loss_ is None
    assert len(ours.validation_scores_) == len(ref.validation_scores_) == ref.n_iter_
    np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_,
                               rtol=RTOL, atol=ATOL)
    assert ours.best_validation_score_ == pytest.approx(ref.best_validation_score_, rel=RTOL)
    assert ref.best_validation_score_ == max(ref.validation_scores_)


def test_early_stopping_restores_best_not_last():
    # With a large step the validation score peaks before the last epoch, so the
    # restored weights are not the last iterate; they must still match scikit-learn's.
    X, y = _digits()
    params = _base_params("sgd", "relu", shuffle=True, early_stopping=True,
                          validation_fraction=0.25, n_iter_no_change=2, max_iter=40,
                          learning_rate_init=0.3, random_state=0)
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y, **params)
    assert np.argmax(ref.validation_scores_) < ref.n_iter_ - 1
    _assert_same_model(ours, ref)
    np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=RTOL)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_poisson(solver, shuffle, activation):
    X, y = _diabetes_counts()
    params = _base_params(solver, activation, shuffle=shuffle, loss="poisson",
                          learning_rate_init=0.005)
    ours, ref = _fit_pair(ReLUMLPRegressor, MLPRegressor, X, y, **params)
    assert ours.out_activation_ == ref.out_activation_ == "exp"
    assert np.all(np.isfinite(ref.loss_curve_))
    _assert_same_model(ours, ref)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=RTOL)


def test_poisson_sample_weight():
    X, y = _diabetes_counts()
    sw = np.random.RandomState(0).uniform(0.2, 2, X.shape[0])
    params = _base_params("adam", "relu", shuffle=True, loss="poisson",
                          learning_rate_init=0.005)
    ours, ref = _fit_pair(ReLUMLPRegressor, MLPRegressor, X, y,
                          fit_kwargs=dict(sample_weight=sw), **params)
    _assert_same_model(ours, ref)


@pytest.mark.parametrize("alpha", [0.0, 1e-2, 1.0])
def test_alpha(alpha):
    X, y = _digits()
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y,
                          **_base_params("adam", "relu", alpha=alpha))
    _assert_same_model(ours, ref)


@pytest.mark.parametrize("batch_size", [1, 37, "auto", 1000])
def test_batch_sizes(batch_size):
    # 1000 > n_samples is clipped with a warning in both implementations.
    X, y = _digits(150)
    params = _base_params("sgd", "tanh", batch_size=batch_size, max_iter=2, shuffle=True)
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours = _ours(ReLUMLPClassifier, **params).fit(X, y)
    with warnings.catch_warnings(record=True) as ref_w:
        warnings.simplefilter("always")
        ref = MLPClassifier(**params).fit(X, y)
    assert sorted(str(w.message) for w in ours_w) == sorted(str(w.message) for w in ref_w)
    _assert_same_model(ours, ref)


@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_input(solver):
    X, y = _digits()
    Xs = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    params = _base_params(solver, "relu", shuffle=True)
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, Xs, y, **params)
    _assert_same_model(ours, ref)


# ---------------------------------------------------------------------------- partial_fit
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shuffle", [False, True])
def test_partial_fit_classifier(solver, shuffle):
    X, y = _digits()
    classes = np.unique(y)
    params = _base_params(solver, "relu", shuffle=shuffle)
    ours, ref = _ours(ReLUMLPClassifier, **params), MLPClassifier(**params)
    chunks = np.array_split(np.arange(X.shape[0]), 4)
    for k, rows in enumerate(chunks + chunks):
        extra = dict(classes=classes) if k == 0 else {}
        ours.partial_fit(X[rows], y[rows], **extra)
        ref.partial_fit(X[rows], y[rows], **extra)
        assert ours.n_iter_ == ref.n_iter_ == 1
        assert ours.t_ == ref.t_
        np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=RTOL)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    _assert_same_model_weights(ours, ref)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=RTOL)
    assert len(ours.loss_curve_) == 8


def test_partial_fit_classifier_subset_of_classes_per_call():
    X, y = _digits()
    classes = np.unique(y)
    params = _base_params("adam", "tanh")
    ours, ref = _ours(ReLUMLPClassifier, **params), MLPClassifier(**params)
    for k, mask in enumerate([y < 5, y >= 5, y % 2 == 0]):
        extra = dict(classes=classes) if k == 0 else {}
        ours.partial_fit(X[mask], y[mask], **extra)
        ref.partial_fit(X[mask], y[mask], **extra)
    _assert_same_model_weights(ours, ref)
    assert ours.t_ == ref.t_


def test_partial_fit_classifier_sample_weight():
    X, y = _binary()
    sw = np.random.RandomState(4).uniform(0.1, 2, X.shape[0])
    params = _base_params("sgd", "relu", shuffle=True)
    ours, ref = _ours(ReLUMLPClassifier, **params), MLPClassifier(**params)
    for k, rows in enumerate(np.array_split(np.arange(X.shape[0]), 3)):
        extra = dict(classes=[0, 1]) if k == 0 else {}
        ours.partial_fit(X[rows], y[rows], sample_weight=sw[rows], **extra)
        ref.partial_fit(X[rows], y[rows], sample_weight=sw[rows], **extra)
    _assert_same_model_weights(ours, ref)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=RTOL)


def test_partial_fit_multilabel():
    X, Y = _multilabel()
    params = _base_params("adam", "relu")
    ours, ref = _ours(ReLUMLPClassifier, **params), MLPClassifier(**params)
    for k, rows in enumerate(np.array_split(np.arange(X.shape[0]), 3)):
        extra = dict(classes=np.arange(3)) if k == 0 else {}
        ours.partial_fit(X[rows], Y[rows], **extra)
        ref.partial_fit(X[rows], Y[rows], **extra)
    _assert_same_model_weights(ours, ref)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("data", [_diabetes, _diabetes_2d], ids=["1d", "2d"])
def test_partial_fit_regressor(solver, data):
    X, y = data()
    params = _base_params(solver, "tanh", shuffle=True, alpha=0.0)
    ours, ref = _ours(ReLUMLPRegressor, **params), MLPRegressor(**params)
    for rows in np.array_split(np.arange(X.shape[0]), 3) * 2:
        ours.partial_fit(X[rows], y[rows])
        ref.partial_fit(X[rows], y[rows])
        assert ours.n_iter_ == ref.n_iter_ == 1
        assert ours.t_ == ref.t_
    _assert_same_model_weights(ours, ref)
    np.testing.assert_allclose(ours.loss_curve_,
                               _loss_scale(ref) * np.asarray(ref.loss_curve_), rtol=RTOL)


def test_partial_fit_after_fit():
    X, y = _digits()
    params = _base_params("sgd", "relu", shuffle=True)
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y, **params)
    ours.partial_fit(X[:100], y[:100])
    ref.partial_fit(X[:100], y[:100])
    _assert_same_model(ours, ref)
    assert ours.n_iter_ == 1 and len(ours.loss_curve_) == 6


@pytest.mark.parametrize("solver", SOLVERS)
def test_warm_start(solver):
    X, y = _digits()
    params = _base_params(solver, "relu", shuffle=True, warm_start=True, max_iter=3)
    ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y, **params)
    ours.fit(X, y)
    ref.fit(X, y)
    _assert_same_model(ours, ref)
    assert ours.n_iter_ == 3 and len(ref.loss_curve_) == 6


def _assert_same_model_weights(ours, ref):
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------- lbfgs
def test_lbfgs_digits_loss():
    X, y = _digits(None)  # every row
    params = dict(hidden_layer_sizes=(50,), solver="lbfgs", max_iter=200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y, **params)
    assert ref.loss_ < 0.05
    np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=1e-6)
    assert ours.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_lbfgs_regressor_short(activation):
    # Few iterations: the iterates themselves still agree closely.
    X, y = _diabetes()
    params = dict(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=10, random_state=0,
                  activation=activation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, ref = _fit_pair(ReLUMLPRegressor, MLPRegressor, X, y, **params)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=1e-8)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_lbfgs_multioutput_objective(alpha):
    # relumlp's lbfgs minimises 0.5 * sum_k mean_i (y_ik - p_ik)^2 + 0.5 alpha |W|^2 / n,
    # the function whose gradient it follows; loss_ is that objective at coefs_.
    X, Y = _diabetes_2d()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = _ours(ReLUMLPRegressor, hidden_layer_sizes=(10,), solver="lbfgs",
                     max_iter=30, alpha=alpha, random_state=0).fit(X, Y)
    P = ours.predict(X)
    l2 = sum(np.sum(c**2) for c in ours.coefs_)
    objective = 0.5 * np.sum(np.mean((Y - P) ** 2, axis=0)) + 0.5 * alpha * l2 / X.shape[0]
    np.testing.assert_allclose(ours.loss_, objective, rtol=1e-10)


def test_lbfgs_sample_weight_loss():
    X, y = _binary()
    sw = np.random.RandomState(0).uniform(0.1, 2, X.shape[0])
    params = dict(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, ref = _fit_pair(ReLUMLPClassifier, MLPClassifier, X, y,
                              fit_kwargs=dict(sample_weight=sw), **params)
    np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=1e-8)


# ---------------------------------------------------------------------------- prediction
def _copy_weights(ours, ref):
    ours.coefs_ = [c.copy() for c in ref.coefs_]
    ours.intercepts_ = [b.copy() for b in ref.intercepts_]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("data", [_digits, _binary, _multilabel],
                         ids=["multiclass", "binary", "multilabel"])
def test_predict_proba_copied_weights(sparse, activation, data):
    X, y = data()
    ref = MLPClassifier(hidden_layer_sizes=(30, 12), activation=activation, max_iter=20,
                        learning_rate_init=0.01, random_state=1).fit(X, y)
    # a fitted model of the same shape but different weights
    ours = ReLUMLPClassifier(hidden_layer_sizes=(30, 12), activation=activation,
                             max_iter=1, random_state=2).fit(X, y)
    assert not np.allclose(ours.predict_proba(X), ref.predict_proba(X))
    _copy_weights(ours, ref)
    Xp = sp.csr_matrix(np.where(np.abs(X) < 0.3, 0.0, X)) if sparse else X[::-1]
    np.testing.assert_allclose(ours.predict_proba(Xp), ref.predict_proba(Xp),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ours.predict(Xp), ref.predict(Xp))
    ref_log = ref.predict_log_proba(Xp)
    finite = np.isfinite(ref_log)
    np.testing.assert_allclose(ours.predict_log_proba(Xp)[finite], ref_log[finite],
                               rtol=1e-10, atol=1e-12)


def test_predict_copied_weights_in_place():
    # Writing into coefs_ in place (no reassignment) must also be seen by predict.
    X, y = _digits()
    ref = MLPClassifier(hidden_layer_sizes=(20,), max_iter=20, random_state=1).fit(X, y)
    ours = ReLUMLPClassifier(hidden_layer_sizes=(20,), max_iter=1, random_state=2).fit(X, y)
    for dst, src in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        dst[...] = src
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-12)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_regressor_predict_copied_weights(sparse, loss, activation):
    X, y = _diabetes_counts()
    Y = np.column_stack([y, 2 * y])
    ref = MLPRegressor(loss=loss, hidden_layer_sizes=(15,), activation=activation,
                       max_iter=20, learning_rate_init=0.01, random_state=1).fit(X, Y)
    ours = ReLUMLPRegressor(loss=loss, hidden_layer_sizes=(15,), activation=activation,
                            max_iter=1, random_state=2).fit(X, Y)
    _copy_weights(ours, ref)
    Xp = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X)) if sparse else X
    np.testing.assert_allclose(ours.predict(Xp), ref.predict(Xp), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------- one class
@pytest.mark.parametrize("how", ["fit", "fit-early-stopping", "partial_fit",
                                 "partial_fit-two-classes", "dataframe", "strings"])
def test_single_class_trains_as_in_sklearn(how):
    # scikit-learn's MLPClassifier fits a y with one class: it predicts that class and
    # predict_proba has two columns (1 - p, p), p trained towards 0. relumlp does the
    # same, with the same weights.
    X, _ = _digits(120)
    y = np.full(120, 7)
    params = dict(hidden_layer_sizes=(8,), max_iter=6, random_state=0,
                  early_stopping=how == "fit-early-stopping")
    ours, ref = ReLUMLPClassifier(**params), MLPClassifier(**params)
    if how.startswith("partial_fit"):
        classes = [3, 7] if how.endswith("two-classes") else [7]
        for est in (ours, ref):
            est.partial_fit(X[:60], y[:60], classes=classes)
            est.partial_fit(X[60:], y[60:])
    else:
        if how == "dataframe":
            pd = pytest.importorskip("pandas")
            X = pd.DataFrame(X, columns=[f"pixel{j}" for j in range(X.shape[1])])
        if how == "strings":
            y = np.full(120, "seven")
        ours.fit(X, y)
        ref.fit(X, y)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    proba, ref_proba = ours.predict_proba(X), ref.predict_proba(X)
    assert proba.shape == ref_proba.shape == (120, 2)
    np.testing.assert_allclose(proba, ref_proba, rtol=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    assert ours.score(X, y) == ref.score(X, y)
    if how != "partial_fit-two-classes":  # one class known: it is every prediction
        assert set(ours.predict(X)) == {y[0]} and ours.score(X, y) == 1.0
    if how == "dataframe":
        np.testing.assert_array_equal(ours.feature_names_in_, ref.feature_names_in_)
    if how == "fit-early-stopping":
        np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_)
