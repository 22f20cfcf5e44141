"""Vector math (libmvec) against scalar libm, in ulp, over dense grids and the extremes.

The exp/erf/tanh/log1p-based kernels call libmvec's vector functions at the widest ISA
the CPU has (``relumlp._kernels.vector_math()``); the "scalar" level runs the same
formulas with libm per element. Every level this machine can run is compared with the
scalar one: the library functions themselves (``vector_function``), every activation
row and derivative row, and the output layer's exp and softmax.

Print the table reported in benchmarks/RESULTS.md::

    python tests/test_vector_math.py --table
"""
import sys

import numpy as np
import pytest

import relumlp
from relumlp import _kernels

LEVELS = _kernels.vector_math_available()
VECTOR_LEVELS = [level for level in LEVELS if level != "scalar"]
DTYPES = (np.float32, np.float64)
# The activation codes of relumlp._kernels (test_kernels.py checks them against the
# registry); f' rows are checked for the three whose derivative calls the library.
ACTIVATIONS = {"logistic": 1, "tanh": 2, "elu": 6, "selu": 7, "gelu": 8, "silu": 9,
               "softplus": 10}
DERIVATIVES = ("gelu", "silu", "softplus")
SOFTMAX, EXP = 64, 65

# glibc's manual lists libmvec's vector functions at up to 4 ulp from the correctly
# rounded result (libm's scalar ones at up to 1-2): at most 4 + 2 from each other.
RAW_ULP = 6
# An activation composes two or three rounded operations around the call: each adds
# at most half an ulp of its result.
ACTIVATION_ULP = 8


@pytest.fixture(autouse=True)
def _restore_level():
    previous = _kernels.vector_math()
    yield
    _kernels.set_vector_math(previous)


# ------------------------------------------------------------------------- helpers
def ordered(x):
    """Integers in the order of the floats (adjacent floats differ by 1)."""
    itype = np.int64 if x.dtype == np.float64 else np.int32
    i = x.view(itype).astype(np.int64)
    low = -(2 ** (8 * x.itemsize - 1))
    return np.where(i < 0, low - i, i)


def ulp_distance(a, b):
    """Floats between a and b (0 where both are NaN, inf where only one is)."""
    d = np.abs(ordered(a) - ordered(b)).astype(np.float64)
    d[np.isnan(a) & np.isnan(b)] = 0
    d[np.isnan(a) ^ np.isnan(b)] = np.inf
    return d


def exact_values(dtype):
    """Where vector math must give libm's result exactly: signed zeros, infinities, NaN."""
    return np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan], dtype=dtype)


def special_values(dtype):
    fi = np.finfo(dtype)
    return np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, fi.smallest_subnormal,
                     -fi.smallest_subnormal, fi.tiny, -fi.tiny, fi.tiny / 3, -fi.tiny / 3,
                     fi.max, -fi.max, fi.eps, -fi.eps, 1.0, -1.0], dtype=dtype)


# Where a result overflows, underflows to subnormal or zero, or saturates: exp and
# expm1 (log of max, of tiny, of the smallest subnormal), erfc (its zero), tanh (its
# saturation) and log1p's pole at -1. Each is probed with the 400 floats around it.
EDGES = {np.float64: (709.782712893384, 708.3964185322641, 745.1332191019412, 27.2266,
                      26.55, 19.06, 22.0, 36.7368, 1.0),
         np.float32: (88.72284, 87.33655, 103.97208, 10.0198, 9.1945, 9.01, 8.0, 15.9424,
                      1.0)}


def grid(dtype, n_dense=100001):
    """A dense grid over [-40, 40], magnitudes from the smallest subnormal to the
    largest float, the edges above (both signs) and the special values."""
    fi = np.finfo(dtype)
    dense = np.linspace(-40, 40, n_dense)
    mags = np.exp(np.linspace(np.log(float(fi.smallest_subnormal)), np.log(float(fi.max)),
                              20001)).astype(dtype)
    edges = []
    for v in EDGES[dtype]:
        v = dtype(v)
        edges.append(v + np.arange(-200, 200, dtype=dtype) * np.spacing(v))
    edges = np.concatenate(edges)
    with np.errstate(over="ignore"):
        x = np.concatenate([dense.astype(dtype), mags, -mags, edges, -edges,
                            special_values(dtype)])
    return x.astype(dtype)


def library(name, x, level):
    _kernels.set_vector_math(level)
    out = np.empty_like(x)
    _kernels.vector_function(name, x, out)
    return out


