"""Persistence: pickle and joblib round trips predict identically and keep training;
a pickle records the relumlp version and loading another version's warns."""
import io
import pickle
import warnings

import joblib
import numpy as np
import pytest

from relumlp import ReLUMLPClassifier

from _helpers import (
    ESTIMATORS,
    _assert_params_equal,
    _data_for,
    _digits,
    _output,
    _small,
    ignore_convergence,
)


@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_pickle_and_joblib_round_trip(est_cls, solver, tmp_path):
    X, y = _data_for(est_cls)
    est = _small(est_cls, solver=solver, warm_start=True, shuffle=True).fit(X, y)
    expected = _output(est, X)
    via_pickle = pickle.loads(pickle.dumps(est))
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    via_joblib = joblib.load(path)
    for loaded in (via_pickle, via_joblib):
        assert np.array_equal(_output(loaded, X), expected)
        assert np.array_equal(loaded.predict(X), est.predict(X))
    # the reloaded model continues training exactly like the original
    est.fit(X, y)
    via_pickle.fit(X, y)
    _assert_params_equal(est, via_pickle)
    assert np.array_equal(_output(via_pickle, X), _output(est, X))
    assert not np.array_equal(_output(via_pickle, X), expected)


@ignore_convergence
def test_pickle_float32_and_partial_fit_after_load():
    X, y = _digits()
    X32 = X.astype(np.float32)
    est = _small(ReLUMLPClassifier).partial_fit(X32, y, classes=np.arange(10))
    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    loaded = joblib.load(buf)
    assert loaded.coefs_[0].dtype == np.float32
    est.partial_fit(X32, y)
    loaded.partial_fit(X32, y)
    _assert_params_equal(est, loaded)
    assert loaded.t_ == 2 * X.shape[0]


@ignore_convergence
def test_pickle_records_version_and_warns_on_mismatch():
    import pickle

    import relumlp

    clf = _small(ReLUMLPClassifier).fit(*_data_for(ReLUMLPClassifier))
    state = clf.__getstate__()
    assert state["_relumlp_version"] == relumlp.__version__
    blob = pickle.dumps(clf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(blob)  # same version: silent
    state["_relumlp_version"] = "0.0.1"
    other = ReLUMLPClassifier.__new__(ReLUMLPClassifier)
    with pytest.warns(relumlp.InconsistentVersionWarning, match="0.0.1"):
        other.__setstate__(state)
    X, _ = _data_for(ReLUMLPClassifier)
    np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))


@ignore_convergence
@pytest.mark.parametrize("case", ["adam-prelu-dropout", "sgd-early-stopping", "lbfgs",
                                  "float32-sparse", "strings-partial-fit",
                                  "batch-norm-adamw-cosine", "layer-norm"])
@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_skops_round_trip(est_cls, case):
    """skops.io (secure persistence): a fitted model round-trips with bit-identical
    predictions, the untrusted types it reports are relumlp's own, and training goes on
    from the loaded model exactly as from the original."""
    sio = pytest.importorskip("skops.io")
    import scipy.sparse as sp

    X, y = _data_for(est_cls)
    params = {"adam-prelu-dropout": dict(activation="prelu", dropout=0.1),
              "sgd-early-stopping": dict(solver="sgd", early_stopping=True),
              "lbfgs": dict(solver="lbfgs"),
              "float32-sparse": dict(),
              "strings-partial-fit": dict(),
              "batch-norm-adamw-cosine": dict(normalization="batch", weight_decay=0.01,
                                              learning_rate="cosine", warmup_iters=1),
              "layer-norm": dict(normalization="layer")}[case]
    est = _small(est_cls, **params)
    if case == "float32-sparse":
        X = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0, X).astype(np.float32))
    if case == "strings-partial-fit":
        if est_cls is ReLUMLPClassifier:
            y = np.array([f"digit {v}" for v in y])
            est.partial_fit(X, y, classes=np.unique(y))
        else:
            est.partial_fit(X, y)
    else:
        est.fit(X, y)
    data = sio.dumps(est)
    untrusted = sio.get_untrusted_types(data=data)
    assert untrusted and all(t.startswith("relumlp.") for t in untrusted), untrusted
    loaded = sio.loads(data, trusted=untrusted)
    assert type(loaded) is type(est)
    np.testing.assert_array_equal(_output(loaded, X), _output(est, X))
    if est.solver != "lbfgs":  # training continues identically
        rows = slice(0, 50)
        for model in (est, loaded):
            if model.early_stopping:
                model.set_params(warm_start=True, max_iter=2).fit(X, y)
            else:
                model.partial_fit(X[rows], y[rows])
        _assert_params_equal(loaded, est)
        assert loaded.loss_curve_ == est.loss_curve_
