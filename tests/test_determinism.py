"""Determinism: the same random_state gives bit-identical weights, whatever the number
of OpenMP threads, on every training path (README, Threads)."""

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
    _assert_params_equal(fits[1][0], fits[2][0])
    assert np.array_equal(fits[1][1], fits[2][1])
    assert fits[1][0].loss_curve_ == fits[2][0].loss_curve_


# Every training path, by what it exercises: the row-split epoch (dense, enough work per
# minibatch) with PReLU slopes, dropout, sgd with momentum, float32; the serial epoch
# (sparse input, gradient clipping, small minibatches); lbfgs; early stopping;
# partial_fit.
PATHS = {
    "row-split-adam": dict(),
    "row-split-prelu-sgd-dropout": dict(activation="prelu", solver="sgd", dropout=0.2),
    "row-split-sgd-momentum-f32": dict(solver="sgd", momentum=0.9, dtype=np.float32),
    "row-split-early-stopping": dict(early_stopping=True, n_iter_no_change=1),
    "sparse": dict(sparse=True, activation="prelu", dropout=0.1),
    "clipping": dict(max_grad_norm=0.5, activation="gelu"),
    "small-batches": dict(batch_size=16, solver="sgd"),
    "lbfgs": dict(solver="lbfgs", activation="prelu"),
    "partial-fit": dict(partial=True, dropout=0.1),
}


@ignore_convergence
@pytest.mark.parametrize("path", PATHS)
def test_every_path_bit_identical_for_1_2_3_threads(path):
    rng = np.random.default_rng(3)
    options = dict(PATHS[path])
    dtype = options.pop("dtype", np.float64)
    sparse, partial = options.pop("sparse", False), options.pop("partial", False)
    X = rng.normal(size=(600, 64)).astype(dtype)
    y = rng.integers(0, 4, 600)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) < 1, 0, X))
    params = dict(hidden_layer_sizes=(100, 30), batch_size=200, max_iter=3, random_state=0)
    params.update(options)
    fits = []
    for n_threads in (1, 2, 3):
        with threadpool_limits(n_threads, user_api="openmp"):
            est = ReLUMLPClassifier(**params)
            if partial:
                for rows in np.array_split(np.arange(600), 3):
                    est.partial_fit(X[rows], y[rows], classes=np.arange(4))
            else:
                est.fit(X, y)
            fits.append(est)
    for other in fits[1:]:
        _assert_params_equal(fits[0], other)
        for a, b in zip(fits[0].prelu_slopes_, other.prelu_slopes_):
            assert (a is None and b is None) or np.array_equal(a, b)
        assert fits[0].loss_curve_ == other.loss_curve_


@ignore_convergence
def test_fits_in_concurrent_threads_equal_a_fit_alone():
    # Fits running in threads of one process share the cores (fewer threads each):
    # their weights are those of a fit alone.
    from concurrent.futures import ThreadPoolExecutor

    X, y = _digits(600)
    make = lambda seed: ReLUMLPClassifier((100,), batch_size=200, max_iter=3,
                                          random_state=seed)
    alone = [make(seed).fit(X, y) for seed in range(3)]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda seed: make(seed).fit(X, y), range(3)))
    for a, b in zip(alone, together):
        _assert_params_equal(a, b)

