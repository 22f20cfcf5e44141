"""
What an activation costs
========================

How much slower than ReLU is GELU, SiLU or softplus, per element and per fit? We time
the project's own compiled kernels, the very code training runs:
``relumlp._kernels.bias_activation_forward`` (``A := f(Z + b)``) and
``activation_backward`` (``D := dA * f'(Z)``) on a 2048 x 512 array of standard
normal pre-activations, on one thread, for every hidden activation in float32 and
float64, and report the median over repeats (``time.perf_counter``) in nanoseconds per
element. Next to it, the end-to-end fit time of the same network on scikit-learn's
digits (two hidden layers of 128 and 64 units, the same number of epochs for every
activation, one thread), where matrix products, the optimizer and the loss share the
time with the activation. ``swish`` is an alias of ``silu`` (the same kernel) and is
not timed separately. ``relumlp._kernels`` is private: its small Python wrappers exist
so that tests (and measurements like this one) call exactly the code training runs.

The exp/erf/tanh/log1p-based kernels call glibc's vector math library (libmvec) at the
widest ISA the CPU has (``relumlp.show_versions()`` names it); each kernel is also
timed on the scalar level (libm per element, what they called before, and what a
build without libmvec runs) to show what the vector math buys.

The timings depend on the machine (CPU, compiler, the libm behind ``exp`` / ``erf`` /
``tanh``) and on its load: they are measured when the example runs, and the figures
and tables show that run's numbers.

Run as a script, ``python examples/plot_activation_cost.py [OUTPUT_DIR]`` (figures are
saved as PNG files only when OUTPUT_DIR is given), or cell by cell in a notebook
(``# %%`` cells). ``RELUMLP_EXAMPLE_QUICK=1`` runs a reduced version (a smaller
array, fewer repeats and epochs) of the same code.
"""
# %%
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from relumlp import ReLUMLPClassifier, _kernels
from relumlp._activations import HIDDEN_ACTIVATIONS

# In a notebook, sys.argv holds the kernel's options ("-f ..."), not an output directory.
out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
if out_dir is not None:
    out_dir.mkdir(parents=True, exist_ok=True)
quick = os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"

# Every activation kernel once, in the registry's order (an alias such as swish shares
# silu's kernel).
ACTIVATIONS = list({spec.code: name for name, spec
                    in reversed(HIDDEN_ACTIVATIONS.items())}.values())[::-1]
DTYPES = [np.float32, np.float64]
if quick:
    shape, repeats, fit_epochs, fit_repeats = (256, 512), 5, 2, 1
else:
    shape, repeats, fit_epochs, fit_repeats = (2048, 512), 15, 10, 3
hidden = (128, 64)
defaults = ReLUMLPClassifier().get_params()  # negative_slope, elu_alpha
# The vector math in use, and the scalar libm level to compare it with.
VECTOR = _kernels.vector_math()
LEVELS = [VECTOR] + (["scalar"] if VECTOR != "scalar" else [])
print(f"vector math: {VECTOR} (available: {', '.join(_kernels.vector_math_available())})")

# %%
# Kernel timings
# --------------
# Each kernel is called as training calls it. The activations whose derivative needs
# only ``a = f(z)`` work in place (``A`` is ``Z``) and their backward pass reads ``A``
# for ``Z``; the others (prelu, gelu, silu, softplus) keep ``Z`` next to ``A``. PReLU
# takes per-unit slopes and also accumulates their gradient. The forward kernel
# overwrites its input, so ``Z`` is restored before every call, outside the timed
# region; the backward kernel reads ``dA`` from a separate array.


def median_seconds(call, reset=None):
    """Median wall time of call() over the repeats, after one untimed warm-up call."""
    times = []
    for k in range(repeats + 1):
        if reset is not None:
            reset()
        tic = time.perf_counter()
        call()
        if k:
            times.append(time.perf_counter() - tic)
    return float(np.median(times))


