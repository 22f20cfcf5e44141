"""scikit-learn's callback protocol (sklearn.callback) and verbose progress output."""
import sys
import warnings

import numpy as np
import pytest
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor

from _helpers import _fit_quietly

DIGITS = dict(n=600, scale="unit")  # the digits fixture: X[:600] / 16


class Recorder:
    """Records every hook call; optionally asks to stop at the end of epoch `stop_at`."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.calls = []
        self.snapshots = []

    def setup(self, estimator, context):
        self.calls.append("setup")

    def teardown(self, estimator, context):
        self.calls.append("teardown")

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        self.calls.append(("begin", context.task_name))
        if fitted_estimator is not None:
            self.snapshots.append(("begin", [c.copy() for c in fitted_estimator.coefs_],
                                   fitted_estimator))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None,
                        fitted_estimator=None):
        self.calls.append(("end", context.task_name))
        if fitted_estimator is not None and context.parent is not None:
            self.snapshots.append(("end", [c.copy() for c in fitted_estimator.coefs_],
                                   fitted_estimator))
        n_done = sum(1 for c in self.calls if c in (("end", "epoch"), ("end", "lbfgs-iter")))
        return self.stop_at is not None and n_done >= self.stop_at


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_scoring_monitor_scores_every_epoch(digits, solver):
    """ScoringMonitor gets one score per epoch (lbfgs: per iteration), and each equals the
    score of a model fitted for exactly that many epochs."""
    X, y = digits
    monitor = ScoringMonitor(scoring="accuracy")
    clf = ReLUMLPClassifier((16,), max_iter=4, random_state=0, solver=solver,
                            learning_rate_init=0.01)
    _fit_quietly(clf.set_callbacks(monitor), X, y)
    rows = monitor.get_logs().data
    epochs = [r for r in rows if len(r["task_id_path"]) == 2]
    root = [r for r in rows if len(r["task_id_path"]) == 1]
    assert len(epochs) == clf.n_iter_ == 4
    assert {r["task_name"] for r in epochs} == {"lbfgs-iter" if solver == "lbfgs" else "epoch"}
    assert root[0]["accuracy"] == pytest.approx(clf.score(X, y))
    assert epochs[-1]["accuracy"] == pytest.approx(clf.score(X, y))
    two = _fit_quietly(ReLUMLPClassifier((16,), max_iter=2, random_state=0, solver=solver,
                                         learning_rate_init=0.01), X, y)
    assert epochs[1]["accuracy"] == pytest.approx(two.score(X, y))
    assert epochs[0]["accuracy"] != pytest.approx(epochs[-1]["accuracy"])


def test_scoring_monitor_regressor_with_sample_weight(digits):
    X, y = digits
    monitor = ScoringMonitor(scoring="r2")
    sw = np.linspace(0.5, 1.5, len(y))
    reg = ReLUMLPRegressor(hidden_layer_sizes=(16,), max_iter=3, random_state=0).set_callbacks(monitor)
    _fit_quietly(reg, X, y.astype(float), sample_weight=sw)
    epochs = [r for r in monitor.get_logs().data if len(r["task_id_path"]) == 2]
    assert len(epochs) == 3
    assert epochs[-1]["r2"] == pytest.approx(reg.score(X, y, sample_weight=sw))


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_callback_can_stop_training(digits, solver):
    X, y = digits
    recorder = Recorder(stop_at=3)
    clf = ReLUMLPClassifier((16,), max_iter=50, random_state=0, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopping on request is not a convergence failure
        clf.set_callbacks(recorder).fit(X, y)
    assert clf.n_iter_ == 3 == len(clf.loss_curve_)
    assert recorder.calls[0] == "setup" and recorder.calls[-1] == "teardown"
    assert recorder.calls[1] == ("begin", "fit") and recorder.calls[-2] == ("end", "fit")
    begins = [c for c in recorder.calls if isinstance(c, tuple) and c[0] == "begin"]
    ends = [c for c in recorder.calls if isinstance(c, tuple) and c[0] == "end"]
    assert len(begins) == len(ends)  # every subtask begun is ended


def test_fitted_estimator_is_a_snapshot(digits):
    """fitted_estimator holds a copy of the weights at that point of training: the begin
    of epoch k equals the end of epoch k-1, and later epochs do not change it."""
    X, y = digits
    recorder = Recorder()
    clf = _fit_quietly(
        ReLUMLPClassifier((16,), max_iter=3, random_state=0).set_callbacks(recorder), X, y)
    snaps = recorder.snapshots
    kinds = [s[0] for s in snaps]
    assert kinds == ["begin", "end"] * 3
    for (_, end_prev, _), (_, begin_next, _) in zip(snaps[1::2], snaps[2::2]):
        for a, b in zip(end_prev, begin_next):
            assert np.array_equal(a, b)
    # The first snapshot still predicts with the initial weights.
    first = snaps[0][2]
    for a, b in zip(first.coefs_, snaps[0][1]):
        assert np.array_equal(a, b)
    assert not np.array_equal(first.coefs_[0], clf.coefs_[0])
    assert np.array_equal(first.predict_proba(X[:5]).shape, (5, 10))
    for a, b in zip(snaps[-1][2].coefs_, clf.coefs_):
        assert np.array_equal(a, b)


def test_teardown_runs_when_fit_fails():
    rng = np.random.RandomState(0)
    X, y = 1e150 * rng.uniform(size=(20, 3)), rng.standard_normal(20)
    recorder = Recorder()
    reg = ReLUMLPRegressor(solver="adam", learning_rate_init=1e3, max_iter=5,
                           random_state=0).set_callbacks(recorder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="non-finite"):
            reg.fit(X, y)
    assert recorder.calls.count("setup") == recorder.calls.count("teardown") == 1


def test_set_callbacks_rejects_non_callbacks():
    with pytest.raises(TypeError, match="FitCallback"):
        ReLUMLPClassifier().set_callbacks(object())


def test_callbacks_are_kept_by_clone_and_partial_fit(digits):
    from sklearn.base import clone

    X, y = digits
    monitor = ScoringMonitor(scoring="accuracy")
    clf = ReLUMLPClassifier((16,), random_state=0).set_callbacks(monitor)
    clone(clf).partial_fit(X, y, classes=np.unique(y))
    rows = monitor.get_logs().data
    assert [len(r["task_id_path"]) for r in rows] == [1, 2]


def test_progress_bar_in_grid_search(digits):
    """ProgressBar (auto-propagated, rich) set on a GridSearchCV reaches relumlp's fits."""
    pytest.importorskip("rich")
    X, y = digits
    search = GridSearchCV(make_pipeline(StandardScaler(),
                                        ReLUMLPClassifier((8,), max_iter=3, random_state=0)),
                          {"relumlpclassifier__activation": ["relu", "elu"]},
                          cv=2)
    search.set_callbacks(ProgressBar(max_propagation_depth=None))
    _fit_quietly(search, X, y)
    assert search.best_params_["relumlpclassifier__activation"] in ("relu", "elu")


