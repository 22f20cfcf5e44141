"""Sweep that sets relumlp's thread policy: where do 2 threads start to pay?

1. Elementwise kernels (fused bias + relu forward, relu backward, the fused Adam step)
   at sizes around ``MIN_PARALLEL_SIZE``, with 1 and 2 OpenMP threads.
2. Matrix products through relumlp's ``_gemm`` (scipy's BLAS) for the three products of
   a layer (forward, weight gradient, input gradient) at minibatch shapes, with 1 and 2
   BLAS threads.
3. The few-rows forward pass (``_kernels.forward_small``, one row) for networks of
   growing size, with 1 and 2 OpenMP threads, next to the BLAS forward pass that
   prediction used before (``_kernels.forward``): sets ``SMALL_PARALLEL_BYTES``.
4. Whole fits (Adam, relu) of small networks, epochs on the serial path (one thread)
   against the row-split epoch on two threads, by work per minibatch
   (6 x batch x weights): sets ``ROW_SPLIT_FLOPS``.
5. Whole fits that cannot split minibatches (gradient clipping; sparse input), BLAS on
   one thread against two, by the largest BLAS product per minibatch: sets
   ``BLAS_PARALLEL_FLOPS``.

Prints Markdown tables of median times (µs) and the 1-thread / 2-thread ratio.
Run: python benchmarks/thread_sweep.py [--repeats 7]
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from relumlp import _kernels, _threads
from relumlp._kernels import Activation


def _median_time(fn, repeats, inner):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return float(np.median(times))


def elementwise(repeats):
    print("\n## Elementwise kernels, float32 (µs per call)\n")
    print("| elements | kernel | 1 thread | 2 threads | 1t / 2t |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for size in [4_096, 16_384, 32_768, 65_536, 131_072, 262_144, 1_048_576]:
        m = 256
        n = size // m
        Z = rng.normal(size=(n, m)).astype(np.float32)
        b = rng.normal(size=m).astype(np.float32)
        A = np.empty_like(Z)
        D = rng.normal(size=(n, m)).astype(np.float32)
        out = np.empty_like(D)
        W, G = rng.normal(size=(2, size)).astype(np.float32)
        M, V = np.zeros(size, np.float32), np.ones(size, np.float32)
        inner = max(1, 2_000_000 // size)
        cases = {
            "bias+relu forward": lambda nt: _kernels.bias_activation_forward(
                Z, b, A, Activation.RELU, n_threads=nt),
            "relu backward": lambda nt: _kernels.activation_backward(
                out, A, A, Activation.RELU, n_threads=nt, dA=D),
            "adam update": lambda nt: _kernels.adam_update(
                W, G, M, V, 1e-3, 0.9, 0.999, 1e-8, nt),
        }
        for name, fn in cases.items():
            t1 = _median_time(lambda: fn(1), repeats, inner) * 1e6
            t2 = _median_time(lambda: fn(2), repeats, inner) * 1e6
            print(f"| {size} | {name} | {t1:.1f} | {t2:.1f} | {t1 / t2:.2f} |")


def products(repeats):
    print("\n## Layer products through _gemm, float32 and float64 (µs per layer, "
          "forward + weight gradient + input gradient)\n")
    print("| batch x n_in x n_out | dtype | 1 BLAS thread | 2 BLAS threads | 1t / 2t |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(1)
    shapes = [(32, 32, 64), (32, 64, 64), (200, 64, 100), (200, 100, 128), (256, 784, 256),
              (256, 256, 128), (512, 1024, 2048), (512, 2048, 2048)]
    for batch, n_in, n_out in shapes:
        for dtype in (np.float32, np.float64):
            A = rng.normal(size=(batch, n_in)).astype(dtype)
            W = rng.normal(size=(n_in, n_out)).astype(dtype)
            Z = np.empty((batch, n_out), dtype)
            D = rng.normal(size=(batch, n_out)).astype(dtype)
            G = np.empty((n_in, n_out), dtype)
            dA = np.empty((batch, n_in), dtype)

            def layer():
                _kernels.gemm(False, False, 1.0, A, W, 0.0, Z)
                _kernels.gemm(True, False, 1.0, A, D, 0.0, G)
                _kernels.gemm(False, True, 1.0, D, W, 0.0, dA)

            inner = max(1, int(3e8 // (6 * batch * n_in * n_out)))
            res = []
            for nt in (1, 2):
                with threadpool_limits(nt, user_api="blas"):
                    res.append(_median_time(layer, repeats, inner) * 1e6)
            print(f"| {batch} x {n_in} x {n_out} | {np.dtype(dtype).name} | {res[0]:.1f} | "
                  f"{res[1]:.1f} | {res[0] / res[1]:.2f} |")


def one_row(repeats):
    from relumlp._params import NetworkLayout

    print("\n## One-row forward pass (µs per call; column split = forward_small, "
          "BLAS = forward through _gemm on one BLAS thread)\n")
    print("| network | weights | dtype | BLAS | column split, 1 thread | 2 threads | "
          "1t / 2t |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(2)
    nets = [(64, (64,), 10), (100, (128, 128), 1), (256, (256,), 10), (784, (128,), 10),
            (784, (256,), 10), (784, (256, 128), 10), (1024, (512, 512), 10)]
    for n_in, hidden, n_out in nets:
        units = [n_in, *hidden, n_out]
        layout = NetworkLayout(units, ["relu"] * len(hidden), "softmax")
        for dtype in (np.float32, np.float64):
            flat = (rng.normal(size=layout.n_params) * 0.05).astype(dtype)
            x = rng.normal(size=(1, n_in)).astype(dtype)
            out = np.empty((1, n_out), dtype)
            ws = layout.workspace(_kernels.SMALL_ROWS_MAX, dtype)
            ws1 = layout.workspace(1, dtype)
            X = _kernels.Input.dense(x)

            def blas():
                _kernels.forward(flat, ws1, X, out, 1)

            inner = 2000
            with threadpool_limits(1, user_api="blas"):
                tb = _median_time(blas, repeats, inner) * 1e6
            res = [_median_time(lambda: _kernels.forward_small(flat, ws, X, out, nt),
                                repeats, inner) * 1e6 for nt in (1, 2)]
            print(f"| {' → '.join(map(str, units))} | {layout.n_coefs} | "
                  f"{np.dtype(dtype).name} | {tb:.1f} | {res[0]:.1f} | {res[1]:.1f} | "
                  f"{res[0] / res[1]:.2f} |")


def _fit_ms_per_epoch(threshold_name, values, make, X, y, epochs, repeats):
    """ms per epoch of ``make().fit(X, y)`` with ``relumlp._threads.<threshold_name>``
    set to each of ``values`` in turn (restored afterwards), after one warm-up fit."""
    import warnings


    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make().fit(X, y)

    saved = getattr(_threads, threshold_name)
    times = []
    try:
        for value in values:
            setattr(_threads, threshold_name, value)
            fit()
            times.append(_median_time(fit, repeats, 1) / epochs * 1e3)
    finally:
        setattr(_threads, threshold_name, saved)
    return times


def row_split(repeats):
    from relumlp import ReLUMLPClassifier

    print("\n## Fits: serial epochs vs the row-split epoch on 2 threads (ms per epoch; "
          "Adam, relu, 64 features, 4000 rows)\n")
    print("| batch | hidden | MFLOP per batch | serial | row split | serial / split |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4000, 64))
    y = (X[:, :8].sum(axis=1) > 0).astype(int)
    for batch, hidden in [(32, (64, 64)), (64, (64,)), (64, (64, 64)), (128, (64,)),
                          (100, (100,)), (200, (64,)), (200, (100,)), (128, (128, 128)),
                          (256, (100,))]:
        units = [64, *hidden, 1]
        n_weights = sum(a * b for a, b in zip(units[:-1], units[1:]))
        res = _fit_ms_per_epoch(
            "ROW_SPLIT_FLOPS", (float("inf"), 0),
            lambda: ReLUMLPClassifier(hidden, batch_size=batch, max_iter=5, tol=0,
                                      random_state=0),
            X, y, 5, repeats)
        print(f"| {batch} | {hidden} | {6 * batch * n_weights / 1e6:.2f} | "
              f"{res[0]:.2f} | {res[1]:.2f} | {res[0] / res[1]:.2f} |")


def blas_in_fits(repeats):
    import scipy.sparse as sp

    from relumlp import ReLUMLPClassifier

    print("\n## Fits that cannot split minibatches: BLAS on 1 vs 2 threads (ms per epoch; "
          "Adam, relu, max_grad_norm=1e9 (the clipping path, which never splits), "
          "64 features, 4000 rows; sparse: 20000 x 5000 CSR at 1 %)\n")
    print("| fit | batch | hidden | largest BLAS product, MFLOP | 1 BLAS thread | "
          "2 BLAS threads | 2t / 1t time |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4000, 64))
    y = (X[:, :8].sum(axis=1) > 0).astype(int)
    X_sparse = sp.random(20000, 5000, density=0.01, format="csr", random_state=0)
    y_sparse = rng.integers(0, 2, 20000)
    cases = [("clipped", 128, (128, 128)), ("clipped", 200, (256, 256)),
             ("clipped", 256, (512, 512)), ("clipped", 256, (768, 768)),
             ("clipped", 256, (1024, 1024)), ("clipped", 512, (1024, 1024)),
             ("sparse", 256, (128,))]
    for name, batch, hidden in cases:
        sparse = name == "sparse"
        Xc, yc = (X_sparse, y_sparse) if sparse else (X, y)
        units = [Xc.shape[1], *hidden, 1]
        shapes = list(zip(units[:-1], units[1:]))[1 if sparse else 0:]
        largest = max(2 * batch * a * b for a, b in shapes)
        res = _fit_ms_per_epoch(
            "BLAS_PARALLEL_FLOPS", (float("inf"), 0),
            lambda: ReLUMLPClassifier(hidden, batch_size=batch, max_iter=2, tol=0,
                                      max_grad_norm=None if sparse else 1e9,
                                      random_state=0),
            Xc, yc, 2, max(3, repeats // 2))
        print(f"| {name} | {batch} | {hidden} | {largest / 1e6:.1f} | {res[0]:.1f} | "
              f"{res[1]:.1f} | {res[1] / res[0]:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"# Thread sweep ({time.strftime('%Y-%m-%d %H:%M')}), "
          f"MIN_PARALLEL_SIZE={_threads.MIN_PARALLEL_SIZE}, "
          f"OpenMP build={_kernels.openmp_enabled()}")
    for info in threadpool_info():
        print(f"- {info['internal_api']} {info.get('version')} "
              f"{info['filepath'].split('/')[-1]} threads={info['num_threads']} "
              f"arch={info.get('architecture')}")
    elementwise(args.repeats)
    products(args.repeats)
    one_row(args.repeats)
    row_split(args.repeats)
    blas_in_fits(args.repeats)


if __name__ == "__main__":
    main()
