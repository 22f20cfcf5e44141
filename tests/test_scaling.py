"""Grid searches across cores and machines.

``GridSearchCV(n_jobs=2)`` with joblib's default process backend (loky), with the
threading backend and with the Dask backend (a ``dask.distributed.LocalCluster`` of two
worker processes, started here) gives the serial ``best_params_`` and ``cv_results_``
scores to 1e-12, and a fit inside a worker uses the thread budget it is given
(``test_thread_budget`` measures it during the fit and prints it; run with ``-s``).

Warnings: the configuration turns every warning into an error and scikit-learn's
``Parallel`` hands the parent's warning filters to every worker (loky, threads, Dask),
so the module-level ``filterwarnings`` mark below is what the workers apply too; the
fits use ``error_score="raise"`` so a warning raised as an error in a worker fails the
test instead of turning into a NaN score.

dask and distributed are optional (``pip install relumlp[dask]``); the Dask tests are
skipped with a message when they are missing.
"""
import os
import threading
import time

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController, threadpool_info

import relumlp
from relumlp import ReLUMLPClassifier
from relumlp._kernels import omp_max_threads
from relumlp._threads import effective_n_threads

from _helpers import _fit_quietly

# max_iter=5 stops every fit early on purpose (same epochs in every backend).
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_JOBS = 2
CV = 3
PARAM_GRID = {"mlp__activation": ["relu", "elu", "tanh"], "mlp__alpha": [1e-4, 1e-1]}
DASK_WORKERS = 2
DASK_THREADS_PER_WORKER = 1
# A hung cluster fails the test after this long instead of hanging the run.
DASK_TIMEOUT = 120
DIGITS = dict(n=540, scale="unit")  # the digits fixture: X[:540] / 16


def _pipeline(estimator=None):
    if estimator is None:
        estimator = ReLUMLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0)
    return Pipeline([("scale", StandardScaler()), ("mlp", estimator)])


def _grid_search(**kwargs):
    return GridSearchCV(_pipeline(), PARAM_GRID, cv=CV, error_score="raise", **kwargs)


def _blas_openmp_state():
    return {lib.filepath: lib.num_threads for lib in ThreadpoolController().lib_controllers}


def _threading_fit(search, X, y):
    """Fit with joblib's threading backend. Concurrent fits can leave the process's BLAS
    limit changed (see test_threading_backend_leaves_blas_limit_unchanged):
    ``limit(limits=None)`` sets nothing but puts every pool back on exit. (Not a bare
    ``set_num_threads``: with threadpoolctl >= 3.8 the first thread that sets OpenBLAS's
    limit outside a ``with`` keeps control of it, and the limits the fits set in other
    threads then silently do nothing.)"""
    with ThreadpoolController().limit(limits=None), \
            joblib.parallel_config(backend="threading", n_jobs=N_JOBS):
        return _fit_quietly(search, X, y)


def _dask_fit(client, search, X, y):
    """Fit with the Dask backend in a helper thread, so a hung cluster fails the test
    after DASK_TIMEOUT seconds (the cluster fixture's teardown then closes it)."""
    outcome = {}

    def work():
        try:
            with client.as_current(), joblib.parallel_config(backend="dask"):
                outcome["search"] = _fit_quietly(search, X, y)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(DASK_TIMEOUT)
    if thread.is_alive():
        pytest.fail(f"the Dask grid search did not finish within {DASK_TIMEOUT} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["search"]


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("dask", reason="dask is not installed (pip install relumlp[dask])")
    distributed = pytest.importorskip(
        "distributed", reason="distributed is not installed (pip install relumlp[dask])")
    import psutil  # a dependency of distributed

    with distributed.LocalCluster(n_workers=DASK_WORKERS,
                                  threads_per_worker=DASK_THREADS_PER_WORKER,
                                  processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster, timeout=DASK_TIMEOUT) as client:
        client.wait_for_workers(DASK_WORKERS, timeout=DASK_TIMEOUT)
        pids = list(client.run(os.getpid).values())
        yield client
    # Closed cleanly: no worker process is left behind.
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if psutil.pid_exists(p)], "Dask worker processes leaked"


