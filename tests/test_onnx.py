"""ONNX export: the exported graph, run by onnxruntime, reproduces predict / predict_proba
for every hidden activation, every output activation and both estimators."""
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor
from relumlp._activations import HIDDEN_ACTIVATIONS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from relumlp._onnx import DEFAULT_OPSET, to_onnx  # noqa: E402

from _helpers import _fit_quietly  # noqa: E402

ACTIVATIONS = sorted(HIDDEN_ACTIVATIONS) + [("relu", "prelu", "elu")]
TASKS = ["multiclass", "binary", "multilabel", "regression", "multioutput", "poisson"]
# Dedicated operator a float32 graph must contain for each activation.
NATIVE_OP = {"logistic": "Sigmoid", "tanh": "Tanh", "relu": "Relu",
             "leaky_relu": "LeakyRelu", "prelu": "PRelu", "elu": "Elu", "selu": "Selu",
             "gelu": "Gelu", "silu": "Sigmoid", "swish": "Sigmoid", "softplus": "Softplus"}
TIE = 1e-6  # label checks skip rows whose decision is this close to a tie
# The digits fixture: X[:240] / 8 - 1 (pixels in [-1, 1]), in float32.
DIGITS = dict(n=240, scale="symmetric", dtype=np.float32)


def _act_id(act):
    return "-".join(act) if isinstance(act, tuple) else act


def _data(task, digits, dtype=np.float32):
    X, y = digits
    X = X.astype(dtype)
    if task == "multiclass":
        return X, y
    if task == "binary":  # string labels: exported as a string tensor
        return X, np.where(y % 2 == 0, "even", "odd")
    if task == "multilabel":
        return X, np.column_stack([y % 2 == 0, y > 4, y % 3 == 0]).astype(int)
    if task == "regression":
        return X, (y / 3.0 - 1.5).astype(dtype)
    if task == "multioutput":
        return X, np.column_stack([y / 3.0 - 1.5, X[:, 20] + X[:, 36]]).astype(dtype)
    if task == "poisson":
        rng = np.random.RandomState(0)
        return X, rng.poisson(np.exp(0.3 * X[:, 20] - 0.2 * X[:, 43])).astype(dtype)
    raise ValueError(task)


def _fit_task(task, act, digits, dtype=np.float32, max_iter=5, **params):
    """An estimator for `task` with hidden activation(s) `act`, fitted on the task's data
    (PReLU slopes then randomised); returns (estimator, X)."""
    X, y = _data(task, digits, dtype)
    hidden = (12, 10, 8) if isinstance(act, tuple) else (12, 8)
    kw = dict(hidden_layer_sizes=hidden, activation=act, max_iter=max_iter,
              random_state=0, negative_slope=0.2, elu_alpha=0.7)
    kw.update(params)
    if task in ("regression", "multioutput", "poisson"):
        Est = ReLUMLPRegressor
        if task == "poisson":
            kw["loss"] = "poisson"
    else:
        Est = ReLUMLPClassifier
    est = _fit_quietly(Est(**kw), X, y)
    _randomize_prelu_slopes(est, X)
    return est, X


def _randomize_prelu_slopes(est, X):
    """Give PReLU layers slopes far from the initial negative_slope, so that an export
    that ignored the learned slopes (Relu or LeakyRelu instead of PRelu) would fail."""
    if not any(s is not None for s in est.prelu_slopes_):
        return
    before = _predict_2d(est, X)
    rng = np.random.RandomState(1)
    for s in est.prelu_slopes_:
        if s is not None:
            s[:] = rng.uniform(-0.8, 1.5, s.shape)  # in place: the fitted buffer
    assert np.abs(_predict_2d(est, X) - before).max() > 1e-3


def _predict_2d(est, X):
    if isinstance(est, ReLUMLPClassifier):
        return est.predict_proba(X)
    return est.predict(X).reshape(len(X), -1)


def _run(model, X):
    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"X": X})))


