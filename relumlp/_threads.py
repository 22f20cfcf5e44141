"""Thread policy: how many threads every kernel, product and epoch uses, and why.

Every thread-policy decision and constant of relumlp lives here. Each constant comes
from a sweep in ``benchmarks/thread_sweep.py`` (figures: RESULTS.md, "Thread policy")
and was measured on one machine: a guess on another CPU until measured there. The
kernels receive plain integers: a thread count per call, and the two thresholds they
need inside compiled loops (``_kernels.set_thread_policy``, set below at import).

Results never depend on a thread count: work is split into parts fixed by the data,
and reductions add their partials in a fixed order. So every choice here may follow
the clock.
"""
import contextlib
import os
import threading
import time

from joblib import cpu_count

from relumlp import _kernels

# --------------------------------------------------------------------- constants
# Elementwise loops over fewer elements than this run on one thread: below it, waking
# the OpenMP team costs more than the loop.
MIN_PARALLEL_SIZE = 50_000

# A waiter of the row-split epoch's sequencer spins this many pause instructions
# before it sleeps: short waits on an idle machine end in the spin, while a waiter
# whose sibling was preempted gives the core back.
SEQUENCER_SPIN = 4000

# Bytes of weights (all layers) from which the few-rows forward pass uses two threads
# (then one thread per half of it): below, waking a thread costs more than the share
# of the weights it streams.
SMALL_PARALLEL_BYTES = 1_000_000

# A two-thread few-rows call slower than SMALL_SLOW_S + SMALL_SLOW_S_PER_BYTE * weight
# bytes means the second thread waited for a core held by another process or by a
# spinning BLAS pool: the calls of the next SMALL_BACKOFF_S seconds run on one thread.
SMALL_SLOW_S, SMALL_SLOW_S_PER_BYTE, SMALL_BACKOFF_S = 1e-3, 1e-9, 0.5

# In fits that cannot split minibatches (sparse input, gradient clipping, tiny
# batches), a second BLAS thread pays only once the largest product of a minibatch
# reaches this many flops: between products OpenBLAS's worker goes idle, and every
# product pays its wake-up.
BLAS_PARALLEL_FLOPS = 300_000_000

# Work per minibatch (6 x batch x weights, all products) from which the row-split
# epoch on several threads beats the serial epoch on one.
ROW_SPLIT_FLOPS = 6_000_000

# The row-split epoch cuts every minibatch into one part per CPU of the machine (its
# quota), at most MAX_ROW_PARTS and with at least MIN_PART_ROWS rows each. The parts
# fix the arithmetic, so their number depends on the machine and the batch, never on
# how many threads run (OMP_NUM_THREADS, threadpool_limits, other fits in the process).
MAX_ROW_PARTS = 8
MIN_PART_ROWS = 4

_kernels.set_thread_policy(min_parallel_size=MIN_PARALLEL_SIZE,
                           sequencer_spin=SEQUENCER_SPIN)


# ---------------------------------------------------------------- what the build has
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
    return _kernels.openmp_enabled()


_cpus = None
_controller = None


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


def _omp_threads():
    """OpenMP threads available to this fit: the OpenMP limit and the CPU quota; one in
    a child forked after OpenMP threads ran (``fork_child_one_thread``)."""
    if not _kernels.openmp_enabled() or fork_child_one_thread():
        return 1
    return max(1, min(_kernels.omp_max_threads(), _cpu_count()))


