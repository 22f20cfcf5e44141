"""Behaviour of ReLUMLPClassifier / ReLUMLPRegressor beyond scikit-learn parity.

dtype preservation, read-only and memory-mapped input, determinism across thread
counts, partial_fit / warm_start semantics, input checks scikit-learn lacks (Poisson
targets, lbfgs with early stopping), the lbfgs history, class weights, multi-output,
tags, persistence, model selection and parameter validation.
"""
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.class_weight import compute_sample_weight

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor

from _helpers import (  # noqa: E402
    ESTIMATORS,
    _assert_params_equal,
    _data_for,
    _diabetes,
    _digits,
    _output,
    _small,
    ignore_convergence,
    readonly,
)


# ---------------------------------------------------------------------------- dtypes
@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_float32_stays_float32(est_cls, solver):
    X, y = _data_for(est_cls)
    X32 = X.astype(np.float32)
    est = _small(est_cls, solver=solver).fit(X32, y)
    for a in est.coefs_ + est.intercepts_:
        assert a.dtype == np.float32
    out = _output(est, X32)
    assert out.dtype == np.float32
    # float64 input to a float32 model still answers in the model's dtype
    assert _output(est, X).dtype == np.float32
    assert np.asarray(est.loss_curve_).dtype == np.float32
    if est_cls is ReLUMLPClassifier:
        assert est.predict_log_proba(X32).dtype == np.float32
        assert est.predict(X32).dtype == y.dtype


@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_float64_stays_float64(est_cls, solver):
    X, y = _data_for(est_cls)
    est = _small(est_cls, solver=solver).fit(X, y)
    for a in est.coefs_ + est.intercepts_:
        assert a.dtype == np.float64
    assert _output(est, X).dtype == np.float64
    assert _output(est, X.astype(np.float32)).dtype == np.float64


@ignore_convergence
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_float32_close_to_float64(est_cls, solver, sparse):
    X, y = _data_for(est_cls)
    X32 = X.astype(np.float32)
    if sparse:
        X, X32 = sp.csr_matrix(X), sp.csr_matrix(X32)
    est64 = _small(est_cls, solver=solver, max_iter=6).fit(X, y)
    est32 = _small(est_cls, solver=solver, max_iter=6).fit(X32, y)
    assert est32.coefs_[0].dtype == np.float32
    np.testing.assert_allclose(est32.loss_curve_, est64.loss_curve_, rtol=1e-3)
    np.testing.assert_allclose(_output(est32, X32), _output(est64, X), rtol=1e-2, atol=1e-3)
    # the float32 fit is really float32 arithmetic, not a cast float64 fit
    assert not np.array_equal(est32.coefs_[0], est64.coefs_[0].astype(np.float32))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_lbfgs_keeps_float32_weights():
    X, y = _digits()
    X32 = X.astype(np.float32)
    est = ReLUMLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=30,
                            random_state=0).fit(X32, y)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est.predict_proba(X32).dtype == np.float32
    assert isinstance(est.loss_, np.float32)
    est64 = ReLUMLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=30,
                              random_state=0).fit(X, y)
    assert est.loss_ == pytest.approx(est64.loss_, rel=0.2)


# ---------------------------------------------------------------------------- read-only input
@ignore_convergence
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_memmap_input(est_cls, solver, tmp_path):
    X, y = _data_for(est_cls)
    path = tmp_path / "X.dat"
    w = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    w[:] = X
    w.flush()
    del w
    Xm = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    assert not Xm.flags.writeable
    est = _small(est_cls, solver=solver).fit(Xm, y)
    ref = _small(est_cls, solver=solver).fit(X, y)
    _assert_params_equal(est, ref)
    assert np.array_equal(_output(est, Xm), _output(ref, X))
    np.testing.assert_array_equal(np.asarray(Xm), X)  # input untouched


