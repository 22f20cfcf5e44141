"""Every def wrapper of relumlp._kernels against the NumPy reference in reference.py.

Inputs marked IN / const in the kernels are passed read-only, as grid searches pass
memory-mapped data. Shapes include one row, odd sizes and sizes on both sides of
MIN_PARALLEL_SIZE; the largest shape also checks that 1 and 2 threads agree bit for bit.
Every hidden activation is also run on extreme pre-activations (|z| up to 1e4 and down
to subnormal), and the dropout masks are checked against a NumPy splitmix64.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from relumlp import _kernels
from relumlp._activations import HIDDEN_ACTIVATIONS
from relumlp._kernels import Activation, Loss, Solver
from relumlp._threads import MIN_PARALLEL_SIZE
from relumlp._params import NetworkLayout
from relumlp import _inference
from relumlp._training import Trainer

try:
    import reference as ref
except ImportError:  # tests/ collected as a package
    from tests import reference as ref

RTOL = ref.RTOL
DTYPES = [np.float32, np.float64]
HIDDEN = {
    "identity": Activation.IDENTITY,
    "logistic": Activation.LOGISTIC,
    "tanh": Activation.TANH,
    "relu": Activation.RELU,
    "leaky_relu": Activation.LEAKY_RELU,
    "prelu": Activation.PRELU,
    "elu": Activation.ELU,
    "selu": Activation.SELU,
    "gelu": Activation.GELU,
    "silu": Activation.SILU,
    "softplus": Activation.SOFTPLUS,
}
ALIASES = {"swish": "silu"}
# Activations whose f' the kernel computes from z (the others from a, with Z aliasing A).
NEEDS_Z = {"prelu", "gelu", "silu", "softplus"}
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
# (n_rows, n_units): one row, odd sizes, just below and well above MIN_PARALLEL_SIZE.
SHAPES = [(1, 5), (7, 13), (199, 251), (401, 263)]
LARGE = SHAPES[-1]
N_FEATURES = 17


def readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


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
    assert len({int(c) for c in list(HIDDEN.values()) + list(OUTPUT.values())}) == 13


def test_registry_matches_kernel_codes():
    assert set(HIDDEN_ACTIVATIONS) == set(HIDDEN) | set(ALIASES)
    for name, entry in HIDDEN_ACTIVATIONS.items():
        assert entry.code == HIDDEN[ALIASES.get(name, name)], name
        assert entry.needs_z == (ALIASES.get(name, name) in NEEDS_Z), name
    assert HIDDEN_ACTIVATIONS["leaky_relu"].param == "negative_slope"
    assert HIDDEN_ACTIVATIONS["elu"].param == "elu_alpha"


def test_openmp_helpers():
    assert isinstance(_kernels.openmp_enabled(), bool)
    n = _kernels.omp_max_threads()
    assert n >= 1 and (_kernels.openmp_enabled() or n == 1)


# --------------------------------------------------------------------------------------
# gemm

@pytest.mark.parametrize("readonly_inputs", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("trans_a", [False, True])
def test_gemm(trans_a, trans_b, dtype, shape, readonly_inputs):
    rng = np.random.default_rng(0)
    m, n = shape
    k = 11
    A = rng.normal(size=(k, m) if trans_a else (m, k)).astype(dtype)
    B = rng.normal(size=(n, k) if trans_b else (k, n)).astype(dtype)
    C0 = rng.normal(size=(m, n)).astype(dtype)
    alpha, beta = 1.5, -0.5
    opA = A.T.astype(np.float64) if trans_a else A.astype(np.float64)
    opB = B.T.astype(np.float64) if trans_b else B.astype(np.float64)
    expected = alpha * opA @ opB + beta * C0.astype(np.float64)
    scale = (abs(alpha) * np.abs(opA) @ np.abs(opB) + abs(beta) * np.abs(C0)).max()
    if readonly_inputs:
        A, B = readonly(A), readonly(B)
    C = C0.copy()
    _kernels.gemm(trans_a, trans_b, dtype(alpha), A, B, dtype(beta), C)
    assert_close(C, expected, dtype, scale)


# --------------------------------------------------------------------------------------
# Hidden activations

def activation_args(activation, n_units, dtype, rng):
    """(param, slopes, p): the kernel's scalar parameter and read-only PReLU slopes (or
    None), and the reference's parameter p."""
    if activation == "prelu":
        # Some slopes negative: learned slopes are not constrained.
        slopes = readonly(rng.uniform(-0.5, 1.0, n_units).astype(dtype))
        return 0.0, slopes, slopes.astype(np.float64)
    p = ACT_PARAMS.get(activation, 0.0)
    return p, None, p


