"""Overhead of recording history_ (dead units, sparsity, gradient norms) on workload W2.

W2: 60000 x 784 float32 (MNIST-shaped, random data), hidden (256, 128), batch 256,
Adam, 3 epochs. Fits with record_history=True and False are interleaved; prints the
median fit time of each and the relative overhead.
Run: python benchmarks/history_overhead.py [--repeats 5] [--dtype float32]
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from relumlp import ReLUMLPClassifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    X = rng.rand(60000, 784).astype(args.dtype)
    y = (X[:, :10] @ rng.randn(10, 10)).argmax(axis=1)
    times = {True: [], False: []}
    for _ in range(args.repeats):
        for record in (True, False):
            est = ReLUMLPClassifier((256, 128), batch_size=256, max_iter=3, tol=0,
                                    n_iter_no_change=10**9, random_state=0,
                                    record_history=record)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                est.fit(X, y)
                times[record].append(time.perf_counter() - start)
    on, off = np.median(times[True]), np.median(times[False])
    print(f"W2 {args.dtype}, {args.repeats} interleaved repeats: record_history=True "
          f"{on:.3f} s, False {off:.3f} s, overhead {100 * (on / off - 1):+.1f} %")
    print("all times:", {k: [round(t, 3) for t in v] for k, v in times.items()})


if __name__ == "__main__":
    main()
