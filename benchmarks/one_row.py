#!/usr/bin/env python
"""One-row prediction latency: relumlp next to the plain NumPy chain and PyTorch.

Usage::

    python benchmarks/one_row.py [--calls 2000] [--repeats 5] [--rows 1,4] [--threads 2]

A float32 and a float64 784 -> (256, 128) -> 10 ReLUMLPClassifier and the matching
ReLUMLPRegressor (one output) are fit for one epoch on 2000 random rows. Each method is
timed call by call (``perf_counter_ns``) against the same network written as a plain
NumPy chain with the model's own ``coefs_`` / ``intercepts_``
(``softmax(relu(relu(x @ W0 + b0) @ W1 + b1) @ W2 + b2)``, then ``classes_[argmax]`` for
``predict``, ``log`` for ``predict_log_proba``, no softmax for the regressor) and, if
``import torch`` works, PyTorch's eager ``nn.Sequential`` under ``inference_mode``
(``torch.set_num_threads(threads)``, as ``bench.py`` does). The implementations
alternate within each repeat. Prints a Markdown table of the p50 and p99 of every call,
in microseconds.
"""
import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Prefer this repository's in-place build over any other installed copy of relumlp.
if list((REPO / "relumlp").glob("_kernels*.so")) or list((REPO / "relumlp").glob("_kernels*.pyd")):
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import relumlp  # noqa: E402
from relumlp import ReLUMLPClassifier, ReLUMLPRegressor  # noqa: E402

N_FEATURES, HIDDEN, N_CLASSES = 784, (256, 128), 10


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fit_models(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, N_FEATURES)).astype(dtype)
    teacher = rng.standard_normal((N_FEATURES, N_CLASSES))
    y = np.argmax(X @ teacher, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = ReLUMLPClassifier(HIDDEN, max_iter=1, random_state=0).fit(X, y)
        reg = ReLUMLPRegressor(hidden_layer_sizes=HIDDEN, max_iter=1,
                               random_state=0).fit(X, X @ teacher[:, 0] / 28)
    return clf, reg, X


def numpy_chain(model, output):
    """The network as NumPy code, with the model's own weights."""
    (W0, W1, W2), (b0, b1, b2) = model.coefs_, model.intercepts_

    def logits(x):
        return np.maximum(np.maximum(x @ W0 + b0, 0) @ W1 + b1, 0) @ W2 + b2

    def proba(x):
        z = logits(x)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    classes = getattr(model, "classes_", None)
    return {"predict": lambda x: classes[np.argmax(proba(x), axis=1)],
            "predict_proba": proba,
            "predict_log_proba": lambda x: np.log(proba(x)),
            "regress": lambda x: logits(x).ravel()}[output]


def torch_chain(torch, model, output):
    """The network as PyTorch's eager nn.Sequential, with the model's own weights."""
    layers = []
    for k, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        linear = torch.nn.Linear(*W.shape, dtype=getattr(torch, W.dtype.name))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear] if k == len(model.coefs_) - 1 else [linear, torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers).eval()
    classes = getattr(model, "classes_", None)

    def run(x):
        with torch.inference_mode():
            z = net(torch.from_numpy(x))
            if output == "regress":
                return z.numpy().ravel()
            if output == "predict":
                return classes[torch.argmax(z, dim=1).numpy()]
            if output == "predict_log_proba":
                return torch.log_softmax(z, dim=1).numpy()
            return torch.softmax(z, dim=1).numpy()
    return run


def time_calls(functions, x, calls, repeats):
    """Per-call times in µs of each function, interleaved repeat by repeat."""
    times = {name: [] for name in functions}
    for f in functions.values():  # warm-up: lazy allocations, caches
        for _ in range(200):
            f(x)
    for _ in range(repeats):
        for name, f in functions.items():
            out = times[name]
            clock = time.perf_counter_ns
            for _ in range(calls):
                t0 = clock()
                f(x)
                out.append(clock() - t0)
    return {name: np.asarray(t) / 1e3 for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", default="1,4", help="comma-separated row counts")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    try:
        import torch
        torch.set_num_threads(args.threads)
    except Exception as exc:  # ImportError, or a broken install
        torch = None
        print(f"PyTorch is not importable ({exc!r}): no torch column.", file=sys.stderr)
    print(f"- relumlp {relumlp.__version__} from {Path(relumlp.__file__).parent}; "
          f"numpy {np.__version__}; scikit-learn {sklearn.__version__}; "
          f"torch {torch.__version__ if torch else 'n/a'}; Python {platform.python_version()}")
    print(f"- {cpu_name()}, threads={args.threads} "
          f"(threadpool_limits; torch.set_num_threads); {args.calls} calls x "
          f"{args.repeats} repeats per cell, implementations interleaved")
    print()
    with threadpool_limits(limits=args.threads):
        for line in latency_table(torch, args.calls, args.repeats,
                                  [int(r) for r in args.rows.split(",")]):
            print(line, flush=True)


def latency_table(torch, calls, repeats, row_counts):
    """Yield the Markdown table's lines, one case at a time (torch: the module or None).
    Run it inside the thread limits to measure under."""
    impls = ["relumlp", "numpy"] + (["torch"] if torch else [])
    head = "| model | method | rows | " + " | ".join(
        f"{i} p50 | {i} p99" for i in impls) + " | relumlp / numpy (p50) |"
    yield head
    yield "|" + " --- |" * (head.count("|") - 1)
    for dtype in (np.float32, np.float64):
        clf, reg, X = fit_models(dtype)
        cases = [(clf, "clf", m, m) for m in
                 ("predict", "predict_proba", "predict_log_proba")]
        cases.append((reg, "reg", "predict", "regress"))
        for model, kind, method, output in cases:
            for n in row_counts:
                x = np.ascontiguousarray(X[:n])
                functions = {"relumlp": getattr(model, method),
                             "numpy": numpy_chain(model, output)}
                if torch:
                    functions["torch"] = torch_chain(torch, model, output)
                ours, plain = functions["relumlp"](x), functions["numpy"](x)
                if output in ("predict", "regress") and kind == "clf":
                    assert np.array_equal(ours, plain), (ours, plain)
                else:
                    assert np.allclose(ours, plain, rtol=1e-3, atol=1e-4)
                t = time_calls(functions, x, calls, repeats)
                cells = " | ".join(f"{np.percentile(t[i], 50):.1f} | "
                                   f"{np.percentile(t[i], 99):.1f}" for i in impls)
                ratio = np.median(t["relumlp"]) / np.median(t["numpy"])
                yield (f"| {kind} {np.dtype(dtype).name} | {method} | {n} | {cells} | "
                       f"{ratio:.2f} |")


if __name__ == "__main__":
    main()
