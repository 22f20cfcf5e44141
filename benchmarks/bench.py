#!/usr/bin/env python
"""Benchmark relumlp against scikit-learn's MLP and a plain PyTorch loop.

Usage::

    python benchmarks/bench.py [--quick] [--only W1,W2f32,...] [--repeats N]
                               [--markdown OUT.md] [--threads N]

Workloads: W1 W2f32 W2f64 W3 W4 W5 W6 (training), P1 (prediction), L1 (training while
another process keeps one core busy), A1 (every activation on an MNIST-shaped fit,
relumlp beside PyTorch's same network; its own table). See benchmarks/README.md for what each column
means. Everything runs in one process (except L1's contended fits, which run in
subprocesses with a timeout); implementations are interleaved within each workload
(relumlp, sklearn, torch, relumlp, sklearn, torch, ...). Progress goes to stderr, the
report (header + one Markdown table) to stdout and, with --markdown, to a file.
"""
import argparse
import datetime
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import selectors
import shlex
import subprocess
import sys
import time
import tracemalloc
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Prefer the in-place build of the repository this script lives in over any other
# installed (possibly editable, elsewhere) copy of relumlp.
if list((REPO / "relumlp").glob("_kernels*.so")) or list((REPO / "relumlp").glob("_kernels*.pyd")):
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import relumlp  # noqa: E402
from relumlp import ReLUMLPClassifier, ReLUMLPRegressor  # noqa: E402

warnings.filterwarnings("ignore", category=ConvergenceWarning)

IMPLS = ("relumlp", "sklearn", "torch")
ALPHA = 1e-4
LR = 1e-3
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-8
SEED = 0
CONTENTION_TIMEOUT = 60.0  # seconds per contended fit (all its epochs); --contention-timeout
DASH = "—"


# --------------------------------------------------------------------------- workloads
@dataclass(frozen=True)
class Workload:
    name: str
    task: str            # "clf" or "reg"
    source: str          # "digits", "teacher", "regression", "sparse"
    n: int
    d: int
    hidden: tuple
    batch: int
    epochs: int
    dtype: str
    n_out: int           # classes (clf) or 1 (reg)
    quick_n: int
    quick_epochs: int
    sparse: bool = False

    def size(self, quick):
        return (self.quick_n if quick else self.n), (self.quick_epochs if quick else self.epochs)

    @property
    def units(self):
        return [self.d, *self.hidden, self.n_out]

    @property
    def n_weights(self):
        u = self.units
        return sum(a * b for a, b in zip(u[:-1], u[1:]))


WORKLOADS = {w.name: w for w in [
    Workload("W1", "clf", "digits", 1797, 64, (100,), 200, 50, "float64", 10, 1797, 10),
    Workload("W2f32", "clf", "teacher", 60000, 784, (256, 128), 256, 3, "float32", 10, 8000, 2),
    Workload("W2f64", "clf", "teacher", 60000, 784, (256, 128), 256, 3, "float64", 10, 8000, 2),
    Workload("W3", "clf", "teacher", 20000, 1024, (2048, 2048), 512, 1, "float32", 10, 2048, 1),
    Workload("W4", "clf", "teacher", 10000, 32, (64, 64), 32, 5, "float64", 4, 2000, 2),
    Workload("W5", "reg", "regression", 20000, 100, (128, 128), 200, 10, "float64", 1, 4000, 3),
    Workload("W6", "clf", "sparse", 20000, 5000, (128,), 256, 3, "float64", 10, 4000, 1,
             sparse=True),
]}
P1_SHAPE = WORKLOADS["W2f64"]           # P1 uses W2's network shape, float64
L1_NAMES = ("W1", "W2f32")
# A1: every activation on this fit, relumlp and PyTorch (scikit-learn has four of them).
A1_SHAPE = Workload("A1", "clf", "teacher", 20000, 784, (256, 128), 256, 2, "float32", 10,
                    4000, 1)
A1_ACTIVATIONS = ("relu", "leaky_relu", "prelu", "elu", "selu", "logistic", "tanh", "silu",
                  "softplus", "gelu", "identity")
ALL_NAMES = list(WORKLOADS) + ["P1", "L1", "A1", "N1"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data
_DATA_CACHE = {}


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def make_data(w, quick):
    """(X, y) for workload w: float64 generation, then cast to w.dtype (deterministic)."""
    n, _ = w.size(quick)
    key = (w.source, n, w.d, w.n_out)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()     # keep at most one raw data set alive
        rng = _rng(*key)
        if w.source == "digits":
            X, y = load_digits(return_X_y=True)
            X = StandardScaler().fit_transform(X)
        elif w.source == "teacher":
            # fixed random linear teacher: y = argmax(X @ T)
            X = rng.standard_normal((n, w.d))
            T = rng.standard_normal((w.d, w.n_out)) / math.sqrt(w.d)
            y = np.argmax(X @ T, axis=1)
        elif w.source == "regression":
            X = rng.standard_normal((n, w.d))
            a = rng.standard_normal(w.d) / math.sqrt(w.d)
            b = rng.standard_normal(w.d) / math.sqrt(w.d)
            y = X @ a + np.sin(2.0 * (X @ b)) + 0.1 * rng.standard_normal(n)
        elif w.source == "sparse":
            X = sp.random(n, w.d, density=0.01, format="csr", random_state=rng,
                          data_rvs=rng.standard_normal, dtype=np.float64)
            T = rng.standard_normal((w.d, w.n_out))
            y = np.argmax(np.asarray(X @ T), axis=1)
        else:
            raise ValueError(w.source)
        _DATA_CACHE[key] = (X, y)
    X, y = _DATA_CACHE[key]
    dtype = np.dtype(w.dtype)
    X = X.astype(dtype) if X.dtype != dtype else X
    if w.task == "reg":
        y = y.astype(dtype)
    return X, y


# --------------------------------------------------------------------------- torch
_torch = None


def import_torch():
    """Import torch once; None (with the reason) if it is not importable."""
    global _torch
    if _torch is None:
        try:
            import torch  # noqa: F401
            _torch = torch
        except Exception as exc:  # ImportError, or a broken install
            _torch = exc
    return None if isinstance(_torch, Exception) else _torch


def torch_tensors(w, X, y):
    torch = _torch
    Xt = torch.from_numpy(np.ascontiguousarray(X))
    if w.task == "clf":
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    else:
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=X.dtype).reshape(-1, 1))
    return Xt, yt


