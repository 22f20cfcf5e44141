"""The one-row prediction path: its shortcuts give exactly what the general path gives.

``predict`` decodes the network's output itself (``_estimators._inverse_binarize``)
instead of calling ``LabelBinarizer.inverse_transform``: same values and dtype for every
target type the classifier takes. A plain float ndarray skips ``validate_data`` (the
kernels find NaN and infinity); everything else still goes through it, with
scikit-learn's warnings and messages. No timing here: speed is measured by
``benchmarks/one_row.py``.
"""
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelBinarizer

import relumlp._estimators as estimators_module
from relumlp import ReLUMLPClassifier, ReLUMLPRegressor
from relumlp._estimators import _inverse_binarize

from _helpers import ignore_convergence

DTYPES = [np.float32, np.float64]

# Targets of every type the classifier takes: binary, multiclass, multilabel and a
# single class, with integer, negative, float, boolean, string and object labels.
TARGETS = {
    "binary-int": np.array([0, 1, 1, 0, 1]),
    "binary-labels-3-7": np.array([7, 3, 3, 7, 7]),
    "binary-negative": np.array([-1, 1, 1, -1, 1]),
    "binary-float": np.array([1.0, 2.0, 2.0, 1.0, 1.0]),
    "binary-bool": np.array([True, False, True, True, False]),
    "binary-str": np.array(["no", "yes", "yes", "no", "no"]),
    "binary-object": np.array(["no", "yes", "yes", "no", "no"], dtype=object),
    "single-int": np.array([7, 7, 7, 7, 7]),
    "single-str": np.array(["seven"] * 5),
    "single-object": np.array(["seven"] * 5, dtype=object),
    "multiclass-int": np.array([0, 1, 2, 3, 4, 2]),
    "multiclass-negative": np.array([-5, 0, 5, 0, -5, 10]),
    "multiclass-float": np.array([-1.0, 2.0, 3.0, -1.0, 3.0]),
    "multiclass-str": np.array(["a", "bb", "ccc", "a", "bb"]),
    "multiclass-object": np.array(["a", "bb", "ccc", "a", "bb"], dtype=object),
    "multilabel-3": np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]]),
    "multilabel-2": np.array([[1, 0], [0, 1], [1, 1]]),
}


def _network_output(binarizer, n_rows, dtype, rng):
    """What the network feeds the decoder (one column raveled): random probabilities,
    with rows of ties, exact 0.5, 0, 1 and NaN."""
    n_outputs = binarizer.transform(binarizer.classes_[:1]).shape[1] \
        if binarizer.y_type_ != "multilabel-indicator" else len(binarizer.classes_)
    Y = rng.uniform(size=(n_rows, n_outputs))
    special = np.array([0.5, 0.25, 0.5, np.nan, 0.0, 1.0, 0.5])
    for i in range(min(n_rows, 6)):
        Y[i] = np.resize(np.roll(special, i), n_outputs)  # ties, thresholds, NaN
    Y = Y.astype(dtype)
    return Y.ravel() if n_outputs == 1 else Y


def _assert_same_output(got, expected):
    assert type(got) is type(expected)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    if expected.dtype == object:
        assert got.tolist() == expected.tolist()
        assert all(type(a) is type(b) for a, b in zip(got.ravel(), expected.ravel()))
    else:
        np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------------------- the decoding
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_rows", [1, 3, 50])
@pytest.mark.parametrize("target", list(TARGETS))
def test_decoding_equals_label_binarizer(target, n_rows, dtype):
    binarizer = LabelBinarizer().fit(TARGETS[target])
    Y = _network_output(binarizer, n_rows, dtype, np.random.default_rng(n_rows))
    _assert_same_output(_inverse_binarize(binarizer, Y), binarizer.inverse_transform(Y))


@pytest.mark.parametrize("case", ["sparse-targets", "other-labels", "unfitted"])
def test_decoding_leaves_the_rest_to_label_binarizer(case, monkeypatch):
    # A binarizer fitted on sparse targets returns a sparse matrix, one with other
    # labels another threshold, an unfitted one raises: inverse_transform decides.
    Y = np.random.default_rng(0).uniform(size=(4, 3))
    y = TARGETS["multilabel-3"]
    binarizer = {"sparse-targets": LabelBinarizer().fit(sp.csr_matrix(y)),
                 "other-labels": LabelBinarizer(neg_label=-1, pos_label=2).fit(y),
                 "unfitted": LabelBinarizer()}[case]
    calls = []
    original = LabelBinarizer.inverse_transform

    def spy(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LabelBinarizer, "inverse_transform", spy)
    if case == "unfitted":
        with pytest.raises(Exception) as ours:
            _inverse_binarize(binarizer, Y)
        with pytest.raises(type(ours.value)):
            original(binarizer, Y)
    else:
        got, expected = _inverse_binarize(binarizer, Y), original(binarizer, Y)
        assert type(got) is type(expected)
        if sp.issparse(expected):
            got, expected = got.toarray(), expected.toarray()
        np.testing.assert_array_equal(got, expected)
    assert calls == [binarizer]


