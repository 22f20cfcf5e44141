"""The Cython kernels (relumlp._kernels) against the NumPy reference in reference.py.

Each elementwise kernel has one test against its reference: a Hypothesis property whose
fixed ``@example`` cases come first. The properties draw random shapes (one row and one
column often), both dtypes, every activation and its parameter, and values mixing
ordinary numbers, the region where exp / erfc / tanh bend, +-large (1e30 in float32,
1e300 in float64), +-0.0, subnormals and the smallest normal. Each says: wherever the
exact result is representable in the dtype, the kernel's output is finite and agrees
with the float64 reference to RTOL (relative to the result plus, where the kernel
legitimately works from rounded intermediates, an explicit per-element scale); results
below the smallest normal need only be accurate to it. The kernels are evaluated in the
dtype from inputs that are exact in the dtype, so each reference is fed the same rounded
values (for instance Z + b rounded in the dtype, which the kernel must reproduce
exactly): the properties test the kernels, not the conditioning of float32 sums. Domains
avoid input overflow by construction (|value| <= LIMIT, so sums of two stay finite).

The examples are the fixed cases: one row, odd sizes and sizes on both sides of
MIN_PARALLEL_SIZE (the parallel paths), read-only and writable inputs, every hidden
activation on extreme pre-activations (|z| up to 1e4 and down to subnormal) and on the
largest logits whose exp fits the dtype, probabilities of exactly 0 and 1, a zero
gradient, dropout at several rates on 1e5 elements. They keep the check they had as
fixed-case tests too (``assert_close``: RTOL relative to the largest value) where the
property's per-element tolerance does not already imply it.

Inputs marked IN / const in the kernels are passed read-only, as grid searches pass
memory-mapped data. The sparse products, the PReLU slope gradient and the whole-network
kernels (forward, forward_small, sgd_epoch) are tested on fixed cases below; on the
large shape every kernel also runs on 1 and 2 threads, bit for bit the same
(test_thread_count_independence), and dropout's masks are the NumPy splitmix64's.
The kernel bugs the properties found (Poisson loss and gradient clipping at the extremes
of float64, a float32 clipping scale) are fixed; each keeps its minimal reproducer at
the end as a regression test. Hypothesis is derandomized (reproducible in CI), with no
example database.
"""
import warnings
import zlib

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from relumlp import _kernels
from relumlp._activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from relumlp._kernels import Activation, Loss, Solver
from relumlp._threads import MIN_PARALLEL_SIZE
from relumlp._params import NetworkLayout
from relumlp import _inference
from relumlp._training import Trainer

from _helpers import readonly

try:
    import reference as ref
except ImportError:  # tests/ collected as a package
    from tests import reference as ref

# When a test fails, hypothesis's pytest plugin imports hypothesis.extra._patching, whose
# libcst import warns (a DeprecationWarning from mypy_extensions); with filterwarnings =
# error that turns the failure report into an INTERNALERROR that hides the falsifying
# example. Importing it here, quietly, keeps failure reports readable.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst missing: the plugin then skips the patch quietly
        pass

RTOL = ref.RTOL
DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]
# The registry (_activations.HIDDEN_ACTIVATIONS) is the one list of hidden activations:
# every name below is tested against ref.HIDDEN under its name, so a registry entry with
# the wrong kernel code, or that claims f' needs only a = f(z) when it needs z, fails
# these tests. An alias (another name for a code) is tested once, as its first name.
HIDDEN, ALIASES = {}, {}
for _name, _entry in HIDDEN_ACTIVATIONS.items():
    _first = next(n for n, e in HIDDEN_ACTIVATIONS.items() if e.code == _entry.code)
    if _first == _name:
        HIDDEN[_name] = _entry.code
    else:
        ALIASES[_name] = _first
# Activations whose f' the kernel computes from z (the others from a, with Z aliasing A).
NEEDS_Z = {name for name in HIDDEN if HIDDEN_ACTIVATIONS[name].needs_z}
# The scalar parameter of the parametrised activations, not their defaults, so that a
# kernel ignoring it is caught. PReLU takes per-unit slopes instead (activation_args).
ACT_PARAMS = {"leaky_relu": 0.1, "elu": 1.3}
OUTPUT = {
    "identity": Activation.IDENTITY,
    "logistic": Activation.LOGISTIC,
    "softmax": Activation.SOFTMAX,
    "exp": Activation.EXP,
}
LOSSES = {
    "squared_error": Loss.SQUARED_ERROR,
    "log_loss": Loss.LOG_LOSS,
    "binary_log_loss": Loss.BINARY_LOG_LOSS,
    "poisson": Loss.POISSON,
}
# The registry's names without its aliases (the same code and reference as their target).
ACTIVATION_NAMES = [name for name in HIDDEN_ACTIVATIONS if name not in ALIASES]
# (n_rows, n_units): one row, odd sizes, just below and well above MIN_PARALLEL_SIZE.
SHAPES = [(1, 5), (7, 13), (199, 251), (401, 263)]
LARGE = SHAPES[-1]
N_FEATURES = 17