@ignore_convergence
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_readonly_input(est_cls, sparse):
    X, y = _data_for(est_cls)
    sw = np.linspace(0.5, 1.5, X.shape[0])
    Xw = sp.csr_matrix(X) if sparse else X
    ref = _small(est_cls, shuffle=True).fit(Xw, y, sample_weight=sw)
    yr, swr = readonly(y), readonly(sw)
    if sparse:
        Xr = sp.csr_matrix(X.copy())
        for a in (Xr.data, Xr.indices, Xr.indptr):
            a.setflags(write=False)
    else:
        Xr = readonly(X)
    est = _small(est_cls, shuffle=True).fit(Xr, yr, sample_weight=swr)
    _assert_params_equal(est, ref)
    assert np.array_equal(_output(est, Xr), _output(ref, Xw))
    if hasattr(est, "partial_fit"):
        kw = dict(classes=np.unique(y)) if est_cls is ReLUMLPClassifier else {}
        assert _small(est_cls).partial_fit(Xr, yr, **kw).n_iter_ == 1


# ---------------------------------------------------------------------------- determinism


@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_dense_and_sparse_give_same_model(est_cls, solver):
    X, y = _data_for(est_cls)
    X = np.where(np.abs(X) < 0.3, 0.0, X)
    dense = _small(est_cls, solver=solver, shuffle=True).fit(X, y)
    csr = _small(est_cls, solver=solver, shuffle=True).fit(sp.csr_matrix(X), y)
    csc = _small(est_cls, solver=solver, shuffle=True).fit(sp.csc_matrix(X), y)
    for model in (csr, csc):
        for a, b in zip(model.coefs_ + model.intercepts_, dense.coefs_ + dense.intercepts_):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(model.loss_curve_, dense.loss_curve_, rtol=1e-10)
    for Xp in (sp.csr_matrix(X), sp.csc_matrix(X)):
        np.testing.assert_allclose(_output(dense, Xp), _output(dense, X), rtol=1e-10,
                                   atol=1e-13)


# ---------------------------------------------------------------------------- partial_fit
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_partial_fit_one_epoch_per_call(est_cls, solver):
    X, y = _data_for(est_cls)
    est = _small(est_cls, solver=solver, max_iter=50)
    kw = dict(classes=np.unique(y)) if est_cls is ReLUMLPClassifier else {}
    t = 0
    chunks = np.array_split(np.arange(X.shape[0]), 3)
    for k, rows in enumerate(chunks):
        est.partial_fit(X[rows], y[rows], **(kw if k == 0 else {}))
        t += rows.size
        assert est.n_iter_ == 1
        assert est.t_ == t
        assert len(est.loss_curve_) == k + 1
    before = [a.copy() for a in est.coefs_]
    est.partial_fit(X, y)
    assert est.n_iter_ == 1 and est.t_ == t + X.shape[0]
    assert not np.array_equal(before[0], est.coefs_[0])


