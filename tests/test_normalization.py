"""Layer normalization (``normalization='layer'``): linear -> normalization ->
activation, with a learned scale and offset per unit.

The forward pass against plain NumPy (training and prediction compute the same), the
whole-network gradient against central finite differences (weights, intercepts,
scales, offsets; PReLU, dropout and sparse input included), thread-count independence
of the weights, and the estimator around it (fitted attributes, warm start,
partial_fit, pickling, what refuses it)."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor, diagnostics, to_onnx
from relumlp._params import NetworkLayout
from relumlp._training import Trainer

from _helpers import ignore_convergence

EPS = 1e-5


def layer_norm(Z, scale, offset, eps=EPS):
    mu = Z.mean(axis=1, keepdims=True)
    var = ((Z - mu) ** 2).mean(axis=1, keepdims=True)
    return scale * (Z - mu) / np.sqrt(var + eps) + offset


def reference_forward(model, X):
    """The network in NumPy: relu hidden layers, each normalized where the model says."""
    A = X
    for l, (W, b) in enumerate(zip(model.coefs_[:-1], model.intercepts_[:-1])):
        Z = A @ W + b
        if model.normalization_scales_[l] is not None:
            Z = layer_norm(Z, model.normalization_scales_[l], model.normalization_offsets_[l],
                           model.normalization_eps)
        A = np.maximum(Z, 0)
    Z = A @ model.coefs_[-1] + model.intercepts_[-1]
    if model.out_activation_ == "identity":
        return Z
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _data(n=300, d=12, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * scale
    y = (X[:, 0] + X[:, 1] * X[:, 2] / scale > 0).astype(int) + (X[:, 3] > 0)
    return X, y


@ignore_convergence
@pytest.mark.parametrize("norm", ["layer", ("layer", None), (None, "layer")])
@pytest.mark.parametrize("n_rows", [1, 3, 300])
def test_predictions_are_the_numpy_network(norm, n_rows):
    X, y = _data()
    model = ReLUMLPClassifier(hidden_layer_sizes=(16, 8), normalization=norm, max_iter=20,
                              random_state=0).fit(X, y)
    for l, name in enumerate(norm if isinstance(norm, tuple) else (norm, norm)):
        assert (model.normalization_scales_[l] is None) == (name is None)
        assert (model.normalization_offsets_[l] is None) == (name is None)
    # Trained: the scales and offsets moved from 1 and 0.
    learned = [s for s in model.normalization_scales_ if s is not None]
    assert all(np.abs(s - 1).max() > 1e-3 for s in learned)
    np.testing.assert_allclose(model.predict_proba(X[:n_rows]),
                               reference_forward(model, X[:n_rows]), rtol=1e-10, atol=1e-12)


@ignore_convergence
def test_normalization_makes_a_network_indifferent_to_the_input_scale():
    # What the articles ask of it: on inputs scaled by 1000 a plain ReLU network's
    # pre-activations are 1000x larger; a layer-normalized one's are not.
    X, y = _data(scale=1000.0)
    model = ReLUMLPClassifier(hidden_layer_sizes=(16,), normalization="layer", max_iter=5,
                              random_state=0).fit(X, y)
    Z = diagnostics.hidden_activations(model, X, layer=0, pre_activation=True)
    np.testing.assert_allclose(Z, layer_norm(X @ model.coefs_[0] + model.intercepts_[0],
                                             model.normalization_scales_[0],
                                             model.normalization_offsets_[0]), rtol=1e-9,
                               atol=1e-9)
    assert np.abs(Z).max() < 10


# ------------------------------------------------------------------ gradients
N_FEATURES, HIDDEN, FD_STEP = 5, (4, 3), 1e-6


def _problem(activations, dropout, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20, N_FEATURES))
    Y = np.eye(3)[rng.integers(0, 3, 20)]
    sw = rng.uniform(0.5, 2.0, 20)
    layout = NetworkLayout([N_FEATURES, *HIDDEN, 3], list(activations), "softmax",
                           [0.0, 0.0], list(dropout), normalization=["layer", "layer"])
    flat = rng.uniform(-0.8, 0.8, layout.n_params)
    for group in layout.views(flat)[3:]:  # scales around 1, offsets around 0
        for v in group:
            v += 1.0 if group is layout.views(flat)[3] else 0.0
    return layout, flat, X, Y, sw


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("activations, dropout", [
    (("tanh", "gelu"), (0.0, 0.0)),
    (("prelu", "softplus"), (0.0, 0.0)),
    (("silu", "elu"), (0.3, 0.5)),
])
def test_gradient_matches_finite_differences(activations, dropout, sparse):
    layout, flat, X, Y, sw = _problem(activations, dropout)
    trainer = Trainer(layout, flat.copy(), sp.csr_matrix(X) if sparse else X, Y, sw,
                      "log_loss", 0.1, dropout_seed=7)
    trainer.objective.dropout_stream = 3
    _, grads = trainer.loss_gradient(flat)
    grads = grads.copy()
    numerical = np.empty_like(flat)
    for k in range(flat.size):
        h = FD_STEP * max(1.0, abs(flat[k]))
        e = np.zeros_like(flat)
        e[k] = h
        numerical[k] = (trainer.loss_gradient(flat + e)[0]
                        - trainer.loss_gradient(flat - e)[0]) / (2 * h)
    # The scales' and offsets' gradients are there and right, like every other.
    n_norm = 2 * sum(HIDDEN)
    assert np.abs(grads[-n_norm:]).max() > 1e-3
    np.testing.assert_allclose(grads, numerical, rtol=1e-6,
                               atol=1e-6 * np.abs(numerical).max())


# ------------------------------------------------------------------ estimators
@ignore_convergence
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_weights_do_not_depend_on_the_thread_count(solver):
    # Large enough for the row-split epoch (each part sums its rows' scale and offset
    # gradients, added in part order).
    X, y = _data(n=1200, d=64)
    est = ReLUMLPClassifier(hidden_layer_sizes=(128, 64), normalization="layer",
                            solver=solver, max_iter=3, batch_size=200, random_state=0)
    fits = []
    for n in (1, 2, 3):
        with threadpool_limits(n, user_api="openmp"):
            fitted = clone(est).fit(X, y)
        fits.append(np.concatenate([a.ravel() for a in fitted.coefs_
                                    + fitted.normalization_scales_]))
    assert all(np.array_equal(fits[0], f) for f in fits[1:])


@ignore_convergence
def test_warm_start_partial_fit_and_pickle_keep_the_learned_normalization():
    X, y = _data()
    model = ReLUMLPClassifier(hidden_layer_sizes=(8,), normalization="layer", max_iter=5,
                              random_state=0).fit(X, y)
    scales = model.normalization_scales_[0].copy()
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.normalization_scales_[0], scales)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    model.partial_fit(X, y)
    assert not np.array_equal(model.normalization_scales_[0], scales)
    warm = ReLUMLPClassifier(hidden_layer_sizes=(8,), normalization="layer", max_iter=1,
                             warm_start=True, random_state=0)
    warm.fit(X, y)
    first = warm.normalization_offsets_[0].copy()
    warm.fit(X, y)
    assert not np.array_equal(warm.normalization_offsets_[0], first)
    # Replaced scales reach the predictions (the flat buffer is repacked).
    loaded.normalization_scales_ = [np.zeros_like(scales)]
    out = loaded.predict_proba(X[:2])
    np.testing.assert_allclose(out, reference_forward(loaded, X[:2]), rtol=1e-10)


@ignore_convergence
def test_regressor_and_what_refuses_normalization():
    X, y = _data()
    reg = ReLUMLPRegressor(hidden_layer_sizes=(8, 4), normalization=("layer", None),
                           max_iter=5, random_state=0).fit(X, y.astype(float))
    np.testing.assert_allclose(reg.predict(X), reference_forward(reg, X).ravel(),
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="normalization"):
        reg.to_sklearn()
    with pytest.raises(ValueError, match="normalization"):
        to_onnx(reg)
    with pytest.raises(Exception, match="normalization"):
        reg.set_params(normalization="batch").fit(X, y)