# ---------------------------------------------------------------------------------------
# Same results in every backend


@pytest.fixture(scope="module")
def serial_search(digits):
    search = _fit_quietly(_grid_search(n_jobs=1), *digits)
    scores = search.cv_results_["mean_test_score"]
    # Not vacuous: the grid points score differently.
    assert np.unique(np.round(scores, 12)).size > 1
    return search


def _assert_same_search(got, ref):
    assert got.best_params_ == ref.best_params_
    assert got.best_index_ == ref.best_index_
    assert got.cv_results_["params"] == ref.cv_results_["params"]
    keys = ["mean_test_score", "std_test_score"] + [f"split{k}_test_score" for k in range(CV)]
    for key in keys:
        np.testing.assert_allclose(got.cv_results_[key], ref.cv_results_[key],
                                   rtol=0, atol=1e-12, err_msg=key)
    np.testing.assert_array_equal(got.cv_results_["rank_test_score"],
                                  ref.cv_results_["rank_test_score"])
    assert got.best_score_ == pytest.approx(ref.best_score_, rel=0, abs=1e-12)


def test_loky_matches_serial(digits, serial_search):
    """joblib's default backend (loky processes), n_jobs=2."""
    _assert_same_search(_fit_quietly(_grid_search(n_jobs=N_JOBS), *digits), serial_search)


def test_threading_matches_serial(digits, serial_search):
    """joblib's threading backend, two threads fitting concurrently in this process."""
    _assert_same_search(_threading_fit(_grid_search(), *digits), serial_search)


def test_dask_matches_serial(digits, serial_search, dask_client):
    """joblib's Dask backend on a LocalCluster of two worker processes."""
    _assert_same_search(_dask_fit(dask_client, _grid_search(), *digits), serial_search)


# ---------------------------------------------------------------------------------------
# Thread budget of a fit inside a worker


class _ThreadProbe:
    """scikit-learn callback: at the start of every epoch (inside the fit, under the
    thread limits the fit sets for its epochs) the thread count relumlp's kernels get
    (``effective_n_threads()``, what ``_Trainer.epoch`` passes to the kernels next),
    ``omp_get_max_threads()`` and threadpoolctl's OpenMP and BLAS counts (the largest
    over the libraries loaded)."""

    def __init__(self):
        self.epochs = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None,
                          fitted_estimator=None):
        if context.task_name != "epoch":
            return
        info = threadpool_info()
        record = {
            "relumlp": effective_n_threads(),
            "omp_max": omp_max_threads(),
            "openmp": max((i["num_threads"] for i in info if i["user_api"] == "openmp"),
                          default=1),
            "blas": max((i["num_threads"] for i in info if i["user_api"] == "blas"),
                        default=1),
        }
        # An epoch runs either relumlp's OpenMP threads (BLAS on one thread) or BLAS's
        # threads (elementwise work on the calling thread): it keeps this many busy.
        record["busy"] = max(record["relumlp"], record["blas"])
        # ... next to the other fits running in this process at that moment (threads):
        # together they keep `load` threads busy.
        record["load"] = record["busy"] * relumlp._threads._active_fits
        self.epochs.append(record)

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None,
                        fitted_estimator=None):
        return False


class _ThreadRecordingMLP(ReLUMLPClassifier):
    """ReLUMLPClassifier that records, per fit, the largest thread counts its epochs saw,
    and the process / OS thread that ran the fit."""

    def fit(self, X, y, sample_weight=None, X_val=None, y_val=None):
        probe = _ThreadProbe()
        self.set_callbacks(probe)
        super().fit(X, y, sample_weight=sample_weight, X_val=X_val, y_val=y_val)
        assert probe.epochs, "the probe saw no epoch"
        self.threads_ = {key: max(e[key] for e in probe.epochs) for key in probe.epochs[0]}
        self.threads_["pid"] = os.getpid()
        self.threads_["tid"] = threading.get_native_id()
        return self


class _ThreadScore:
    """'Scorer' returning a recorded thread count of the fit, so that cv_results_ carries
    what every fit of the grid search saw in its worker."""

    def __init__(self, key):
        self.key = key

    def __call__(self, estimator, X, y):
        return float(estimator[-1].threads_[self.key])