def assert_close(actual, expected, dtype, scale=None):
    """|actual - expected| <= RTOL * (|expected| + scale), scale defaulting to max |expected|."""
    assert actual.dtype == dtype
    rtol = RTOL[dtype]
    if scale is None:
        scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def random_csr(rng, n, n_features, dtype):
    X = rng.normal(size=(n, n_features)) * (rng.random((n, n_features)) < 0.3)
    if n > 1:
        X[n // 2] = 0  # an empty row
    return sp.csr_matrix(X.astype(dtype))


def csr_arrays(X):
    return (readonly(X.data), readonly(X.indices.astype(np.int32)),
            readonly(X.indptr.astype(np.int32)))


def test_shapes_straddle_min_parallel_size():
    sizes = [n * m for n, m in SHAPES]
    assert sizes[0] == 5 and SHAPES[1] == (7, 13)
    assert max(s for s in sizes if s < MIN_PARALLEL_SIZE) > MIN_PARALLEL_SIZE // 2
    assert LARGE[0] * LARGE[1] > 2 * MIN_PARALLEL_SIZE


def test_enums_match_reference_names():
    assert set(HIDDEN) | set(ALIASES) == set(ref.HIDDEN)
    assert set(OUTPUT) == set(ref.OUTPUT)
    assert set(LOSSES) == set(ref.LOSSES)
    # Every code of the Activation enum is a hidden or an output activation.
    codes = {int(c) for c in list(HIDDEN.values()) + list(OUTPUT.values())}
    assert codes == {int(c) for c in Activation}


def test_registry_matches_kernel_codes():
    assert set(HIDDEN_ACTIVATIONS) == set(HIDDEN) | set(ALIASES)
    assert ALIASES == {"swish": "silu"}
    # The kernels' own needs: PReLU reads its learned slope at z, the others their
    # formula's z (the activations whose f' is not a function of f(z)).
    assert {"prelu", "gelu", "silu", "softplus"} <= NEEDS_Z
    assert HIDDEN_ACTIVATIONS["leaky_relu"].param == "negative_slope"
    assert HIDDEN_ACTIVATIONS["elu"].param == "elu_alpha"
    # An alias is its target in the registry and in the reference: the kernel tests
    # below run the target (ACTIVATION_NAMES).
    for alias, name in ALIASES.items():
        assert HIDDEN_ACTIVATIONS[alias] == HIDDEN_ACTIVATIONS[name]
        assert ref.HIDDEN[alias] is ref.HIDDEN[name]


def test_openmp_helpers():
    assert isinstance(_kernels.openmp_enabled(), bool)
    n = _kernels.omp_max_threads()
    assert n >= 1 and (_kernels.openmp_enabled() or n == 1)


# --------------------------------------------------------------------------------------
# Hypothesis: value strategies, the fixed examples, the element-wise comparison

# Largest |value| drawn: the sum of two stays far from overflow, and so do the products
# with the O(1) factors (activation slopes, learning rates, sample weights) below.
LIMIT = {np.float32: 1e30, np.float64: 1e300}
# A subnormal that is not the smallest one (that one is drawn too).
SUBNORMAL = {np.float32: 1e-40, np.float64: 1e-310}

# Sized for CI: the properties and their examples run in about 20 s on 2 cores; every
# test also runs its fixed examples (3 to 32), 39 cases or more in all.
SETTINGS = settings(max_examples=36, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
FEW = settings(SETTINGS, max_examples=28)  # the 44 hidden-activation cases (+ 11 examples)


def _exact(dtype, x):
    """x rounded to the dtype, as a Python float (hypothesis wants exact bounds)."""
    return float(dtype(x))


def _width(dtype):
    return 32 if dtype == np.float32 else 64


def values(dtype, limit=None):
    """Floats of the dtype in [-limit, limit]: specials (+-0.0, +-1, +-limit, subnormals,
    the smallest normal), the bend of exp / erfc / tanh, and any magnitude."""
    fi = np.finfo(dtype)
    limit = _exact(dtype, LIMIT[dtype] if limit is None else limit)
    special = [0.0, -0.0, 1.0, -1.0, limit, -limit]
    for v in (float(fi.smallest_subnormal), _exact(dtype, SUBNORMAL[dtype]), float(fi.tiny)):
        special += [v, -v]
    w = _width(dtype)
    return st.one_of(st.sampled_from(special),
                     st.floats(-40.0, 40.0, width=w),
                     st.floats(-limit, limit, width=w))


def nonnegative(dtype, lo=0.0, hi=None):
    """Floats of the dtype in [lo, hi], lo and hi included, subnormals too when lo is 0."""
    hi = _exact(dtype, LIMIT[dtype] if hi is None else hi)
    lo = _exact(dtype, lo)
    special = [v for v in (lo, hi, 1.0, float(np.finfo(dtype).smallest_subnormal),
                           _exact(dtype, SUBNORMAL[dtype])) if lo <= v <= hi]
    w = _width(dtype)
    return st.one_of(st.sampled_from(special),
                     st.floats(lo, min(hi, 40.0), width=w) if lo < min(hi, 40.0)
                     else st.just(lo),
                     st.floats(lo, hi, width=w))


def dim(hi=40):
    """A size in [1, hi] that is 1 (one row, one unit) about a third of the time."""
    return st.one_of(st.just(1), st.integers(1, hi), st.integers(2, hi))


def hyper(dtype, lo, hi, special=()):
    """A hyperparameter exact in the dtype (the kernel casts it), specials included."""
    special = [_exact(dtype, s) for s in special]
    floats = st.floats(_exact(dtype, lo), _exact(dtype, hi), width=_width(dtype))
    return st.one_of(st.sampled_from(special), floats) if special else floats


class Example:
    """The draws of one fixed case, for ``@example(data=Example(...))`` in place of
    hypothesis's ``st.data()``: ``draw(strategy, label)`` returns the value given for
    ``label``, and ``draw_array`` builds an array given as a function
    ``f(rng, dtype, shape)`` in the test's dtype (rng seeded by the label). Labels a test
    does not draw are ignored, so one example serves every activation, loss and dtype."""

    everyone = []  # every Example, for teardown_module to free their arrays

    def __init__(self, name, **draws):
        self.name = name
        self.draws = draws
        self._arrays = {}  # made once per label, dtype and shape; a copy each draw
        Example.everyone.append(self)

    def __repr__(self):
        return f"Example({self.name!r})"

    def rng(self, label):
        return np.random.default_rng(zlib.crc32(label.encode()))

    def draw(self, strategy, label):
        return self.draws[label]

    def array(self, label, dtype, shape):
        key = (label, np.dtype(dtype), shape)
        if key not in self._arrays:
            a = np.asarray(self.draws[label](self.rng(label), dtype, shape)).astype(dtype)
            assert a.shape == tuple(np.atleast_1d(shape)), (label, a.shape, shape)
            self._arrays[key] = a
        return self._arrays[key].copy()


def teardown_module():
    for case in Example.everyone:  # some 60 MB of example arrays
        case._arrays.clear()


def examples(cases):
    """``@example(data=case)`` for each of the cases, run in their order."""
    def decorate(test):
        for case in reversed(cases):
            test = example(data=case)(test)
        return test
    return decorate


# Arrays of the examples, as functions (rng, dtype, shape) -> array.
def normal(scale=1.0):
    return lambda rng, dtype, shape: scale * rng.normal(size=shape)


def uniform(low, high):
    return lambda rng, dtype, shape: rng.uniform(low, high, shape)


def ones(rng, dtype, shape):
    return np.ones(shape)


def zeros(rng, dtype, shape):
    return np.zeros(shape)


def draw_array(data, dtype, shape, elements, label):
    if isinstance(data, Example):
        return data.array(label, dtype, shape)
    return data.draw(hnp.arrays(dtype, shape, elements=elements), label=label)


def reference(fn, *args):
    """A reference computation; extreme values may overflow there (legitimately: the
    result is then compared only where it is representable), so warnings are off."""
    with np.errstate(all="ignore"):
        return fn(*args)


def hidden_reference(fn, z, p):
    """ref.HIDDEN's f or f' at z. reference.py promises finite values and no warning
    (warnings are errors here) up to |z| ~ 1e150: up to there it is held to that."""
    if np.abs(z).max(initial=0) <= 1e150:
        return fn(z, p)
    return reference(fn, z, p)


def representable(expected, dtype):
    return np.abs(expected) <= float(np.finfo(dtype).max)


def assert_matches(actual, expected, dtype, scale=0.0, rtol=None, inputs=None):
    """Elementwise, wherever the exact value ``expected`` is representable in ``dtype``:
    ``actual`` is finite and ``|actual - expected| <= rtol (|expected| + scale) + tiny``
    (scale: per-element error scale of legitimately rounded intermediates; tiny: the
    smallest normal, below which only absolute accuracy is asked). Where the exact value
    overflows the dtype, ``actual`` is the infinity of its sign, never NaN."""
    actual = np.asarray(actual)
    assert actual.dtype == dtype
    expected = np.asarray(expected, dtype=np.float64)
    rtol = RTOL[dtype] if rtol is None else rtol
    rep = representable(expected, dtype)
    a64 = actual.astype(np.float64)
    with np.errstate(all="ignore"):
        err = np.abs(a64 - expected)
    tol = rtol * (np.abs(expected) + scale) + float(np.finfo(dtype).tiny)
    bad = rep & ~(err <= tol)  # catches NaN and inf in actual too
    bad |= ~rep & ~(np.isinf(a64) & (np.sign(a64) == np.sign(expected)))
    if bad.any():
        idx = np.argwhere(bad)[:5]
        lines = [f"{int(bad.sum())} of {bad.size} elements differ ({dtype.__name__}, "
                 f"rtol={rtol:g}):"]
        for i in map(tuple, idx):
            extra = "".join(f" {k}={np.asarray(v)[i]!r}" for k, v in (inputs or {}).items()
                            if np.ndim(v) == actual.ndim)
            lines.append(f"  at {i}: actual={a64[i]!r} expected={expected[i]!r} "
                         f"tol={tol[i] if np.ndim(tol) else tol!r}{extra}")
        raise AssertionError("\n".join(lines))


# --------------------------------------------------------------------------------------
# gemm

GEMM_EXAMPLES = [
    Example(f"{m}x{n}, k=11, trans_a={ta}, trans_b={tb}, read-only={ro}", m=m, n=n, k=11,
            trans_a=ta, trans_b=tb, readonly=ro, A=normal(), B=normal(), C=normal(),
            alpha=1.5, beta=-0.5)
    for m, n in SHAPES for ta in (False, True) for tb in (False, True) for ro in (False, True)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@examples(GEMM_EXAMPLES)
@given(data=st.data())
def test_gemm(dtype, data):
    m, n, k = (data.draw(dim(24), label=s) for s in "mnk")
    trans_a, trans_b = data.draw(st.booleans(), label="trans_a"), data.draw(st.booleans(),
                                                                             label="trans_b")
    read_only = data.draw(st.booleans(), label="readonly")
    limit = 1e15 if dtype == np.float32 else 1e150  # products stay representable
    A = draw_array(data, dtype, (k, m) if trans_a else (m, k), values(dtype, limit), "A")
    B = draw_array(data, dtype, (n, k) if trans_b else (k, n), values(dtype, limit), "B")
    alpha = data.draw(hyper(dtype, -10, 10, [0.0, 1.0, -1.0]), label="alpha")
    beta = data.draw(hyper(dtype, -10, 10, [0.0, 1.0]), label="beta")
    # beta = 0: C is output only, whatever it holds (training passes np.empty buffers).
    C0 = (np.full((m, n), np.nan, dtype=dtype) if beta == 0
          else draw_array(data, dtype, (m, n), values(dtype), "C"))
    opA = (A.T if trans_a else A).astype(np.float64)
    opB = (B.T if trans_b else B).astype(np.float64)
    C0_64 = np.zeros((m, n)) if beta == 0 else C0.astype(np.float64)
    # alpha scales the exact product (alpha * A first would round subnormal entries).
    expected = alpha * (opA @ opB) + beta * C0_64
    scale = abs(alpha) * (np.abs(opA) @ np.abs(opB)) + abs(beta) * np.abs(C0_64)
    assert np.all(representable(scale, dtype))
    if read_only:
        A, B = readonly(A), readonly(B)
    C = C0.copy()
    _kernels.gemm(trans_a, trans_b, alpha, A, B, beta, C)
    assert np.all(np.isfinite(C))
    assert_matches(C, expected, dtype, scale)


# --------------------------------------------------------------------------------------
# Hidden activations

def activation_params(data, activation, m, dtype):
    """(param, slopes, p): the kernel's scalar parameter and read-only PReLU slopes (or
    None), and the reference's parameter p. Scalars follow the estimator's constraints
    (negative_slope >= 0, elu_alpha >= 0); learned PReLU slopes may be negative."""
    w = _width(dtype)
    if activation == "prelu":
        slopes = draw_array(data, dtype, m, st.one_of(st.just(0.0), st.floats(-2, 2, width=w)),
                            "slopes")
        return 0.0, readonly(slopes), slopes.astype(np.float64)
    if HIDDEN_ACTIVATIONS[activation].param:
        p = data.draw(st.one_of(st.sampled_from([0.0, 0.01, 1.0]), st.floats(0, 5, width=w)),
                      label=f"{activation}_param")
        return p, None, p
    return 0.0, None, 0.0


def extreme_rows(rng, dtype, shape):
    """Pre-activations at which exp, expm1, erf and log1p overflow, underflow or lose
    precision, and the smallest subnormal of the dtype: two rows, in both orders."""
    tiny = float(np.finfo(dtype).smallest_subnormal)
    v = [1e4, 1e3, 80.0, 1e-30, tiny]
    row = np.array(v + [0.0] + [-x for x in v], dtype=dtype)
    return np.stack([row, row[::-1]])


# Largest |z| for which every output activation is finite: exp(z) fits in the dtype.
BIG = {np.float32: 80.0, np.float64: 700.0}


def large_logits(rng, dtype, shape):
    big = BIG[dtype]
    return np.array([[big, -big, 0.0, big - 1],
                     [-big, -big, -big, -big],
                     [big, big, big, -big]], dtype=dtype)


# The scalar parameter of the parametrised activations, not their defaults, so that a
# kernel ignoring it is caught; PReLU slopes of both signs (learned slopes are not
# constrained).
ACTIVATION_DRAWS = dict(leaky_relu_param=ACT_PARAMS["leaky_relu"],
                        elu_param=ACT_PARAMS["elu"], slopes=uniform(-0.5, 1.0))
FORWARD_EXAMPLES = (
    [Example(f"{n}x{m}, in place={p}", n=n, m=m, Z0=normal(3), b=normal(), in_place=p,
             **ACTIVATION_DRAWS) for n, m in SHAPES for p in (False, True)]
    + [Example(f"extreme, in place={p}", n=2, m=11, Z0=extreme_rows, b=zeros, in_place=p,
               **ACTIVATION_DRAWS) for p in (False, True)]
    + [Example("largest logits, in place", n=3, m=4, Z0=large_logits, b=zeros,
               in_place=True, **ACTIVATION_DRAWS)])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@FEW
@examples(FORWARD_EXAMPLES)
@given(data=st.data())
def test_bias_activation_forward(activation, dtype, data):
    """A = f(Z + b), in place (A aliasing Z) or into a separate A."""
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    Z0 = draw_array(data, dtype, (n, m), values(dtype), "Z0")
    b = draw_array(data, dtype, m, values(dtype), "b")
    param, slopes, p = activation_params(data, activation, m, dtype)
    entry = HIDDEN_ACTIVATIONS[activation]
    # In place is how training runs the activations whose f' needs only A; the others
    # (entry.needs_z) keep Z + b for the backward pass, but may run in place too.
    in_place = data.draw(st.booleans(), label="in_place")

    z = reference(np.add, Z0, b)  # rounded in the dtype, as the kernel adds
    assert np.all(np.isfinite(z))  # the domain: no input overflow
    expected = hidden_reference(ref.HIDDEN[activation][0], z.astype(np.float64), p)
    # Every hidden activation is finite and representable for every input in the domain
    # (softplus(1e30) = 1e30, logistic(-1e30) = 0, elu(-1e30) = -alpha, ...): the kernel
    # must then be finite everywhere.
    assert np.all(representable(expected, dtype))

    Z = Z0.copy()
    A = Z if in_place else np.full_like(Z, np.nan)
    _kernels.bias_activation_forward(Z, readonly(b), A, entry.code, param, slopes,
                                     n_threads=2)
    assert np.all(np.isfinite(A))
    assert_matches(A, expected, dtype, inputs={"z": z})
    if not in_place:
        assert np.array_equal(Z, z)  # Z keeps Z + b, exactly


BACKWARD_EXAMPLES = (
    [Example(f"{n}x{m}, D in place, Z is A={za}", n=n, m=m, Z=normal(3), dA=normal(),
             z_is_a=za, in_place=True, **ACTIVATION_DRAWS)
     for n, m in SHAPES for za in (False, True)]
    + [Example(f"{LARGE[0]}x{LARGE[1]}, separate dA", n=LARGE[0], m=LARGE[1], Z=normal(3),
               dA=normal(), z_is_a=False, in_place=False, **ACTIVATION_DRAWS)]
    + [Example(f"extreme, Z is A={za}", n=2, m=11, Z=extreme_rows, dA=ones, z_is_a=za,
               in_place=True, **ACTIVATION_DRAWS) for za in (False, True)])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@FEW
@examples(BACKWARD_EXAMPLES)
@given(data=st.data())
def test_activation_backward(activation, dtype, data):
    """D = dA * f'(Z), from Z, or from A where f' needs only A (Z aliasing A)."""
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    Z = draw_array(data, dtype, (n, m), values(dtype), "Z")
    dA = draw_array(data, dtype, (n, m), values(dtype), "dA")
    param, slopes, p = activation_params(data, activation, m, dtype)
    entry = HIDDEN_ACTIVATIONS[activation]
    # Z aliasing A is how training calls the activations whose f' needs only A.
    z_is_a = not entry.needs_z and data.draw(st.booleans(), label="z_is_a")
    in_place = data.draw(st.booleans(), label="in_place")  # D is dA itself

    # A as training computes it: the kernel's own forward pass (zero bias).
    A = np.full_like(Z, np.nan)
    _kernels.bias_activation_forward(Z, readonly(np.zeros(m, dtype=dtype)), A, entry.code,
                                     param, slopes, n_threads=2)
    z = Z.astype(np.float64)
    derivative = hidden_reference(ref.HIDDEN[activation][1], z, p)
    expected = reference(np.multiply, dA.astype(np.float64), derivative)
    assert np.all(representable(expected, dtype))  # |f'| <= 5 and |dA| <= LIMIT

    if in_place:
        D, kwargs = dA.copy(), {}
    else:
        D, kwargs = np.full_like(dA, np.nan), {"dA": readonly(dA)}
    _kernels.activation_backward(D, readonly(A if z_is_a else Z), readonly(A), entry.code,
                                 param, slopes, n_threads=2, **kwargs)
    assert np.all(np.isfinite(D))
    # f' computed from the rounded output (a (1 - a), 1 - a^2, a + alpha) is accurate to
    # RTOL in absolute terms, not relative: an error scale of |dA|.
    assert_matches(D, expected, dtype, np.abs(dA.astype(np.float64)),
                   inputs={"z": Z, "a": A, "dA": dA})
    if isinstance(data, Example):
        assert_close(D, expected, dtype)


# --------------------------------------------------------------------------------------
# Output activations

OUTPUT_EXAMPLES = (
    [Example(f"{n}x{m}", n=n, m=m, Z0=normal(3), b=normal()) for n, m in SHAPES]
    + [Example("largest logits", n=3, m=4, Z0=large_logits, b=zeros)])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("out_activation", OUTPUT_ACTIVATIONS)
@SETTINGS
@examples(OUTPUT_EXAMPLES)
@given(data=st.data())
def test_bias_output_forward(out_activation, dtype, data):
    """Z = g(Z + b) in place, on logits up to LIMIT."""
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    Z0 = draw_array(data, dtype, (n, m), values(dtype), "Z0")
    b = draw_array(data, dtype, m, values(dtype), "b")
    z = reference(np.add, Z0, b)
    assert np.all(np.isfinite(z))
    if np.abs(z).max() <= BIG[dtype]:  # every output finite: the reference warns nothing
        expected = ref.OUTPUT[out_activation](z.astype(np.float64))
    else:
        expected = reference(ref.OUTPUT[out_activation], z.astype(np.float64))
    if out_activation != "exp":  # exp(z) overflows legitimately: inf expected there
        assert np.all(representable(expected, dtype))

    Z = Z0.copy()
    _kernels.bias_output_forward(Z, readonly(b), OUTPUT_ACTIVATIONS[out_activation],
                                 n_threads=2)
    assert_matches(Z, expected, dtype, inputs={"z": z})
    assert not np.any(np.isnan(Z))
    if out_activation in ("softmax", "logistic"):
        assert np.all(np.isfinite(Z)) and np.all((Z >= 0) & (Z <= 1))
    if out_activation == "softmax":
        # Rows sum to 1 even when logits differ by 1e30 (or 1e300).
        np.testing.assert_allclose(Z.astype(np.float64).sum(axis=1), 1,
                                   rtol=RTOL[dtype] * m)
    if out_activation == "exp":
        assert np.all(Z >= 0)


# --------------------------------------------------------------------------------------
# Losses and the output delta

def probabilities(dtype):
    """Probabilities including exact 0 and 1 and values inside the clipping margin."""
    eps = float(np.finfo(dtype).eps)
    special = [0.0, 1.0, eps, eps / 2, 1 - eps, _exact(dtype, 1 - eps / 2),
               float(np.finfo(dtype).smallest_subnormal), _exact(dtype, SUBNORMAL[dtype])]
    return st.one_of(st.sampled_from(special), st.floats(0, 1, width=_width(dtype)))


def typical_predictions(loss, shape, dtype, rng):
    """(P, Y) in the domain of `loss`, with the output activation that goes with it."""
    n, m = shape
    Z = rng.normal(size=shape)
    if loss == "squared_error":
        P, Y = Z, rng.normal(size=shape)
    elif loss == "poisson":
        P, Y = np.exp(Z), rng.poisson(1.0, size=shape).astype(np.float64)
    elif loss == "log_loss":
        P, Y = ref.OUTPUT["softmax"](Z), np.eye(m)[rng.integers(0, m, n)]
    else:
        P, Y = ref.OUTPUT["logistic"](Z), (rng.random(shape) < 0.5).astype(np.float64)
    return P.astype(dtype), Y.astype(dtype)


def certain_probabilities(loss, shape, dtype, rng):
    """Probabilities of exactly 0 and 1, on both the right and the wrong class, for the
    log losses (which clip them); typical predictions of the others."""
    if loss not in ("log_loss", "binary_log_loss"):
        return typical_predictions(loss, shape, dtype, rng)
    P = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]], dtype=dtype)
    Y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=dtype)
    return P, Y


