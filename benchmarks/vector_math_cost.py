"""Per-element cost of the activation kernels at every vector math level.

Usage::

    python benchmarks/vector_math_cost.py

Times ``_kernels.bias_activation_forward`` and ``activation_backward`` (the code
training runs) on a 256 x 256 array of N(0, 4) pre-activations, one thread, median of
7 x 20 calls, for each level this build and CPU can run (``scalar`` is libm per
element; ``sse2`` / ``avx2`` / ``avx512`` are libmvec at that ISA). Prints ns/element,
forward | backward.
"""
import time

import numpy as np

from relumlp import _kernels as k
acts = dict(relu=3, logistic=1, tanh=2, elu=6, selu=7, gelu=8, silu=9, softplus=10)
rng = np.random.default_rng(0)
for dt in (np.float32, np.float64):
    Z0 = rng.standard_normal((256, 256)).astype(dt) * 2
    b = np.zeros(256, dt); A = np.empty_like(Z0); D = np.empty_like(Z0)
    print(dt.__name__, "ns/element forward | backward")
    for lvl in k.vector_math_available():
        k.set_vector_math(lvl)
        row = []
        for name, code in acts.items():
            tf = []; tb = []
            for r in range(7):
                Z = Z0.copy()
                t = time.perf_counter(); 
                for _ in range(20): k.bias_activation_forward(Z, b, A, code, 1.0)
                tf.append((time.perf_counter() - t) / 20 / Z.size * 1e9)
                t = time.perf_counter()
                for _ in range(20): k.activation_backward(D, Z, A, code, 1.0, dA=Z0)
                tb.append((time.perf_counter() - t) / 20 / Z.size * 1e9)
            row.append(f"{name} {np.median(tf):.2f}|{np.median(tb):.2f}")
        print(f"  {lvl:7s}", "  ".join(row))
k.set_vector_math()
