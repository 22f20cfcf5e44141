"""``relumlp.show_versions()``: what to paste into a bug report."""
import platform
import sys


def _versions():
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("relumlp", "numpy", "scipy", "scikit-learn", "threadpoolctl", "joblib",
                 "Cython", "pandas", "matplotlib", "onnx", "onnxruntime", "dask",
                 "distributed"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def show_versions(file=None):
    """Print relumlp's build, its dependencies' versions and the thread pools in use.

    Parameters
    ----------
    file : file-like, default=None
        Where to print; ``sys.stdout`` if None.

    Returns
    -------
    info : dict
        The same information: ``"system"``, ``"dependencies"``, ``"build"`` (OpenMP on
        or off, the threads relumlp's kernels would use, the vector math the
        exp/erf/tanh/log1p-based kernels use: ``"avx512"``, ``"avx2"`` or ``"sse2"``
        for glibc's libmvec at that ISA, ``"scalar"`` for libm per element) and ``"threadpools"`` (one
        entry per BLAS / OpenMP library loaded, from threadpoolctl: its API, library,
        version, threading layer and ``num_threads``).

    Examples
    --------
    >>> import io, relumlp
    >>> info = relumlp.show_versions(file=io.StringIO())
    >>> sorted(info)
    ['build', 'dependencies', 'system', 'threadpools']
    """
    from threadpoolctl import threadpool_info

    from relumlp import _kernels
    from relumlp._threads import effective_n_threads, fork_child_one_thread, openmp_enabled
    from relumlp._version import __version__

    info = {
        "system": {"python": sys.version.replace("\n", " "),
                   "executable": sys.executable, "machine": platform.platform()},
        "dependencies": _versions(),
        "build": {"relumlp": __version__, "openmp_enabled": openmp_enabled(),
                  "elementwise_threads": effective_n_threads(),
                  "fork_child_one_thread": fork_child_one_thread(),
                  "vector_math": _kernels.vector_math(),
                  "vector_math_available": ", ".join(_kernels.vector_math_available())},
        "threadpools": [
            {k: pool.get(k) for k in ("user_api", "internal_api", "prefix", "version",
                                      "threading_layer", "architecture", "num_threads",
                                      "filepath")}
            for pool in threadpool_info()
        ],
    }
    out = sys.stdout if file is None else file
    for section in ("system", "dependencies", "build"):
        print(f"\n{section.capitalize()}:", file=out)
        for key, value in info[section].items():
            print(f"{key:>16}: {value}", file=out)
    print("\nThreadpools (threadpoolctl):", file=out)
    for pool in info["threadpools"]:
        print(f"  {pool['user_api']:>6} {pool['internal_api']}: "
              f"{pool['num_threads']} thread(s), version {pool['version']}, "
              f"{pool.get('threading_layer') or ''} {pool['filepath']}", file=out)
    return info