# ------------------------------------------------------------------ elementwise work
def effective_n_threads():
    """Number of threads for the elementwise kernels.

    Honours ``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits(user_api="openmp")``
    (both act through ``omp_get_max_threads()``) and the CPU quota of the process
    (``joblib.cpu_count``). Always 1 for a serial build.

    BLAS and OpenMP must not fight: OpenBLAS's idle threads spin for a long time after
    each product, so an OpenMP region that needs the same cores waits for the scheduler
    to preempt them. So the elementwise kernels use OpenMP only while the BLAS that
    relumlp calls runs on one thread (small fits, or
    ``threadpool_limits(1, user_api="blas")``); otherwise the matrix products get the
    cores and the elementwise passes run on the calling thread.

    Fits running at the same time in other threads of the process (joblib's threading
    backend sets no per-thread limit) split the threads between them.
    """
    n_threads = _omp_threads()
    if n_threads > 1 and _blas_threads() > 1:
        return 1
    return max(1, n_threads // max(1, _active_fits))


# --------------------------------------------------------------- few-rows prediction
class FewRows:
    """Threads for the few-rows forward pass (it calls no BLAS, so no BLAS query).

    A second thread pays from ``SMALL_PARALLEL_BYTES`` of weights. A two-thread call
    that took too long sends the calls of the next ``SMALL_BACKOFF_S`` seconds to one
    thread (the result does not depend on the thread count: each output column is
    summed in the same order whichever thread computes it).
    """

    def __init__(self):
        self.backoff_until = 0.0

    def wanted(self, weight_bytes):
        """Threads that pay for a model of ``weight_bytes`` bytes of weights."""
        if weight_bytes < SMALL_PARALLEL_BYTES or not _kernels.openmp_enabled():
            return 1
        n_threads = min(_omp_threads(), weight_bytes // (SMALL_PARALLEL_BYTES // 2))
        return max(1, n_threads // max(1, _active_fits))

    def n_threads(self, weight_bytes):
        """``(n_threads, timed)``: timed calls report their time to ``record``."""
        n_threads = self.wanted(weight_bytes)
        if n_threads > 1 and time.monotonic() >= self.backoff_until:
            return n_threads, True
        return 1, False

    def record(self, seconds, weight_bytes):
        if seconds > SMALL_SLOW_S + SMALL_SLOW_S_PER_BYTE * weight_bytes:
            self.backoff_until = time.monotonic() + SMALL_BACKOFF_S


few_rows = FewRows()


# ---------------------------------------------------------------------------- epochs
def row_parts(batch_size):
    """Parts per minibatch of the row-split epoch (``MAX_ROW_PARTS``, ``MIN_PART_ROWS``):
    fixed by the machine's CPUs and the batch size, not by the thread count."""
    return max(1, min(_cpu_count(), MAX_ROW_PARTS, batch_size // MIN_PART_ROWS))


def epoch_plan(layout, batch_size, sparse=False, clipping=False):
    """How a fit's epochs use the cores: ``(context, row_parts)``.

    - Dense input, no gradient clipping, a machine with several CPUs and enough work
      per minibatch (``ROW_SPLIT_FLOPS``): BLAS on one thread and every minibatch split
      into ``row_parts`` fixed parts (rows for forward and deltas, blocks of the
      gradients, chunks of the optimizer step) shared by relumlp's OpenMP threads, so
      one thread pool owns the cores and the elementwise work and the optimizer step
      are parallel too. The parts, not the threads, fix the arithmetic: the epochs run
      on any number of threads, one included (``TeamChoice``), with the same result.
    - Otherwise, every per-batch BLAS product under ``BLAS_PARALLEL_FLOPS``: BLAS on
      one thread (it would not gain from two).
    - Otherwise BLAS keeps its threads and the elementwise work runs on one thread.
      The result does not depend on BLAS's thread count either: OpenBLAS splits a
      product's output among its threads, never the sums.
    """
    # The BLAS products (a sparse input's first layer is relumlp's own CSR kernels).
    shapes = layout.coef_shapes[1:] if sparse else layout.coef_shapes
    largest = max((2 * batch_size * i * o for i, o in shapes), default=0)
    parts = row_parts(batch_size)
    if (parts > 1 and not sparse and not clipping
            and 6 * batch_size * layout.n_coefs >= ROW_SPLIT_FLOPS):
        return fit_scope(limit_blas=True), parts
    if largest < BLAS_PARALLEL_FLOPS:
        return fit_scope(limit_blas=True), 0
    # Alone, BLAS gets the cores; next to other fits, one BLAS thread each.
    return fit_scope(limit_blas=_active_fits > 0), 0


class TeamChoice:
    """How many threads run the next row-split epoch: all of them, or one.

    The row-split epoch gives the same weights, bit for bit, on any number of threads,
    so the choice may follow the clock. All threads win on an idle machine. When
    another process holds a core, a thread waits for its preempted sibling at every
    phase of every minibatch, and on small minibatches one thread is then faster.

    After an epoch on all threads, ``busy`` is the smallest CPU time of the other
    threads as a share of the wall time (close to 1 when they had their cores). An
    epoch with ``busy`` below ``CONTENDED``, or slower per row than the last one-thread
    epoch, sends the next ``backoff`` epochs to one thread and multiplies ``backoff``
    by 4 (up to ``MAX_WAIT``); an epoch without contention divides it by 4. An idle
    machine never runs a one-thread epoch; under lasting contention a 50-epoch fit
    tries all threads 4 times.
    """

    CONTENDED = 0.75
    MAX_WAIT = 256

    def __init__(self):
        self.one = None       # time per row of the last one-thread epoch
        self.wait = 0         # one-thread epochs before trying all threads again
        self.backoff = 1

    def threads(self, available):
        if available <= 1 or self.wait > 0:
            return 1
        return available

    def record(self, n_threads, per_row, busy=1.0):
        if n_threads == 1:
            self.one = per_row
            self.wait = max(0, self.wait - 1)
            return
        if 0 <= busy < self.CONTENDED or (self.one is not None and self.one < per_row):
            self.wait = self.backoff
            self.backoff = min(4 * self.backoff, self.MAX_WAIT)
        else:
            self.backoff = max(1, self.backoff // 4)


# ------------------------------------------------------------ fits in this process
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


def fork_child_one_thread():
    """Whether this process is a fork child that runs relumlp's kernels on one thread.

    GNU OpenMP's thread pool does not survive ``fork``: a child's first multi-thread
    region would wait forever for threads that exist only in the parent. So in a process
    forked (``os.fork``, ``multiprocessing``'s ``"fork"`` start method, a fork-based
    ``concurrent.futures`` pool) after relumlp ran OpenMP threads, every kernel runs on
    the calling thread alone; fits and predictions give the same results as in the
    parent, since they never depend on the thread count. BLAS keeps its threads
    (OpenBLAS restarts them in the child). A child forked before any multi-thread
    region keeps its threads, and ``spawn`` / ``forkserver`` children start afresh.

    Returns
    -------
    one_thread : bool
        True in such a child (and its own children).

    Examples
    --------
    >>> import relumlp
    >>> relumlp.fork_child_one_thread()
    False
    """
    return _kernels.fork_state()[1]


def _after_fork_in_child():
    """Reset the fit registry (only the forking thread survives a fork; a lock held by
    another thread at that moment would never be released) and keep relumlp's kernels
    off the inherited OpenMP pool."""
    global _fits_lock, _active_fits, _blas_limiter
    _fits_lock = threading.Lock()
    _active_fits = 0
    _blas_limiter = None
    _kernels._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