def loss_inputs(data, loss, dtype, n, m):
    """(P, Y) in the domain of the loss."""
    if isinstance(data, Example):
        return data.draws["predictions"](loss, (n, m), dtype, data.rng("predictions"))
    w = _width(dtype)
    if loss == "squared_error":
        # Squares are summed in double: 1e150 keeps the float64 total finite.
        limit = LIMIT[np.float32] if dtype == np.float32 else 1e150
        return (draw_array(data, dtype, (n, m), values(dtype, limit), "P"),
                draw_array(data, dtype, (n, m), values(dtype, limit), "Y"))
    if loss == "poisson":
        # Subnormal predictions (exp below -708) and tiny targets included.
        p_min = float(np.finfo(dtype).smallest_subnormal)
        P = draw_array(data, dtype, (n, m), nonnegative(dtype, p_min), "P")
        y_min = 0.0
        counts = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 5.0]),
                           st.floats(y_min, 1e6, width=w))
        return P, draw_array(data, dtype, (n, m), counts, "Y")
    P = draw_array(data, dtype, (n, m), probabilities(dtype), "P")
    if loss == "log_loss":
        classes = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, m - 1)),
                            label="classes")
        return P, np.eye(m, dtype=dtype)[classes]
    # Binary or multilabel targets, and soft labels.
    labels = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1, width=w))
    return P, draw_array(data, dtype, (n, m), labels, "Y")