def _check_labels(est, X, label, proba):
    """ONNX labels equal predict's, except on rows within TIE of a decision tie."""
    pred = est.predict(X)
    if est._label_binarizer.y_type_ == "multilabel-indicator":
        clear = (np.abs(proba - 0.5) > TIE).all(axis=1)
    else:
        top2 = np.sort(proba, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > TIE
    assert clear.mean() > 0.9
    assert label.shape == pred.shape
    np.testing.assert_array_equal(label[clear], pred[clear])


def _check_model(est, X, model, atol=1e-5, rtol=0.0):
    onnx.checker.check_model(model, full_check=True)
    out = _run(model, X)
    if isinstance(est, ReLUMLPClassifier):
        assert list(out) == ["label", "probabilities"]
        proba = est.predict_proba(X)
        assert out["probabilities"].dtype == X.dtype
        np.testing.assert_allclose(out["probabilities"], proba, rtol=rtol, atol=atol)
        _check_labels(est, X, out["label"], out["probabilities"])
    else:
        assert list(out) == ["variable"]
        pred = est.predict(X).reshape(len(X), -1)
        assert out["variable"].dtype == X.dtype
        assert out["variable"].shape == pred.shape
        np.testing.assert_allclose(out["variable"], pred, rtol=rtol, atol=atol)
    return out


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=_act_id)
def test_matches_predict_float32(act, task, digits):
    est, X = _fit_task(task, act, digits)
    model = to_onnx(est)
    assert model.opset_import[0].version == min(DEFAULT_OPSET,
                                                onnx.defs.onnx_opset_version())
    if task == "poisson":  # exp output: compare relatively
        _check_model(est, X, model, atol=0, rtol=1e-5)
    else:
        _check_model(est, X, model, atol=1e-5)
    # Built from the dedicated operators.
    ops = {n.op_type for n in model.graph.node}
    for name in act if isinstance(act, tuple) else [act]:
        if name in NATIVE_OP:
            assert NATIVE_OP[name] in ops


@pytest.mark.parametrize("act", sorted(HIDDEN_ACTIVATIONS), ids=_act_id)
def test_matches_predict_float64(act, digits):
    """A float64 model exported in float64 agrees to ~1e-12 (gelu: erf runs in float32
    in onnxruntime, documented)."""
    est, X = _fit_task("multioutput", act, digits, dtype=np.float64)
    model = to_onnx(est, dtype=np.float64)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    tol = 1e-6 if act == "gelu" else 1e-12
    _check_model(est, X, model, atol=tol, rtol=tol)