def test_partial_fit_classifier_requires_classes():
    X, y = _digits()
    with pytest.raises(ValueError, match="classes"):
        ReLUMLPClassifier().partial_fit(X, y)
    est = ReLUMLPClassifier(max_iter=1, random_state=0).partial_fit(X[:50], y[:50],
                                                                    classes=np.arange(10))
    np.testing.assert_array_equal(est.classes_, np.arange(10))
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X[:50], y[:50] + 20)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_partial_fit_unavailable_for_lbfgs(est_cls):
    est = est_cls(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit"):
        est.partial_fit
    assert hasattr(est_cls(solver="adam"), "partial_fit")
    assert hasattr(est_cls(solver="sgd"), "partial_fit")


def test_sklearn_regressor_wrongly_offers_partial_fit_for_lbfgs():
    # the scikit-learn defect relumlp fixes (its classifier gets it right)
    assert hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_partial_fit_rejects_early_stopping(est_cls):
    X, y = _data_for(est_cls)
    kw = dict(classes=np.unique(y)) if est_cls is ReLUMLPClassifier else {}
    with pytest.raises(ValueError, match="early_stopping"):
        _small(est_cls, early_stopping=True).partial_fit(X, y, **kw)


# ---------------------------------------------------------------------------- warm_start
@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_warm_start_continues(est_cls, solver):
    X, y = _data_for(est_cls)
    est = _small(est_cls, solver=solver, warm_start=True, max_iter=4)
    est.fit(X, y)
    first_curve = list(est.loss_curve_)
    first_coefs = [a.copy() for a in est.coefs_]
    est.set_params(max_iter=3)
    est.fit(X, y)
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == 7
    assert est.loss_curve_[:4] == first_curve
    assert est.loss_curve_[4] < first_curve[-1] < first_curve[0]
    assert est.t_ == 7 * X.shape[0]
    assert not np.array_equal(est.coefs_[0], first_coefs[0])
    # a cold start from the same seed starts over
    cold = _small(est_cls, solver=solver, max_iter=3).fit(X, y)
    assert cold.loss_curve_[0] == pytest.approx(first_curve[0], rel=1e-12)
    assert est.loss_curve_[-1] < cold.loss_curve_[-1]


def test_warm_start_rejects_new_classes():
    X, y = _digits()
    est = _small(ReLUMLPClassifier, warm_start=True, max_iter=1)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    with pytest.raises(ValueError, match="warm_start"):
        est.fit(X, np.where(y == 9, 10, y))
    with pytest.raises(ValueError, match="warm_start"):
        est.fit(X[y < 9], y[y < 9])


@ignore_convergence
def test_warm_start_early_stopping_keeps_best_weights():
    # A warm-started fit that never beats the best validation score restores the best
    # weights found so far. (scikit-learn 1.9 restores the last iterate instead: after
    # its first restore, coefs_ *is* the list it keeps as the best copy, and the next
    # fit updates those arrays in place.)
    X, y = _digits()
    est = ReLUMLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, warm_start=True,
                            max_iter=40, random_state=0, learning_rate_init=0.05,
                            n_iter_no_change=3, validation_fraction=0.2).fit(X, y)
    best_coefs = [a.copy() for a in est.coefs_ + est.intercepts_]
    best, n_before = est.best_validation_score_, len(est.validation_scores_)
    assert best == max(est.validation_scores_)
    est.set_params(max_iter=3, learning_rate_init=0.5).fit(X, y)  # too large a step
    new_scores = est.validation_scores_[n_before:]
    assert len(new_scores) == est.n_iter_ >= 1
    assert max(new_scores) < best
    assert est.best_validation_score_ == best
    for a, b in zip(est.coefs_ + est.intercepts_, best_coefs):
        assert np.array_equal(a, b)
    assert est.score(X, y) > 0.8


@ignore_convergence
def test_warm_start_rejects_new_layer_sizes():
    X, y = _digits()
    est = _small(ReLUMLPClassifier, warm_start=True, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        est.set_params(hidden_layer_sizes=(17,)).fit(X, y)


# ---------------------------------------------------------------------------- poisson
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_poisson_rejects_negative_y(solver):
    X, y = _diabetes()  # standardised: about half the targets are negative
    assert (y < 0).any()
    est = ReLUMLPRegressor(loss="poisson", solver=solver, hidden_layer_sizes=(10,),
                           max_iter=3, random_state=0)
    with pytest.raises(ValueError, match="poisson"):
        est.fit(X, y)
    if solver != "lbfgs":
        with pytest.raises(ValueError, match="poisson"):
            est.partial_fit(X, y)
    # scikit-learn accepts the targets and trains on NaN losses (the defect we fix)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = MLPRegressor(loss="poisson", solver=solver, hidden_layer_sizes=(10,),
                           max_iter=3, random_state=0).fit(X, y)
    assert np.isnan(ref.loss_)


@ignore_convergence
def test_poisson_accepts_zero_targets():
    X, y = _diabetes()
    y = np.maximum(y, 0.0)
    assert (y == 0).any()
    est = ReLUMLPRegressor(loss="poisson", hidden_layer_sizes=(10,), max_iter=5,
                           random_state=0).fit(X, y)
    assert np.isfinite(est.loss_curve_).all()
    assert (est.predict(X) > 0).all()


# ---------------------------------------------------------------------------- lbfgs
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_lbfgs_early_stopping_warns(est_cls):
    X, y = _data_for(est_cls)
    with pytest.warns(UserWarning, match="early_stopping") as record:
        _small(est_cls, solver="lbfgs", early_stopping=True).fit(X, y)
    assert any(type(w.message) is UserWarning for w in record)


@ignore_convergence
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_lbfgs_loss_curve(est_cls):
    X, y = _data_for(est_cls)
    est = _small(est_cls, solver="lbfgs", max_iter=40).fit(X, y)
    curve = np.asarray(est.loss_curve_)
    assert curve.size > 0
    assert curve.size == est.n_iter_
    assert curve[-1] < 0.5 * curve[0]
    assert np.all(np.diff(curve) <= 1e-12 * np.abs(curve[:-1]))  # L-BFGS-B line search
    assert curve[-1] == pytest.approx(est.loss_, rel=1e-10)