def activation(name, x, level, derivative=False):
    """f(x) (or f'(x)) through the kernels: a one-row layer with a bias of -0 (x + -0
    is x for every x, -0 included)."""
    _kernels.set_vector_math(level)
    Z = np.ascontiguousarray(x.reshape(1, -1))
    b = np.full(Z.shape[1], -0.0, dtype=x.dtype)
    A = np.empty_like(Z)
    _kernels.bias_activation_forward(Z.copy(), b, A, ACTIVATIONS[name], 1.0)
    if not derivative:
        return A[0]
    D = np.empty_like(Z)
    _kernels.activation_backward(D, Z, A, ACTIVATIONS[name], 1.0, dA=np.ones_like(Z))
    return D[0]


def output(code, x, level, row=64):
    """The output layer's exp (Poisson) or softmax over rows of ``row`` values."""
    _kernels.set_vector_math(level)
    n = x.size // row
    Z = x[:n * row].reshape(n, row).copy()
    _kernels.bias_output_forward(Z, np.full(row, -0.0, dtype=x.dtype), code, 1)
    return Z.ravel()


# Results above tiny / eps have no subnormal intermediate: their error is in ulp.
SAFE = {dt: np.finfo(dt).tiny / np.finfo(dt).eps for dt in DTYPES}


def safe(ref):
    return ~(np.abs(ref) < SAFE[ref.dtype.type])


def derivative_error(v, ref, dtype):
    """|v - ref| in units of eps: the derivatives are O(1) and cross zero, where an ulp
    of the result says nothing about the error of a sum of O(1) terms."""
    ok = np.isfinite(ref)
    return np.max(np.abs(v[ok].astype(np.float64) - ref[ok]), initial=0) / np.finfo(dtype).eps


# --------------------------------------------------------------------------- tests
def test_levels_and_switching():
    assert LEVELS[0] == "scalar" and list(LEVELS) == sorted(
        LEVELS, key=_kernels.VECTOR_MATH_LEVELS.index)
    assert _kernels.vector_math() == LEVELS[-1], "import chooses the widest level"
    assert _kernels.set_vector_math("scalar") == LEVELS[-1]
    assert _kernels.vector_math() == "scalar"
    with pytest.raises(ValueError, match="not available"):
        _kernels.set_vector_math("avx1024")
    assert _kernels.set_vector_math() == "scalar"
    assert _kernels.vector_math() == LEVELS[-1]


def test_show_versions_names_the_vector_math(capsys):
    info = relumlp.show_versions()
    assert info["build"]["vector_math"] == _kernels.vector_math()
    assert info["build"]["vector_math_available"] == ", ".join(LEVELS)
    assert f"vector_math: {_kernels.vector_math()}" in capsys.readouterr().out


@pytest.mark.skipif(not VECTOR_LEVELS, reason="this build has no vector math (scalar libm)")
def test_vector_levels_call_libmvec():
    """The extension links libmvec's vector variants (their mangled _ZGV names)."""
    with open(_kernels.__file__, "rb") as f:
        blob = f.read()
    for name in _kernels.VECTOR_FUNCTIONS:
        assert f"v_{name}".encode() in blob and f"v_{name}f".encode() in blob, name


