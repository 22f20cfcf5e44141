"""Property-based tests (hypothesis) of the Cython kernels against tests/reference.py.

Random shapes (one row and one column drawn often), both dtypes, every activation and
its parameter, and values mixing ordinary numbers, the region where exp / erfc / tanh
bend, +-large (1e30 in float32, 1e300 in float64), +-0.0, subnormals and the smallest
normal. Each property says: wherever the exact result is representable in the dtype, the
kernel's output is finite and agrees with the float64 reference to RTOL (relative to the
result plus, where the kernel legitimately works from rounded intermediates, an explicit
per-element scale); results below the smallest normal need only be accurate to it.

The kernels are evaluated in the dtype from inputs that are exact in the dtype, so each
reference is fed the same rounded values (for instance Z + b rounded in the dtype, which
the kernel must reproduce exactly): the properties test the kernels, not the conditioning
of float32 sums. Domains avoid input overflow by construction (|value| <= LIMIT, so sums
of two stay finite). The kernel bugs these properties found (Poisson loss and gradient
clipping at the extremes of float64, a float32 clipping scale) are fixed; each keeps its
minimal reproducer below as a regression test.

Settings are derandomized (reproducible in CI) and the example database is off.
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from relumlp import _kernels
from relumlp._activations import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS

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

# Every public hidden activation name, aliases included (swish is checked against the
# reference's swish through the registry's code, like any other name).
HIDDEN = HIDDEN_ACTIVATIONS

# Largest |value| drawn: the sum of two stays far from overflow, and so do the products
# with the O(1) factors (activation slopes, learning rates, sample weights) below.
LIMIT = {np.float32: 1e30, np.float64: 1e300}
# A subnormal that is not the smallest one (that one is drawn too).
SUBNORMAL = {np.float32: 1e-40, np.float64: 1e-310}

# Sized for CI: the whole module runs in about 25 s on 2 cores.
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
FEW = settings(SETTINGS, max_examples=30)  # the 48 hidden-activation cases


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


def draw_array(data, dtype, shape, elements, label):
    return data.draw(hnp.arrays(dtype, shape, elements=elements), label=label)


def readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def reference(fn, *args):
    """A reference computation; extreme values may overflow there (legitimately: the
    result is then compared only where it is representable), so warnings are off."""
    with np.errstate(all="ignore"):
        return fn(*args)


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


def activation_params(data, activation, m, dtype):
    """(param, slopes, p): the kernel's scalar parameter and read-only PReLU slopes (or
    None), and the reference's parameter p. Scalars follow the estimator's constraints
    (negative_slope >= 0, elu_alpha >= 0); learned PReLU slopes may be negative."""
    w = _width(dtype)
    if activation == "prelu":
        slopes = draw_array(data, dtype, m, st.one_of(st.just(0.0), st.floats(-2, 2, width=w)),
                            "slopes")
        return 0.0, readonly(slopes), slopes.astype(np.float64)
    if HIDDEN[activation].param:
        p = data.draw(st.one_of(st.sampled_from([0.0, 0.01, 1.0]), st.floats(0, 5, width=w)),
                      label="param")
        return p, None, p
    return 0.0, None, 0.0


def derivative_scale(p):
    """Absolute scale of f'(z): derivatives computed from the rounded output (a(1 - a),
    1 - a^2, a + alpha) are accurate to RTOL in absolute terms, not relative."""
    return max(1.0, float(np.max(np.abs(p))), ref.SELU_SCALE * ref.SELU_ALPHA)


# --------------------------------------------------------------------------------------
# 1. Hidden activations, forward: A = f(Z + b)

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("activation", HIDDEN)
@FEW
@given(data=st.data())
def test_hidden_forward_matches_reference(activation, dtype, data):
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    Z0 = draw_array(data, dtype, (n, m), values(dtype), "Z0")
    b = draw_array(data, dtype, m, values(dtype), "b")
    param, slopes, p = activation_params(data, activation, m, dtype)
    entry = HIDDEN[activation]
    # In place (A aliasing Z) is how training runs the activations whose f' needs only A.
    in_place = not entry.needs_z and data.draw(st.booleans(), label="in_place")

    z = reference(np.add, Z0, b)  # rounded in the dtype, as the kernel adds
    assert np.all(np.isfinite(z))  # the domain: no input overflow
    expected = reference(ref.HIDDEN[activation][0], z.astype(np.float64), p)
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


# --------------------------------------------------------------------------------------
# 2. Hidden activations, backward: D = dA * f'(Z)

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("activation", HIDDEN)
@FEW
@given(data=st.data())
def test_hidden_backward_matches_reference(activation, dtype, data):
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    Z = draw_array(data, dtype, (n, m), values(dtype), "Z")
    dA = draw_array(data, dtype, (n, m), values(dtype), "dA")
    param, slopes, p = activation_params(data, activation, m, dtype)
    entry = HIDDEN[activation]
    # Z aliasing A is how training calls the activations whose f' needs only A.
    z_is_a = not entry.needs_z and data.draw(st.booleans(), label="z_is_a")
    in_place = data.draw(st.booleans(), label="in_place")  # D is dA itself

    # A as training computes it: the kernel's own forward pass (zero bias).
    A = np.full_like(Z, np.nan)
    _kernels.bias_activation_forward(Z, readonly(np.zeros(m, dtype=dtype)), A, entry.code,
                                     param, slopes, n_threads=2)
    z = Z.astype(np.float64)
    expected = reference(lambda: dA.astype(np.float64) * ref.HIDDEN[activation][1](z, p))
    assert np.all(representable(expected, dtype))  # |f'| <= 5 and |dA| <= LIMIT

    if in_place:
        D, kwargs = dA.copy(), {}
    else:
        D, kwargs = np.full_like(dA, np.nan), {"dA": readonly(dA)}
    _kernels.activation_backward(D, readonly(A if z_is_a else Z), readonly(A), entry.code,
                                 param, slopes, n_threads=2, **kwargs)
    assert np.all(np.isfinite(D))
    scale = np.abs(dA.astype(np.float64)) * derivative_scale(p)
    assert_matches(D, expected, dtype, scale, inputs={"z": Z, "a": A, "dA": dA})


# --------------------------------------------------------------------------------------
# 3. Output activations on large logits

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("out_activation", OUTPUT_ACTIVATIONS)
@SETTINGS
@given(data=st.data())
def test_output_forward_matches_reference(out_activation, dtype, data):
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    Z0 = draw_array(data, dtype, (n, m), values(dtype), "Z0")
    b = draw_array(data, dtype, m, values(dtype), "b")
    z = reference(np.add, Z0, b)
    assert np.all(np.isfinite(z))
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
# 4. Losses and the output delta

def probabilities(dtype):
    """Probabilities including exact 0 and 1 and values inside the clipping margin."""
    eps = float(np.finfo(dtype).eps)
    special = [0.0, 1.0, eps, eps / 2, 1 - eps, _exact(dtype, 1 - eps / 2),
               float(np.finfo(dtype).smallest_subnormal), _exact(dtype, SUBNORMAL[dtype])]
    return st.one_of(st.sampled_from(special), st.floats(0, 1, width=_width(dtype)))


def loss_inputs(data, loss, dtype, n, m):
    """(P, Y) in the domain of the loss."""
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


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("loss", LOSSES)
@SETTINGS
@given(data=st.data())
def test_loss_value_matches_reference(loss, dtype, data):
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    P, Y = loss_inputs(data, loss, dtype, n, m)
    sw = sample_weights(data, dtype, n)
    value = _kernels.loss_value(readonly(P), readonly(Y), readonly(sw), LOSSES[loss],
                                float(np.finfo(dtype).eps))
    expected = reference(ref.LOSSES[loss], Y, P, sw)
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


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(data=st.data())
def test_output_delta_matches_reference(dtype, data):
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
# 5. Optimizer updates

def hyper(dtype, lo, hi, special=()):
    """A hyperparameter exact in the dtype (the kernel casts it), specials included."""
    special = [_exact(dtype, s) for s in special]
    floats = st.floats(_exact(dtype, lo), _exact(dtype, hi), width=_width(dtype))
    return st.one_of(st.sampled_from(special), floats) if special else floats


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(data=st.data())
def test_sgd_update_matches_reference(dtype, data):
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


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(data=st.data())
def test_adam_update_matches_reference(dtype, data):
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


# --------------------------------------------------------------------------------------
# 6. gemm, and the other reductions / post-processing kernels

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(data=st.data())
def test_gemm_matches_numpy(dtype, data):
    m, n, k = (data.draw(dim(24), label=s) for s in "mnk")
    trans_a, trans_b = data.draw(st.booleans(), label="trans_a"), data.draw(st.booleans(),
                                                                             label="trans_b")
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
    C = C0.copy()
    _kernels.gemm(trans_a, trans_b, alpha, readonly(A), readonly(B), beta, C)
    assert np.all(np.isfinite(C))
    assert_matches(C, expected, dtype, scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(data=st.data())
def test_column_sum_matches_reference(dtype, data):
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


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(data=st.data())
def test_finalize_gradient_matches_reference(dtype, data):
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


def true_norm(G):
    """||G|| without overflow or underflow of the squares (scaled by max |g|)."""
    G = G.astype(np.float64)
    s = np.abs(G).max()
    return 0.0 if s == 0 else float(s * np.sqrt(np.sum((G / s) ** 2)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(data=st.data())
def test_clip_by_norm_matches_exact_norm(dtype, data):
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


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@SETTINGS
@given(data=st.data())
def test_dropout_matches_reference_masks(dtype, data):
    n, m = data.draw(dim(), label="n"), data.draw(dim(), label="m")
    A = draw_array(data, dtype, (n, m), values(dtype), "A")
    rate = data.draw(st.one_of(st.just(0.0), st.floats(0, 0.95)), label="rate")
    seed = data.draw(st.integers(0, 2**64 - 1), label="seed")
    stream = data.draw(st.integers(0, 2**64 - 1), label="stream")
    row0 = data.draw(st.integers(0, 10**6), label="row0")
    D = np.full((n, m), np.nan, dtype=dtype)
    _kernels.dropout(D, readonly(A), rate, seed, stream, row0, 2)
    kept = ref.dropout_mask((n, m), rate, seed, stream, row0)
    scale = dtype(1.0 / (1.0 - rate))
    assert np.array_equal(D[kept], A[kept] * scale)
    assert np.all(D[~kept] == 0)


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
