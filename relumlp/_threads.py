"""How many threads the kernels and the matrix products use.

``effective_n_threads()`` is called once per ``fit`` / ``predict`` and the result is
passed down to every kernel. It describes relumlp's own build, not scikit-learn's.
``blas_limit()`` caps BLAS at one thread while a fit's products are too small for a
second thread to pay (threshold from benchmarks/thread_sweep.py, see RESULTS.md).
"""
import contextlib
import threading

from joblib import cpu_count

from relumlp._kernels import omp_max_threads
from relumlp._kernels import openmp_enabled as _openmp_enabled


def openmp_enabled():
    """Return True if relumlp's kernels were built with OpenMP support.

    Returns
    -------
    enabled : bool
        False for the serial build (``RELUMLP_NO_OPENMP=1`` or a compiler without
        OpenMP), in which case every kernel runs on one thread.

    Examples
    --------
    >>> import relumlp
    >>> isinstance(relumlp.openmp_enabled(), bool)
    True
    """
    return _openmp_enabled()


def effective_n_threads():
    """Number of threads for the elementwise kernels.

    Honours ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits(user_api="openmp")``
    (both act through ``omp_get_max_threads()``) and the CPU quota of the process
    (``joblib.cpu_count``). Always 1 for a serial build.

    BLAS and OpenMP must not fight: OpenBLAS's idle threads spin for a long time after
    each product, so an OpenMP region that needs the same cores waits for the scheduler
    to preempt them (measured: 12 ms instead of 15 µs for a 256 x 256 relu). So the
    elementwise kernels use OpenMP only while the BLAS that relumlp calls runs on one
    thread (small fits, or ``threadpool_limits(1, user_api="blas")``); otherwise the
    matrix products get the cores and the elementwise passes run on the calling thread.

    Fits running at the same time in other threads of the process (joblib's threading
    backend sets no per-thread limit) split the threads between them.
    """
    if not _openmp_enabled():
        return 1
    n_threads = max(1, min(omp_max_threads(), _cpu_count()))
    if n_threads > 1 and _blas_threads() > 1:
        return 1
    # Fits running in other threads of this process share the cores.
    return max(1, n_threads // max(1, _active_fits))


def small_predict_n_threads(weight_bytes):
    """Threads for the few-rows forward pass (it calls no BLAS, so no BLAS query).

    A second thread pays once each core streams enough of the weights to cover the
    ~2 µs of waking it: from ``SMALL_PARALLEL_BYTES`` of weights, and then one thread
    per half of it (the sweep in ``benchmarks/thread_sweep.py``, RESULTS.md).
    """
    if weight_bytes < SMALL_PARALLEL_BYTES or not _openmp_enabled():
        return 1
    n_threads = max(1, min(omp_max_threads(), _cpu_count()))
    n_threads = min(n_threads, weight_bytes // (SMALL_PARALLEL_BYTES // 2))
    return max(1, n_threads // max(1, _active_fits))


# Bytes of weights (all layers) from which the one-row forward pass uses two threads.
SMALL_PARALLEL_BYTES = 1_000_000

_cpus = None


def _cpu_count():
    """joblib.cpu_count(), cached: it reads the cgroup quota files on every call."""
    global _cpus
    if _cpus is None:
        _cpus = cpu_count()
    return _cpus


def _get_controller():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def _blas_threads():
    """Threads of the BLAS libraries loaded in the process (the largest)."""
    libs = _get_controller().select(user_api="blas").lib_controllers
    return max((lib.num_threads for lib in libs), default=1)


# In fits that cannot split minibatches (sparse input, gradient clipping, tiny
# batches), a second BLAS thread pays only once the largest BLAS product of a minibatch
# reaches this many flops: between products the elementwise work lets OpenBLAS's worker
# go idle, and every product pays its wake-up. Measured with whole fits in
# benchmarks/thread_sweep.py (RESULTS.md, clipped fits): one thread 2.3x faster at 4
# and 26 MFLOP, 1.2x at 134; two threads 1.08x faster at 302 and 1.15x from 540 MFLOP.
# One thread also leaves the cores to relumlp's OpenMP kernels (a sparse fit's CSR
# products: 1.25x) and keeps a fit from collapsing when another process holds a core.
BLAS_PARALLEL_FLOPS = 300_000_000

_controller = None


def epoch_plan(layout, batch_size, sparse=False, clipping=False):
    """How a fit's epochs use the cores: ``(context, row_parts)``.

    - Dense input, no gradient clipping, several OpenMP threads, and enough work
      per minibatch (``ROW_SPLIT_FLOPS``): BLAS on one thread and ``row_parts`` = the
      number of threads: every minibatch is split into that many fixed parts (rows for
      forward and deltas, blocks of the gradients, chunks of the optimizer step) shared
      by relumlp's OpenMP threads, so one thread pool owns the cores and the
      elementwise work and the optimizer step are parallel too. The parts, not the
      threads, fix the arithmetic: the epochs may run on fewer threads
      (``_training._TeamChoice``) with the same result.
    - Otherwise, every per-batch BLAS product under ``BLAS_PARALLEL_FLOPS``: BLAS on
      one thread (it would not gain from two).
    - Otherwise BLAS keeps its threads and the elementwise work runs on one thread.
    """
    # The BLAS products (a sparse input's first layer is relumlp's own CSR kernels).
    shapes = layout.coef_shapes[1:] if sparse else layout.coef_shapes
    largest = max((2 * batch_size * i * o for i, o in shapes), default=0)
    omp = max(1, min(omp_max_threads(), _cpu_count())) if _openmp_enabled() else 1
    omp //= 1 + _active_fits  # the share of this fit if others run in other threads
    if (omp > 1 and not sparse and not clipping and batch_size >= 4 * omp
            and 6 * batch_size * layout.n_coefs >= ROW_SPLIT_FLOPS):
        return fit_scope(limit_blas=True), omp
    if largest < BLAS_PARALLEL_FLOPS:
        return fit_scope(limit_blas=True), 0
    # Alone, BLAS gets the cores; next to other fits, one BLAS thread each.
    return fit_scope(limit_blas=_active_fits > 0), 0


# Work per minibatch (6 x batch x weights, all products) from which the row-split epoch
# on two threads pays: benchmarks/thread_sweep.py (RESULTS.md) measured 0.8-1.1x the
# serial epoch below 5 MFLOP, 1.3x from 8 MFLOP; in between the gain does not cover
# the risk of a busy core (_training._TeamChoice).
ROW_SPLIT_FLOPS = 6_000_000


# Fits running in this process (threads of one process: joblib's threading backend, a
# notebook's background fits). They share the cores: see effective_n_threads.
_fits_lock = threading.Lock()
_active_fits = 0
_blas_limiter = None


@contextlib.contextmanager
def fit_scope(limit_blas):
    """Register a running fit; with ``limit_blas``, BLAS runs on one thread meanwhile.

    BLAS thread limits are process-wide, and OpenBLAS (pthreads) lets only one Python
    thread set them: fits in concurrent threads each limiting and restoring would
    leave the process with the wrong count (the last to finish restores what another
    fit had set). So the limit is managed here, once for all running fits: the first
    fit that wants BLAS on one thread sets it, the last fit to finish restores the
    original counts.
    """
    global _active_fits, _blas_limiter
    with _fits_lock:
        _active_fits += 1
        if limit_blas and _blas_limiter is None:
            _release_blas_control()
            _blas_limiter = _get_controller().limit(limits=1, user_api="blas")
    try:
        yield
    finally:
        with _fits_lock:
            _active_fits -= 1
            if _active_fits == 0 and _blas_limiter is not None:
                _release_blas_control()  # this thread may not be the one that set it
                _blas_limiter.restore_original_limits()
                _release_blas_control()
                _blas_limiter = None


def _release_blas_control():
    """Let the current thread set OpenBLAS's limits (threadpoolctl >= 3.6 gives the
    control to the first thread that sets them)."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