def time_kernels(activation, dtype):
    """Nanoseconds per element of the forward and the backward kernel."""
    spec = HIDDEN_ACTIVATIONS[activation]
    code = spec.code
    param = float(defaults[spec.param]) if spec.param else 0.0
    rng = np.random.default_rng(0)
    n_rows, n_units = shape
    Z0 = rng.standard_normal(shape).astype(dtype)
    b = (0.1 * rng.standard_normal(n_units)).astype(dtype)
    slopes = np.full(n_units, param, dtype=dtype) if activation == "prelu" else None
    G_slopes = np.zeros(n_units, dtype=dtype) if activation == "prelu" else None
    Z = Z0.copy()
    A = np.empty_like(Z) if spec.needs_z else Z

    forward = median_seconds(
        lambda: _kernels.bias_activation_forward(Z, b, A, code, param, slopes, 1),
        reset=lambda: np.copyto(Z, Z0))

    # Z now holds Z0 + b and A = f(Z): the state the backward pass sees in training.
    dA = rng.standard_normal(shape).astype(dtype)
    D = np.empty_like(dA)
    backward = median_seconds(
        lambda: _kernels.activation_backward(D, Z, A, code, param, slopes, G_slopes,
                                             False, 1, dA))
    n = n_rows * n_units
    return 1e9 * forward / n, 1e9 * backward / n


kernel_ns, scalar_ns = {}, {}
for level in LEVELS:
    _kernels.set_vector_math(level)
    for dtype in DTYPES:
        for activation in ACTIVATIONS:
            forward, backward = time_kernels(activation, dtype)
            times = {"forward": forward, "backward": backward}
            (kernel_ns if level == VECTOR else scalar_ns)[activation, dtype.__name__] = times
_kernels.set_vector_math(VECTOR)
if not scalar_ns:  # a build without vector math: the scalar level is the one in use
    scalar_ns = kernel_ns

# %%
# End-to-end fit time
# -------------------
# The same network and number of epochs for every activation (``n_iter_no_change``
# larger than ``max_iter``: no fit stops early), on one thread for BLAS and OpenMP
# like the kernels above; the median over the repeats.

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)

fit_seconds, fit_epochs_run = {}, {}
for dtype in DTYPES:
    X_dtype = X.astype(dtype)
    for activation in ACTIVATIONS:
        model = ReLUMLPClassifier(hidden, activation=activation, max_iter=fit_epochs,
                                  n_iter_no_change=fit_epochs + 1, random_state=0)
        times = []
        for _ in range(fit_repeats):
            with threadpool_limits(limits=1), warnings.catch_warnings():
                # Every fit runs the full epoch budget and stops at max_iter.
                warnings.simplefilter("ignore", ConvergenceWarning)
                tic = time.perf_counter()
                model.fit(X_dtype, y)
                times.append(time.perf_counter() - tic)
        fit_seconds[activation, dtype.__name__] = float(np.median(times))
        fit_epochs_run[activation, dtype.__name__] = model.n_iter_

# %%
# Bar charts
# ----------

dtype_names = [d.__name__ for d in DTYPES]
x = np.arange(len(ACTIVATIONS))
width = 0.8 / len(dtype_names)
fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
panels = [("forward kernel (ns / element)", lambda a, d: kernel_ns[a, d]["forward"]),
          ("backward kernel (ns / element)", lambda a, d: kernel_ns[a, d]["backward"]),
          (f"fit on digits, {fit_epochs} epochs (s)", lambda a, d: fit_seconds[a, d])]
for ax, (label, value) in zip(axes, panels):
    for k, d in enumerate(dtype_names):
        ax.bar(x + (k - (len(dtype_names) - 1) / 2) * width,
               [value(a, d) for a in ACTIVATIONS], width, label=d)
    ax.set_ylabel(label)
