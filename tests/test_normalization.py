"""Layer and batch normalization (``normalization='layer'`` / ``'batch'``): linear ->
normalization -> activation, with a learned scale and offset per unit (batch norm:
running statistics for prediction).

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


def batch_norm(Z, scale, offset, eps=EPS, mean=None, var=None):
    """Training mode (batch statistics) unless the running mean and var are given."""
    if mean is None:
        mean, var = Z.mean(axis=0), Z.var(axis=0)
    return scale * (Z - mean) / np.sqrt(var + eps) + offset


def reference_forward(model, X):
    """The network in NumPy, prediction mode: relu hidden layers, each normalized where
    the model says."""
    A = X
    for l, (W, b) in enumerate(zip(model.coefs_[:-1], model.intercepts_[:-1])):
        Z = A @ W + b
        if model.running_means_[l] is not None:
            Z = batch_norm(Z, model.normalization_scales_[l], model.normalization_offsets_[l],
                           model.normalization_eps, model.running_means_[l],
                           model.running_vars_[l])
        elif model.normalization_scales_[l] is not None:
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
@pytest.mark.parametrize("norm", ["layer", "batch", ("layer", None), (None, "batch"),
                                  ("batch", "layer")])
@pytest.mark.parametrize("n_rows", [1, 3, 300])
def test_predictions_are_the_numpy_network(norm, n_rows):
    X, y = _data()
    model = ReLUMLPClassifier(hidden_layer_sizes=(16, 8), normalization=norm, max_iter=20,
                              random_state=0).fit(X, y)
    for l, name in enumerate(norm if isinstance(norm, tuple) else (norm, norm)):
        assert (model.normalization_scales_[l] is None) == (name is None)
        assert (model.normalization_offsets_[l] is None) == (name is None)
        assert (model.running_means_[l] is None) == (name != "batch")
        assert (model.running_vars_[l] is None) == (name != "batch")
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


def _problem(activations, dropout, seed=0, kind="layer"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20, N_FEATURES))
    Y = np.eye(3)[rng.integers(0, 3, 20)]
    sw = rng.uniform(0.5, 2.0, 20)
    layout = NetworkLayout([N_FEATURES, *HIDDEN, 3], list(activations), "softmax",
                           [0.0, 0.0], list(dropout), normalization=[kind, kind])
    flat = rng.uniform(-0.8, 0.8, layout.n_params)
    for v in layout.views(flat)[3]:  # scales around 1, offsets around 0
        v += 1.0
    return layout, flat, X, Y, sw


@pytest.mark.parametrize("kind", ["layer", "batch"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("activations, dropout", [
    (("tanh", "gelu"), (0.0, 0.0)),
    (("prelu", "softplus"), (0.0, 0.0)),
    (("silu", "elu"), (0.3, 0.5)),
])
def test_gradient_matches_finite_differences(activations, dropout, sparse, kind):
    layout, flat, X, Y, sw = _problem(activations, dropout, kind=kind)
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
    # The scales' and offsets' gradients are there and right, like every other; batch
    # norm's running statistics are not used in training: their gradient is 0.
    scales, offsets, means, variances = layout.views(np.arange(flat.size))[3:]
    for group in (scales, offsets):
        assert all(np.abs(grads[v]).max() > 1e-4 for v in group)
    for group in (means, variances):
        assert all(v is None if kind == "layer" else not grads[v].any() for v in group)
    np.testing.assert_allclose(grads, numerical, rtol=1e-6,
                               atol=1e-6 * np.abs(numerical).max())


# ------------------------------------------------------------------ estimators
def test_training_forward_is_the_numpy_network_with_batch_statistics():
    layout, flat, X, Y, sw = _problem(("relu", "relu"), (0.0, 0.0), kind="batch")
    trainer = Trainer(layout, flat.copy(), X, Y, np.ones(len(X)), "log_loss", 0.0)
    loss, _ = trainer.loss_gradient(flat)
    coefs, intercepts, _, scales, offsets = layout.views(flat)[:5]
    A = X
    for l in range(2):
        A = np.maximum(batch_norm(A @ coefs[l] + intercepts[l], scales[l], offsets[l]), 0)
    Z = A @ coefs[2] + intercepts[2]
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    assert loss == pytest.approx(-(Y * np.log(P)).sum() / len(X), rel=1e-12)


@ignore_convergence
@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_running_statistics_follow_the_batches(momentum):
    # One full-batch step at a learning rate of 1e-300: the weights stay, and the
    # running statistics move from (0, 1) toward the batch's (unbiased variance).
    X, y = _data(n=50)
    model = ReLUMLPClassifier(hidden_layer_sizes=(6,), normalization="batch", solver="sgd",
                              max_iter=1, batch_size=50, shuffle=False,
                              learning_rate_init=1e-300, normalization_momentum=momentum,
                              random_state=0).fit(X, y)
    Z = X @ model.coefs_[0] + model.intercepts_[0]
    np.testing.assert_allclose(model.running_means_[0], momentum * Z.mean(0), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(model.running_vars_[0],
                               (1 - momentum) + momentum * Z.var(0, ddof=1), rtol=1e-12)
    # lbfgs: the running statistics are the whole data's, at the final weights.
    full = ReLUMLPClassifier(hidden_layer_sizes=(6,), normalization="batch", solver="lbfgs",
                             max_iter=20, random_state=0).fit(X, y)
    Z = X @ full.coefs_[0] + full.intercepts_[0]
    np.testing.assert_allclose(full.running_means_[0], Z.mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(full.running_vars_[0], Z.var(0, ddof=1), rtol=1e-10)


@ignore_convergence
@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_weights_do_not_depend_on_the_thread_count(solver, norm):
    # Large enough for the row-split epoch (each part sums its rows' scale and offset
    # gradients, added in part order).
    X, y = _data(n=1200, d=64)
    est = ReLUMLPClassifier(hidden_layer_sizes=(128, 64), normalization=norm,
                            solver=solver, max_iter=3, batch_size=200, random_state=0)
    fits = []
    for n in (1, 2, 3):
        with threadpool_limits(n, user_api="openmp"):
            fitted = clone(est).fit(X, y)
        fits.append(np.concatenate([a.ravel() for a in fitted.coefs_
                                    + fitted.normalization_scales_
                                    + [v for v in fitted.running_vars_ if v is not None]]))
    assert all(np.array_equal(fits[0], f) for f in fits[1:])


@ignore_convergence
@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_warm_start_partial_fit_and_pickle_keep_the_learned_normalization(norm):
    X, y = _data()
    model = ReLUMLPClassifier(hidden_layer_sizes=(8,), normalization=norm, max_iter=5,
                              random_state=0).fit(X, y)
    scales = model.normalization_scales_[0].copy()
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.normalization_scales_[0], scales)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    model.partial_fit(X, y)
    assert not np.array_equal(model.normalization_scales_[0], scales)
    if norm == "batch":  # partial_fit carried the running statistics on
        assert not np.array_equal(model.running_means_[0], loaded.running_means_[0])
    warm = ReLUMLPClassifier(hidden_layer_sizes=(8,), normalization=norm, max_iter=1,
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
    reg = ReLUMLPRegressor(hidden_layer_sizes=(8, 4), normalization=("layer", "batch"),
                           max_iter=5, random_state=0).fit(X, y.astype(float))
    np.testing.assert_allclose(reg.predict(X), reference_forward(reg, X).ravel(),
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="normalization"):
        reg.to_sklearn()
    with pytest.raises(Exception, match="normalization"):
        reg.set_params(normalization="group").fit(X, y)


@ignore_convergence
def test_batch_statistics_weigh_rows_like_the_loss():
    # A row of sample weight 2 is that row twice: same statistics, same lbfgs fit.
    X, y = _data(n=40)
    sw = np.ones(len(X))
    sw[:5] = 2
    est = ReLUMLPClassifier(hidden_layer_sizes=(6,), normalization="batch", solver="lbfgs",
                            max_iter=30, random_state=0)
    weighted = clone(est).fit(X, y, sample_weight=sw)
    repeated = clone(est).fit(np.vstack([X, X[:5]]), np.concatenate([y, y[:5]]))
    np.testing.assert_allclose(weighted.running_means_[0], repeated.running_means_[0],
                               rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                               rtol=1e-6, atol=1e-8)


@ignore_convergence
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm", ["layer", "batch", ("batch", "layer")])
def test_onnx_export_matches_predict_proba(norm, dtype):
    onnxruntime = pytest.importorskip("onnxruntime")
    X, y = _data()
    X = X.astype(dtype)
    model = ReLUMLPClassifier(hidden_layer_sizes=(16, 8), normalization=norm, max_iter=20,
                              random_state=0).fit(X, y)
    onnx_model = to_onnx(model, dtype=dtype)
    ops = {node.op_type for node in onnx_model.graph.node}
    assert ("LayerNormalization" in ops) == ("layer" in norm)
    assert ("BatchNormalization" in ops) == ("batch" in norm)
    sess = onnxruntime.InferenceSession(onnx_model.SerializeToString(),
                                        providers=["CPUExecutionProvider"])
    label, proba = sess.run(["label", "probabilities"], {"X": X})
    np.testing.assert_allclose(proba, model.predict_proba(X),
                               atol=1e-5 if dtype == np.float32 else 1e-10)
    np.testing.assert_array_equal(label, model.predict(X))
    if "layer" in norm:
        with pytest.raises(ValueError, match="opset >= 17"):
            to_onnx(model, opset=16)


@ignore_convergence
def test_diagnostics_see_batch_norm_in_prediction_mode():
    X, y = _data()
    model = ReLUMLPClassifier(hidden_layer_sizes=(12,), normalization="batch", max_iter=10,
                              random_state=0).fit(X, y)
    Z = diagnostics.hidden_activations(model, X, layer=0, pre_activation=True)
    expected = batch_norm(X @ model.coefs_[0] + model.intercepts_[0],
                          model.normalization_scales_[0], model.normalization_offsets_[0],
                          EPS, model.running_means_[0], model.running_vars_[0])
    np.testing.assert_allclose(Z, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(diagnostics.hidden_activations(model, X, layer=0),
                               np.maximum(expected, 0), rtol=1e-10, atol=1e-12)


@ignore_convergence
@pytest.mark.parametrize("norm", ["batch", ("batch", "layer"), (None, "batch")])
def test_batch_norm_row_split_epoch_matches_the_serial_one(norm, monkeypatch):
    # The row-split epoch gives batch norm extra phases: each part sums its rows, the
    # parts' sums are combined in part order (forward statistics, backward sums). It
    # must agree with the serial epoch (whole-batch sums) up to rounding, and give the
    # same bits on any thread count.
    from relumlp import _threads
    monkeypatch.setattr(_threads, "row_parts", lambda batch_size: 3)
    X, y = _data(n=900, d=64)
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    params = dict(hidden_layer_sizes=(128, 64), normalization=norm, max_iter=3,
                  batch_size=150, random_state=0)
    fits = []
    for n in (1, 2, 3):
        with threadpool_limits(n, user_api="openmp"):
            fits.append(ReLUMLPClassifier(**params).fit(X, y, sample_weight=sw))
    # max_grad_norm sends a fit to the serial epoch (a norm this large never clips).
    serial = ReLUMLPClassifier(max_grad_norm=1e12, **params).fit(X, y, sample_weight=sw)
    for a, b in zip(fits[0].coefs_ + fits[0].running_vars_, serial.coefs_
                    + serial.running_vars_):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for f in fits[1:]:
        for a, b in zip(fits[0].coefs_ + fits[0].running_means_, f.coefs_ + f.running_means_):
            assert (a is None and b is None) or np.array_equal(a, b)


@ignore_convergence
@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_normalization_combines_with_the_rest(norm):
    # Early stopping (validation scored with prediction-mode statistics), L1, dropout,
    # class weights and float32, all at once; history_ and transform see the
    # normalized pre-activation.
    X, y = _data(n=400)
    model = ReLUMLPClassifier(hidden_layer_sizes=(32, 16), normalization=norm,
                              early_stopping=True, n_iter_no_change=3, max_iter=40,
                              alpha_l1=1e-3, dropout=0.1, class_weight="balanced",
                              random_state=0).fit(X.astype(np.float32), y)
    assert model.coefs_[0].dtype == np.float32
    assert model.normalization_scales_[0].dtype == np.float32
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    proba = model.predict_proba(X.astype(np.float32))
    np.testing.assert_allclose(proba, reference_forward(model, X).astype(np.float32),
                               rtol=1e-4, atol=1e-5)
    dead = model.history_[-1]["dead_fraction"]
    assert len(dead) == 2 and all(0 <= d <= 1 for d in dead)
    Z = diagnostics.hidden_activations(model, X.astype(np.float32), layer=1,
                                       pre_activation=True)
    A = np.maximum(Z, 0)
    np.testing.assert_allclose(model.transform(X.astype(np.float32), layer=1), A,
                               rtol=1e-6, atol=1e-6)
