"""Inference: the network's output for any X, in bounded memory.

``forward`` is what ``predict*`` and validation scoring run: a few dense rows go
through the column-split kernel (no BLAS; ``_kernels.forward_small``), everything else
through the chunked forward pass, converting X to the model's dtype and layout block by
block, never as a whole. ``as_input`` turns user data into the kernels' ``Input``.
"""
import time

import numpy as np
import scipy.sparse as sp

from relumlp import _kernels
from relumlp._threads import MIN_PARALLEL_SIZE, effective_n_threads, few_rows

# Rows per chunk of a full-batch pass (prediction, lbfgs): bounds the workspaces.
CHUNK_ROWS = 4096


def as_input(X, dtype):
    """``_kernels.Input`` of X in ``dtype``: dense X C-contiguous (copied only if it was
    not, or had another dtype), sparse X as CSR with int32 indices. Read-only arrays are
    passed through without a copy."""
    if sp.issparse(X):
        X = X.tocsr() if X.format != "csr" else X
        if X.nnz >= np.iinfo(np.int32).max:
            raise ValueError("Sparse X with 2**31 or more stored values is not supported.")
        return _kernels.Input.csr(np.ascontiguousarray(X.data, dtype=dtype),
                                  np.ascontiguousarray(X.indices, dtype=np.int32),
                                  np.ascontiguousarray(X.indptr, dtype=np.int32),
                                  X.shape[1])
    return _kernels.Input.dense(np.ascontiguousarray(X, dtype=dtype))


def needs_conversion(X, dtype):
    """Whether as_input would copy X (other dtype, layout or index type)."""
    if sp.issparse(X):
        return (X.format != "csr" or X.data.dtype != dtype
                or X.indices.dtype != np.int32 or X.indptr.dtype != np.int32)
    return X.dtype != dtype or not X.flags.c_contiguous


def forward(layout, flat, X, n_threads=None, on_nonfinite=None):
    """Output activations for every row of X (dense or sparse), in bounded memory.

    on_nonfinite: if given, the kernels check X for NaN and infinity as they go (in
    the first layer's product, not in a separate pass over X) and, if they find any,
    ``on_nonfinite(X)`` is called (to raise the usual error); if it returns, so does
    the result.
    """
    dtype = flat.dtype
    n_samples = X.shape[0]
    # A few dense rows in the model's dtype (one-row predict): the column-split kernel
    # (not for normalized layers, which need whole rows).
    if (type(X) is np.ndarray and 0 < n_samples <= _kernels.SMALL_ROWS_MAX
            and X.dtype == dtype and X.flags.c_contiguous and not layout.normalized):
        out = _forward_few(layout, flat, X, n_threads, on_nonfinite is not None)
        if out is None:
            on_nonfinite(X)  # raises the usual error, or X is valid after all
            out = _forward_few(layout, flat, X, n_threads)
        return out
    chunk = max(1, min(n_samples, CHUNK_ROWS))
    ws = layout.workspace(chunk, dtype)
    out = np.empty((n_samples, layout.n_outputs), dtype=dtype)
    if n_threads is None:
        # Below the parallel size no kernel uses a second thread: skip the query.
        small = chunk * max(layout.units) < MIN_PARALLEL_SIZE
        n_threads = 1 if small else effective_n_threads()
    if not n_samples:
        return out
    check = on_nonfinite is not None
    nonfinite = False
    if needs_conversion(X, dtype):
        # Convert block by block: never a full-size copy of X in another dtype/layout.
        step = chunk * 4
        for start in range(0, n_samples, step):
            block = as_input(X[start:start + step], dtype)
            nonfinite |= _kernels.forward(flat, ws, block, out[start:start + step],
                                          n_threads, check)
            del block  # free this block before converting the next
    else:
        nonfinite = _kernels.forward(flat, ws, as_input(X, dtype), out, n_threads, check)
    if nonfinite:
        on_nonfinite(X)
    return out


def _forward_few(layout, flat, X, n_threads=None, check_finite=False):
    """Few dense rows (at most ``_kernels.SMALL_ROWS_MAX``): no BLAS, column split.

    Returns None (and computes nothing) if check_finite and X has NaN or infinity.
    """
    dtype = flat.dtype
    ws = layout.few_rows_workspace(dtype)
    out = np.empty((X.shape[0], layout.n_outputs), dtype=dtype)
    timed = False
    if n_threads is None:
        weight_bytes = layout.n_coefs * dtype.itemsize
        n_threads, timed = few_rows.n_threads(weight_bytes)
    if timed:
        start = time.perf_counter()
    nonfinite = _kernels.forward_small(flat, ws, _kernels.Input.dense(X), out, n_threads,
                                       check_finite)
    if timed:
        few_rows.record(time.perf_counter() - start, weight_bytes)
    return None if nonfinite else out