@pytest.mark.parametrize("in_place", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_bias_activation_forward(activation, dtype, shape, in_place):
    rng = np.random.default_rng(1)
    Z0 = (3 * rng.normal(size=shape)).astype(dtype)
    b = readonly(rng.normal(size=shape[1]).astype(dtype))
    param, slopes, p = activation_args(activation, shape[1], dtype, rng)
    z = Z0.astype(np.float64) + b
    Z = Z0.copy()
    A = Z if in_place else np.full(shape, np.nan, dtype=dtype)
    _kernels.bias_activation_forward(Z, b, A, HIDDEN[activation], param, slopes, n_threads=2)
    expected = ref.HIDDEN[activation][0](z, p)
    assert_close(A, expected, dtype)
    # Z keeps Z + b when A is a separate buffer (activations whose f' needs Z).
    assert_close(Z, expected if in_place else z, dtype)


# Z aliasing A is how training calls the activations whose f' needs only A.
BACKWARD_CASES = [(a, z_is_a) for a in HIDDEN for z_is_a in (False, True)
                  if not (z_is_a and a in NEEDS_Z)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation, z_is_a", BACKWARD_CASES)
def test_activation_backward(activation, z_is_a, dtype, shape):
    rng = np.random.default_rng(2)
    f, df = ref.HIDDEN[activation]
    param, slopes, p = activation_args(activation, shape[1], dtype, rng)
    Z = (3 * rng.normal(size=shape)).astype(dtype)
    A = f(Z.astype(np.float64), p).astype(dtype)
    D0 = rng.normal(size=shape).astype(dtype)
    expected = D0 * df(Z.astype(np.float64), p)
    Z_arg = readonly(A if z_is_a else Z)
    D = D0.copy()
    _kernels.activation_backward(D, Z_arg, readonly(A), HIDDEN[activation], param, slopes,
                                 n_threads=2)
    assert_close(D, expected, dtype)


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


# Pre-activations at which exp, expm1, erf and log1p overflow, underflow or lose
# precision, and the smallest subnormal of the dtype.
def extreme_values(dtype):
    tiny = float(np.finfo(dtype).smallest_subnormal)
    v = [1e4, 1e3, 80.0, 1e-30, tiny]
    return np.array(v + [0.0] + [-x for x in v], dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_extreme_pre_activations(activation, dtype):
    rng = np.random.default_rng(16)
    values = extreme_values(dtype)
    Z0 = np.stack([values, values[::-1]])
    m = Z0.shape[1]
    param, slopes, p = activation_args(activation, m, dtype, rng)
    b = readonly(np.zeros(m, dtype=dtype))
    z = Z0.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for in_place in (False, True) if activation not in NEEDS_Z else (False,):
            Z = Z0.copy()
            A = Z if in_place else np.empty_like(Z)
            _kernels.bias_activation_forward(Z, b, A, HIDDEN[activation], param, slopes,
                                             n_threads=2)
            D = np.ones_like(Z)
            _kernels.activation_backward(D, readonly(Z), readonly(A), HIDDEN[activation],
                                         param, slopes, n_threads=2)
            expected_a = ref.HIDDEN[activation][0](z, p)
            expected_d = ref.HIDDEN[activation][1](z, p)
            assert np.all(np.isfinite(A)) and np.all(np.isfinite(D))
            assert np.all(np.isfinite(expected_a)) and np.all(np.isfinite(expected_d))
            # Relative accuracy for the values (down to the dtype's smallest normal);
            # derivatives are O(1), so an absolute error of RTOL is the right scale.
            np.testing.assert_allclose(A, expected_a, rtol=RTOL[dtype],
                                       atol=float(np.finfo(dtype).tiny))
            np.testing.assert_allclose(D, expected_d, rtol=RTOL[dtype], atol=RTOL[dtype])


# --------------------------------------------------------------------------------------
# Output activations

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_activation", OUTPUT)
def test_bias_output_forward(out_activation, dtype, shape):
    rng = np.random.default_rng(3)
    Z0 = (3 * rng.normal(size=shape)).astype(dtype)
    b = readonly(rng.normal(size=shape[1]).astype(dtype))
    expected = ref.OUTPUT[out_activation](Z0.astype(np.float64) + b)
    Z = Z0.copy()
    _kernels.bias_output_forward(Z, b, OUTPUT[out_activation], n_threads=2)
    assert_close(Z, expected, dtype)
    if out_activation == "softmax":
        np.testing.assert_allclose(Z.sum(axis=1), 1, rtol=RTOL[dtype] * shape[1])


# Largest |z| for which every output below is finite: exp(z) fits in the dtype.
BIG = {np.float32: 80.0, np.float64: 700.0}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", ["hidden logistic", "logistic", "softmax", "exp"])
def test_large_pre_activations_stay_finite(kernel, dtype):
    big = BIG[dtype]
    Z0 = np.array([[big, -big, 0.0, big - 1],
                   [-big, -big, -big, -big],
                   [big, big, big, -big]], dtype=dtype)
    b = readonly(np.zeros(4, dtype=dtype))
    Z = Z0.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if kernel == "hidden logistic":
            _kernels.bias_activation_forward(Z, b, Z, Activation.LOGISTIC, n_threads=2)
            expected = ref.HIDDEN["logistic"][0](Z0.astype(np.float64))
        else:
            _kernels.bias_output_forward(Z, b, OUTPUT[kernel], n_threads=2)
            expected = ref.OUTPUT[kernel](Z0.astype(np.float64))
    assert np.all(np.isfinite(Z))
    assert_close(Z, expected, dtype)


# --------------------------------------------------------------------------------------
# Losses

def make_predictions(loss, shape, dtype, rng):
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


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
def test_loss_value(loss, dtype, shape, weighted):
    rng = np.random.default_rng(4)
    P, Y = make_predictions(loss, shape, dtype, rng)
    sw = rng.uniform(0.5, 2.0, shape[0]) if weighted else np.ones(shape[0])
    sw = sw.astype(dtype)
    value = _kernels.loss_value(readonly(P), readonly(Y), readonly(sw), LOSSES[loss],
                                float(np.finfo(dtype).eps))
    expected = ref.LOSSES[loss](Y, P, sw)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["log_loss", "binary_log_loss"])
def test_loss_value_clips_probabilities(loss, dtype):
    # Probabilities of exactly 0 and 1, on both the right and the wrong class.
    P = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]], dtype=dtype)
    Y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=dtype)
    sw = np.array([1.0, 2.0, 0.5], dtype=dtype)
    value = _kernels.loss_value(readonly(P), readonly(Y), readonly(sw), LOSSES[loss],
                                float(np.finfo(dtype).eps))
    assert np.isfinite(value)
    np.testing.assert_allclose(value, ref.LOSSES[loss](Y, P, sw), rtol=RTOL[dtype])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_output_delta(dtype, shape):
    rng = np.random.default_rng(5)
    P = readonly(rng.normal(size=shape).astype(dtype))
    Y = readonly(rng.normal(size=shape).astype(dtype))
    sw = readonly(rng.uniform(0.5, 2.0, shape[0]).astype(dtype))
    D = np.full(shape, np.nan, dtype=dtype)
    _kernels.output_delta(P, Y, sw, D, n_threads=2)
    expected = (P.astype(np.float64) - Y) * sw.astype(np.float64)[:, None]
    assert_close(D, expected, dtype)


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


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sum(dtype, shape, accumulate):
    rng = np.random.default_rng(8)
    D = readonly(rng.normal(size=shape).astype(dtype))
    out0 = rng.normal(size=shape[1]).astype(dtype)
    out = out0.copy() if accumulate else np.full(shape[1], np.nan, dtype=dtype)
    _kernels.column_sum(D, out, accumulate)
    expected = D.astype(np.float64).sum(axis=0) + (out0 if accumulate else 0)
    assert_close(out, expected, dtype, (np.abs(D).sum(axis=0) + np.abs(out0)).max())


