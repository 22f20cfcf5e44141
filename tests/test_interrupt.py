"""Interruption: Ctrl-C during fit leaves a consistent, usable model."""
import os
import signal
import threading
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from relumlp import ReLUMLPClassifier, _training

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
DIGITS = dict(n=None, scale="unit")  # the digits fixture: every row, X / 16


def _assert_consistent(clf, X):
    assert clf.n_iter_ == len(clf.loss_curve_) == len(clf.history_)
    assert [r["epoch"] for r in clf.history_] == list(range(1, clf.n_iter_ + 1))
    assert all(np.isfinite(c).all() for c in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X[:3]).shape == (3, 10)


@pytest.mark.parametrize("where", ["after_epoch_kernel", "in_bookkeeping"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_keyboard_interrupt_inside_an_epoch_rolls_back(digits, monkeypatch, where,
                                                       early_stopping):
    """A KeyboardInterrupt raised in the middle of epoch 3 (after the kernel changed the
    weights, or while the curves are being appended) leaves exactly the model of a fit
    with max_iter=2."""
    X, y = digits
    params = dict(hidden_layer_sizes=(16,), random_state=0, early_stopping=early_stopping,
                  n_iter_no_change=100)
    reference = ReLUMLPClassifier(max_iter=2, **params).fit(X, y)

    calls = {"n": 0}
    if where == "after_epoch_kernel":
        real = _training.Trainer.epoch

        def patched(self, *args, **kwargs):
            out = real(self, *args, **kwargs)
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return out

        monkeypatch.setattr(_training.Trainer, "epoch", patched)
    else:
        real = _training.StochasticFit._update_no_improvement_count

        def patched(self, *args, **kwargs):
            real(self, *args, **kwargs)
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt

        monkeypatch.setattr(_training.StochasticFit, "_update_no_improvement_count", patched)

    clf = ReLUMLPClassifier(max_iter=10, **params)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        clf.fit(X, y)
    _assert_consistent(clf, X)
    assert clf.n_iter_ == 2 and clf.t_ == reference.t_
    for a, b in zip(clf.coefs_ + clf.intercepts_, reference.coefs_ + reference.intercepts_):
        assert np.array_equal(a, b)
    assert clf.loss_curve_ == reference.loss_curve_
    if early_stopping:
        assert clf.validation_scores_ == reference.validation_scores_
    # The model continues: warm_start trains on from the restored state.
    monkeypatch.undo()
    clf.set_params(warm_start=True, max_iter=2)
    clf.fit(X, y)
    # As in scikit-learn, n_iter_ counts this call's epochs; the curves keep growing.
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == len(clf.history_) == 4
    assert clf.predict(X[:3]).shape == (3,)


def _interrupt_after(delay, times=1):
    """Send SIGINT to this process `times` times, starting after `delay` seconds."""
    def send():
        for _ in range(times):
            os.kill(os.getpid(), signal.SIGINT)
    timer = threading.Timer(delay, send)
    timer.start()
    return timer


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt",
                    reason="needs POSIX signals")
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_ctrl_c_stops_after_the_running_epoch(digits, solver):
    """A real Ctrl-C (SIGINT) during a long fit: fit returns with a warning, the model
    is consistent, predicts, and warm_start continues from it."""
    X, y = digits
    clf = ReLUMLPClassifier((256, 256), solver=solver, max_iter=100_000, tol=0,
                            n_iter_no_change=100_000, max_fun=10**9, random_state=0)
    timer = _interrupt_after(0.5)
    try:
        with pytest.warns(UserWarning, match="Training interrupted by user"):
            clf.fit(X, y)
    finally:
        timer.join()
    assert 0 < clf.n_iter_ < 100_000
    assert len(clf.loss_curve_) == len(clf.history_) == clf.n_iter_
    assert clf.predict(X[:3]).shape == (3,)
    # The signal handler is restored: Python's default raises KeyboardInterrupt again.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    n_before = clf.n_iter_
    clf.set_params(warm_start=True, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert len(clf.history_) == n_before + clf.n_iter_


@pytest.mark.skipif(os.name == "nt", reason="needs POSIX signals")
def test_repeated_ctrl_c_leaves_a_consistent_model(digits):
    X, y = digits
    clf = ReLUMLPClassifier((256, 256), max_iter=100_000, tol=0, n_iter_no_change=100_000,
                            random_state=0)
    timer = _interrupt_after(0.5, times=2)
    try:
        with pytest.warns(UserWarning, match="Training interrupted by user"):
            clf.fit(X, y)
    finally:
        timer.join()
    _assert_consistent(clf, X)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fit_in_a_thread_leaves_signal_handling_alone(digits):
    """Outside the main thread no handler is installed (Python forbids it); the fit
    still works."""
    X, y = digits
    result = {}

    def work():
        result["clf"] = ReLUMLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert result["clf"].n_iter_ == 2