@ignore_convergence
def test_lbfgs_verbose(capsys):
    X, y = _digits()
    est = _small(ReLUMLPClassifier, solver="lbfgs", max_iter=5, verbose=True).fit(X, y)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Iteration")]
    assert len(lines) == est.n_iter_ == 5
    assert lines[0].startswith("Iteration 1, loss = ")
    for k, (line, loss) in enumerate(zip(lines, est.loss_curve_), start=1):
        assert line == "Iteration %d, loss = %.8f" % (k, loss)


# ---------------------------------------------------------------------------- verbose, warnings
_ITER_LINE = re.compile(r"^Iteration (\d+), loss = (\d+\.\d{8})$")


@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_verbose_matches_sklearn(solver, capsys):
    X, y = _digits()
    params = dict(hidden_layer_sizes=(16,), solver=solver, max_iter=4, random_state=0,
                  verbose=True, learning_rate_init=0.01)
    init = ({"weight_init": "sklearn"}
            if "weight_init" in ReLUMLPClassifier().get_params() else {})
    ReLUMLPClassifier(**params, **init).fit(X, y)
    ours = capsys.readouterr().out.splitlines()
    MLPClassifier(**params).fit(X, y)
    ref = capsys.readouterr().out.splitlines()
    assert len(ours) == len(ref) == 4
    for a, b in zip(ours, ref):
        ma, mb = _ITER_LINE.match(a), _ITER_LINE.match(b)
        assert ma and mb, (a, b)
        assert ma.group(1) == mb.group(1)
        assert float(ma.group(2)) == pytest.approx(float(mb.group(2)), abs=2e-8)


@ignore_convergence
def test_verbose_stopping_message(capsys):
    X, y = _digits()
    ReLUMLPClassifier(hidden_layer_sizes=(8,), max_iter=50, tol=1e3, n_iter_no_change=1,
                      random_state=0, verbose=True).fit(X, y)
    out = capsys.readouterr().out
    assert "Training loss did not improve more than tol" in out
    assert "Stopping." in out


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_convergence_warning_at_max_iter(est_cls, solver):
    X, y = _data_for(est_cls)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        est = _small(est_cls, solver=solver, max_iter=3).fit(X, y)
    assert est.n_iter_ == 3


def test_no_convergence_warning_when_stopped_early():
    X, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = ReLUMLPClassifier(hidden_layer_sizes=(8,), max_iter=50, tol=1e3,
                                n_iter_no_change=1, random_state=0).fit(X, y)
    assert est.n_iter_ < 50


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_convergence_warning_lbfgs(est_cls):
    X, y = _data_for(est_cls)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        _small(est_cls, solver="lbfgs", max_iter=2).fit(X, y)


# ---------------------------------------------------------------------------- class_weight
def _imbalanced():
    X, y = _digits(600)
    keep = (y != 1) | (np.arange(y.size) % 6 == 0)  # class 1 rare
    X, y = X[keep], y[keep]
    return X, np.where(y < 3, y, 3)  # classes 0..3, class 3 dominant


@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_class_weight_balanced_equals_sample_weight(solver):
    X, y = _imbalanced()
    counts = np.bincount(y)
    assert counts.max() > 5 * counts.min()
    balanced = _small(ReLUMLPClassifier, solver=solver, class_weight="balanced",
                      shuffle=True).fit(X, y)
    sw = compute_sample_weight("balanced", y)
    weighted = _small(ReLUMLPClassifier, solver=solver, shuffle=True).fit(X, y,
                                                                        sample_weight=sw)
    for a, b in zip(balanced.coefs_ + balanced.intercepts_,
                    weighted.coefs_ + weighted.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    unweighted = _small(ReLUMLPClassifier, solver=solver, shuffle=True).fit(X, y)
    assert not np.allclose(unweighted.coefs_[0], balanced.coefs_[0], rtol=1e-3)
    none = _small(ReLUMLPClassifier, solver=solver, shuffle=True,
                  class_weight=None).fit(X, y)
    _assert_params_equal(none, unweighted)


@ignore_convergence
def test_class_weight_dict_and_combined_with_sample_weight():
    X, y = _imbalanced()
    cw = {0: 1.0, 1: 5.0, 2: 0.5, 3: 2.0}
    sw = np.random.RandomState(0).uniform(0.2, 2.0, y.size)
    a = _small(ReLUMLPClassifier, class_weight=cw).fit(X, y)
    b = _small(ReLUMLPClassifier).fit(X, y, sample_weight=compute_sample_weight(cw, y))
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
    for class_weight in (cw, "balanced"):
        c = _small(ReLUMLPClassifier, class_weight=class_weight).fit(X, y, sample_weight=sw)
        d = _small(ReLUMLPClassifier).fit(
            X, y, sample_weight=sw * compute_sample_weight(class_weight, y))
        for u, v in zip(c.coefs_ + c.intercepts_, d.coefs_ + d.intercepts_):
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
    # a dict of weights also works with partial_fit
    e = _small(ReLUMLPClassifier, class_weight=cw).partial_fit(X, y, classes=np.arange(4))
    f = _small(ReLUMLPClassifier).partial_fit(X, y, classes=np.arange(4),
                                              sample_weight=compute_sample_weight(cw, y))
    for u, v in zip(e.coefs_ + e.intercepts_, f.coefs_ + f.intercepts_):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)


