"""history_: per-epoch records, with dead units and sparsity counted in the kernel."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor
from relumlp.diagnostics import hidden_activations

from _helpers import _fit_quietly

try:
    import reference as ref
except ImportError:  # run from the repository root as a package
    from tests import reference as ref

KEYS = {"epoch", "loss", "validation_score", "validation_loss", "learning_rate", "time", "dead_fraction",
        "sparsity", "grad_norm"}
DIGITS = dict(n=None, scale="unit")  # the digits fixture: every row, X / 16


@pytest.mark.parametrize("hidden", [(7, 5), (300, 200)], ids=["serial", "row-split"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_kernel_counts_match_a_recount(digits, hidden, n_threads):
    """With a step too small to move any weight, the counts taken during the epoch must
    equal a recount of the pre-activations of the final network on the training rows."""
    X, y = digits
    X = X - 0.3  # some negative inputs, so that units die and live
    clf = ReLUMLPClassifier(hidden, solver="sgd", learning_rate_init=1e-300, momentum=0,
                            alpha=0, max_iter=2, batch_size=100, random_state=0)
    with threadpool_limits(n_threads, user_api="openmp"):
        _fit_quietly(clf, X, y)
    for layer, width in enumerate(hidden):
        Z = hidden_activations(clf, X, layer=layer, pre_activation=True)
        # NumPy's product and the kernel's may round a pre-activation within 1e-12 of 0
        # to different sides: the counts must lie between the two strict recounts.
        tol = 1e-12 * np.abs(Z).max()
        low, high = (Z <= -tol).sum(axis=0), (Z <= tol).sum(axis=0)
        for record in clf.history_:
            assert np.mean(low == len(X)) <= record["dead_fraction"][layer] <= np.mean(
                high == len(X))
            assert low.sum() / Z.size <= record["sparsity"][layer] <= high.sum() / Z.size
            assert high.sum() - low.sum() < 0.01 * Z.size  # the band is narrow
    assert 0 < clf.history_[-1]["sparsity"][0] < 1


def test_history_records_every_epoch(digits):
    X, y = digits
    clf = _fit_quietly(ReLUMLPClassifier((16, 8), max_iter=4, early_stopping=True,
                                         random_state=0), X, y)
    assert len(clf.history_) == clf.n_iter_
    assert [r["epoch"] for r in clf.history_] == list(range(1, clf.n_iter_ + 1))
    for r, loss, score in zip(clf.history_, clf.loss_curve_, clf.validation_scores_):
        assert set(r) == KEYS
        assert r["loss"] == pytest.approx(float(loss))
        assert r["validation_score"] == pytest.approx(score)
        assert len(r["dead_fraction"]) == len(r["sparsity"]) == 2
        assert len(r["grad_norm"]) == 3 and all(g > 0 for g in r["grad_norm"])
        assert r["time"] > 0 and r["learning_rate"] > 0
    # warm_start appends, numbering continues
    before = len(clf.history_)
    clf.set_params(warm_start=True, early_stopping=False, max_iter=2)
    _fit_quietly(clf, X, y)
    assert [r["epoch"] for r in clf.history_] == list(range(1, before + 3))


def test_history_frame_and_switch(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    clf = _fit_quietly(ReLUMLPClassifier((10,), max_iter=3, random_state=0), X, y)
    frame = clf.history_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3
    assert {"loss", "dead_fraction_0", "sparsity_0", "grad_norm_0", "grad_norm_1"} <= set(
        frame.columns)
    off = _fit_quietly(ReLUMLPClassifier((10,), max_iter=3, random_state=0,
                                         record_history=False), X, y)
    assert off.history_ == []
    # Recording changes nothing in the model.
    for a, b in zip(clf.coefs_, off.coefs_):
        assert np.array_equal(a, b)


def test_history_lbfgs_iterations(digits):
    X, y = digits
    reg = _fit_quietly(ReLUMLPRegressor(hidden_layer_sizes=(10,), solver="lbfgs",
                                        max_iter=15, random_state=0), X, y.astype(float))
    assert len(reg.history_) == len(reg.loss_curve_)
    assert [r["loss"] for r in reg.history_] == pytest.approx(
        [float(v) for v in reg.loss_curve_])
    assert reg.history_[0]["dead_fraction"] is None


def test_activation_summary_matches_numpy(digits):
    from relumlp.diagnostics import activation_summary

    X, y = digits
    clf = _fit_quietly(ReLUMLPClassifier((20, 6), activation=("relu", "prelu"), max_iter=5,
                                         random_state=0), X, y)
    rows = activation_summary(clf, X, as_frame=False)
    assert [r["units"] for r in rows] == [20, 6]
    for layer, row in enumerate(rows):
        Z = hidden_activations(clf, X, layer=layer, pre_activation=True)
        A = hidden_activations(clf, X, layer=layer)
        assert row["dead_fraction"] == pytest.approx(np.mean((Z <= 0).all(axis=0)))
        assert row["sparsity"] == pytest.approx(np.mean(Z <= 0))
        assert row["mean_activation"] == pytest.approx(A.mean())
        assert row["max_activation"] == pytest.approx(A.max())
    assert rows[0]["prelu_slopes_near_0"] is None
    slopes = clf.prelu_slopes_[1]
    assert rows[1]["prelu_slopes_near_0"] == pytest.approx(np.mean(np.abs(slopes) < 0.05))
    frame = activation_summary(clf, X)
    assert list(frame["units"]) == [20, 6]


def test_user_validation_set(digits):
    from sklearn.metrics import log_loss

    X, y = digits
    X_tr, y_tr, X_val, y_val = X[:1200], y[:1200], X[1200:], y[1200:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = ReLUMLPClassifier((16,), max_iter=4, random_state=0).fit(
            X_tr, y_tr, X_val=X_val, y_val=y_val)
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.validation_scores_[-1] == pytest.approx(clf.score(X_val, y_val))
    assert clf.validation_loss_curve_[-1] == pytest.approx(
        log_loss(y_val, clf.predict_proba(X_val), labels=clf.classes_), rel=1e-10)
    assert [r["validation_loss"] for r in clf.history_] == clf.validation_loss_curve_
    # With early stopping, the given set replaces the split: every row trains.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        es = ReLUMLPClassifier((16,), max_iter=3, early_stopping=True, random_state=0).fit(
            X_tr, y_tr, X_val=X_val, y_val=y_val)
    assert es.t_ == es.n_iter_ * len(X_tr)
    assert len(es.validation_loss_curve_) == es.n_iter_
    with pytest.raises(ValueError, match="together"):
        ReLUMLPClassifier().fit(X_tr, y_tr, X_val=X_val)
    with pytest.raises(ValueError, match="not seen"):
        ReLUMLPClassifier(max_iter=1).fit(X_tr[y_tr < 5], y_tr[y_tr < 5], X_val=X_val,
                                          y_val=y_val)


def test_validation_set_routed_through_grid_search(digits):
    import sklearn
    from sklearn.model_selection import GridSearchCV

    X, y = digits
    with sklearn.config_context(enable_metadata_routing=True):
        clf = ReLUMLPClassifier((8,), max_iter=2, random_state=0).set_fit_request(
            X_val=True, y_val=True)
        search = GridSearchCV(clf, {"activation": ["relu", "elu"]}, cv=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X[:600], y[:600], X_val=X[600:800], y_val=y[600:800])
    assert len(search.best_estimator_.validation_loss_curve_) == 2


def test_early_stopping_on_validation_loss(digits):
    X, y = digits
    params = dict(hidden_layer_sizes=(32,), max_iter=60, early_stopping=True,
                  n_iter_no_change=3, tol=1e-3, learning_rate_init=0.01, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        by_loss = ReLUMLPClassifier(early_stopping_metric="loss", **params).fit(X, y)
    curve = np.asarray(by_loss.validation_loss_curve_)
    assert by_loss.best_validation_loss_ == pytest.approx(curve.min())
    best_epoch = int(np.argmin(curve))
    # Stopped n_iter_no_change + 1 epochs without a tol-improvement after the best.
    assert by_loss.n_iter_ <= best_epoch + 1 + params["n_iter_no_change"] + 1
    # The restored weights are the best epoch's: their score is the recorded one.
    assert by_loss.best_validation_score_ == by_loss.validation_scores_[best_epoch]
    with pytest.raises(ValueError, match="early_stopping_metric"):
        ReLUMLPClassifier(early_stopping_metric="auc").fit(X, y)


def test_transform_as_pipeline_feature_extractor(digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = digits
    mlp = ReLUMLPClassifier((32, 16), max_iter=20, random_state=0)
    pipe = make_pipeline(mlp, LogisticRegression(max_iter=500))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X, y)
    H = mlp.transform(X)
    assert H.shape == (len(X), 16)
    np.testing.assert_array_equal(H, hidden_activations(mlp, X, layer=-1))
    np.testing.assert_array_equal(mlp.transform(X, layer=0),
                                  hidden_activations(mlp, X, layer=0))
    n_last = len(mlp.hidden_layer_sizes) - 1
    assert list(mlp.get_feature_names_out())[:2] == [f"layer{n_last}_unit0",
                                                      f"layer{n_last}_unit1"]
    assert pipe.score(X, y) > 0.8
    with pytest.raises(ValueError, match="hidden layer"):
        _fit_quietly(ReLUMLPClassifier((), max_iter=1), X, y).transform(X)



class _InitialWeights:
    """A callback keeping the network as it was at the start of the first epoch."""

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "epoch" and not hasattr(self, "coefs"):
            self.coefs = fitted_estimator.coefs_
            self.intercepts = fitted_estimator.intercepts_

    def on_fit_task_end(self, estimator, context):
        return False


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu"])
def test_dead_counts_equal_a_numpy_recount_batch_by_batch(digits, activation):
    """One epoch of plain SGD over 5 batches: the counts in history_ equal exactly a
    NumPy recount (tests/reference.py) of every batch's pre-activations, each with the
    weights that batch saw. The weights before batch 1 come from a callback, the later
    ones from streaming the same batches through partial_fit."""
    X, y = digits
    X, y = X[:500] - 0.3, y[:500]
    hidden, b = (20, 10), 100
    params = dict(hidden_layer_sizes=hidden, activation=activation, solver="sgd",
                  momentum=0, learning_rate_init=0.2, batch_size=b, shuffle=False,
                  random_state=0)
    initial = _InitialWeights()
    epoch = _fit_quietly(ReLUMLPClassifier(max_iter=1, **params).set_callbacks(initial), X, y)
    record = epoch.history_[0]
    param = {"relu": 0, "leaky_relu": epoch.negative_slope, "elu": epoch.elu_alpha}[
        activation]
    act = ref.HIDDEN[activation][0]

    stream = ReLUMLPClassifier(**params)
    nonpos = [np.zeros(w, dtype=np.int64) for w in hidden]
    for start in range(0, len(X), b):
        Xb, yb = X[start:start + b], y[start:start + b]
        coefs, intercepts = ((initial.coefs, initial.intercepts) if not start
                             else (stream.coefs_, stream.intercepts_))
        A = Xb
        for k in range(len(hidden)):
            Z = A @ coefs[k] + intercepts[k]
            assert np.abs(Z).min() > 1e-9  # no count hangs on rounding
            nonpos[k] += (Z <= 0).sum(axis=0)
            A = act(Z, param)
        stream.partial_fit(Xb, yb, classes=np.unique(y))
    # Same batches, same steps: the streamed weights are the epoch's weights.
    for a, c in zip(stream.coefs_, epoch.coefs_):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-14)
    for k, width in enumerate(hidden):
        assert record["dead_fraction"][k] == np.mean(nonpos[k] == len(X))
        assert record["sparsity"][k] == nonpos[k].sum() / (len(X) * width)
    assert 0 < record["sparsity"][0] < 1