def test_verbose_2_progress_bar_plain_fallback(digits, capsys, monkeypatch):
    X, y = digits
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails: plain fallback
    _fit_quietly(ReLUMLPClassifier((8,), max_iter=3, random_state=0, verbose=2), X, y)
    out = capsys.readouterr().out
    assert "epoch 3/3" in out and "[" + "#" * 30 + "]" in out and "loss=" in out
    assert "Iteration" not in out  # verbose=1's per-epoch lines are replaced by the bar


def test_verbose_2_progress_bar_tqdm(digits, capsys):
    pytest.importorskip("tqdm")
    X, y = digits
    _fit_quietly(ReLUMLPClassifier((8,), max_iter=3, random_state=0, verbose=2,
                                   early_stopping=True), X, y)
    err = capsys.readouterr().err
    assert "3/3" in err and "validation score=" in err


def test_verbose_2_lbfgs_plain(digits, capsys, monkeypatch):
    X, y = digits
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    _fit_quietly(ReLUMLPClassifier((8,), max_iter=3, random_state=0, verbose=2,
                                   solver="lbfgs"), X, y)
    assert "iteration 3/3" in capsys.readouterr().out


def test_callbacks_see_the_training_rows_of_an_early_stopping_split(digits):
    """With early stopping, epochs are scored on the rows they train on (extracted only
    when a callback asks for X); the fit task itself sees all of X."""
    X, y = digits
    seen = []

    class Shapes(Recorder):
        def on_fit_task_end(self, estimator, context, *, X=None, y=None):
            seen.append((context.task_name, X.shape[0], len(y)))
            return False

    _fit_quietly(ReLUMLPClassifier((8,), max_iter=2, random_state=0, early_stopping=True,
                                   validation_fraction=0.25).set_callbacks(Shapes()), X, y)
    n_train = len(X) - int(np.ceil(0.25 * len(X)))
    assert seen == [("epoch", n_train, n_train)] * 2 + [("fit", len(X), len(X))]


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_progress_bar_on_the_estimator(digits, solver, capsys):
    """ProgressBar set on relumlp itself, as on LogisticRegression: one task per epoch
    (lbfgs: per iteration) under the fit task, all ended."""
    pytest.importorskip("rich")
    X, y = digits
    clf = ReLUMLPClassifier((8,), max_iter=4, solver=solver, random_state=0)
    _fit_quietly(clf.set_callbacks(ProgressBar()), X, y)
    assert clf.n_iter_ == 4
    assert "ReLUMLPClassifier - fit" in capsys.readouterr().out