def test_class_weight_balanced_partial_fit_raises():
    X, y = _imbalanced()
    with pytest.raises(ValueError, match="balanced"):
        ReLUMLPClassifier(class_weight="balanced").partial_fit(X, y, classes=np.arange(4))


# ---------------------------------------------------------------------------- multi-output
@ignore_convergence
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_multilabel_indicator(solver):
    X, y = _digits()
    Y = np.column_stack([y >= 5, y % 2 == 0, y % 3 == 0, y == 7]).astype(int)
    est = _small(ReLUMLPClassifier, solver=solver, max_iter=30).fit(X, Y)
    pred = est.predict(X)
    assert pred.shape == Y.shape
    assert set(np.unique(pred)) <= {0, 1}
    proba = est.predict_proba(X)
    assert proba.shape == (X.shape[0], 4)
    assert np.all((proba >= 0) & (proba <= 1))
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent labels, not a softmax
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert est.out_activation_ == "logistic"
    assert est.score(X, Y) > 0.2


@ignore_convergence
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_multioutput_regression(solver):
    X, y = _diabetes()
    Y = np.column_stack([y, -y, y**2])
    est = _small(ReLUMLPRegressor, solver=solver).fit(X, Y)
    assert est.n_outputs_ == 3
    assert est.predict(X).shape == (X.shape[0], 3)
    assert est.predict(X[:1]).shape == (1, 3)
    est1 = _small(ReLUMLPRegressor, solver=solver).fit(X, y)
    assert est1.predict(X).shape == (X.shape[0],)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_tags(est_cls):
    tags = get_tags(est_cls())
    assert tags.target_tags.multi_output is True
    assert tags.input_tags.sparse is True
    if est_cls is ReLUMLPClassifier:
        assert tags.classifier_tags.multi_label is True
        assert tags.estimator_type == "classifier"
    else:
        assert tags.estimator_type == "regressor"


# ---------------------------------------------------------------------------- persistence


