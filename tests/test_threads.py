"""Threads: predict from many Python threads at once equals serial calls (the kernels
release the GIL); OpenMP yields to a multi-threaded BLAS."""
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from relumlp import ReLUMLPClassifier, openmp_enabled
from relumlp._threads import effective_n_threads

from _helpers import (
    _data_for,
    _small,
    ignore_convergence,
)


@ignore_convergence
def test_concurrent_predict_from_threads_matches_serial():
    from concurrent.futures import ThreadPoolExecutor

    X, y = _data_for(ReLUMLPClassifier)
    clf = _small(ReLUMLPClassifier).fit(X, y)
    expected = clf.predict_proba(X)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: clf.predict_proba(X), range(32)))
    for r in results:
        assert np.array_equal(r, expected)


def test_openmp_yields_to_multithreaded_blas():
    """While the BLAS relumlp calls has several threads, the elementwise kernels stay on
    the calling thread (two spinning thread pools on the same cores collapse)."""
    with threadpool_limits(2, user_api="openmp"), threadpool_limits(2, user_api="blas"):
        assert effective_n_threads() == 1
    from joblib import cpu_count

    with threadpool_limits(2, user_api="openmp"), threadpool_limits(1, user_api="blas"):
        assert effective_n_threads() == (min(2, cpu_count()) if openmp_enabled() else 1)


@pytest.mark.slow
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


@ignore_convergence
def test_concurrent_one_row_predict_matches_serial():
    # The few-rows path (column split among OpenMP threads) from many Python threads.
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 300))
    y = rng.integers(0, 3, 40)
    clf = ReLUMLPClassifier((500,), max_iter=2, random_state=0).fit(X, y)  # 1.2 MB
    expected = [clf.predict_proba(X[i:i + 1]) for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: clf.predict_proba(X[i:i + 1]), range(40)))
    for r, e in zip(results, expected):
        assert np.array_equal(r, e)


@ignore_convergence
def test_one_row_predict_backs_off_to_one_thread_after_a_slow_call(monkeypatch):
    """A two-thread few-rows call that took too long (another process held the second
    core) sends the next calls to one thread; the result is the same either way."""
    from relumlp import _kernels, _threads

    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 20))
    clf = ReLUMLPClassifier((16,), max_iter=2, random_state=0).fit(X, rng.integers(0, 2, 30))
    seen = []
    kernel = _kernels.forward_small

    def recording(*args):
        seen.append(args[4])  # (params, ws, X, out, n_threads, ...)
        return kernel(*args)

    monkeypatch.setattr(_kernels, "forward_small", recording)
    monkeypatch.setattr(_threads.few_rows, "wanted", lambda nbytes: 2)
    monkeypatch.setattr(_threads.few_rows, "backoff_until", 0.0)
    monkeypatch.setattr(_threads, "SMALL_SLOW_S", -1.0)  # every call counts as slow
    first = clf.predict_proba(X[:1])
    second = clf.predict_proba(X[:1])
    assert seen == [2, 1]
    assert np.array_equal(first, second)
    monkeypatch.setattr(_threads.few_rows, "backoff_until", 0.0)  # the backoff expired
    clf.predict_proba(X[:1])
    assert seen == [2, 1, 2]


