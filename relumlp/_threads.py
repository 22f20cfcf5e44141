"""How many OpenMP threads the kernels use.

``effective_n_threads()`` is called once per ``fit`` / ``predict`` and the result is
passed down to every kernel. It describes relumlp's own build, not scikit-learn's.
"""
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
    """
    if not _openmp_enabled():
        return 1
    return max(1, min(omp_max_threads(), cpu_count()))