# ---------------------------------------------------------------------------- model selection
@ignore_convergence
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_pipeline_grid_search(est_cls):
    X, y = _data_for(est_cls, n=300)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", _small(est_cls, max_iter=3, hidden_layer_sizes=(8,)))])
    search = GridSearchCV(pipe, {"mlp__activation": ["relu", "tanh"]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["mlp__activation"] in ("relu", "tanh")
    assert list(search.cv_results_["param_mlp__activation"]) == ["relu", "tanh"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.named_steps["mlp"].activation == \
        search.best_params_["mlp__activation"]
    assert search.predict(X).shape[0] == X.shape[0]


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "param, value",
    [("hidden_layer_sizes", (0,)), ("hidden_layer_sizes", (5, -1)),
     ("hidden_layer_sizes", 0), ("activation", "bogus"), ("solver", "bogus"),
     ("learning_rate_init", 0), ("learning_rate_init", -1.0), ("batch_size", 0),
     ("validation_fraction", 1.0), ("validation_fraction", -0.1), ("alpha", -1.0),
     ("max_iter", 0), ("momentum", 1.5), ("beta_1", 1.0), ("beta_2", 1.0),
     ("epsilon", 0.0), ("n_iter_no_change", 0), ("learning_rate", "bogus"),
     ("max_fun", 0), ("tol", -1.0)],
)
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_invalid_parameters(est_cls, param, value):
    X, y = _data_for(est_cls, n=50)
    est = est_cls(**{"max_iter": 1, param: value})
    with pytest.raises(ValueError, match=param):
        est.fit(X, y)


@pytest.mark.parametrize(
    "est_cls, param, value",
    [(ReLUMLPRegressor, "loss", "bogus"), (ReLUMLPClassifier, "class_weight", "bogus")],
)
def test_invalid_estimator_specific_parameters(est_cls, param, value):
    X, y = _data_for(est_cls, n=50)
    with pytest.raises(ValueError, match=param):
        est_cls(max_iter=1, **{param: value}).fit(X, y)


def test_validation_set_too_small():
    X, y = _digits(20)
    with pytest.raises(ValueError, match="validation set is too small"):
        ReLUMLPClassifier(early_stopping=True, validation_fraction=0.01).fit(X, y)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_not_fitted_and_feature_count(est_cls):
    X, y = _data_for(est_cls, n=100)
    with pytest.raises(NotFittedError):
        est_cls().predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = _small(est_cls, max_iter=1).fit(X, y)
    assert est.n_features_in_ == X.shape[1]
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :-1])


def test_private_lbfgs_objective_matches_finite_differences():
    """scikit-learn's gradient tests call the private _loss_grad_lbfgs; it is offered
    with the same signature and returns the objective's exact gradient."""
    rng = np.random.RandomState(0)
    X = rng.rand(12, 4)
    y = np.arange(12) % 3
    clf = ReLUMLPClassifier(hidden_layer_sizes=5, activation="tanh", solver="lbfgs",
                            max_iter=1, alpha=1e-3, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    Y = np.eye(3)[y]
    theta = np.hstack([c.ravel() for c in clf.coefs_ + clf.intercepts_])
    value, grad = clf._loss_grad_lbfgs(theta, X, Y, None, [], [], [], [])
    assert np.isfinite(value)
    eps = 1e-6
    numeric = np.array([
        (clf._loss_grad_lbfgs(theta + eps * e, X, Y)[0]
         - clf._loss_grad_lbfgs(theta - eps * e, X, Y)[0]) / (2 * eps)
        for e in np.eye(theta.size)
    ])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_partial_fit_from_hand_set_weights():
    """Setting coefs_ / intercepts_ by hand on an unfitted model and calling partial_fit
    continues from them (a pattern of scikit-learn's own tests)."""
    X = np.array([[0.6, 0.8, 0.7]])
    y = np.array([0])
    clf = ReLUMLPClassifier(hidden_layer_sizes=2, activation="logistic", solver="sgd",
                            learning_rate_init=0.1, alpha=0.1, momentum=0, max_iter=1,
                            random_state=1)
    W0 = np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0]])
    W1 = np.array([[0.1], [0.2]])
    clf.coefs_ = [W0.copy(), W1.copy()]
    clf.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
    clf.n_outputs_ = 1
    clf.n_features_in_ = 3
    clf.n_layers_ = 3
    clf.out_activation_ = "logistic"
    clf.n_iter_ = 0
    clf.t_ = 0
    clf.best_loss_ = np.inf
    clf.loss_curve_ = []
    clf._no_improvement_count = 0
    clf.partial_fit(X, y, classes=[0, 1])
    # One SGD step from the given weights, computed by hand with NumPy.
    h = 1 / (1 + np.exp(-(X @ W0 + 0.1)))
    p = 1 / (1 + np.exp(-(h @ W1 + 1.0)))
    d1 = p - 0
    d0 = d1 @ W1.T * h * (1 - h)
    np.testing.assert_allclose(clf.coefs_[1], W1 - 0.1 * (h.T @ d1 + 0.1 * W1), rtol=1e-12)
    np.testing.assert_allclose(clf.coefs_[0], W0 - 0.1 * (X.T @ d0 + 0.1 * W0), rtol=1e-12)


def test_early_stopping_split_is_stratified():
    X = [[1, 2], [2, 3], [3, 4], [4, 5]]
    with pytest.raises(ValueError, match=r"least populated class.*\['True'\]"):
        ReLUMLPClassifier(early_stopping=True).fit(X, [0, 0, 0, 1])