def sample_weights(data, dtype, n):
    sw = draw_array(data, dtype, n, nonnegative(dtype, 0.0, 10.0), "sw")
    assume(sw.astype(np.float64).sum() > 1e-3)
    return sw


LOSS_EXAMPLES = (
    [Example(f"{n}x{m}, weighted={w}", n=n, m=m, predictions=typical_predictions,
             sw=uniform(0.5, 2.0) if w else ones) for n, m in SHAPES for w in (False, True)]
    + [Example("probabilities 0 and 1", n=3, m=3, predictions=certain_probabilities,
               sw=lambda rng, dtype, shape: [1.0, 2.0, 0.5])])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("loss", LOSSES)
@SETTINGS
@examples(LOSS_EXAMPLES)
@given(data=st.data())
def test_loss_value(loss, dtype, data):
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    P, Y = loss_inputs(data, loss, dtype, n, m)
    sw = sample_weights(data, dtype, n)
    value = _kernels.loss_value(readonly(P), readonly(Y), readonly(sw), LOSSES[loss],
                                float(np.finfo(dtype).eps))
    # The fixed examples are in the reference's domain without warnings.
    expected = (ref.LOSSES[loss](Y, P, sw) if isinstance(data, Example)
                else reference(ref.LOSSES[loss], Y, P, sw))
    # Probabilities of exactly 0 and 1 are clipped: every loss is finite on its domain.
    assert np.isfinite(expected)
    assert np.isfinite(value)
    scale = 0.0
    if loss == "poisson":
        # (p - y) + y (log y - log p) cancels: error relative to the size of its terms.
        P64, Y64 = P.astype(np.float64), Y.astype(np.float64)
        terms = reference(lambda: np.abs(P64) + Y64 + np.abs(ref._xlogy(Y64, Y64))
                          + np.abs(ref._xlogy(Y64, P64)))
        scale = float((terms.sum(axis=1) * sw).sum() / sw.astype(np.float64).sum())
    # The kernel accumulates in double whatever the dtype: double precision tolerance.
    rtol = 10 * RTOL[np.float64]
    assert abs(value - expected) <= rtol * (abs(expected) + scale), (value, expected)
    if isinstance(data, Example):
        np.testing.assert_allclose(value, expected, rtol=RTOL[dtype])


OUTPUT_DELTA_EXAMPLES = [Example(f"{n}x{m}", n=n, m=m, P=normal(), Y=normal(),
                                 sw=uniform(0.5, 2.0)) for n, m in SHAPES]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@examples(OUTPUT_DELTA_EXAMPLES)
@given(data=st.data())
def test_output_delta(dtype, data):
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    P = draw_array(data, dtype, (n, m), values(dtype), "P")
    Y = draw_array(data, dtype, (n, m), values(dtype), "Y")
    sw = draw_array(data, dtype, n, nonnegative(dtype, 0.0, 10.0), "sw")
    D = np.full((n, m), np.nan, dtype=dtype)
    _kernels.output_delta(readonly(P), readonly(Y), readonly(sw), D, n_threads=2)
    # (P - Y) is rounded once in the dtype, then multiplied: no cancellation beyond it.
    expected = (P.astype(np.float64) - Y) * sw.astype(np.float64)[:, None]
    assert np.all(representable(expected, dtype))
    assert np.all(np.isfinite(D))
    assert_matches(D, expected, dtype, inputs={"P": P, "Y": Y})


# --------------------------------------------------------------------------------------
# Reductions

