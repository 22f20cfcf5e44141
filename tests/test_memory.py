"""Memory: prediction converts and processes X in blocks, so its extra memory does not
grow with n_samples; fitting makes at most one copy of X."""
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from relumlp import ReLUMLPRegressor

from _helpers import (
    _data_for,
    _small,
    ignore_convergence,
)


@ignore_convergence
@pytest.mark.parametrize("sparse", [False, True])
def test_predict_converts_input_in_blocks(sparse, monkeypatch):
    """float64 (or F-ordered) input to a float32 model is converted block by block."""
    from relumlp import _inference

    X, y = _data_for(ReLUMLPRegressor)
    reg = _small(ReLUMLPRegressor).fit(X.astype(np.float32), y)
    expected = reg.predict(X.astype(np.float32))
    monkeypatch.setattr(_inference, "CHUNK_ROWS", 3)  # blocks of 12 rows
    seen = []
    original = _inference.as_input

    def spy(block, dtype):
        seen.append(block.shape[0])
        return original(block, dtype)

    monkeypatch.setattr(_inference, "as_input", spy)
    Xin = sp.csr_matrix(X) if sparse else np.asfortranarray(X)
    got = reg.predict(Xin)
    assert max(seen) <= 12 and sum(seen) == X.shape[0]
    # float32: different block sizes change BLAS's blocking, hence the last bits.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.dtype == np.float32


def _peak_predict_memory(model, X):
    tracemalloc.start()
    try:
        model.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("X_dtype", [np.float32, np.float64])
def test_predict_extra_memory_is_bounded(X_dtype):
    """Beyond the output, predict's temporaries do not grow with n_samples, even when
    float64 input must be converted for a float32 model."""
    rng = np.random.RandomState(0)
    X_small = rng.rand(200, 50)
    reg = ReLUMLPRegressor(hidden_layer_sizes=(64, 32), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X_small.astype(np.float32), rng.rand(200))
    extra = {}
    for n in (20_000, 200_000):
        X = rng.rand(n, 50).astype(X_dtype)
        output = n * 4  # float32 predictions
        extra[n] = _peak_predict_memory(reg, X) - output
    # A full copy of the larger X would be 40-80 MB; the workspace is a few MB.
    assert extra[200_000] < 8e6, extra
    assert extra[200_000] < 1.5 * extra[20_000] + 1e6, extra


@pytest.mark.parametrize("early_stopping", [False, True], ids=["all-rows", "split"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_makes_at_most_one_copy_of_X(dtype, order, early_stopping):
    """Peak traced memory of fit, beyond X itself: C-ordered X is used in place (the
    early-stopping split indexes rows, only the validation rows are copied); any other
    layout is copied once into C order, never twice."""
    rng = np.random.RandomState(0)
    X = np.asarray(rng.rand(20_000, 100).astype(dtype), order=order)
    y = rng.rand(20_000)
    reg = ReLUMLPRegressor(hidden_layer_sizes=(32,), max_iter=2, random_state=0,
                           early_stopping=early_stopping)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X[:300], y[:300])  # warm-up: imports, caches
        tracemalloc.start()
        try:
            reg.fit(X, y)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    copies = 1 if order == "F" else 0
    # Besides the copies: the validation rows (10 %), the parameters and workspaces.
    assert peak < (copies + 0.35) * X.nbytes, peak / X.nbytes