def torch_activation(name, units):
    """The torch module of a relumlp activation (relumlp's defaults: leaky slope 0.01,
    ELU alpha 1, PReLU one slope per unit starting at 0.25, GELU exact)."""
    nn = _torch.nn
    return {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "elu": nn.ELU,
            "selu": nn.SELU, "gelu": nn.GELU, "silu": nn.SiLU, "softplus": nn.Softplus,
            "tanh": nn.Tanh, "logistic": nn.Sigmoid, "identity": nn.Identity,
            "prelu": lambda: nn.PReLU(units, init=0.25)}[name]()


def torch_fit(w, Xt, yt, epochs, seed=SEED, activation="relu", modern=None):
    """Plain eager loop: nn.Sequential(Linear, ReLU, ..., Linear), torch.optim.Adam,
    minibatches over a freshly shuffled index tensor each epoch, sklearn's L2 term
    0.5 * alpha * sum(||W||^2) / batch_size added to the loss explicitly (weights only).
    Weights and biases are initialised like sklearn (Glorot uniform, factor 6).
    ``modern`` (N1): {"normalization": "layer", "batch" or None, "weight_decay",
    "warmup_iters", "label_smoothing"}: nn.LayerNorm / nn.BatchNorm1d after each hidden
    Linear, torch.optim.AdamW, a
    per-step LambdaLR of relumlp's cosine schedule, CrossEntropyLoss(label_smoothing)."""
    torch = _torch
    nn, F = torch.nn, torch.nn.functional
    modern = modern or {}
    gen = torch.Generator().manual_seed(seed)
    units = w.units
    layers = []
    for i, (a, b) in enumerate(zip(units[:-1], units[1:])):
        lin = nn.Linear(a, b, dtype=Xt.dtype)
        bound = math.sqrt(6.0 / (a + b))
        with torch.no_grad():
            lin.weight.uniform_(-bound, bound, generator=gen)
            lin.bias.uniform_(-bound, bound, generator=gen)
        layers.append(lin)
        if i < len(units) - 2 and modern.get("normalization") == "layer":
            layers.append(nn.LayerNorm(b, eps=1e-5, dtype=Xt.dtype))
        if i < len(units) - 2 and modern.get("normalization") == "batch":
            layers.append(nn.BatchNorm1d(b, eps=1e-5, momentum=0.1, dtype=Xt.dtype))
        if i < len(units) - 2:
            act = torch_activation(activation, b)
            layers.append(act.to(Xt.dtype) if activation == "prelu" else act)
    model = nn.Sequential(*layers)
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    n = Xt.shape[0]
    bs = w.batch
    sched = None
    if modern:
        opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(BETA_1, BETA_2),
                                eps=EPSILON, weight_decay=modern.get("weight_decay", 0.0))
        steps = -(-n // bs)
        warm, total = modern.get("warmup_iters", 0) * steps, epochs * steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (
            (s + 1) / warm if s < warm else
            0.5 * (1 + math.cos(math.pi * min((s - warm) / max(total - warm, 1), 1)))))
    else:
        opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(BETA_1, BETA_2), eps=EPSILON)
    smoothing = modern.get("label_smoothing", 0.0)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            idx = perm[start:start + bs]
            xb, yb = Xt[idx], yt[idx]
            out = model(xb)
            if w.task == "clf":
                loss = F.cross_entropy(out, yb, label_smoothing=smoothing)
            else:
                loss = 0.5 * F.mse_loss(out, yb)
            penalty = sum((W * W).sum() for W in weights)
            loss = loss + (0.5 * ALPHA / idx.shape[0]) * penalty
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
    model.eval()
    return model


def torch_predict(model, Xt, chunk=8192):
    torch = _torch
    outs = []
    with torch.inference_mode():
        for s in range(0, Xt.shape[0], chunk):
            outs.append(model(Xt[s:s + chunk]))
    return torch.cat(outs).numpy()


def torch_score(w, model, Xt, y):
    out = torch_predict(model, Xt)
    if w.task == "clf":
        return float(np.mean(np.argmax(out, axis=1) == y))
    return float(r2_score(y, out.ravel()))


# --------------------------------------------------------------------------- sklearn-API fits
RELUMLP_EXTRA = {}     # e.g. {"weight_init": "sklearn"} from --relumlp-weight-init


def make_estimator(impl, w, epochs, activation="relu", modern=None):
    params = dict(hidden_layer_sizes=w.hidden, activation=activation, solver="adam", alpha=ALPHA,
                  batch_size=w.batch, learning_rate_init=LR, max_iter=epochs, shuffle=True,
                  random_state=SEED, tol=0.0, n_iter_no_change=10**9, early_stopping=False,
                  beta_1=BETA_1, beta_2=BETA_2, epsilon=EPSILON)
    if impl == "relumlp":
        cls = ReLUMLPClassifier if w.task == "clf" else ReLUMLPRegressor
        params.update(RELUMLP_EXTRA)
        if modern:
            params.update(normalization=modern.get("normalization"),
                          weight_decay=modern.get("weight_decay", 0.0),
                          learning_rate="cosine", warmup_iters=modern.get("warmup_iters", 0),
                          label_smoothing=modern.get("label_smoothing", 0.0))
    else:
        cls = MLPClassifier if w.task == "clf" else MLPRegressor
    return cls(**params)