@pytest.mark.parametrize("level", VECTOR_LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", _kernels.VECTOR_FUNCTIONS)
def test_library_functions_within_ulps_of_libm(name, dtype, level):
    x = grid(dtype)
    with np.errstate(all="ignore"):
        ref = library(name, x, "scalar")
        got = library(name, x, level)
    d = ulp_distance(got, ref)
    assert d.max() <= RAW_ULP, (name, x[np.argmax(d)], got[np.argmax(d)], ref[np.argmax(d)])
    # Special values exactly as libm: NaN stays NaN, infinities and signed zeros map alike.
    s = exact_values(dtype)
    np.testing.assert_array_equal(library(name, s, level), library(name, s, "scalar"))
    assert np.array_equal(np.signbit(library(name, s, level)),
                          np.signbit(library(name, s, "scalar")))
    # And libm is what it should be there (a check of the reference itself).
    with np.errstate(all="ignore"):
        numpy_ref = {"exp": np.exp, "expm1": np.expm1, "tanh": np.tanh,
                     "log1p": np.log1p}.get(name)
        if numpy_ref is not None:
            assert ulp_distance(ref, numpy_ref(x)).max() <= 4


@pytest.mark.parametrize("level", VECTOR_LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_rows_within_ulps_of_libm(name, dtype, level):
    x = grid(dtype)
    with np.errstate(all="ignore"):
        ref = activation(name, x, "scalar")
        got = activation(name, x, level)
    d = ulp_distance(got, ref)
    normal = safe(ref)
    assert d[normal].max() <= ACTIVATION_ULP, (name, x[normal][np.argmax(d[normal])])
    # Near underflow an intermediate (erfc's, exp's) is subnormal: the error is absolute.
    assert np.max(np.abs(got[~normal].astype(float) - ref[~normal]), initial=0) <= (
        ACTIVATION_ULP * np.spacing(SAFE[dtype]))
    assert np.isnan(got[np.isnan(x)]).all(), "NaN in, NaN out"
    assert np.array_equal(np.isnan(got), np.isnan(ref)), "NaN where libm's formula has it"
    s = exact_values(dtype)
    np.testing.assert_array_equal(activation(name, s, level), activation(name, s, "scalar"))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_bits_do_not_depend_on_where_a_row_is_cut(name, dtype, level):
    """The few-rows forward pass splits a layer's columns between threads: an element's
    bits must not depend on its position in the piece it is computed in (a vector body
    and a scalar remainder would round differently)."""
    x = np.random.default_rng(0).standard_normal(301).astype(dtype) * 4
    whole = activation(name, x, level)
    whole_d = activation(name, x, level, derivative=True)
    for cuts in ([1, 2, 5], [63, 64, 65, 129], [17, 150, 300]):
        pieces = np.split(x, cuts)
        np.testing.assert_array_equal(
            np.concatenate([activation(name, p, level) for p in pieces if p.size]), whole)
        np.testing.assert_array_equal(np.concatenate(
            [activation(name, p, level, derivative=True) for p in pieces if p.size]), whole_d)


@pytest.mark.parametrize("level", VECTOR_LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", DERIVATIVES)
def test_derivative_rows_close_to_libm(name, dtype, level):
    x = grid(dtype)
    with np.errstate(all="ignore"):
        ref = activation(name, x, "scalar", derivative=True)
        got = activation(name, x, level, derivative=True)
    assert derivative_error(got, ref, dtype) <= 8
    assert np.array_equal(np.isnan(got), np.isnan(ref))


@pytest.mark.parametrize("level", VECTOR_LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_output_layer_within_ulps_of_libm(dtype, level):
    x = grid(dtype)
    x = x[np.isfinite(x)]
    with np.errstate(all="ignore"):
        for code in (EXP, SOFTMAX):
            ref = output(code, x, "scalar")
            got = output(code, x, level)
            normal = safe(ref)
            assert ulp_distance(got, ref)[normal].max() <= ACTIVATION_ULP, code


# -------------------------------------------------------------------------- table
def table():
    """Max ulp from scalar libm per function, dtype and vector level (markdown)."""
    rows = []
    for dtype in DTYPES:
        x = grid(dtype, n_dense=400001)
        with np.errstate(all="ignore"):
            for name in _kernels.VECTOR_FUNCTIONS:
                ref = library(name, x, "scalar")
                rows.append((name, dtype, "ulp", [ulp_distance(library(name, x, lv), ref).max()
                                                  for lv in VECTOR_LEVELS]))
            for name in sorted(ACTIVATIONS):
                ref = activation(name, x, "scalar")
                normal = safe(ref)
                rows.append((name, dtype, "ulp (results > tiny/eps)", [
                    ulp_distance(activation(name, x, lv), ref)[normal].max()
                    for lv in VECTOR_LEVELS]))
            for name in DERIVATIVES:
                ref = activation(name, x, "scalar", derivative=True)
                rows.append((name + "'", dtype, "abs. error / eps", [
                    derivative_error(activation(name, x, lv, derivative=True), ref, dtype)
                    for lv in VECTOR_LEVELS]))
            xf = x[np.isfinite(x)]
            for code, label in ((EXP, "exp output"), (SOFTMAX, "softmax")):
                ref = output(code, xf, "scalar")
                normal = safe(ref)
                rows.append((label, dtype, "ulp (results > tiny/eps)", [
                    ulp_distance(output(code, xf, lv), ref)[normal].max()
                    for lv in VECTOR_LEVELS]))
    _kernels.set_vector_math()
    n = grid(np.float64, n_dense=400001).size
    print(f"Max difference from scalar libm over {n} points per function and dtype "
          f"(dense [-40, 40], subnormal to max magnitudes, overflow/underflow edges, "
          f"special values).\n")
    print("| function | dtype | measure | " + " | ".join(VECTOR_LEVELS) + " |")
    print("|---|---|---|" + "---|" * len(VECTOR_LEVELS))
    for name, dtype, measure, values in rows:
        print(f"| {name} | {np.dtype(dtype).name} | {measure} | "
              + " | ".join(f"{v:.3g}" for v in values) + " |")


if __name__ == "__main__":
    if "--table" in sys.argv:
        table()