THREAD_KEYS = ["relumlp", "omp_max", "openmp", "blas", "busy", "load", "pid", "tid"]


def _thread_search(**kwargs):
    # (32,): every product small, BLAS limited to one thread during the epochs.
    # (256,): large products: row-parallel epochs when there are several OpenMP threads.
    mlp = _ThreadRecordingMLP(hidden_layer_sizes=(32,), max_iter=3, random_state=0)
    return GridSearchCV(_pipeline(mlp), {"mlp__hidden_layer_sizes": [(32,), (256,)]},
                        cv=2, scoring={k: _ThreadScore(k) for k in THREAD_KEYS},
                        refit=False, error_score="raise", **kwargs)


def _measure(backend, digits, request):
    if backend == "serial":
        search = _fit_quietly(_thread_search(n_jobs=1), *digits)
    elif backend == "loky":
        search = _fit_quietly(_thread_search(n_jobs=N_JOBS), *digits)
    elif backend == "threading":
        search = _threading_fit(_thread_search(), *digits)
    else:
        search = _dask_fit(request.getfixturevalue("dask_client"), _thread_search(), *digits)
    res = search.cv_results_
    n_splits = 2
    return {k: np.concatenate([res[f"split{s}_test_{k}"] for s in range(n_splits)]).astype(int)
            for k in THREAD_KEYS}


def _show(backend, fits, request):
    counts = {k: sorted(set(fits[k].tolist())) for k in ["relumlp", "omp_max", "openmp", "blas", "busy"]}
    line = (f"[{backend}] cpus={os.cpu_count()} joblib.cpu_count={joblib.cpu_count()} "
            f"main: omp_max={omp_max_threads()} | fits: {len(fits['pid'])} in "
            f"{len(set(fits['pid'].tolist()))} process(es), "
            f"{len(set(zip(fits['pid'].tolist(), fits['tid'].tolist())))} thread(s)"
            f"{' incl. the main thread' if threading.get_native_id() in fits['tid'] else ''}; "
            + ", ".join(f"{k}={v}" for k, v in counts.items()))
    print(line)
    request.node.user_properties.append(("threads", line))