class Runner:
    """Fit / score one implementation on one workload's data."""

    def __init__(self, impl, w, X, y, activation="relu", modern=None):
        self.impl, self.w, self.X, self.y = impl, w, X, y
        self.activation = activation
        self.modern = modern
        if impl == "torch":
            self.Xt, self.yt = torch_tensors(w, X, y)   # created once, outside timing

    def fit(self, epochs):
        if self.impl == "torch":
            return torch_fit(self.w, self.Xt, self.yt, epochs, activation=self.activation,
                             modern=self.modern)
        est = make_estimator(self.impl, self.w, epochs, self.activation, self.modern)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(self.X, self.y)
        assert est.n_iter_ == epochs, (self.impl, self.w.name, est.n_iter_, epochs)
        return est

    def score(self, model):
        if self.impl == "torch":
            return torch_score(self.w, model, self.Xt, self.y)
        return float(model.score(self.X, self.y))


# --------------------------------------------------------------------------- measurement helpers
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot():
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its
    waited-for children, wall time). None for the first item where /proc/stat is missing."""
    busy = None
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:8]]
        busy = (v[0] + v[1] + v[2] + v[5] + v[6]) / _CLK_TCK   # user nice system irq softirq
    except (OSError, ValueError, IndexError):
        pass
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system, time.perf_counter()


def other_cores(s0, s1):
    """Average number of cores that other processes kept busy between two snapshots.
    None for windows under 0.5 s: /proc/stat counts in clock ticks (usually 10 ms)."""
    if s0[0] is None or s1[0] is None or s1[2] - s0[2] < 0.5:
        return None
    return max(0.0, ((s1[0] - s0[0]) - (s1[1] - s0[1])) / (s1[2] - s0[2]))


def _proc_status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")      # resets VmHWM (peak RSS) to the current RSS
        return True
    except OSError:
        return False


def _malloc_trim():
    """Give freed heap memory back to the OS (glibc), so that a later fit's pages count."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_memory(fn, traced):
    """(tracemalloc peak MB or None, peak-RSS delta MB or None) of fn()."""
    gc.collect()
    _malloc_trim()
    if traced:
        tracemalloc.start()
        tracemalloc.reset_peak()
    can_rss = _reset_hwm()
    rss0 = _proc_status("VmRSS") if can_rss else None
    try:
        fn()
    finally:
        hwm = _proc_status("VmHWM") if can_rss else None
        peak = tracemalloc.get_traced_memory()[1] if traced else None
        if traced:
            tracemalloc.stop()
    rss = (hwm - rss0) / 1e6 if (can_rss and hwm is not None and rss0 is not None) else None
    return (peak / 1e6 if peak is not None else None), rss


def gemm_peak(quick):
    """Best GFLOP/s of numpy matmul (out=) on square matrices, per dtype; plus the
    other processes' CPU use (cores) during the measurement."""
    sizes = [(2048, 3)] if quick else [(2048, 5), (3072, 3)]
    res = {}
    s0 = cpu_snapshot()
    for dtype in (np.float32, np.float64):
        best, best_n = 0.0, None
        for n, reps in sizes:
            rng = np.random.default_rng(1)
            a = rng.standard_normal((n, n)).astype(dtype)
            b = rng.standard_normal((n, n)).astype(dtype)
            c = np.empty((n, n), dtype)
            np.matmul(a, b, out=c)
            for _ in range(reps):
                t0 = time.perf_counter()
                np.matmul(a, b, out=c)
                g = 2.0 * n**3 / (time.perf_counter() - t0) / 1e9
                if g > best:
                    best, best_n = g, n
            del a, b, c
        res[np.dtype(dtype).name] = (best, best_n)
    res["other"] = other_cores(s0, cpu_snapshot())
    return res


def peak_text(peak):
    oc = peak.get("other")
    return (f"float32 {peak['float32'][0]:.1f} GFLOP/s (n={peak['float32'][1]}), "
            f"float64 {peak['float64'][0]:.1f} GFLOP/s (n={peak['float64'][1]})"
            + ("" if oc is None else f", other procs {oc:.2f} cores"))


def scipy_blas_peak(n=2048, reps=3):
    """GFLOP/s of scipy.linalg.blas s/dgemm (the BLAS relumlp calls), for the header."""
    from scipy.linalg import blas
    res = {}
    for dtype, fn in ((np.float32, blas.sgemm), (np.float64, blas.dgemm)):
        rng = np.random.default_rng(1)
        a = np.asfortranarray(rng.standard_normal((n, n)).astype(dtype))
        b = np.asfortranarray(rng.standard_normal((n, n)).astype(dtype))
        c = np.zeros((n, n), dtype, order="F")
        fn(1.0, a, b, beta=0.0, c=c, overwrite_c=1)
        best = 0.0
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(1.0, a, b, beta=0.0, c=c, overwrite_c=1)
            best = max(best, 2.0 * n**3 / (time.perf_counter() - t0) / 1e9)
        res[np.dtype(dtype).name] = best
    return res


def gemm_floor(w, n, quick):
    """Seconds per epoch of only the matrix products of one epoch of w (numpy matmul
    into preallocated buffers): forward A_l @ W_l for every layer; backward
    dW_l = A_l.T @ D_l for every layer and D_l @ W_l.T for every layer but the first
    (no implementation computes the gradient w.r.t. the input)."""
    dtype = np.dtype(w.dtype)
    units = w.units
    L = len(units) - 1
    rng = np.random.default_rng(2)
    Ws = [(rng.standard_normal((a, b)) * 0.05).astype(dtype) for a, b in zip(units[:-1], units[1:])]
    Gs = [np.empty_like(W) for W in Ws]

    def buffers(rows):
        X = rng.standard_normal((rows, units[0])).astype(dtype)
        Z = [np.empty((rows, u), dtype) for u in units[1:]]
        A = [X] + Z[:-1]
        D = [rng.standard_normal((rows, u)).astype(dtype) for u in units[1:]]
        return A, Z, D

    def step(A, Z, D):
        for l in range(L):
            np.matmul(A[l], Ws[l], out=Z[l])
        for l in range(L - 1, -1, -1):
            np.matmul(A[l].T, D[l], out=Gs[l])
            if l > 0:
                np.matmul(D[l], Ws[l].T, out=D[l - 1])

    n_full, rest = divmod(n, w.batch)
    budget = 0.3 if quick else 1.5
    per_batch = math.inf
    if n_full:
        bufs = buffers(w.batch)
        step(*bufs)
        step(*bufs)
        for _ in range(2):     # best of two passes
            k, t0 = 0, time.perf_counter()
            while k < n_full:
                step(*bufs)
                k += 1
                if time.perf_counter() - t0 > budget:
                    break
            per_batch = min(per_batch, (time.perf_counter() - t0) / k)
    epoch = per_batch * n_full if n_full else 0.0
    if rest:
        bufs = buffers(rest)
        step(*bufs)
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            step(*bufs)
            best = min(best, time.perf_counter() - t0)
        epoch += best
    return epoch