for ax, what in zip(axes[:2], ("forward", "backward")):
    ax.scatter(np.repeat(x, len(dtype_names)) + np.tile(
                   (np.arange(len(dtype_names)) - (len(dtype_names) - 1) / 2) * width,
                   len(ACTIVATIONS)),
               [scalar_ns[a, d][what] for a in ACTIVATIONS for d in dtype_names],
               marker="_", s=200, color="black", label="scalar libm" if what == "forward"
               else None)
axes[0].set_title(f"Activation cost, one thread, vector math {VECTOR}; kernels on "
                  f"{shape[0]} x {shape[1]}, fits with MLP {hidden}")
axes[0].legend()
axes[-1].set_xticks(x, ACTIVATIONS, rotation=45)
fig.tight_layout()
if out_dir is not None:
    fig.savefig(out_dir / "activation_cost.png", dpi=80)

# %%
# Table and finding
# -----------------
# Each time is also given relative to relu's in the same dtype, and the kernels'
# times on the scalar libm level (the black marks above) next to them.

print(f"Kernels on {shape[0]} x {shape[1]} (median of {repeats}), fits of MLP {hidden} "
      f"on digits for {fit_epochs} epochs (median of {fit_repeats}); one thread; "
      f"vector math {VECTOR}\n")
print("| activation | dtype | forward (ns/element) | forward / relu "
      "| backward (ns/element) | backward / relu | scalar libm forward / backward "
      "| fit (s) | fit / relu |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for d in dtype_names:
    base, base_fit = kernel_ns["relu", d], fit_seconds["relu", d]
    for a in ACTIVATIONS:
        ns, sc, fit = kernel_ns[a, d], scalar_ns[a, d], fit_seconds[a, d]
        print(f"| {a} | {d} | {ns['forward']:.2f} | {ns['forward'] / base['forward']:.2f} "
              f"| {ns['backward']:.2f} | {ns['backward'] / base['backward']:.2f} "
              f"| {sc['forward']:.2f} / {sc['backward']:.2f} "
              f"| {fit:.3f} | {fit / base_fit:.2f} |")


def ratio(activation, d, what):
    if what == "fit":
        return fit_seconds[activation, d] / fit_seconds["relu", d]
    return kernel_ns[activation, d][what] / kernel_ns["relu", d][what]


def total_ns(activation, d):
    return kernel_ns[activation, d]["forward"] + kernel_ns[activation, d]["backward"]


costliest = {d: max(ACTIVATIONS, key=lambda a: total_ns(a, d)) for d in dtype_names}
parts = []
for d in dtype_names:
    fit = ratio("gelu", d, "fit")
    fit_text = (f"{fit:.2f}x relu's time" if fit >= 1.05 else
                f"about relu's time ({fit:.2f}x)" if fit > 0.95 else
                f"less than relu's time ({fit:.2f}x)")
    parts.append(
        f"in {d}, gelu's forward kernel took {ratio('gelu', d, 'forward'):.1f}x relu's "
        f"time per element and its backward {ratio('gelu', d, 'backward'):.1f}x, and a "
        f"whole fit took {fit_text}; the costliest kernels (forward + backward) were "
        f"{costliest[d]}'s ({total_ns(costliest[d], d) / total_ns('relu', d):.1f}x relu)")
# float32 against float64 for gelu's two kernels together.
gelu_f32_f64 = total_ns("gelu", "float32") / total_ns("gelu", "float64")
if scalar_ns is not kernel_ns:
    gains = {d: (scalar_ns["gelu", d]["forward"] + scalar_ns["gelu", d]["backward"])
             / total_ns("gelu", d) for d in dtype_names}
    parts.append(f"the vector math ({VECTOR}) made gelu's two kernels "
                 + " and ".join(f"{gains[d]:.1f}x faster than scalar libm in {d}"
                                for d in dtype_names))
parts.append(
    "per element, gelu's float32 kernels took "
    + (f"about the time of its float64 ones ({gelu_f32_f64:.2f}x)" if 0.8 < gelu_f32_f64 < 1.25
       else f"{gelu_f32_f64:.2f}x the time of its float64 ones"))
print("\nFinding: " + "; ".join(parts) + ".")