def test_float64_classifier(digits):
    est, X = _fit_task("multiclass", ("leaky_relu", "prelu", "selu"), digits,
                       dtype=np.float64)
    _check_model(est, X, to_onnx(est, dtype=np.float64), atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", sorted(HIDDEN_ACTIVATIONS), ids=_act_id)
def test_large_inputs_do_not_overflow(act, dtype, digits):
    """Pre-activations in the hundreds: exp-based activations must not give inf / nan."""
    est, X = _fit_task("regression", act, digits, dtype=dtype)
    X_big = (X * 60).astype(dtype)
    pred = est.predict(X_big)
    assert np.isfinite(pred).all()
    out = _run(to_onnx(est, dtype=dtype), X_big)["variable"]
    assert np.isfinite(out).all()
    tol = 1e-5 if dtype == np.float32 or act == "gelu" else 1e-12
    np.testing.assert_allclose(out.ravel(), pred, rtol=tol, atol=tol * np.abs(pred).max())


@pytest.mark.parametrize("opset", [13, 17, 19, 20, onnx.defs.onnx_opset_version()])
def test_opsets_and_gelu(opset, digits):
    est, X = _fit_task("multiclass", ("gelu", "softplus", "prelu"), digits)
    model = to_onnx(est, opset=opset)
    assert model.opset_import[0].version == opset
    assert model.ir_version == onnx.helper.find_min_ir_version_for(
        [onnx.helper.make_opsetid("", opset)])
    ops = [n.op_type for n in model.graph.node]
    # Exact Gelu operator from opset 20, its erf formula before.
    assert ("Gelu" in ops) == (opset >= 20)
    assert ("Erf" in ops) == (opset < 20)
    _check_model(est, X, model)


def test_binary_probabilities_and_labels(digits):
    """Binary: probabilities are [1 - p, p]; labels use predict's p > 0.5 rule."""
    est, X = _fit_task("binary", "relu", digits, max_iter=20)
    out = _check_model(est, X, to_onnx(est))
    proba = out["probabilities"]
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    assert set(out["label"]) == {"even", "odd"}
    assert out["label"].dtype == object


@pytest.mark.parametrize("labels", [
    np.array([3, 7, 11]), np.array([-2.0, 0.0, 4.0]), np.array(["a", "bb", "ccc"]),
    np.array(["cat", "dog", "eel"], dtype=object), np.array([False, True]),
], ids=["int", "float", "str", "object-str", "bool"])
def test_class_label_types(labels, digits):
    X, y = digits
    y = labels[y % len(labels)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ReLUMLPClassifier((10,), max_iter=10, random_state=0).fit(X, y)
    out = _check_model(est, X, to_onnx(est))
    assert set(np.asarray(out["label"]).tolist()) <= set(labels.tolist())


def test_multilabel_outputs(digits):
    est, X = _fit_task("multilabel", "tanh", digits, max_iter=20)
    out = _check_model(est, X, to_onnx(est))
    assert out["label"].dtype == np.int64
    assert out["label"].shape == out["probabilities"].shape == (len(X), 3)


def test_single_row_and_unseen_rows(digits):
    est, X = _fit_task("multiclass", ("relu", "prelu", "elu"), digits)
    model = to_onnx(est)
    _check_model(est, X[:1], model)
    rng = np.random.RandomState(3)
    _check_model(est, rng.randn(50, X.shape[1]).astype(np.float32), model)


def test_export_follows_predict_after_set_params(digits):
    """The graph uses the activation parameters predict uses."""
    est, X = _fit_task("regression", "leaky_relu", digits)
    est.set_params(negative_slope=0.9)
    _check_model(est, X, to_onnx(est))


def test_replaced_parameter_arrays(digits):
    """coefs_ / intercepts_ / prelu_slopes_ replaced by new arrays are exported."""
    est, X = _fit_task("multiclass", "prelu", digits)
    rng = np.random.RandomState(4)
    est.coefs_[1] = est.coefs_[1] + rng.normal(0, 0.1, est.coefs_[1].shape).astype(np.float32)
    est.intercepts_[0] = est.intercepts_[0] + np.float32(0.3)
    est.prelu_slopes_[1] = rng.uniform(-1, 1, 8).astype(np.float32)
    _check_model(est, X, to_onnx(est))


def test_float64_model_exported_in_float32(digits):
    est, X = _fit_task("multiclass", "selu", digits, dtype=np.float64)
    model = to_onnx(est)  # weights cast to float32
    out = _run(model, X.astype(np.float32))
    np.testing.assert_allclose(out["probabilities"], est.predict_proba(X), atol=1e-5)


def test_model_metadata(digits):
    est, _ = _fit_task("multiclass", ("relu", "prelu", "elu"), digits)
    model = to_onnx(est, name="my_net")
    assert model.graph.name == "my_net"
    assert model.producer_name == "relumlp"
    props = {p.key: p.value for p in model.metadata_props}
    assert props["hidden_activations"] == "relu,prelu,elu"
    assert props["out_activation"] == "softmax"
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "X" and len(dims) == 2
    assert not dims[0].HasField("dim_value") and dims[1].dim_value == 64
    assert to_onnx(est).graph.name == "ReLUMLPClassifier"


@pytest.mark.parametrize("Est", [ReLUMLPClassifier, ReLUMLPRegressor])
def test_unfitted_raises(Est):
    with pytest.raises(NotFittedError):
        to_onnx(Est())


def test_bad_arguments(digits):
    est, _ = _fit_task("regression", "relu", digits)
    with pytest.raises(ValueError, match="dtype"):
        to_onnx(est, dtype=np.int32)
    with pytest.raises(ValueError, match="opset"):
        to_onnx(est, opset=12)
    with pytest.raises(ValueError, match="opset"):
        to_onnx(est, opset=onnx.defs.onnx_opset_version() + 1)
    with pytest.raises(TypeError, match="ReLUMLP"):
        to_onnx(MLPClassifier())


def test_missing_onnx_names_the_extra(monkeypatch, digits):
    est, _ = _fit_task("regression", "relu", digits)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install relumlp\[onnx\]"):
        to_onnx(est)


@pytest.mark.parametrize("label", [7, "seven"])
def test_single_class_exports(digits, label):
    # A classifier fitted on one class (as scikit-learn allows) predicts that class
    # from its two probability columns, in the graph too.
    X, _ = _data("multiclass", digits)
    y = np.full(X.shape[0], label)
    model = _fit_quietly(ReLUMLPClassifier((8,), max_iter=3, random_state=0), X, y)
    session = ort.InferenceSession(model.to_onnx().SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    labels, proba = session.run(["label", "probabilities"], {"X": X})
    assert proba.shape == (X.shape[0], 2)
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(labels, model.predict(X))