@pytest.mark.parametrize("backend", ["serial", "loky", "threading", "dask"])
def test_thread_budget(backend, digits, request):
    """A fit uses the thread budget of where it runs, and n_jobs concurrent fits do not
    use more threads than there are CPUs (the threading backend: see the xfail below)."""
    fits = _measure(backend, digits, request)
    _show(backend, fits, request)
    cpus = joblib.cpu_count()
    main_pid = os.getpid()
    # relumlp never takes more OpenMP threads than the budget of the thread it runs on.
    assert np.all(fits["relumlp"] <= fits["omp_max"])
    assert np.all(fits["relumlp"] <= cpus)
    if not relumlp.openmp_enabled():
        assert np.all(fits["relumlp"] == 1)

    if backend == "serial":
        assert set(fits["pid"].tolist()) == {main_pid}
        expected = min(omp_max_threads(), cpus) if relumlp.openmp_enabled() else 1
        np.testing.assert_array_equal(fits["relumlp"], expected)
        if relumlp.openmp_enabled() and cpus >= 2 and omp_max_threads() >= 2:
            assert np.all(fits["relumlp"] > 1), "the main process should use several threads"
    elif backend == "loky":
        assert main_pid not in set(fits["pid"].tolist())
        # joblib's loky backend: OMP_NUM_THREADS & co. = cpu_count() // n_jobs in the
        # workers, unless the parent already sets them.
        budget = int(os.environ.get("OMP_NUM_THREADS", max(cpus // N_JOBS, 1)))
        np.testing.assert_array_equal(fits["omp_max"], budget)
        assert np.all(fits["relumlp"] <= budget)
        assert np.all(fits["blas"] <= budget)
        # No oversubscription: n_jobs workers x the threads a fit keeps busy.
        assert fits["busy"].max() * N_JOBS <= max(os.cpu_count(), N_JOBS)
    elif backend == "dask":
        assert main_pid not in set(fits["pid"].tolist())
        # distributed's nanny starts the workers with OMP_NUM_THREADS=1 (and MKL, OpenBLAS).
        np.testing.assert_array_equal(fits["omp_max"], DASK_THREADS_PER_WORKER)
        assert np.all(fits["relumlp"] <= DASK_THREADS_PER_WORKER)
        assert np.all(fits["blas"] <= DASK_THREADS_PER_WORKER)
        total = fits["busy"].max() * DASK_WORKERS * DASK_THREADS_PER_WORKER
        assert total <= max(os.cpu_count(), DASK_WORKERS)
    else:
        # joblib's threading backend sets no budget: each thread keeps the process's
        # OpenMP default. relumlp shares it between the fits running at the same time,
        # and BLAS runs on one thread while several fits run.
        assert set(fits["pid"].tolist()) == {main_pid}
        assert fits["load"].max() <= cpus
        assert fits["relumlp"].max() <= (min(omp_max_threads(), cpus)
                                         if relumlp.openmp_enabled() else 1)


def test_threading_backend_does_not_oversubscribe(digits, request):
    """joblib's threading backend sets no inner thread limit and OpenMP's thread count
    is per thread: relumlp itself splits the cores between the fits running at once."""
    fits = _measure("threading", digits, request)
    concurrent = fits["load"] // np.maximum(fits["busy"], 1)
    assert concurrent.max() >= 1
    assert fits["load"].max() <= joblib.cpu_count()


def test_threading_backend_leaves_blas_limit_unchanged(digits):
    """BLAS limits are process-wide: concurrent fits in threads used to restore each
    other's limit in interleaved order and left the process with BLAS on 1 thread.
    relumlp now sets the limit once for all running fits and restores it after the
    last one."""
    with ThreadpoolController().limit(limits=None):
        before = _blas_openmp_state()
        with joblib.parallel_config(backend="threading", n_jobs=N_JOBS):
            _fit_quietly(_grid_search(), *digits)
        after = _blas_openmp_state()
    assert after == before


EPOCHS = 10


def test_partial_fit_under_dask_ml_incremental(digits):
    """Streaming: dask_ml.wrappers.Incremental feeds a chunked dask array to partial_fit
    block by block. relumlp trains there exactly as on the blocks given by hand, and, its
    default model being scikit-learn's, reaches MLPClassifier's weights under the same
    wrapper."""
    da = pytest.importorskip("dask.array", reason="dask is optional: relumlp[dask]")
    wrappers = pytest.importorskip("dask_ml.wrappers", reason="dask-ml is optional")
    from sklearn.neural_network import MLPClassifier

    X, y = digits
    classes = np.unique(y)
    X_dask, y_dask = da.from_array(X, chunks=(100, X.shape[1])), da.from_array(y, chunks=100)
    fitted = {}
    params = dict(hidden_layer_sizes=(24,), learning_rate_init=0.01, random_state=0)
    for name, est in [("relumlp", ReLUMLPClassifier(**params)),
                      ("sklearn", MLPClassifier(**params))]:
        inc = wrappers.Incremental(est, scoring="accuracy", shuffle_blocks=False)
        for _ in range(EPOCHS):  # passes over the stream
            inc.partial_fit(X_dask, y_dask, classes=classes)
        fitted[name] = inc
    ours, theirs = fitted["relumlp"].estimator_, fitted["sklearn"].estimator_
    by_hand = ReLUMLPClassifier(**params)
    for _ in range(EPOCHS):
        for start in range(0, len(y), 100):
            by_hand.partial_fit(X[start:start + 100], y[start:start + 100], classes=classes)
    for a, b, c in zip(ours.coefs_ + ours.intercepts_, by_hand.coefs_ + by_hand.intercepts_,
                       theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-13)
    assert ours.t_ == EPOCHS * len(y) == theirs.t_
    accuracy = fitted["relumlp"].score(X_dask, y_dask)
    assert accuracy == fitted["sklearn"].score(X_dask, y_dask)
    assert accuracy > 0.8
