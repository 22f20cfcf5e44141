"""Determinism: the same random_state gives bit-identical weights; 1 vs 2 OpenMP
threads give bit-identical weights, or equal to 1e-12 relative in float64 where the
row-split products round differently (README, Threads)."""

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from relumlp import ReLUMLPClassifier, openmp_enabled
from relumlp._threads import MIN_PARALLEL_SIZE, effective_n_threads

from _helpers import (
    _assert_params_equal,
    _digits,
    _small,
    ignore_convergence,
)


@ignore_convergence
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_refit_bit_identical(solver):
    X, y = _digits()
    est = _small(ReLUMLPClassifier, solver=solver, shuffle=True)
    first = [a.copy() for a in est.fit(X, y).coefs_]
    second = est.fit(X, y).coefs_
    for a, b in zip(first, second):
        assert np.array_equal(a, b)
    other = _small(ReLUMLPClassifier, solver=solver, shuffle=True, random_state=1).fit(X, y)
    assert not np.array_equal(other.coefs_[0], second[0])


@ignore_convergence
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_bit_identical_across_thread_counts(solver, sparse):
    # Wide enough that the elementwise kernels run on several threads.
    X, y = _digits(1000)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    params = dict(hidden_layer_sizes=(300, 200), solver=solver, max_iter=2, batch_size=200,
                  random_state=0)
    assert 200 * 300 >= MIN_PARALLEL_SIZE
    fits = {}
    for n_threads in (1, 2):
        # With BLAS on one thread, the elementwise kernels take the OpenMP threads.
        with threadpool_limits(n_threads, user_api="openmp"), \
                threadpool_limits(1, user_api="blas"):
            assert effective_n_threads() == (n_threads if openmp_enabled() else 1)
            est = ReLUMLPClassifier(**params).fit(X, y)
            fits[n_threads] = (est, est.predict_proba(X))
    if solver == "adam" and not sparse:
        # Two threads share each minibatch by rows (relumlp._threads.epoch_plan); BLAS
        # then multiplies row blocks, whose last bits may differ from the whole block.
        # Documented bound: 1e-12 relative in float64.
        for u, v in zip(fits[1][0].coefs_ + fits[1][0].intercepts_,
                        fits[2][0].coefs_ + fits[2][0].intercepts_):
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(fits[1][0].loss_curve_, fits[2][0].loss_curve_, rtol=1e-12)
        # The same thread count is bit-identical.
        with threadpool_limits(2, user_api="openmp"), \
                threadpool_limits(1, user_api="blas"):
            again = ReLUMLPClassifier(**params).fit(X, y)
        _assert_params_equal(fits[2][0], again)
        return
    _assert_params_equal(fits[1][0], fits[2][0])
    assert np.array_equal(fits[1][1], fits[2][1])
    assert fits[1][0].loss_curve_ == fits[2][0].loss_curve_