# --------------------------------------------------------------------------------------
# Optimizers

SIZES = [1, 7 * 13, LARGE[0] * LARGE[1]]


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_update(dtype, size, nesterov):
    rng = np.random.default_rng(9)
    params0, grads, velocity0 = rng.normal(size=(3, size)).astype(dtype)
    grads = readonly(grads)
    lr, momentum = 0.1, 0.9
    params, velocity = params0.copy(), velocity0.copy()
    _kernels.sgd_update(params, grads, velocity, lr, momentum, nesterov, n_threads=2)
    expected_p, expected_v = ref.sgd_update(
        params0.astype(np.float64), grads.astype(np.float64),
        velocity0.astype(np.float64), lr, momentum, nesterov)
    assert_close(velocity, expected_v, dtype)
    assert_close(params, expected_p, dtype)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_update(dtype, size):
    rng = np.random.default_rng(10)
    params0, grads, m0 = rng.normal(size=(3, size)).astype(dtype)
    v0 = rng.uniform(0, 2, size).astype(dtype)
    grads = readonly(grads)
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-8
    lr_t = ref.adam_learning_rate(1e-3, beta_1, beta_2, 3)
    params, m, v = params0.copy(), m0.copy(), v0.copy()
    _kernels.adam_update(params, grads, m, v, lr_t, beta_1, beta_2, epsilon,
                         n_threads=2)
    expected = ref.adam_update(*(a.astype(np.float64) for a in (params0, grads, m0, v0)),
                               lr_t, beta_1, beta_2, epsilon)
    for actual, want in zip((params, m, v), expected):
        assert_close(actual, want, dtype)


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
    coefs, intercepts, slopes = layout.views(flat)
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
    backprop (PReLU slopes included) and one optimizer step per batch, from t = 4.
    Returns (params, accumulated loss, t)."""
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
        if solver == Solver.ADAM:
            step += 1
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
            if solver == Solver.ADAM:
                t += 1
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
# Dropout

DROPOUT_SHAPE = (200, 500)  # 1e5 elements: above MIN_PARALLEL_SIZE


def nonzero_values(rng, shape, dtype):
    """Values bounded away from 0, so that D != 0 identifies the kept elements."""
    signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return readonly((signs * rng.uniform(0.5, 2.0, shape)).astype(dtype))


def run_dropout(A, rate, seed, stream, row0=0, n_threads=2):
    D = np.full(A.shape, np.nan, dtype=A.dtype)
    _kernels.dropout(D, A, rate, seed, stream, row0, n_threads)
    return D


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout(dtype, rate):
    rng = np.random.default_rng(19)
    A = nonzero_values(rng, DROPOUT_SHAPE, dtype)
    seed, stream = 2024, 5
    D = run_dropout(A, rate, seed, stream)
    kept = D != 0
    assert abs(kept.mean() - (1 - rate)) < 0.02
    # The mask is the documented splitmix64 draw, kept iff u >= rate.
    assert np.array_equal(kept, ref.dropout_mask(DROPOUT_SHAPE, rate, seed, stream))
    # Kept values are scaled by 1 / (1 - rate), in the dtype, exactly; dropped are +0.
    assert np.array_equal(D[kept], A[kept] * dtype(1.0 / (1.0 - rate)))
    np.testing.assert_allclose(D[kept], A[kept].astype(np.float64) / (1 - rate),
                               rtol=np.finfo(dtype).eps)
    assert np.all(D[~kept] == 0)
    # Thread count, in place (the backward pass), and the other dtype give the same mask.
    assert np.array_equal(run_dropout(A, rate, seed, stream, n_threads=1), D)
    in_place = np.array(A)
    _kernels.dropout(in_place, in_place, rate, seed, stream, 0, 2)
    assert np.array_equal(in_place, D)
    other = np.float64 if dtype == np.float32 else np.float32
    assert np.array_equal(run_dropout(A.astype(other), rate, seed, stream) != 0, kept)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_rate_zero_keeps_everything(dtype):
    rng = np.random.default_rng(20)
    A = nonzero_values(rng, (7, 13), dtype)
    assert np.array_equal(run_dropout(A, 0.0, 1, 2), A)


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
# Gradient post-processing


@pytest.mark.parametrize("l1", [0.0, 0.3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_finalize_gradient(dtype, size, l1):
    rng = np.random.default_rng(23)
    G0 = rng.normal(size=size).astype(dtype)
    params = rng.normal(size=size).astype(dtype)
    n_coefs = size - size // 3
    params[:n_coefs:7] = 0  # sign(0) = 0: no L1 (sub)gradient
    params = readonly(params)
    alpha, sw_sum = 0.2, 3.5
    G = G0.copy()
    _kernels.finalize_gradient(G, params, n_coefs, alpha, l1, sw_sum, n_threads=2)
    expected = ref.finalize_gradient(G0, params, n_coefs, alpha, l1, sw_sum)
    assert_close(G, expected, dtype)
    assert np.array_equal(G[n_coefs:], G0[n_coefs:] / dtype(sw_sum))


@pytest.mark.parametrize("clipped", [False, True])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_by_norm(dtype, size, clipped):
    rng = np.random.default_rng(24)
    G0 = rng.normal(size=size).astype(dtype)
    true_norm = np.linalg.norm(G0.astype(np.float64))
    max_norm = 0.5 * true_norm if clipped else 2.0 * true_norm
    G = G0.copy()
    norm = _kernels.clip_by_norm(G, max_norm)
    expected, expected_norm = ref.clip_by_norm(G0, max_norm)
    np.testing.assert_allclose(norm, expected_norm, rtol=RTOL[dtype])
    if clipped:
        np.testing.assert_allclose(np.linalg.norm(G.astype(np.float64)), max_norm,
                                   rtol=RTOL[dtype])
        assert_close(G, expected, dtype)
    else:
        assert np.array_equal(G, G0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_by_norm_zero_gradient(dtype):
    G = np.zeros(7, dtype=dtype)
    assert _kernels.clip_by_norm(G, 1.0) == 0
    assert np.array_equal(G, np.zeros(7, dtype=dtype))


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