# --------------------------------------------------------------------------- formatting
def load_note(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return ""
    return f"other procs {max(vals):.2f} cores" + (" (max)" if len(vals) > 1 else "")


def fmt(x, digits=4):
    if x is None:
        return DASH
    if isinstance(x, str):
        return x
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


COLUMNS = ["workload", "impl", "data", "dtype", "batch", "epochs", "s/epoch", "GFLOP/epoch",
           "GFLOP/s", "% peak", "traced MB", "RSS Δ MB", "train acc/R²", "× vs sklearn",
           "× vs torch", "GEMM floor s/epoch", "÷ floor", "slowdown vs idle", "1-row µs",
           "rows/s", "notes"]


def render_table(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for r in rows:
        cells = [fmt(r.get(c)) if c != "notes" else (r.get(c) or "") for c in COLUMNS]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def data_desc(w, n):
    hid = ",".join(str(h) for h in w.hidden)
    return f"{n}x{w.d}{' CSR 1%' if w.sparse else ''} → ({hid}) → {w.n_out}"


# --------------------------------------------------------------------------- workloads
def run_training(w, args, impls, results, rows):
    n, epochs = w.size(args.quick)
    X, y = make_data(w, args.quick)
    log(f"[{w.name}] data {data_desc(w, n)} {w.dtype}, batch {w.batch}, {epochs} epochs")
    runners = {impl: Runner(impl, w, X, y) for impl in impls}
    times = {impl: [] for impl in impls}
    others = {impl: [] for impl in impls}
    last = {}
    for r in range(args.repeats):
        for impl in impls:
            last.pop(impl, None)
            gc.collect()
            s0 = cpu_snapshot()
            t0 = time.perf_counter()
            model = runners[impl].fit(epochs)
            dt = time.perf_counter() - t0
            oc = other_cores(s0, cpu_snapshot())
            times[impl].append(dt)
            others[impl].append(oc)
            last[impl] = model
            log(f"[{w.name}] repeat {r + 1}/{args.repeats} {impl:8s} {dt:8.3f} s"
                + ("" if oc is None else f"  (other processes: {oc:.2f} cores)"))
    scores = {impl: runners[impl].score(last[impl]) for impl in impls}
    last.clear()
    mem = {}
    for impl in impls:     # separate, untimed 1-epoch fit per implementation
        mem[impl] = measure_memory(lambda: runners[impl].fit(1), traced=impl != "torch")
    floor, floor_other = None, None
    if not w.sparse:
        s0 = cpu_snapshot()
        floor = gemm_floor(w, n, args.quick)
        floor_other = other_cores(s0, cpu_snapshot())
    flops = 6.0 * n * w.n_weights
    per_epoch = {impl: float(np.median(times[impl])) / epochs for impl in impls}
    results[w.name] = per_epoch
    for impl in IMPLS:
        row = dict(workload=w.name, impl=impl, data=data_desc(w, n), dtype=w.dtype,
                   batch=w.batch, epochs=epochs, **{"GFLOP/epoch": flops / 1e9})
        if impl not in impls:
            if impl == "torch" and w.sparse and import_torch() is not None:
                row["notes"] = "sparse input: torch not run"
                rows.append(row)
            continue
        s = per_epoch[impl]
        gfs = flops / s / 1e9
        row.update({"s/epoch": s, "GFLOP/s": gfs,
                    "traced MB": mem[impl][0], "RSS Δ MB": mem[impl][1],
                    "train acc/R²": scores[impl]})
        if floor is not None:
            row["GEMM floor s/epoch"] = floor
            row["÷ floor"] = s / floor
        if impl == "relumlp":
            for other, col in (("sklearn", "× vs sklearn"), ("torch", "× vs torch")):
                if other in per_epoch:
                    row[col] = per_epoch[other] / s
        notes = []
        if w.sparse:
            notes.append("dense-equivalent FLOPs")
        if len(times[impl]) > 1:
            notes.append(f"min {min(times[impl]) / epochs:.4g} max {max(times[impl]) / epochs:.4g}")
        notes.append(load_note(others[impl]))
        if floor_other is not None and floor_other > 0.2:
            notes.append(f"GEMM floor measured with other procs {floor_other:.2f} cores")
        row["notes"] = "; ".join(x for x in notes if x)
        rows.append(row)


def run_activations(args, impls):
    """A1: every activation, relumlp and PyTorch. Each repeat runs every activation and
    implementation in turn, so a slow spell of the machine falls on all of them; the
    ratios to relu are medians of each repeat's own ratio. Returns the section's
    Markdown table."""
    w = A1_SHAPE
    n, epochs = w.size(args.quick)
    X, y = make_data(w, args.quick)
    impls = [i for i in impls if i != "sklearn"]
    from relumlp import _kernels
    log(f"[A1] data {data_desc(w, n)} {w.dtype}, batch {w.batch}, {epochs} epochs, "
        f"vector math {_kernels.vector_math()}")
    runners = {(act, impl): Runner(impl, w, X, y, activation=act)
               for act in A1_ACTIVATIONS for impl in impls}
    times = {key: [] for key in runners}
    for r in range(args.repeats):
        for act in A1_ACTIVATIONS:
            for impl in impls:
                gc.collect()
                t0 = time.perf_counter()
                runners[act, impl].fit(epochs)
                times[act, impl].append((time.perf_counter() - t0) / epochs)
        log(f"[A1] repeat {r + 1}/{args.repeats}: " + ", ".join(
            f"{act} {times[act, 'relumlp'][-1]:.3f}" for act in A1_ACTIVATIONS))

    def med(act, impl):
        return float(np.median(times[act, impl]))

    def paired(num, den):
        return float(np.median(np.divide(times[num], times[den])))

    head = ["activation", "relumlp s/epoch", "relumlp ÷ relumlp-relu"]
    if "torch" in impls:
        head += ["torch s/epoch", "torch ÷ torch-relu", "torch ÷ relumlp (>1: relumlp faster)"]
    lines = [f"A1: {data_desc(w, n)} {w.dtype}, Adam, batch {w.batch}, {epochs} epochs; "
             f"{args.repeats} repeats, each running every activation and implementation in "
             f"turn; times are medians, ratios medians of each repeat's ratio; relumlp's "
             f"vector math: {_kernels.vector_math()}",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for act in A1_ACTIVATIONS:
        cells = [act, fmt(med(act, "relumlp")),
                 f"{paired((act, 'relumlp'), ('relu', 'relumlp')):.2f}"]
        if "torch" in impls:
            cells += [fmt(med(act, "torch")),
                      f"{paired((act, 'torch'), ('relu', 'torch')):.2f}",
                      f"{paired((act, 'torch'), (act, 'relumlp')):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


N1_CONFIGS = {
    "plain (Adam)": None,
    "AdamW + cosine + smoothing": {"weight_decay": 1e-2, "warmup_iters": 1,
                                   "label_smoothing": 0.1},
    "+ layer norm": {"normalization": "layer", "weight_decay": 1e-2, "warmup_iters": 1,
                     "label_smoothing": 0.1},
    "+ batch norm": {"normalization": "batch", "weight_decay": 1e-2, "warmup_iters": 1,
                     "label_smoothing": 0.1},
}


def run_modern(args, impls):
    """N1: the A1 fit (relu) plain, with AdamW + cosine warm-up + label smoothing, and
    with layer norm or batch norm on top, relumlp beside PyTorch's same network; each repeat runs every
    configuration in turn. Returns the section's Markdown."""
    w = A1_SHAPE
    n, epochs = w.size(args.quick)
    X, y = make_data(w, args.quick)
    impls = [i for i in impls if i != "sklearn"]
    log(f"[N1] data {data_desc(w, n)} {w.dtype}, batch {w.batch}, {epochs} epochs")
    runners = {(c, impl): Runner(impl, w, X, y, modern=m)
               for c, m in N1_CONFIGS.items() for impl in impls}
    times = {key: [] for key in runners}
    for _ in range(args.repeats):
        for key in runners:
            gc.collect()
            t0 = time.perf_counter()
            runners[key].fit(epochs)
            times[key].append((time.perf_counter() - t0) / epochs)
    base = "plain (Adam)"
    head = ["configuration", "relumlp s/epoch", "÷ relumlp plain"]
    if "torch" in impls:
        head += ["torch s/epoch", "torch ÷ relumlp (>1: relumlp faster)"]
    lines = [f"N1: {data_desc(w, n)} {w.dtype}, relu, batch {w.batch}, {epochs} epochs; "
             f"{args.repeats} repeats, configurations in turn; medians, ratios paired",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in N1_CONFIGS:
        ours = times[c, "relumlp"]
        cells = [c, fmt(float(np.median(ours))),
                 f"{float(np.median(np.divide(ours, times[base, 'relumlp']))):.2f}"]
        if "torch" in impls:
            cells += [fmt(float(np.median(times[c, "torch"]))),
                      f"{float(np.median(np.divide(times[c, 'torch'], ours))):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_p1(args, impls, rows):
    w = P1_SHAPE
    n_fit = 2000
    n_pred = 10000 if args.quick else 60000
    n_calls = 200 if args.quick else 1000
    rng = _rng("P1")
    X = rng.standard_normal((max(n_fit, n_pred), w.d))
    T = rng.standard_normal((w.d, w.n_out)) / math.sqrt(w.d)
    y = np.argmax(X @ T, axis=1)
    Xfit, yfit, Xp = X[:n_fit], y[:n_fit], np.ascontiguousarray(X[:n_pred])
    x1 = np.ascontiguousarray(Xp[:1])
    log(f"[P1] fit on {n_fit} rows, 1 epoch; latency over {n_calls} calls x {args.repeats}, "
        f"throughput on {n_pred} rows")
    predict = {}
    for impl in impls:
        model = Runner(impl, w, Xfit, yfit).fit(1)
        if impl == "torch":
            torch = _torch

            def f(A, model=model):
                with torch.inference_mode():
                    return torch.softmax(model(torch.from_numpy(A)), dim=1).numpy()
        else:
            f = model.predict_proba
        predict[impl] = f
    note = ""
    if "relumlp" in predict and "sklearn" in predict and RELUMLP_EXTRA.get("weight_init") == "sklearn":
        diff = np.max(np.abs(predict["relumlp"](Xp[:1000]) - predict["sklearn"](Xp[:1000])))
        note = f"max abs diff of relumlp and sklearn probabilities {diff:.2g}"
    for impl in impls:     # warm-up
        for _ in range(50):
            predict[impl](x1)
        predict[impl](Xp)
    lat = {impl: [] for impl in impls}
    thr = {impl: [] for impl in impls}
    s0 = cpu_snapshot()
    for _ in range(args.repeats):
        for impl in impls:
            f = predict[impl]
            for _ in range(n_calls):
                t0 = time.perf_counter_ns()
                f(x1)
                lat[impl].append((time.perf_counter_ns() - t0) / 1e3)
            gc.collect()
            t0 = time.perf_counter()
            f(Xp)
            thr[impl].append(time.perf_counter() - t0)
    p1_other = load_note([other_cores(s0, cpu_snapshot())])
    lat_med = {i: float(np.median(v)) for i, v in lat.items()}
    thr_med = {i: float(np.median(v)) for i, v in thr.items()}
    desc = data_desc(w, n_fit)
    lat_rows, bulk_rows = [], []
    for impl in impls:
        r1 = dict(workload="P1-1row", impl=impl, data=desc, dtype="float64",
                  **{"1-row µs": lat_med[impl]},
                  notes=f"predict_proba(1 row), median of {len(lat[impl])} calls")
        r2 = dict(workload="P1-bulk", impl=impl, data=desc, dtype="float64",
                  **{"rows/s": n_pred / thr_med[impl]},
                  notes=f"predict_proba({n_pred} rows), median of {len(thr[impl])}")
        if impl == "relumlp":
            for other, col in (("sklearn", "× vs sklearn"), ("torch", "× vs torch")):
                if other in lat_med:
                    r1[col] = lat_med[other] / lat_med[impl]
                    r2[col] = thr_med[other] / thr_med[impl]
            if note:
                r1["notes"] += "; " + note
        if p1_other:
            r1["notes"] += "; " + p1_other + " (whole P1)"
            r2["notes"] += "; " + p1_other + " (whole P1)"
        lat_rows.append(r1)
        bulk_rows.append(r2)
    rows.extend(lat_rows + bulk_rows)


def run_p1_latency(args, impls):
    """P1's one-row table: every prediction method of a float32 and a float64
    classifier and regressor (784 → (256, 128) → 10 / 1), p50 and p99, beside the
    plain NumPy chain with the model's own weights and PyTorch's eager forward pass
    (benchmarks/one_row.py). Returns the section's Markdown."""
    import one_row
    calls = 300 if args.quick else 2000
    repeats = 1 if args.quick else 5
    log(f"[P1] one-row latency table: {calls} calls x {repeats} repeats per cell")
    lines = list(one_row.latency_table(_torch if "torch" in impls else None, calls,
                                       repeats, [1]))
    return "\n".join([f"P1, one row ({calls} calls x {repeats} repeats per cell, "
                       f"implementations interleaved; µs):", ""] + lines)


# --------------------------------------------------------------------------- contention (L1)
def _busy_loop(ready):
    ready.set()
    while True:
        pass


def _run_worker(name, impl, args):
    """Fit in a fresh subprocess: seconds of the fit, None if it exceeded the timeout, or
    an error message (str) if the worker failed; never raises for a failed worker."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", name, "--_impl", impl,
           "--threads", str(args.threads)] + (["--quick"] if args.quick else []) + (
        ["--relumlp-weight-init", args.relumlp_weight_init] if args.relumlp_weight_init else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=300):
            return "worker not ready after 300 s"
        line = proc.stdout.readline().strip()
        if line != "READY":
            proc.wait(10)
            return f"worker failed before the fit (exit {proc.returncode})"
        try:
            out, _ = proc.communicate(timeout=CONTENTION_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode != 0:
            return f"worker exited {proc.returncode}"
        try:
            secs = json.loads(out.strip().splitlines()[-1])["seconds"]
        except (ValueError, IndexError, KeyError):
            return "worker printed no result"
        return None if secs > CONTENTION_TIMEOUT else secs
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def worker_main(args):
    """Subprocess entry for one contended fit: set up, say READY, fit, print JSON."""
    w = WORKLOADS[args._worker]
    impl = args._impl
    with threadpool_limits(limits=args.threads):
        if impl == "torch":
            torch = import_torch()
            torch.set_num_threads(args.threads)
        n, epochs = w.size(args.quick)
        X, y = make_data(w, args.quick)
        runner = Runner(impl, w, X, y)
        Runner(impl, w, X[:w.batch * 2], y[:w.batch * 2]).fit(1)     # warm-up (lazy init)
        gc.collect()
        print("READY", flush=True)
        t0 = time.perf_counter()
        runner.fit(epochs)
        dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt}), flush=True)


def run_contention(args, impls, idle, rows):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    busy = ctx.Process(target=_busy_loop, args=(ready,), daemon=True)
    busy.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("busy-loop process did not start")
        log(f"[L1] busy-loop process pid {busy.pid} running")
        for name in L1_NAMES:
            w = WORKLOADS[name]
            n, epochs = w.size(args.quick)
            times = {impl: [] for impl in impls}
            others = {impl: [] for impl in impls}
            errors = {impl: [] for impl in impls}
            for r in range(args.repeats):
                for impl in impls:
                    s0 = cpu_snapshot()
                    secs = _run_worker(name, impl, args)
                    oc = other_cores(s0, cpu_snapshot())
                    if isinstance(secs, str):
                        errors[impl].append(secs)
                        log(f"[L1:{name}] repeat {r + 1}/{args.repeats} {impl:8s} ERROR: {secs}")
                        continue
                    times[impl].append(secs)
                    others[impl].append(oc)
                    log(f"[L1:{name}] repeat {r + 1}/{args.repeats} {impl:8s} "
                        f"{'>%g' % CONTENTION_TIMEOUT if secs is None else '%.3f' % secs} s"
                        + ("" if oc is None else f"  (other processes: {oc:.2f} cores)"))
            per_epoch = {}
            for impl in impls:
                if not times[impl]:       # every fit failed
                    per_epoch[impl] = None
                    continue
                ok = [t for t in times[impl] if t is not None]
                # a timeout counts as +inf in the median
                vals = ok + [math.inf] * (len(times[impl]) - len(ok))
                med = float(np.median(vals))
                per_epoch[impl] = med / epochs if math.isfinite(med) else None
            flops = 6.0 * n * w.n_weights
            for impl in impls:
                row = dict(workload=f"L1:{name}", impl=impl, data=data_desc(w, n), dtype=w.dtype,
                           batch=w.batch, epochs=epochs, **{"GFLOP/epoch": flops / 1e9})
                s = per_epoch[impl]
                n_to = sum(t is None for t in times[impl])
                if not times[impl]:
                    row["s/epoch"] = "error"
                elif s is None:
                    row["s/epoch"] = ">" + fmt(CONTENTION_TIMEOUT / epochs)
                    row["slowdown vs idle"] = ">" + fmt(CONTENTION_TIMEOUT / epochs / idle[name][impl])
                else:
                    row["s/epoch"] = s
                    row["GFLOP/s"] = flops / s / 1e9
                    row["slowdown vs idle"] = s / idle[name][impl]
                if impl == "relumlp" and s is not None:
                    for other, col in (("sklearn", "× vs sklearn"), ("torch", "× vs torch")):
                        if other in per_epoch and per_epoch[other] is not None:
                            row[col] = per_epoch[other] / s
                        elif other in per_epoch and times[other]:     # other timed out
                            row[col] = f">{fmt(CONTENTION_TIMEOUT / epochs / s)}"
                row["notes"] = "; ".join(x for x in (
                    f"{len(errors[impl])} fits failed: {errors[impl][0]}" if errors[impl] else "",
                    f"{n_to}/{len(times[impl])} fits timed out (>{CONTENTION_TIMEOUT:g} s)"
                    if n_to else "",
                    "one core busy (busy loop counts as other procs)",
                    "fresh subprocess per fit", load_note(others[impl])) if x)
                rows.append(row)
    finally:
        busy.terminate()
        busy.join(10)
        if busy.is_alive():
            busy.kill()
            busy.join()
        log(f"[L1] busy-loop process stopped (exitcode {busy.exitcode})")


# --------------------------------------------------------------------------- header
def header_lines(args, torch, peak, scipy_peak, selected):
    L = []
    now = datetime.datetime.now().astimezone()
    L.append("# relumlp benchmark")
    L.append("")
    L.append(f"- date: {now.isoformat(timespec='seconds')}")
    L.append(f"- command: `{' '.join(shlex.quote(a) for a in [sys.executable] + sys.argv)}`")
    L.append(f"- workloads: {', '.join(selected)}; repeats: {args.repeats}; quick: {args.quick}; "
             f"threads: {args.threads}")
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    L.append(f"- machine: {platform.machine()} {cpu}, {os.cpu_count()} CPUs; "
             f"load average at start: {', '.join(f'{x:.2f}' for x in load)}")
    env = ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in
                    ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                     "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS"))
    L.append(f"- environment: {env}")
    tv = torch.__version__ if torch is not None else f"not importable ({_torch!r})"
    L.append(f"- versions: Python {platform.python_version()}, NumPy {np.__version__}, "
             f"SciPy {scipy.__version__}, scikit-learn {sklearn.__version__}, torch {tv}, "
             f"relumlp {relumlp.__version__} ({Path(relumlp.__file__).parent})")
    from relumlp import _kernels
    L.append(f"- relumlp vector math: {_kernels.vector_math()} "
             f"(available: {', '.join(_kernels.vector_math_available())})")
    L.append(f"- relumlp.openmp_enabled(): {relumlp.openmp_enabled()}; relumlp weight_init: "
             + RELUMLP_EXTRA.get("weight_init", "default (auto: scikit-learn's for relu layers)"))
    L.append("- threadpoolctl.threadpool_info() (inside threadpool_limits(threads)):")
    for info in threadpool_info():
        L.append(f"  - {info.get('internal_api')}: num_threads={info.get('num_threads')}, "
                 f"{os.path.basename(info.get('filepath', ''))}, "
                 f"architecture={info.get('architecture', '-')}, version={info.get('version')}")
    if torch is not None:
        L.append(f"- torch: set_num_threads({args.threads}); torch.__config__.parallel_info():")
        for line in torch.__config__.parallel_info().splitlines()[:8]:
            if line.strip():
                L.append(f"  - `{line.strip()}`")
    else:
        L.append("- torch: not importable, torch rows skipped")
    L.append(f"- GEMM peak at start (numpy matmul(out=), square, best of several): "
             f"{peak_text(peak)}; scipy.linalg.blas s/dgemm (the BLAS relumlp calls), n=2048: "
             f"{scipy_peak['float32']:.1f} / {scipy_peak['float64']:.1f} GFLOP/s")
    L.append("")
    L.append("Method:")
    L.append("- Same settings for every implementation: Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8), "
             "same batch size and epochs, reshuffled every epoch, relu hidden layers, softmax "
             "cross-entropy (classifiers) / 0.5 × squared error (W5), L2 penalty alpha=1e-4 as in "
             "scikit-learn (loss += 0.5·alpha·Σ‖W‖² / batch_size per batch, weights only; in torch "
             "this term is added to the loss explicitly, no weight_decay). relumlp/sklearn: "
             "tol=0, n_iter_no_change=10⁹, random_state=0, `n_iter_ == epochs` asserted. torch: "
             "eager nn.Sequential(Linear, ReLU, …), torch.optim.Adam, manual minibatch loop over "
             "torch.randperm, Glorot-uniform init like sklearn, data tensors made once outside "
             "the timing.")
    L.append("- s/epoch: median over repeats of (wall time of the whole fit ÷ epochs); "
             "implementations interleaved within each workload. Notes give min/max.")
    L.append("- GFLOP/epoch = 6 × n_samples × n_weights, n_weights = number of weight-matrix "
             "entries (biases not counted); GFLOP/s = that ÷ s/epoch; % peak = share of the "
             "numpy GEMM peak of the workload's dtype (the larger of the measurements at the "
             "start and at the end of this run; torch's MKL can exceed it). W6 counts dense-equivalent "
             "FLOPs (its input is 1 % dense).")
    L.append("- traced MB: tracemalloc peak (NumPy/Python allocations) of a separate untimed "
             "1-epoch fit (relumlp, sklearn; torch's allocator is not traced). RSS Δ MB: peak RSS "
             "(VmHWM, reset through /proc/self/clear_refs) minus RSS before that same fit, after "
             "gc and malloc_trim(0), all implementations (includes tracemalloc's own overhead).")
    L.append("- × vs sklearn / × vs torch (relumlp rows): other's time ÷ relumlp's time "
             "(> 1: relumlp faster). For P1-bulk it is the ratio of the times for the bulk call.")
    L.append("- GEMM floor s/epoch: the same matrix products as one epoch (per batch: A@W per "
             "layer, dW = A.T@D per layer, D@W.T per layer except the first), numpy "
             "matmul(out=) into preallocated buffers, back to back; ÷ floor = s/epoch ÷ floor. "
             "Not for W6 (sparse).")
    L.append("- train acc/R²: accuracy on the training data (classifiers), R² on the training "
             "data (W5).")
    L.append("- notes: `other procs N cores` = average CPU use of all other processes on the "
             "machine during that implementation's timed fits (max over repeats; only fits of "
             "≥ 0.5 s, as /proc/stat counts clock ticks), from /proc/stat minus this process's "
             "own CPU time; anything well above 0 means the timing was disturbed by other work "
             "on the machine.")
    if "L1" in selected:
        L.append("- L1: W1 and W2f32 again while a multiprocessing busy-loop process "
                 "(`while True: pass`) occupies one core; each fit runs in a fresh subprocess "
                 f"(after a small warm-up fit) with a {CONTENTION_TIMEOUT:g} s timeout; slowdown "
                 "vs idle = contended s/epoch ÷ the idle s/epoch of the same run.")
    if "P1" in selected:
        L.append("- P1: predict_proba on a W2-shaped model (784 → (256,128) → 10, float64) fit "
                 "1 epoch on 2000 rows; 1-row µs = median latency of single-row calls after "
                 "warm-up (torch: from_numpy + inference_mode + softmax + .numpy()); rows/s = "
                 "bulk rows ÷ median time of one call.")
    return L


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 repeat and smaller data")
    p.add_argument("--only", default=None,
                   help="comma-separated subset of " + ",".join(ALL_NAMES))
    p.add_argument("--repeats", type=int, default=None,
                   help="repeats per implementation (default 3; --quick: 1)")
    p.add_argument("--markdown", default=None, metavar="OUT.md",
                   help="also write the report to this file")
    p.add_argument("--threads", type=int, default=2,
                   help="BLAS/OpenMP/torch threads for every implementation (default 2)")
    p.add_argument("--contention-timeout", type=float, default=CONTENTION_TIMEOUT, metavar="S",
                   help="L1: a contended fit (all its epochs) taking longer than S seconds is "
                        "stopped and recorded as '>S s' (default %(default)g)")
    p.add_argument("--relumlp-weight-init", default=None, metavar="INIT",
                   help="pass weight_init=INIT to relumlp (default: relumlp's own default; "
                        "'sklearn' gives scikit-learn's initial weights)")
    p.add_argument("--relumlp-vector-math", default=None, metavar="LEVEL",
                   help="run relumlp's exp-based kernels on this vector math level "
                        "(scalar, sse2, avx2, avx512; default: the widest the CPU has)")
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_impl", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.only:
        sel = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [s for s in sel if s not in ALL_NAMES]
        if bad:
            p.error(f"unknown workload(s) {bad}; choose from {ALL_NAMES}")
        args.selected = [n for n in ALL_NAMES if n in sel]
    else:
        args.selected = list(ALL_NAMES)
    return args


def main(argv=None):
    args = parse_args(argv)
    global CONTENTION_TIMEOUT
    CONTENTION_TIMEOUT = args.contention_timeout
    if args.relumlp_weight_init:
        RELUMLP_EXTRA["weight_init"] = args.relumlp_weight_init
    if args.relumlp_vector_math:
        from relumlp import _kernels
        _kernels.set_vector_math(args.relumlp_vector_math)
    if args._worker:
        return worker_main(args)
    t_start = time.perf_counter()
    torch = import_torch()
    if torch is None:
        print(f"PyTorch is not importable ({_torch!r}): skipping the torch implementation.",
              flush=True)
    else:
        torch.set_num_threads(args.threads)
    impls = [i for i in IMPLS if i != "torch" or torch is not None]
    selected = args.selected
    training = [n for n in WORKLOADS if n in selected]
    if "L1" in selected:     # L1 compares against idle runs of the same process run
        extra = [n for n in L1_NAMES if n not in training]
        if extra:
            log(f"[L1] also running the idle workloads {extra} for the comparison")
        training = [n for n in WORKLOADS if n in training or n in extra]

    with threadpool_limits(limits=args.threads):
        log("measuring GEMM peak ...")
        peak = gemm_peak(args.quick)
        scipy_peak = scipy_blas_peak()
        header = header_lines(args, torch, peak, scipy_peak,
                              training + [n for n in ("P1", "L1", "A1", "N1") if n in selected])
        print("\n".join(header), flush=True)

        log("warm-up fits ...")
        wu = WORKLOADS["W1"]
        Xw, yw = make_data(wu, True)
        for impl in impls:
            Runner(impl, wu, Xw[:400], yw[:400]).fit(1)

        rows, idle = [], {}
        for name in training:
            run_training(WORKLOADS[name], args, [i for i in impls if not (
                i == "torch" and WORKLOADS[name].sparse)], idle, rows)
            _DATA_CACHE.clear()
            gc.collect()
        p1 = ""
        if "P1" in selected:
            run_p1(args, impls, rows)
            gc.collect()
            p1 = run_p1_latency(args, impls)
        a1 = run_activations(args, impls) if "A1" in selected else ""
        n1 = run_modern(args, impls) if "N1" in selected else ""
    if "L1" in selected:
        run_contention(args, impls, idle, rows)

    with threadpool_limits(limits=args.threads):
        log("measuring GEMM peak again ...")
        peak_end = gemm_peak(args.quick)
    best = {dt: max(peak[dt][0], peak_end[dt][0]) for dt in ("float32", "float64")}
    for row in rows:
        if isinstance(row.get("GFLOP/s"), float) and row.get("dtype") in best:
            row["% peak"] = 100.0 * row["GFLOP/s"] / best[row["dtype"]]
    tail = [f"- GEMM peak at end: {peak_text(peak_end)}; % peak uses float32 "
            f"{best['float32']:.1f}, float64 {best['float64']:.1f} GFLOP/s"]
    table = render_table(rows)
    total = time.perf_counter() - t_start
    print("\n".join(tail))
    print()
    print(table)
    for section in (p1, a1, n1):
        if section:
            print("\n" + section)
            table = table + "\n\n" + section
    print(f"\n(total benchmark time {total:.0f} s)", flush=True)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(header + tail) + "\n\n" + table +
                                       f"\n\n(total benchmark time {total:.0f} s)\n")
        log(f"wrote {args.markdown}")


if __name__ == "__main__":
    sys.exit(main())