COLUMN_SUM_EXAMPLES = [Example(f"{n}x{m}, accumulate={acc}", n=n, m=m, D=normal(),
                               out=normal(), accumulate=acc)
                       for n, m in SHAPES for acc in (False, True)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@examples(COLUMN_SUM_EXAMPLES)
@given(data=st.data())
def test_column_sum(dtype, data):
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    D = draw_array(data, dtype, (n, m), values(dtype), "D")
    accumulate = data.draw(st.booleans(), label="accumulate")
    out0 = draw_array(data, dtype, m, values(dtype), "out")
    out = out0.copy() if accumulate else np.full(m, np.nan, dtype=dtype)
    _kernels.column_sum(readonly(D), out, accumulate)
    D64 = D.astype(np.float64)
    expected = D64.sum(axis=0) + (out0 if accumulate else 0)
    # Summed in the dtype, row by row: error relative to the sum of magnitudes.
    scale = (n + 1) * (np.abs(D64).sum(axis=0) + (np.abs(out0) if accumulate else 0))
    assert_matches(out, expected, dtype, scale)
    if isinstance(data, Example):
        assert_close(out, expected, dtype, (np.abs(D64).sum(axis=0) + np.abs(out0)).max())


# --------------------------------------------------------------------------------------
# Optimizer updates

SIZES = [1, 7 * 13, LARGE[0] * LARGE[1]]
SGD_EXAMPLES = [Example(f"size {size}, nesterov={nesterov}", size=size, params=normal(),
                        grads=normal(), velocity=normal(), lr=0.1, momentum=0.9,
                        nesterov=nesterov)
                for size in SIZES for nesterov in (False, True)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@examples(SGD_EXAMPLES)
@given(data=st.data())
def test_sgd_update(dtype, data):
    size = data.draw(dim(300), label="size")
    params0 = draw_array(data, dtype, size, values(dtype), "params")
    grads = draw_array(data, dtype, size, values(dtype), "grads")
    velocity0 = draw_array(data, dtype, size, values(dtype), "velocity")
    lr = data.draw(hyper(dtype, 1e-6, 10.0, [1e-3, 0.1, 1.0]), label="lr")
    momentum = data.draw(hyper(dtype, 0.0, 1.0, [0.0, 0.9, 1.0]), label="momentum")
    nesterov = data.draw(st.booleans(), label="nesterov")

    params, velocity = params0.copy(), velocity0.copy()
    _kernels.sgd_update(params, readonly(grads), velocity, lr, momentum, nesterov,
                        n_threads=2)
    p, g, v = (a.astype(np.float64) for a in (params0, grads, velocity0))
    expected_p, expected_v = ref.sgd_update(p, g, v, lr, momentum, nesterov)
    # Error scales: the terms that cancel in momentum * v - lr * g and in p + update.
    v_scale = momentum * np.abs(v) + lr * np.abs(g)
    p_scale = np.abs(p) + (1 + momentum) * v_scale + lr * np.abs(g)
    assert np.all(representable(expected_p, dtype) & representable(expected_v, dtype))
    assert_matches(velocity, expected_v, dtype, v_scale, inputs={"g": g, "v": v})
    assert_matches(params, expected_p, dtype, p_scale, inputs={"p": p, "g": g, "v": v})
    if isinstance(data, Example):
        assert_close(velocity, expected_v, dtype)
        assert_close(params, expected_p, dtype)


ADAM_EXAMPLES = [Example(f"size {size}", size=size, params=normal(), grads=normal(),
                         m=normal(), v=uniform(0, 2),
                         lr_t=ref.adam_learning_rate(1e-3, 0.9, 0.999, 3),
                         beta_1=0.9, beta_2=0.999, epsilon=1e-8) for size in SIZES]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@examples(ADAM_EXAMPLES)
@given(data=st.data())
def test_adam_update(dtype, data):
    # Gradients and first moments bounded so that g^2 (the second moment) is
    # representable in the dtype: beyond it v overflows legitimately.
    limit = 1e18 if dtype == np.float32 else 1e150
    size = data.draw(dim(300), label="size")
    params0 = draw_array(data, dtype, size, values(dtype), "params")
    grads = draw_array(data, dtype, size, values(dtype, limit), "grads")
    m0 = draw_array(data, dtype, size, values(dtype, limit), "m")
    v0 = draw_array(data, dtype, size, nonnegative(dtype, 0.0, limit**2), "v")
    lr_t = data.draw(hyper(dtype, 1e-6, 1.0, [1e-3]), label="lr_t")
    beta_1 = data.draw(hyper(dtype, 0.0, 0.999, [0.0, 0.9]), label="beta_1")
    beta_2 = data.draw(hyper(dtype, 0.0, 0.99999, [0.0, 0.999]), label="beta_2")
    epsilon = data.draw(hyper(dtype, 1e-12, 1e-2, [1e-8]), label="epsilon")

    params, m, v = params0.copy(), m0.copy(), v0.copy()
    _kernels.adam_update(params, readonly(grads), m, v, lr_t, beta_1, beta_2, epsilon,
                         n_threads=2)
    p, g, m64, v64 = (a.astype(np.float64) for a in (params0, grads, m0, v0))
    expected_p, expected_m, expected_v = ref.adam_update(p, g, m64, v64, lr_t, beta_1,
                                                         beta_2, epsilon)
    rtol = RTOL[dtype]
    m_scale = beta_1 * np.abs(m64) + (1 - beta_1) * np.abs(g)
    # The step is (-lr_t * m) / (sqrt(v) + epsilon), in the dtype and in scikit-learn's
    # order: -lr_t * m rounds like m, and in the subnormal range to an absolute
    # smallest_subnormal, which the division by sqrt(v) + epsilon then magnifies.
    ulp = float(np.finfo(dtype).smallest_subnormal) / rtol
    step_scale = (lr_t * m_scale + ulp) / (np.sqrt(expected_v) + epsilon)
    for want in (expected_p, expected_m, expected_v):
        assert np.all(representable(want, dtype))
    assert_matches(m, expected_m, dtype, m_scale, inputs={"g": g, "m": m64})
    assert_matches(v, expected_v, dtype, inputs={"g": g, "v": v64})
    assert_matches(params, expected_p, dtype, np.abs(p) + 2 * step_scale,
                   inputs={"p": p, "g": g, "m": m64, "v": v64})
    if isinstance(data, Example):
        for actual, want in zip((params, m, v), (expected_p, expected_m, expected_v)):
            assert_close(actual, want, dtype)


# --------------------------------------------------------------------------------------
# Gradient post-processing

def weights_with_zeros(n_coefs):
    """Normal weights with every 7th of the first n_coefs 0 (sign(0) = 0: no L1 term)."""
    def make(rng, dtype, shape):
        W = rng.normal(size=shape)
        W[:n_coefs:7] = 0
        return W
    return make


FINALIZE_EXAMPLES = [Example(f"size {size}, l1={l1}", size=size, n_coefs=size - size // 3,
                             G=normal(), params=weights_with_zeros(size - size // 3),
                             alpha=0.2, l1=l1, sw_sum=3.5)
                     for size in SIZES for l1 in (0.0, 0.3)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@examples(FINALIZE_EXAMPLES)
@given(data=st.data())
def test_finalize_gradient(dtype, data):
    size = data.draw(dim(300), label="size")
    n_coefs = data.draw(st.integers(0, size), label="n_coefs")
    G0 = draw_array(data, dtype, size, values(dtype), "G")
    params = draw_array(data, dtype, size, values(dtype), "params")
    alpha = data.draw(hyper(dtype, 0, 10, [0.0, 1e-4]), label="alpha")
    l1 = data.draw(hyper(dtype, 0, 10, [0.0, 1e-3]), label="l1")
    sw_sum = data.draw(hyper(dtype, 1e-3, 1e6, [1.0]), label="sw_sum")
    G = G0.copy()
    _kernels.finalize_gradient(G, readonly(params), n_coefs, alpha, l1, sw_sum, n_threads=2)
    expected = ref.finalize_gradient(G0, params, n_coefs, alpha, l1, sw_sum)
    is_coef = np.arange(size) < n_coefs
    scale = np.where(is_coef, np.abs(G0) + alpha * np.abs(params) + l1, 0) / sw_sum
    assert np.all(representable(expected, dtype))
    assert_matches(G, expected, dtype, scale, inputs={"G": G0, "W": params})
    # Intercepts and slopes are only divided, in the dtype: exactly NumPy's quotient.
    assert np.array_equal(G[n_coefs:], G0[n_coefs:] / dtype(sw_sum))
    if isinstance(data, Example):
        assert_close(G, expected, dtype)


def true_norm(G):
    """||G|| without overflow or underflow of the squares (scaled by max |g|)."""
    G = G.astype(np.float64)
    s = np.abs(G).max()
    return 0.0 if s == 0 else float(s * np.sqrt(np.sum((G / s) ** 2)))


CLIP_EXAMPLES = (
    [Example(f"size {size}, clipped={clipped}", size=size, G=normal(), relative=True,
             factor=0.5 if clipped else 2.0) for size in SIZES for clipped in (False, True)]
    + [Example("zero gradient", size=7, G=zeros, max_norm=1.0)])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@examples(CLIP_EXAMPLES)
@given(data=st.data())
def test_clip_by_norm(dtype, data):
    # Any magnitude: the norm is summed relative to max |g| when the plain squares
    # would over- or underflow.
    size = data.draw(dim(200), label="size")
    G0 = draw_array(data, dtype, size, values(dtype), "G")
    norm = true_norm(G0)
    if norm > 0 and data.draw(st.booleans(), label="relative"):
        max_norm = norm * data.draw(st.floats(0.1, 10), label="factor")
    else:
        max_norm = data.draw(st.floats(1e-3, 1e3), label="max_norm")
    G = G0.copy()
    got = _kernels.clip_by_norm(G, max_norm)
    assert np.isfinite(got)
    np.testing.assert_allclose(got, norm, rtol=10 * RTOL[np.float64], atol=0)
    if norm > max_norm:
        expected = G0.astype(np.float64) * (max_norm / norm)
        assert_matches(G, expected, dtype, inputs={"G": G0})
    elif norm < max_norm * (1 - 1e-9):  # clearly below the threshold: untouched
        assert np.array_equal(G, G0)
    if isinstance(data, Example):
        expected, expected_norm = ref.clip_by_norm(G0, max_norm)
        np.testing.assert_allclose(got, expected_norm, rtol=RTOL[dtype])
        if expected_norm > max_norm:  # clipped to max_norm
            np.testing.assert_allclose(np.linalg.norm(G.astype(np.float64)), max_norm,
                                       rtol=RTOL[dtype])


# --------------------------------------------------------------------------------------
# Dropout

DROPOUT_SHAPE = (200, 500)  # 1e5 elements: above MIN_PARALLEL_SIZE


def nonzero(rng, dtype, shape):
    """Values bounded away from 0, so that D != 0 identifies the kept elements."""
    signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return signs * rng.uniform(0.5, 2.0, shape)


def run_dropout(A, rate, seed, stream, row0=0, n_threads=2):
    D = np.full(A.shape, np.nan, dtype=A.dtype)
    _kernels.dropout(D, A, rate, seed, stream, row0, n_threads)
    return D


DROPOUT_EXAMPLES = (
    [Example(f"{DROPOUT_SHAPE}, rate {rate}", n=DROPOUT_SHAPE[0], m=DROPOUT_SHAPE[1],
             A=nonzero, rate=rate, seed=2024, stream=5, row0=0)
     for rate in (0.1, 0.3, 0.5, 0.8)]
    + [Example("rate 0 keeps everything", n=7, m=13, A=nonzero, rate=0.0, seed=1,
               stream=2, row0=0)])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@examples(DROPOUT_EXAMPLES)
@given(data=st.data())
def test_dropout(dtype, data):
    """Inverted dropout keeps element (i, j) iff the splitmix64 draw u >= rate, and
    scales it by 1 / (1 - rate) in the dtype; the same on 1 or 2 threads and in place
    (the backward pass)."""
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    A = readonly(draw_array(data, dtype, (n, m), values(dtype), "A"))
    rate = data.draw(st.one_of(st.just(0.0), st.floats(0, 0.95)), label="rate")
    seed = data.draw(st.integers(0, 2**64 - 1), label="seed")
    stream = data.draw(st.integers(0, 2**64 - 1), label="stream")
    row0 = data.draw(st.integers(0, 10**6), label="row0")
    D = run_dropout(A, rate, seed, stream, row0)
    kept = ref.dropout_mask((n, m), rate, seed, stream, row0)
    scale = dtype(1.0 / (1.0 - rate))
    assert np.array_equal(D[kept], A[kept] * scale)
    assert np.all(D[~kept] == 0)
    assert np.array_equal(run_dropout(A, rate, seed, stream, row0, n_threads=1), D)
    in_place = np.array(A)
    _kernels.dropout(in_place, in_place, rate, seed, stream, row0, 2)
    assert np.array_equal(in_place, D)
    if isinstance(data, Example):  # nonzero A: D != 0 is the mask
        assert abs(kept.mean() - (1 - rate)) < 0.02
        np.testing.assert_allclose(D[kept], A[kept].astype(np.float64) / (1 - rate),
                                   rtol=np.finfo(dtype).eps)
        # The other dtype draws the same mask.
        other = np.float64 if dtype == np.float32 else np.float32
        assert np.array_equal(run_dropout(A.astype(other), rate, seed, stream, row0) != 0,
                              kept)


def nonzero_values(rng, shape, dtype):
    """Read-only values bounded away from 0 (see nonzero), in the dtype."""
    return readonly(nonzero(rng, dtype, shape).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_streams_and_seeds(dtype):
    rng = np.random.default_rng(21)
    A = nonzero_values(rng, DROPOUT_SHAPE, dtype)
    rate = 0.5
    base = run_dropout(A, rate, 7, 3) != 0
    assert np.array_equal(run_dropout(A, rate, 7, 3) != 0, base)  # deterministic
    # Independent masks disagree on 2 r (1 - r) of the elements.
    for seed, stream in [(7, 4), (8, 3), (7, 3 + 2**40)]:
        other = run_dropout(A, rate, seed, stream) != 0
        assert abs((other != base).mean() - 2 * rate * (1 - rate)) < 0.02, (seed, stream)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_row_offset(dtype):
    rng = np.random.default_rng(22)
    A = nonzero_values(rng, (37, 11), dtype)
    full = run_dropout(A, 0.4, 5, 6, row0=0)
    tail = run_dropout(readonly(A[5:]), 0.4, 5, 6, row0=5)
    assert np.array_equal(tail, full[5:])
    assert not np.array_equal(run_dropout(readonly(A[5:]), 0.4, 5, 6, row0=0), full[5:])


# --------------------------------------------------------------------------------------
# PReLU slope gradient (activation_backward's optional output)

def activation_args(activation, n_units, dtype, rng):
    """(param, slopes, p): the kernel's scalar parameter and read-only PReLU slopes (or
    None), and the reference's parameter p."""
    if activation == "prelu":
        # Some slopes negative: learned slopes are not constrained.
        slopes = readonly(rng.uniform(-0.5, 1.0, n_units).astype(dtype))
        return 0.0, slopes, slopes.astype(np.float64)
    p = ACT_PARAMS.get(activation, 0.0)
    return p, None, p


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_slope_gradient(dtype, shape, accumulate):
    rng = np.random.default_rng(15)
    param, slopes, p = activation_args("prelu", shape[1], dtype, rng)
    Z = (3 * rng.normal(size=shape)).astype(dtype)
    Z[0, 0] = 0  # z = 0 counts as the negative side, and contributes 0
    A = ref.HIDDEN["prelu"][0](Z.astype(np.float64), p).astype(dtype)
    D0 = rng.normal(size=shape).astype(dtype)
    G0 = rng.normal(size=shape[1]).astype(dtype)
    G = G0.copy() if accumulate else np.full(shape[1], np.nan, dtype=dtype)
    D = D0.copy()
    _kernels.activation_backward(D, readonly(Z), readonly(A), Activation.PRELU, 0.0, slopes,
                                 G, accumulate, n_threads=2)
    terms = D0.astype(np.float64) * np.minimum(Z, 0)  # dL/dA * z where z <= 0
    expected = terms.sum(axis=0) + (G0 if accumulate else 0)
    assert_close(G, expected, dtype, (np.abs(terms).sum(axis=0) + np.abs(G0)).max())
    assert_close(D, D0 * ref.HIDDEN["prelu"][1](Z.astype(np.float64), p), dtype)


# --------------------------------------------------------------------------------------
# Sparse first layer and reductions

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_matmul(dtype, shape):
    rng = np.random.default_rng(6)
    n, m = shape
    X = random_csr(rng, n, N_FEATURES, dtype)
    W = readonly(rng.normal(size=(N_FEATURES, m)).astype(dtype))
    Z = np.full(shape, np.nan, dtype=dtype)
    _kernels.csr_matmul(*csr_arrays(X), W, Z, n_threads=2)
    X64 = X.toarray().astype(np.float64)
    assert_close(Z, X64 @ W, dtype, (np.abs(X64) @ np.abs(W)).max())


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_t_matmul(dtype, shape, accumulate):
    rng = np.random.default_rng(7)
    n, m = shape
    X = random_csr(rng, n, N_FEATURES, dtype)
    D = readonly(rng.normal(size=shape).astype(dtype))
    G0 = rng.normal(size=(N_FEATURES, m)).astype(dtype)
    G = G0.copy() if accumulate else np.full((N_FEATURES, m), np.nan, dtype=dtype)
    _kernels.csr_t_matmul(*csr_arrays(X), D, G, accumulate, n_threads=2)
    X64 = X.toarray().astype(np.float64)
    expected = X64.T @ D + (G0 if accumulate else 0)
    assert_close(G, expected, dtype, (np.abs(X64.T) @ np.abs(D) + np.abs(G0)).max())


# --------------------------------------------------------------------------------------
# Whole network

def kernel_input(X, dtype):
    """X as the kernels take it (an Input over read-only arrays)."""
    if sp.issparse(X):
        return _kernels.Input.csr(*csr_arrays(X), X.shape[1])
    return _kernels.Input.dense(readonly(X))


def make_network(activation, out_activation, dtype, units, rng, dropout=None):
    """activation: one name for every hidden layer, or one per hidden layer."""
    names = ([activation] * (len(units) - 2) if isinstance(activation, str)
             else list(activation))
    layout = NetworkLayout(units, names, out_activation,
                           [ACT_PARAMS.get(a, 0.0) for a in names], dropout)
    flat = (0.5 * rng.normal(size=layout.n_params)).astype(dtype)
    return layout, readonly(flat)


def reference_params(layout, flat):
    """coefs, intercepts and the keyword arguments of ref.forward_pass / ref.backprop."""
    coefs, intercepts, slopes = layout.views(flat)[:3]
    return coefs, intercepts, dict(act_params=layout.act_params, slopes=slopes)


def run_forward(layout, flat, X, chunk, n_threads):
    ws = layout.workspace(chunk, flat.dtype)
    out = np.full((X.shape[0], layout.n_outputs), np.nan, dtype=flat.dtype)
    _kernels.forward(flat, ws, kernel_input(X, flat.dtype), out, n_threads)
    return out


# Per-layer activations: each kernel reads its own layer's code, parameter and slopes.
MIXED = [("prelu", "gelu"), ("selu", "leaky_relu"), ("softplus", "elu"), ("elu", "prelu")]


@pytest.mark.parametrize("chunk", [30, 7])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("out_activation", OUTPUT)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(HIDDEN) + MIXED)
def test_forward(activation, dtype, out_activation, sparse, chunk):
    rng = np.random.default_rng(11)
    layout, flat = make_network(activation, out_activation, dtype, [N_FEATURES, 9, 5, 3], rng)
    X = random_csr(rng, 30, N_FEATURES, dtype)
    out = run_forward(layout, flat, X if sparse else X.toarray(), chunk, 2)
    coefs, intercepts, kwargs = reference_params(layout, flat)
    _, A = ref.forward_pass(coefs, intercepts, X, layout.activations, out_activation, **kwargs)
    assert_close(out, A[-1], dtype)


def test_forward_ignores_dropout_in_predict_mode():
    rng = np.random.default_rng(17)
    layout, flat = make_network(("prelu", "gelu"), "softmax", np.float64,
                                [N_FEATURES, 9, 5, 3], rng, dropout=[0.5, 0.5])
    X = random_csr(rng, 30, N_FEATURES, np.float64).toarray()
    out = _inference.forward(layout, flat, X, n_threads=2)
    coefs, intercepts, kwargs = reference_params(layout, flat)
    _, A = ref.forward_pass(coefs, intercepts, X, layout.activations, "softmax", **kwargs)
    assert_close(out, A[-1], np.float64)


def run_forward_small(layout, flat, X, n_threads):
    ws = layout.workspace(_kernels.SMALL_ROWS_MAX, flat.dtype)
    ws.acts.fill(np.nan)
    out = np.full((X.shape[0], layout.n_outputs), np.nan, dtype=flat.dtype)
    _kernels.forward_small(flat, ws, kernel_input(X, flat.dtype), out, n_threads)
    return out


# Widths around the column tile and block sizes: a thread with no columns (3 units on two
# threads), a partial tile, several tiles and a remainder; feature counts not multiple of 4.
SMALL_UNITS = [[7, 3, 2], [N_FEATURES, 9, 5, 3], [21, 70, 33, 4], [130, 300, 5]]


@pytest.mark.parametrize("out_activation", OUTPUT)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(HIDDEN) + MIXED[:2])
def test_forward_small(activation, dtype, out_activation):
    # The few-rows path (column split, no BLAS) against the NumPy reference.
    rng = np.random.default_rng(23)
    for units in SMALL_UNITS:
        names = activation
        if not isinstance(activation, str):
            names = (activation * 2)[:len(units) - 2]
        layout, flat = make_network(names, out_activation, dtype, units, rng)
        # Fan-in scaling keeps the wide layers' outputs (and exp's) well conditioned.
        flat = readonly(flat * dtype(min(1.0, 4 / np.sqrt(max(units[:-1])))))
        coefs, intercepts, kwargs = reference_params(layout, flat)
        for n_rows in (1, 3, _kernels.SMALL_ROWS_MAX):
            X = rng.normal(size=(n_rows, units[0])).astype(dtype)
            _, A = ref.forward_pass(coefs, intercepts, X, layout.activations, out_activation,
                                    **kwargs)
            one_thread = run_forward_small(layout, flat, X, 1)
            assert_close(one_thread, A[-1], dtype)
            for n_threads in (2, 3):
                # Each column is summed in the same order whichever thread computes it.
                out = run_forward_small(layout, flat, X, n_threads)
                np.testing.assert_array_equal(out, one_thread)


def test_forward_small_rejects_too_many_rows():
    rng = np.random.default_rng(24)
    layout, flat = make_network("relu", "softmax", np.float64, [4, 5, 3], rng)
    X = np.zeros((_kernels.SMALL_ROWS_MAX + 1, 4))
    with pytest.raises(ValueError, match="at most"):
        run_forward_small(layout, flat, X, 1)


def test_forward_small_and_chunked_forward_agree():
    # predict(X[i:i+1]) and predict(X)[i] take different kernels; they agree to rounding.
    rng = np.random.default_rng(25)
    layout, flat = make_network("relu", "softmax", np.float64, [50, 300, 40, 6], rng)
    X = rng.normal(size=(12, 50))
    whole = _inference.forward(layout, flat, X, n_threads=2)
    for i in range(0, 12, 3):
        part = _inference.forward(layout, flat, np.ascontiguousarray(X[i:i + 3]))
        np.testing.assert_allclose(part, whole[i:i + 3], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("l1", [0.0, 1e-2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_step_finalises_exactly_as_dividing(dtype, l1):
    """The fused step multiplies by 1 / sw_sum when sw_sum is a power of two (the same
    exact quotient, rounded the same) and divides otherwise: either way the finalised
    gradient is bit-identical to NumPy's (G + alpha W + l1 sign W) / sw_sum."""
    rng = np.random.default_rng(26)
    size, n_coefs, alpha = 10_000, 7_000, 1e-3
    W0, G0 = (rng.normal(size=(2, size)) * 10.0 ** rng.integers(-30, 30, (2, size)))
    W0, G0 = W0.astype(dtype), G0.astype(dtype)
    W0[:5] = [0, -0.0, 1e-40, -1e-40, 3]  # zeros and (float32-)subnormal weights
    for sw_sum in (1.0, 32.0, 256.0, 2.0 ** 40, 200.0, 255.0, 0.5, 3e-3):
        G = G0.copy()
        params, m, v = W0.copy(), np.zeros(size, dtype), np.zeros(size, dtype)
        _kernels.fused_step(params, G, _kernels.Optimizer.adam(
            m, v, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, t=0),
            _kernels.Objective(loss=0, alpha=alpha, l1=l1, clip_eps=0.0),
            n_coefs, sw_sum, 2)
        t = dtype
        penal = G0[:n_coefs] + t(alpha) * W0[:n_coefs] + t(l1) * np.sign(W0[:n_coefs])
        if l1 == 0:
            penal = G0[:n_coefs] + t(alpha) * W0[:n_coefs]
        want = np.concatenate([penal / t(sw_sum), G0[n_coefs:] / t(sw_sum)])
        np.testing.assert_array_equal(G, want, err_msg=f"sw_sum={sw_sum}")


def test_mixed_dtypes_are_rejected():
    rng = np.random.default_rng(12)
    Z = rng.normal(size=(3, 4)).astype(np.float32)
    with pytest.raises((TypeError, ValueError)):
        _kernels.bias_activation_forward(Z, np.zeros(4), Z, Activation.RELU, n_threads=1)
    with pytest.raises((TypeError, ValueError)):
        _kernels.output_delta(Z, Z, np.ones(3), np.empty((3, 4), np.float32), n_threads=1)


def run_sgd_epoch(layout, flat0, X, Y, sw, idx, batch_size, solver, loss, alpha, l1=0.0,
                  max_grad_norm=0.0, seed=0, step0=0, row_parallel=False, n_threads=2):
    """One sgd_epoch call with the buffers Trainer allocates; returns (params, acc, t)."""
    dtype = flat0.dtype
    ws = layout.workspace(batch_size, dtype, training=True, dense_batches=True)
    params = flat0.copy()
    state_1 = np.zeros(layout.n_params, dtype=dtype)
    state_2 = np.zeros(layout.n_params, dtype=dtype)
    if solver == Solver.ADAM:
        opt = _kernels.Optimizer.adam(state_1, state_2, learning_rate=1e-2, beta_1=0.9,
                                      beta_2=0.999, epsilon=1e-8, t=4)
    else:
        opt = _kernels.Optimizer.sgd(state_1, learning_rate=0.1, momentum=0.9,
                                     nesterov=True)
        opt.t = 4
    obj = _kernels.Objective(loss=LOSSES[loss], alpha=alpha, l1=l1,
                             clip_eps=float(np.finfo(dtype).eps), max_grad_norm=max_grad_norm,
                             dropout_seed=seed, dropout_stream=step0)
    data = _kernels.Dataset(kernel_input(X, dtype), readonly(Y), readonly(sw))
    acc = _kernels.sgd_epoch(params, ws, data, readonly(idx), opt, obj, n_threads,
                             2 if row_parallel else 0)
    # One dropout stream per batch.
    assert obj.dropout_stream == step0 - (-idx.size // batch_size)
    return params, acc, opt.t


def reference_sgd_epoch(layout, flat0, X, Y, sw, idx, batch_size, solver, loss, alpha):
    """scikit-learn's loop in NumPy, with run_sgd_epoch's optimizer settings: one
    backprop (PReLU slopes included) and one optimizer step per batch, from t = 4 (the
    step count advances for both solvers). Returns (params, accumulated loss, t)."""
    p = flat0.astype(np.float64)
    s1, s2 = np.zeros_like(p), np.zeros_like(p)
    acc, step = 0.0, 4
    for start in range(0, idx.size, batch_size):
        rows = idx[start:start + batch_size]
        coefs, intercepts, kwargs = reference_params(layout, p)
        value, cg, ig, sg = ref.backprop(coefs, intercepts, X[rows], Y[rows], sw[rows],
                                         layout.activations, layout.out_activation, loss,
                                         alpha, **kwargs)
        acc += value * rows.size
        g = ref.flatten(cg, ig, sg)
        step += 1
        if solver == Solver.ADAM:
            lr_t = ref.adam_learning_rate(1e-2, 0.9, 0.999, step)
            p, s1, s2 = ref.adam_update(p, g, s1, s2, lr_t, 0.9, 0.999, 1e-8)
        else:
            p, s1 = ref.sgd_update(p, g, s1, 0.1, 0.9, True)
    return p, acc, step


@pytest.mark.parametrize("solver", [Solver.SGD, Solver.ADAM])
@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_epoch(dtype, sparse, shuffled, solver):
    rng = np.random.default_rng(13)
    n, batch_size, alpha = 23, 5, 1e-3
    layout, flat0 = make_network("tanh", "softmax", dtype, [N_FEATURES, 6, 3], rng)
    X = random_csr(rng, n, N_FEATURES, dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, n)]
    sw = rng.uniform(0.5, 2.0, n).astype(dtype)
    idx = rng.permutation(n) if shuffled else np.arange(n)
    params, acc, t = run_sgd_epoch(layout, flat0, X if sparse else X.toarray(), Y, sw,
                                   idx.astype(np.intp), batch_size, solver, "log_loss", alpha)

    p, expected_acc, step = reference_sgd_epoch(layout, flat0, X, Y, sw, idx, batch_size,
                                                solver, "log_loss", alpha)
    assert t == step
    np.testing.assert_allclose(acc, expected_acc, rtol=10 * RTOL[dtype])
    assert_close(params, p, dtype, 10 * np.abs(p).max())


@pytest.mark.parametrize("solver", [Solver.SGD, Solver.ADAM])
@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", ("prelu", "elu")])
@pytest.mark.parametrize("units", [[N_FEATURES, 40, 6, 3], [N_FEATURES, 9, 30, 1]], ids=str)
def test_sgd_epoch_row_parallel(units, dtype, shuffled, solver, activation):
    # The two-thread row split (rows for forward and deltas; weight gradients by rows of
    # dW where a layer has more inputs than outputs, by columns elsewhere; chunks for
    # the optimizer) against scikit-learn's loop in NumPy, with relu and dropout.
    rng = np.random.default_rng(19)
    n, batch_size, alpha = 37, 8, 1e-3
    layout, flat0 = make_network(activation, "softmax" if units[-1] > 1 else "identity",
                                 dtype, units, rng)
    # Fan-in scaling: no saturated softmax (float32 would clip its log at eps).
    flat0 = readonly(flat0 * dtype(1 / np.sqrt(max(units))))
    X = rng.normal(size=(n, units[0])).astype(dtype)
    loss = "log_loss" if units[-1] > 1 else "squared_error"
    Y = (np.eye(units[-1], dtype=dtype)[rng.integers(0, units[-1], n)] if units[-1] > 1
         else rng.normal(size=(n, 1)).astype(dtype))
    sw = rng.uniform(0.5, 2.0, n).astype(dtype)
    idx = (rng.permutation(n) if shuffled else np.arange(n)).astype(np.intp)
    params, acc, t = run_sgd_epoch(layout, flat0, X, Y, sw, idx, batch_size, solver, loss,
                                   alpha, row_parallel=True)
    # PReLU slope gradients included: each part sums its own, added in part order.
    p, expected_acc, step = reference_sgd_epoch(layout, flat0, X, Y, sw, idx, batch_size,
                                                solver, loss, alpha)
    assert t == step
    np.testing.assert_allclose(acc, expected_acc, rtol=10 * RTOL[dtype])
    assert_close(params, p, dtype, 10 * np.abs(p).max())
    # The same epoch on the serial path agrees to rounding.
    serial = run_sgd_epoch(layout, flat0, X, Y, sw, idx, batch_size, solver, loss, alpha)[0]
    assert_close(params, serial, dtype, np.abs(serial).max())
    # The parts, not the threads, fix the arithmetic: 1, 2 and 3 threads, same bits.
    for n_threads in (1, 3):
        other, acc_other, _ = run_sgd_epoch(layout, flat0, X, Y, sw, idx, batch_size,
                                            solver, loss, alpha, row_parallel=True,
                                            n_threads=n_threads)
        np.testing.assert_array_equal(other, params)
        assert acc_other == acc


@pytest.mark.parametrize("solver", [Solver.SGD, Solver.ADAM])
@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_epoch_prelu_dropout_l1_clipping(dtype, sparse, shuffled, solver):
    rng = np.random.default_rng(18)
    n, batch_size, alpha, l1, seed, step0 = 23, 5, 1e-3, 1e-2, 99, 11
    layout, flat0 = make_network(("prelu", "selu"), "softmax", dtype, [N_FEATURES, 6, 4, 3],
                                 rng, dropout=[0.3, 0.5])
    X = random_csr(rng, n, N_FEATURES, dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, n)]
    sw = rng.uniform(0.5, 2.0, n).astype(dtype)
    idx = rng.permutation(n) if shuffled else np.arange(n)
    L = layout.n_layers

    def reference_epoch(max_grad_norm):
        # Batch b uses dropout stream (step0 + b) * L + l, its rows counted from 0; its
        # gradient is clipped to max_grad_norm before the optimizer step.
        p = flat0.astype(np.float64)
        s1, s2 = np.zeros_like(p), np.zeros_like(p)
        acc, t, norms = 0.0, 4, []
        for b, start in enumerate(range(0, n, batch_size)):
            rows = idx[start:start + batch_size]
            coefs, intercepts, kwargs = reference_params(layout, p)
            masks = [ref.dropout_multipliers((rows.size, width), rate, seed,
                                             (step0 + b) * L + l)
                     for l, (width, rate) in enumerate(zip(layout.units[1:-1],
                                                           layout.dropout))]
            value, cg, ig, sg = ref.backprop(coefs, intercepts, X[rows], Y[rows], sw[rows],
                                             layout.activations, "softmax", "log_loss",
                                             alpha, l1=l1, masks=masks, **kwargs)
            acc += value * rows.size
            g, norm = ref.clip_by_norm(ref.flatten(cg, ig, sg), max_grad_norm)
            norms.append(norm)
            t += 1
            if solver == Solver.ADAM:
                lr_t = ref.adam_learning_rate(1e-2, 0.9, 0.999, t)
                p, s1, s2 = ref.adam_update(p, g, s1, s2, lr_t, 0.9, 0.999, 1e-8)
            else:
                p, s1 = ref.sgd_update(p, g, s1, 0.1, 0.9, True)
        return p, acc, t, np.array(norms)

    # A threshold that clips some batches and not others, none within float32 error of it.
    for max_grad_norm in (0.8, 1.2, 1.6, 2.0, 2.5):
        p, expected_acc, t_ref, norms = reference_epoch(max_grad_norm)
        if (norms.min() < max_grad_norm < norms.max()
                and np.abs(norms / max_grad_norm - 1).min() > 1e-3):
            break
    else:
        raise AssertionError(f"no threshold splits the batch norms {norms}")
    params, acc, t = run_sgd_epoch(layout, flat0, X if sparse else X.toarray(), Y, sw,
                                   idx.astype(np.intp), batch_size, solver, "log_loss", alpha,
                                   l1, max_grad_norm, seed, step0)
    assert t == t_ref
    np.testing.assert_allclose(acc, expected_acc, rtol=10 * RTOL[dtype])
    assert_close(params, p, dtype, 10 * np.abs(p).max())


# --------------------------------------------------------------------------------------
# Thread-count independence on the large shape

def _large_cases(dtype):
    """name -> function(n_threads) returning the output arrays of one kernel call."""
    rng = np.random.default_rng(14)
    n, m = LARGE
    Z0 = (3 * rng.normal(size=LARGE)).astype(dtype)
    b = readonly(rng.normal(size=m).astype(dtype))
    D0 = rng.normal(size=LARGE).astype(dtype)
    P = readonly(rng.normal(size=LARGE).astype(dtype))
    sw = readonly(rng.uniform(0.5, 2, n).astype(dtype))
    X = random_csr(rng, n, N_FEATURES, dtype)
    W = readonly(rng.normal(size=(N_FEATURES, m)).astype(dtype))
    flat0, g, m0 = rng.normal(size=(3, n * m)).astype(dtype)
    v0 = rng.uniform(0, 2, n * m).astype(dtype)
    g = readonly(g)

    def hidden(name, separate):
        param, slopes, _ = activation_args(name, m, dtype, np.random.default_rng(25))
        g0 = np.random.default_rng(26).normal(size=m).astype(dtype)

        def run(nt):
            Z = Z0.copy()
            A = np.empty_like(Z) if separate else Z
            _kernels.bias_activation_forward(Z, b, A, HIDDEN[name], param, slopes,
                                             n_threads=nt)
            D = D0.copy()
            G = g0.copy() if slopes is not None else None
            _kernels.activation_backward(D, readonly(Z), readonly(A), HIDDEN[name], param,
                                         slopes, G, True, n_threads=nt)
            return (Z, A, D) + ((G,) if G is not None else ())
        return run

    def dropout(nt):
        return (run_dropout(readonly(Z0), 0.3, 17, 4, 3, nt),)

    def finalize(nt):
        G = D0.ravel().copy()
        _kernels.finalize_gradient(G, g, G.size - 7, 0.1, 0.2, 3.0, n_threads=nt)
        return (G,)

    def output(code):
        def run(nt):
            Z = Z0.copy()
            _kernels.bias_output_forward(Z, b, code, n_threads=nt)
            return (Z,)
        return run

    def delta(nt):
        D = np.empty(LARGE, dtype=dtype)
        _kernels.output_delta(P, readonly(Z0), sw, D, n_threads=nt)
        return (D,)

    def csr(nt):
        Z = np.empty(LARGE, dtype=dtype)
        _kernels.csr_matmul(*csr_arrays(X), W, Z, n_threads=nt)
        G = np.empty((N_FEATURES, m), dtype=dtype)
        _kernels.csr_t_matmul(*csr_arrays(X), readonly(D0), G, False, n_threads=nt)
        return Z, G

    def sgd(nt):
        p, v = flat0.copy(), m0.copy()
        _kernels.sgd_update(p, g, v, 0.1, 0.9, True, n_threads=nt)
        return p, v

    def adam(nt):
        p, mm, vv = flat0.copy(), m0.copy(), v0.copy()
        _kernels.adam_update(p, g, mm, vv, 1e-3, 0.9, 0.999, 1e-8, n_threads=nt)
        return p, mm, vv

    def network(sparse):
        layout, flat = make_network("relu", "softmax", dtype, [N_FEATURES, 257, 3], rng)
        Xn = X if sparse else X.toarray()

        def run(nt):
            return (run_forward(layout, flat, Xn, n, nt),)
        return run

    def trainer(sparse):
        # Full-batch loss and gradient with PReLU slopes, dropout and L1.
        layout, flat = make_network(("prelu", "elu"), "softmax", dtype,
                                    [N_FEATURES, 257, 263, 3], rng, dropout=[0.3, 0.2])
        Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, n)]
        tr = Trainer(layout, np.array(flat), X if sparse else X.toarray(), Y, sw, "log_loss",
                     1e-3, alpha_l1=1e-3, dropout_seed=5)
        tr.step = 3

        def run(nt):
            tr.n_threads = nt
            loss, grads = tr.loss_gradient()
            return np.array([loss], dtype=dtype), grads.copy()
        return run

    cases = {f"{a} separate={s}": hidden(a, s) for a in HIDDEN for s in (0, 1)
             if s or a not in NEEDS_Z}
    cases.update({f"output {a}": output(c) for a, c in OUTPUT.items()})
    cases.update(output_delta=delta, csr=csr, sgd=sgd, adam=adam, dropout=dropout,
                 finalize=finalize, forward_dense=network(False),
                 forward_sparse=network(True), loss_gradient_dense=trainer(False),
                 loss_gradient_sparse=trainer(True))
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_count_independence(dtype):
    for name, run in _large_cases(dtype).items():
        one, two = run(1), run(2)
        for a, b in zip(one, two):
            assert a.dtype == dtype, name
            assert np.all(np.isfinite(a)), name
            assert np.array_equal(a, b), name


def test_kernel_entry_points_take_at_most_ten_arguments():
    """The kernel boundary takes typed objects (Network, Workspace, Input, Dataset,
    Optimizer, Objective), not long positional lists: every def of _kernels.pyx (module
    functions, constructors and methods) has at most 10 parameters besides self/cls."""
    import re
    from pathlib import Path

    source = (Path(_kernels.__file__).parent / "_kernels.pyx").read_text()
    counts = {}
    for match in re.finditer(r"^\s*def (\w+)\(", source, flags=re.M):
        depth, i = 1, match.end()
        while depth:  # the parameter list, up to its closing parenthesis
            depth += {"(": 1, ")": -1}.get(source[i], 0)
            i += 1
        params, depth, part = [], 0, ""
        for ch in source[match.end():i - 1]:
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                params.append(part)
                part = ""
            else:
                part += ch
        params.append(part)
        names = [p.split("=")[0].split()[-1] for p in params
                 if p.strip() and p.strip() not in ("*", "self", "cls")]
        counts[match.group(1)] = len(names)
    assert {"sgd_epoch", "loss_gradient", "forward", "forward_small", "__init__"} <= set(counts)
    assert max(counts.values()) <= 10, {k: v for k, v in counts.items() if v > 10}


# --------------------------------------------------------------------------------------
# Kernel bugs the properties found, fixed: their minimal reproducers.

def test_poisson_loss_subnormal_prediction_float64():
    P = np.array([[1e-310]])
    Y = np.array([[10.0]])
    value = _kernels.loss_value(readonly(P), readonly(Y), readonly(np.ones(1)),
                                LOSSES["poisson"], float(np.finfo(np.float64).eps))
    expected = 1e-310 - 10.0 + 10.0 * (np.log(10.0) - np.log(1e-310))  # 7151.0396...
    assert np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-12)


def test_poisson_loss_tiny_ratio_float64():
    P = np.array([[1e300]])
    Y = np.array([[1e-30]])
    value = _kernels.loss_value(readonly(P), readonly(Y), readonly(np.ones(1)),
                                LOSSES["poisson"], float(np.finfo(np.float64).eps))
    expected = 1e300 - 1e-30 + 1e-30 * (np.log(1e-30) - np.log(1e300))
    assert np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-12)


def test_clip_by_norm_huge_float64_gradient():
    G = np.array([1e200, 1.0])
    norm = _kernels.clip_by_norm(G, 1.0)
    assert norm == pytest.approx(1e200, rel=1e-12)
    np.testing.assert_allclose(G, [1.0, 1e-200], rtol=1e-12)


def test_clip_by_norm_tiny_float64_gradient():
    G = np.array([3e-200, 4e-200])
    norm = _kernels.clip_by_norm(G, 1e-200)
    assert norm == pytest.approx(5e-200, rel=1e-12)
    np.testing.assert_allclose(G, [0.6e-200, 0.8e-200], rtol=1e-12)


def test_clip_by_norm_subnormal_scale_float32():
    G = np.array([2e38], dtype=np.float32)
    norm = _kernels.clip_by_norm(G, 1e-6)
    assert norm == pytest.approx(float(np.float32(2e38)), rel=1e-12)
    np.testing.assert_allclose(G, [1e-6], rtol=RTOL[np.float32])