@ignore_convergence
@pytest.mark.skipif(not openmp_enabled(), reason="the row split needs OpenMP")
def test_row_split_fit_is_bit_identical_whatever_the_threads_per_epoch(monkeypatch):
    """The row-split epoch's parts fix its arithmetic: switching between one and two
    threads from epoch to epoch (as _TeamChoice does under contention) changes nothing."""
    from relumlp import _threads

    rng = np.random.default_rng(6)
    X = rng.normal(size=(600, 64))
    y = rng.integers(0, 4, 600)
    monkeypatch.setattr(_threads, "ROW_SPLIT_FLOPS", 0)
    with threadpool_limits(2, user_api="openmp"):
        seen = []
        make = lambda: ReLUMLPClassifier((48,), batch_size=100, max_iter=6, random_state=0)
        record = _threads.TeamChoice.record
        monkeypatch.setattr(_threads.TeamChoice, "record",
                            lambda self, n, *a: (seen.append(n), record(self, n, *a)))
        default = make().fit(X, y)
        assert len(seen) == 6 and set(seen) <= {1, 2}  # the row split ran every epoch
        fits = {}
        for name, choice in [("one", lambda self, available: 1),
                             ("mixed", lambda self, available: 1 + len(seen) % 2)]:
            monkeypatch.setattr(_threads.TeamChoice, "threads", choice)
            seen.clear()
            fits[name] = make().fit(X, y)
            assert seen == ([1] * 6 if name == "one" else [1, 2, 1, 2, 1, 2])
    for model in fits.values():
        for a, b in zip(default.coefs_ + default.intercepts_,
                        model.coefs_ + model.intercepts_):
            np.testing.assert_array_equal(a, b)
        assert model.loss_curve_ == default.loss_curve_


def test_team_choice_falls_back_to_one_thread_under_contention():
    from relumlp._threads import TeamChoice

    team = TeamChoice()
    for _ in range(5):  # idle: all threads, every epoch
        assert team.threads(2) == 2
        team.record(2, 1.0, busy=0.99)
    team.record(2, 3.0, busy=0.2)  # a sibling that waited for its core
    assert [team.threads(2) for _ in range(1)] == [1]
    team.record(1, 1.5)
    assert team.threads(2) == 2  # try all threads again
    team.record(2, 3.0, busy=0.2)  # still contended: a longer wait (x4)
    waits = 0
    while team.threads(2) == 1:
        team.record(1, 1.5)
        waits += 1
    assert waits == 4
    team.record(2, 2.0, busy=0.9)  # not contended, but slower than one thread was
    assert team.threads(2) == 1
    assert team.threads(1) == 1  # one thread available: one thread


def test_epoch_plan_blas_threads_and_row_split(monkeypatch):
    """The plan measured in thread_sweep.py: minibatches split into parts (one per CPU
    of the machine, never one per thread) when dense with enough work; otherwise BLAS
    on one thread unless a BLAS product is large (a sparse input's first layer is not a
    BLAS product). The same plan whatever the OpenMP thread count."""
    import contextlib

    from relumlp import _threads
    from relumlp._params import NetworkLayout

    asked = []
    monkeypatch.setattr(_threads, "fit_scope",
                        lambda limit_blas: asked.append(limit_blas) or contextlib.nullcontext())

    def plan(units, batch, acts=None, **kw):
        asked.clear()
        acts = acts or ["relu"] * (len(units) - 2)
        _, parts = _threads.epoch_plan(NetworkLayout(units, acts, "softmax"), batch, **kw)
        return parts, asked[0]

    monkeypatch.setattr(_threads, "_cpus", 2)  # a machine with 2 CPUs
    for threads in (1, 2, 3):
        with threadpool_limits(threads, user_api="openmp"):
            assert plan([64, 100, 10], 200) == (2, True)            # digits: 8.9 MFLOP / batch
            assert plan([32, 64, 64, 1], 32) == (0, True)           # 1.2 MFLOP: serial
            assert plan([64, 128, 128, 2], 128, ["prelu", "prelu"]) == (2, True)
            assert plan([64, 100, 10], 200, clipping=True) == (0, True)
            assert plan([64, 128, 128, 2], 128, clipping=True) == (0, True)
            assert plan([64, 1024, 1024, 2], 512, clipping=True) == (0, False)  # 1 GFLOP
            # 5000 sparse features into 128 units: 327 MFLOP, but relumlp's CSR kernels.
            assert plan([5000, 128, 2], 256, sparse=True) == (0, True)
            assert plan([5000, 128, 2], 256) == (2, True)
    # More CPUs, more parts: one per CPU, at most 8, at least 4 rows each.
    monkeypatch.setattr(_threads, "_cpus", 16)
    assert plan([64, 100, 10], 200) == (8, True)
    assert plan([64, 100, 10], 24) == (0, True)  # 1.1 MFLOP: serial
    assert _threads.row_parts(20) == 5 and _threads.row_parts(7) == 1
