"""Reliability: bounded memory in predict, repeated concurrent fit/predict."""
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor


def _peak_predict_memory(model, X):
    tracemalloc.start()
    try:
        model.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("X_dtype", [np.float32, np.float64])
def test_predict_extra_memory_is_bounded(X_dtype):
    """Beyond the output, predict's temporaries do not grow with n_samples, even when
    float64 input must be converted for a float32 model."""
    rng = np.random.RandomState(0)
    X_small = rng.rand(200, 50)
    reg = ReLUMLPRegressor(hidden_layer_sizes=(64, 32), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X_small.astype(np.float32), rng.rand(200))
    extra = {}
    for n in (20_000, 200_000):
        X = rng.rand(n, 50).astype(X_dtype)
        output = n * 4  # float32 predictions
        extra[n] = _peak_predict_memory(reg, X) - output
    # A full copy of the larger X would be 40-80 MB; the workspace is a few MB.
    assert extra[200_000] < 8e6, extra
    assert extra[200_000] < 1.5 * extra[20_000] + 1e6, extra


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_threads_fit_and_predict_repeatedly():
    """Several threads fit their own models and predict with a shared one, a fixed
    number of times: every result equals the serial one and memory does not grow."""
    rng = np.random.RandomState(0)
    X = rng.rand(300, 10)
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    params = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = ReLUMLPClassifier(**params).fit(X, y)
    expected_proba = reference.predict_proba(X)
    expected_coefs = [c.copy() for c in reference.coefs_]
    errors = []

    def work():
        try:
            for _ in range(10):
                # (warnings.catch_warnings is not thread-safe: the mark filters them)
                own = ReLUMLPClassifier(**params).fit(X, y)
                if not all(np.array_equal(a, b) for a, b in zip(own.coefs_, expected_coefs)):
                    errors.append("fit differs")
                if not np.array_equal(reference.predict_proba(X), expected_proba):
                    errors.append("predict differs")
        except Exception as exc:  # report, do not hang the test
            errors.append(repr(exc))

    def run_round():
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run_round()  # warm-up: caches, thread pools
    tracemalloc.start()
    run_round()
    first, _ = tracemalloc.get_traced_memory()
    run_round()
    second, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert errors == []
    assert second - first < 2e6, (first, second)