def _data(target, n_features=6, seed=0):
    y = np.resize(TARGETS[target], (40,) + TARGETS[target].shape[1:])
    X = np.random.default_rng(seed).normal(size=(40, n_features))
    return X, y


@ignore_convergence
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target", list(TARGETS))
def test_predict_decodes_as_label_binarizer(target, dtype):
    # predict is inverse_transform of the network's output (what it returned before),
    # for one row, a few rows (the few-rows kernel) and many.
    X, y = _data(target)
    X = X.astype(dtype)
    clf = ReLUMLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    for rows in (X[:1], X[:3], X):
        proba = clf.predict_proba(rows)
        y_pred = proba[:, 1] if clf.n_outputs_ == 1 else proba
        _assert_same_output(clf.predict(rows),
                            clf._label_binarizer.inverse_transform(y_pred))


@ignore_convergence
@pytest.mark.parametrize("target", ["binary-labels-3-7", "binary-str", "single-int",
                                    "single-str", "multiclass-negative",
                                    "multiclass-str", "multiclass-object", "multilabel-3"])
def test_predict_equals_sklearns_decoding(target):
    # scikit-learn's MLPClassifier with the same weights decodes to the same labels,
    # dtype included.
    X, y = _data(target, seed=1)
    clf = ReLUMLPClassifier((7,), max_iter=5, random_state=0).fit(X, y)
    mlp = clf.to_sklearn()
    assert isinstance(mlp, MLPClassifier)
    for rows in (X[:1], X[:4], X):
        _assert_same_output(clf.predict(rows), mlp.predict(rows))


@ignore_convergence
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_predict_proba_is_sklearns_stack(dtype):
    # np.vstack([1 - p, p]).T, as scikit-learn builds it: values, dtype and memory order.
    X, y = _data("binary-str")
    X = X.astype(dtype)
    clf = ReLUMLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    for rows in (X[:1], X[:3], X):
        p = clf._forward_pass_fast(rows).ravel()
        expected = np.vstack([1 - p, p]).T
        proba = clf.predict_proba(rows)
        np.testing.assert_array_equal(proba, expected)
        assert proba.dtype == expected.dtype == dtype
        assert proba.flags.f_contiguous == expected.flags.f_contiguous


@ignore_convergence
def test_predict_log_proba_of_zero_is_minus_infinity_without_warning():
    # pytest turns warnings into errors: log(0) must stay silent, as before.
    X, y = _data("multiclass-int")
    clf = ReLUMLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    for rows in (X[:1], X):
        np.testing.assert_array_equal(clf.predict_log_proba(rows),
                                      np.log(clf.predict_proba(rows)))
    clf.intercepts_[-1][0] = 1e4  # class 0 takes all: the others' softmax underflows
    log_proba = clf.predict_log_proba(X[:1])
    assert log_proba[0, 0] == 0 and np.isneginf(log_proba[0, 1:]).all()


# ---------------------------------------------------------------- input validation
@pytest.fixture
def validate_calls(monkeypatch):
    """The arrays that went through scikit-learn's validate_data (clear it after fit)."""
    calls = []
    original = estimators_module.validate_data

    def spy(est, X, *args, **kwargs):
        calls.append(X)
        return original(est, X, *args, **kwargs)

    monkeypatch.setattr(estimators_module, "validate_data", spy)
    return calls


