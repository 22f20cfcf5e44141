"""The one-row prediction path: its shortcuts give exactly what the general path gives.

``predict`` decodes the network's output itself (``_estimators._inverse_binarize``)
instead of calling ``LabelBinarizer.inverse_transform``: same values and dtype for every
target type the classifier takes. No timing here: speed is measured by
``benchmarks/one_row.py``.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelBinarizer

from relumlp import ReLUMLPClassifier
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
