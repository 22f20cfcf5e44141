"""The two OpenBLAS builds in the process, product by product.

relumlp calls SciPy's BLAS (``scipy.linalg.cython_blas``, the design's rule); NumPy's
matmul, which the benchmark's GEMM peak and GEMM-only floor use, has its own OpenBLAS
build. This prints GFLOP/s of both for the minibatch products of the benchmark's
workloads, on 1 and 2 BLAS threads (median of 7, one library at a time), so that
RESULTS.md can say how much of a "÷ floor" ratio is the library rather than relumlp.

Run: python benchmarks/blas_compare.py
"""
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from relumlp import _kernels

# (rows, inner, columns) of C = A @ B: W3's layers on full and half batches, W2's first
# layer on half a batch, W5's middle layer.
SHAPES = [(512, 2048, 2048), (256, 2048, 2048), (512, 1024, 2048), (128, 784, 256),
          (100, 128, 128)]


def median_time(fn, repeats=7):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    print(f"# BLAS builds compared ({time.strftime('%Y-%m-%d %H:%M')})")
    for info in threadpool_info():
        if info["internal_api"] == "openblas":
            print(f"- {info['filepath'].split('/')[-1]} {info.get('version')} "
                  f"arch={info.get('architecture')}")
    print("\n| m x k x n | dtype | threads | NumPy matmul GFLOP/s | relumlp _gemm (SciPy) "
          "GFLOP/s | SciPy / NumPy |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        for dtype in (np.float32, np.float64):
            A = rng.standard_normal((m, k)).astype(dtype)
            B = rng.standard_normal((k, n)).astype(dtype)
            C = np.empty((m, n), dtype)
            inner = max(1, int(2e9 // (2 * m * n * k)))

            def numpy_mm():
                for _ in range(inner):
                    np.matmul(A, B, out=C)

            def scipy_mm():
                for _ in range(inner):
                    _kernels.gemm(False, False, 1.0, A, B, 0.0, C)

            for threads in (1, 2):
                with threadpool_limits(threads, user_api="blas"):
                    # One library at a time, with a pause between: each OpenBLAS pool
                    # spins after a call and would slow the other one down.
                    numpy_mm()
                    t_np = median_time(numpy_mm) / inner
                    time.sleep(0.3)
                    scipy_mm()
                    t_sp = median_time(scipy_mm) / inner
                    time.sleep(0.3)
                flops = 2 * m * n * k
                print(f"| {m} x {k} x {n} | {np.dtype(dtype).name} | {threads} | "
                      f"{flops / t_np / 1e9:.0f} | {flops / t_sp / 1e9:.0f} | "
                      f"{t_np / t_sp:.2f} |")


if __name__ == "__main__":
    main()