def _fitted(cls, dtype, columns=None):
    """A small fitted ``cls`` (on a DataFrame with ``columns`` if given) and its X."""
    X, y = _data("multiclass-int", n_features=5)
    if cls is ReLUMLPRegressor:
        y = X[:, 0] - X[:, 1]
    X = X.astype(dtype)
    Xfit = X if columns is None else pytest.importorskip("pandas").DataFrame(X, columns=columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = cls(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(Xfit, y)
    return est, X


METHODS = {ReLUMLPClassifier: ["predict", "predict_proba", "predict_log_proba"],
           ReLUMLPRegressor: ["predict"]}
CALLS = [(cls, m) for cls in METHODS for m in METHODS[cls]]


@pytest.mark.parametrize("model_dtype", DTYPES)
@pytest.mark.parametrize("cls, method", CALLS)
def test_plain_float_arrays_skip_validate_data(cls, method, model_dtype, validate_calls):
    est, X = _fitted(cls, model_dtype)
    validate_calls.clear()
    for rows in (X[:1], X[:3], X, X[:2, ::-1], X[::2]):  # C- and non-contiguous
        for dtype in DTYPES:
            getattr(est, method)(rows.astype(dtype))
    assert validate_calls == []


class _Subclass(np.ndarray):
    pass


@pytest.mark.parametrize("cls, method", CALLS)
def test_other_input_goes_through_validate_data(cls, method, validate_calls):
    # Lists, integers, float16, sparse matrices and ndarray subclasses are converted
    # by scikit-learn (to float64), with the result of the float64 array.
    est, X = _fitted(cls, np.float32)
    validate_calls.clear()
    run = getattr(est, method)
    X64 = np.round(X[:3] * 4).astype(np.float64)
    expected = run(X64)
    for other in [X64.tolist(), X64.astype(np.int64), X64.astype(np.float16),
                  X64.view(_Subclass), sp.csr_matrix(X64)]:
        if sp.issparse(other):  # another kernel (CSR): equal to rounding
            np.testing.assert_allclose(run(other), expected, rtol=1e-5)
        else:
            np.testing.assert_array_equal(run(other), expected)
    assert len(validate_calls) == 5


@pytest.mark.parametrize("n_rows", [1, 3, 10])
@pytest.mark.parametrize("cls, method", CALLS)
def test_wrong_shape_raises_sklearns_message(cls, method, n_rows, validate_calls):
    est, X = _fitted(cls, np.float32)
    validate_calls.clear()
    run = getattr(est, method)
    message = (f"X has 4 features, but {cls.__name__} is expecting 5 features as input.")
    with pytest.raises(ValueError, match=re.escape(message)):
        run(X[:n_rows, :4])
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array instead"):
        run(X[0])
    assert len(validate_calls) == 2


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_rows", [1, 4, 5])
@pytest.mark.parametrize("cls, method", CALLS)
def test_nonfinite_raises_sklearns_message(cls, method, n_rows, dtype, bad):
    # The kernels find it; validate_data then raises scikit-learn's own message, the
    # one MLPClassifier / MLPRegressor raise.
    est, X = _fitted(cls, np.float32)
    X_bad = X[:n_rows].astype(dtype)
    X_bad[-1, 2] = bad
    with pytest.raises(ValueError) as ours:
        getattr(est, method)(X_bad)
    mlp = est.to_sklearn()
    with pytest.raises(ValueError) as theirs:
        getattr(mlp, method)(X_bad)
    assert str(ours.value) == str(theirs.value).replace(
        type(mlp).__name__, cls.__name__)


@pytest.mark.parametrize("cls, method", CALLS)
def test_feature_names_are_checked(cls, method, validate_calls):
    pytest.importorskip("pandas")
    import pandas as pd

    columns = list("abcde")
    est, X = _fitted(cls, np.float64, columns=columns)
    validate_calls.clear()
    run = getattr(est, method)
    expected = run(pd.DataFrame(X[:1], columns=columns))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(run(X[:1]), expected)
    with pytest.raises(ValueError, match="feature names should match"):
        run(pd.DataFrame(X[:1], columns=list("edcba")))
    assert len(validate_calls) == 3


@ignore_convergence
def test_replaced_parameters_reach_one_row_predictions():
    # Entries of coefs_ / intercepts_ / prelu_slopes_ replaced (not written in place)
    # since the last prediction are packed again: a one-row prediction uses them.
    X, y = _data("multiclass-int")
    clf = ReLUMLPClassifier((6,), activation="prelu", max_iter=2, random_state=0).fit(X, y)
    clf.predict_proba(X[:1])
    reference = ReLUMLPClassifier((6,), activation="prelu", max_iter=2,
                                  random_state=1).fit(X, y)
    for name in ("coefs_", "intercepts_", "prelu_slopes_"):
        for k, array in enumerate(getattr(reference, name)):
            getattr(clf, name)[k] = array.copy()
            clf.predict_proba(X[:1])  # packed once per replacement
    np.testing.assert_array_equal(clf.predict_proba(X[:1]), reference.predict_proba(X[:1]))
    clf.coefs_ = [c.copy() for c in clf.coefs_]
    np.testing.assert_array_equal(clf.predict_proba(X[:1]), reference.predict_proba(X[:1]))


@ignore_convergence
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameters_start_on_a_cache_line(dtype):
    # Unaligned weight rows make every wide load straddle two cache lines (the few-rows
    # pass ran 1.6x slower): the flat buffer is 64-byte aligned after fit, partial_fit,
    # unpickling and a repack of replaced coefs_, and its views stay views.
    import pickle

    from relumlp._params import aligned_empty
    for n in (1, 7, 100):
        a = aligned_empty(n, dtype)
        assert a.ctypes.data % 64 == 0 and a.shape == (n,) and a.dtype == dtype
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 9)).astype(dtype)
    y = np.arange(60) % 3
    model = ReLUMLPClassifier(hidden_layer_sizes=(5,), max_iter=2).fit(X, y)
    assert model._flat.ctypes.data % 64 == 0
    model.partial_fit(X, y)
    assert model._flat.ctypes.data % 64 == 0
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded._flat.ctypes.data % 64 == 0
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    loaded.coefs_ = [c.copy() for c in loaded.coefs_]
    loaded.predict(X[:1])
    assert loaded._flat.ctypes.data % 64 == 0
    assert np.shares_memory(loaded.coefs_[0], loaded._flat)
