"""Whole-network loss and gradient of Trainer.loss_gradient.

Central finite differences on the flat parameter vector (weights, intercepts and PReLU
slopes), in float64, on a tiny network (5 features, hidden layers (4, 3)) for every
hidden activation and every loss, then for per-layer activation pairs with an L1 penalty
and with dropout held fixed (the masks are a function of the objective's
``dropout_stream``). Every parameter, intercepts included, is at least PARAM_MIN away from 0 (L1's kink, and
dropped inputs would otherwise leave pre-activations exactly at 0), and no hidden
pre-activation is within KINK_MARGIN of the kink at 0. The same objective is also
compared with the NumPy reference of scikit-learn's _backprop (extended in reference.py).
"""
import numpy as np
import pytest
import scipy.sparse as sp

from relumlp import _inference
from relumlp._activations import HIDDEN_ACTIVATIONS
from relumlp._params import NetworkLayout
from relumlp._training import Trainer

try:
    import reference as ref
except ImportError:  # tests/ collected as a package
    from tests import reference as ref

ACTIVATIONS = sorted(HIDDEN_ACTIVATIONS)  # 'swish' included: an alias must work too
# The scalar parameter of the parametrised activations; not their defaults, so that a
# kernel ignoring it is caught (prelu's slopes live in the flat parameter vector).
ACT_PARAMS = {"leaky_relu": 0.1, "elu": 1.3}
# id -> (loss name Trainer takes, output activation, n_outputs)
PROBLEMS = {
    "squared_error-1": ("squared_error", "identity", 1),
    "squared_error-2": ("squared_error", "identity", 2),
    "poisson": ("poisson", "exp", 1),
    "log_loss-softmax": ("log_loss", "softmax", 3),
    "binary_log_loss": ("log_loss", "logistic", 1),
    "binary_log_loss-multilabel": ("log_loss", "logistic", 2),
}
N_FEATURES, HIDDEN = 5, (4, 3)
ALPHA = 0.1
L1 = 0.05
DROPOUT_SEED, DROPOUT_STEP = 1234, 7
PARAM_MIN = 0.05    # smallest |parameter|: away from L1's kink, non-zero intercepts
KINK_MARGIN = 1e-4  # smallest allowed |z| of a hidden pre-activation
FD_STEP = 1e-6      # relative step of the central differences

# Per-layer activation pairs, each with the problem it is checked on.
PAIRS = {
    "prelu-gelu": (("prelu", "gelu"), "log_loss-softmax"),
    "selu-leaky_relu": (("selu", "leaky_relu"), "squared_error-2"),
    "softplus-elu": (("softplus", "elu"), "poisson"),
    "relu-prelu": (("relu", "prelu"), "binary_log_loss-multilabel"),
    "silu-tanh": (("silu", "tanh"), "binary_log_loss"),
    "prelu-prelu": (("prelu", "prelu"), "squared_error-1"),
}
# id -> (alpha_l1, dropout rate per hidden layer)
EXTENSIONS = {
    "l1": (L1, (0.0, 0.0)),
    "dropout": (0.0, (0.3, 0.5)),
    "l1-dropout-first": (L1, (0.4, 0.0)),
    "l1-dropout": (L1, (0.5, 0.25)),
}


def make_layout(activations, n_outputs, out_activation, dropout=(0.0, 0.0)):
    names = [activations] * len(HIDDEN) if isinstance(activations, str) else list(activations)
    return NetworkLayout([N_FEATURES, *HIDDEN, n_outputs], names, out_activation,
                         [ACT_PARAMS.get(a, 0.0) for a in names], list(dropout))


def reference_args(layout, flat, n_samples, step=DROPOUT_STEP):
    """Keyword arguments of ref.forward_pass / ref.backprop for this layout: activation
    parameters, PReLU slopes and the dropout multipliers of batch counter ``step``."""
    L = layout.n_layers
    masks = [None if rate == 0 else
             ref.dropout_multipliers((n_samples, width), rate, DROPOUT_SEED, step * L + l)
             for l, (width, rate) in enumerate(zip(layout.units[1:-1], layout.dropout))]
    return dict(act_params=layout.act_params, slopes=layout.views(flat)[2], masks=masks)


def make_problem(activations, problem, weighted, n_samples=20, dropout=(0.0, 0.0)):
    """(layout, flat, X, Y, sw) with every |parameter| >= PARAM_MIN and no hidden
    pre-activation within KINK_MARGIN of 0 (with the masks of DROPOUT_STEP)."""
    loss, out_activation, n_outputs = PROBLEMS[problem]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, N_FEATURES))
    X[rng.random(X.shape) < 0.4] = 0
    if loss == "squared_error":
        Y = rng.normal(size=(n_samples, n_outputs))
    elif loss == "poisson":
        Y = rng.poisson(1.0, size=(n_samples, n_outputs)).astype(np.float64)
    elif out_activation == "softmax":
        Y = np.eye(n_outputs)[rng.integers(0, n_outputs, n_samples)]
    else:
        Y = (rng.random((n_samples, n_outputs)) < 0.5).astype(np.float64)
    sw = rng.uniform(0.5, 2.0, n_samples) if weighted else np.ones(n_samples)
    layout = make_layout(activations, n_outputs, out_activation, dropout)
    for seed in range(100):
        u = np.random.default_rng(seed).uniform(-1, 1, layout.n_params)
        flat = np.sign(u) * (PARAM_MIN + (0.8 - PARAM_MIN) * np.abs(u))
        coefs, intercepts = layout.views(flat)[:2]
        Z, _ = ref.forward_pass(coefs, intercepts, X, layout.activations, out_activation,
                                **reference_args(layout, flat, n_samples))
        if min(np.abs(z).min() for z in Z[:-1]) > KINK_MARGIN:
            return layout, flat, X, Y, sw
    raise AssertionError("no initialisation keeps the pre-activations away from 0")


def trainer_for(layout, flat, X, Y, sw, problem, sparse, l1=0.0):
    X = sp.csr_matrix(X) if sparse else X
    trainer = Trainer(layout, flat.copy(), X, Y, sw, PROBLEMS[problem][0], ALPHA,
                      alpha_l1=l1, dropout_seed=DROPOUT_SEED)
    trainer.objective.dropout_stream = DROPOUT_STEP
    return trainer


def loss_gradient(trainer, flat):
    loss, grads = trainer.loss_gradient(flat)
    return loss, grads.copy()  # grads is the trainer's buffer, overwritten by each call


def finite_differences(trainer, flat):
    numerical = np.empty_like(flat)
    for k in range(flat.size):
        h = FD_STEP * max(1.0, abs(flat[k]))
        step = np.zeros_like(flat)
        step[k] = h
        plus, _ = loss_gradient(trainer, flat + step)
        minus, _ = loss_gradient(trainer, flat - step)
        numerical[k] = (plus - minus) / (2 * h)
    return numerical


def reference_loss_gradient(layout, flat, X, Y, sw, problem, l1=0.0):
    loss, out_activation, _ = PROBLEMS[problem]
    coefs, intercepts, slopes = layout.views(flat)[:3]
    value, cg, ig, sg = ref.backprop(coefs, intercepts, X, Y, sw, layout.activations,
                                     out_activation, loss, ALPHA, l1=l1,
                                     **reference_args(layout, flat, X.shape[0]))
    assert [g is None for g in sg] == [s is None for s in slopes]
    return value, ref.flatten(cg, ig, sg)


def assert_same(actual, expected, rtol):
    np.testing.assert_allclose(actual, expected, rtol=rtol,
                               atol=rtol * np.abs(expected).max())


def n_slopes(layout):
    return layout.n_params - layout.n_coefs - sum(layout.units[1:])


def test_prelu_slopes_are_in_the_flat_vector():
    layout = make_layout(("prelu", "gelu"), 3, "softmax")
    assert n_slopes(layout) == HIDDEN[0]
    assert layout.views(np.arange(layout.n_params))[2][0][0] == layout.n_params - HIDDEN[0]
    assert n_slopes(make_layout("prelu", 3, "softmax")) == sum(HIDDEN)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_matches_finite_differences(activation, problem, weighted, sparse):
    layout, flat, X, Y, sw = make_problem(activation, problem, weighted)
    trainer = trainer_for(layout, flat, X, Y, sw, problem, sparse)
    _, grads = loss_gradient(trainer, flat)
    numerical = finite_differences(trainer, flat)
    assert grads.dtype == np.float64
    assert np.abs(grads).max() > 1e-3
    if activation == "prelu":
        assert np.abs(grads[-n_slopes(layout):]).max() > 1e-4
    np.testing.assert_allclose(grads, numerical, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_loss_gradient_matches_reference(activation, problem, weighted, sparse):
    layout, flat, X, Y, sw = make_problem(activation, problem, weighted)
    trainer = trainer_for(layout, flat, X, Y, sw, problem, sparse)
    loss, grads = loss_gradient(trainer, flat)
    expected_loss, expected_grads = reference_loss_gradient(layout, flat, X, Y, sw, problem)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-10)
    assert_same(grads, expected_grads, rtol=1e-10)
    # Default argument: the trainer's own parameters, which it must not modify.
    assert loss_gradient(trainer, None)[0] == loss
    assert np.array_equal(trainer.flat, flat)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("extension", EXTENSIONS)
@pytest.mark.parametrize("pair", PAIRS)
def test_extensions_match_finite_differences(pair, extension, sparse):
    activations, problem = PAIRS[pair]
    l1, dropout = EXTENSIONS[extension]
    layout, flat, X, Y, sw = make_problem(activations, problem, True, dropout=dropout)
    trainer = trainer_for(layout, flat, X, Y, sw, problem, sparse, l1)
    _, grads = loss_gradient(trainer, flat)
    numerical = finite_differences(trainer, flat)
    assert np.abs(grads).max() > 1e-3
    np.testing.assert_allclose(grads, numerical, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("extension", EXTENSIONS)
@pytest.mark.parametrize("pair", PAIRS)
def test_extensions_match_reference(pair, extension, sparse):
    activations, problem = PAIRS[pair]
    l1, dropout = EXTENSIONS[extension]
    layout, flat, X, Y, sw = make_problem(activations, problem, True, dropout=dropout)
    trainer = trainer_for(layout, flat, X, Y, sw, problem, sparse, l1)
    loss, grads = loss_gradient(trainer, flat)
    expected_loss, expected_grads = reference_loss_gradient(layout, flat, X, Y, sw,
                                                            problem, l1)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-10)
    assert_same(grads, expected_grads, rtol=1e-10)


@pytest.mark.parametrize("dropout", [(0.0, 0.0), (0.3, 0.5)], ids=["plain", "dropout"])
@pytest.mark.parametrize("pair", PAIRS)
def test_l1_penalises_weights_only(pair, dropout):
    activations, problem = PAIRS[pair]
    layout, flat, X, Y, sw = make_problem(activations, problem, True, dropout=dropout)
    loss_0, grads_0 = loss_gradient(trainer_for(layout, flat, X, Y, sw, problem, False),
                                    flat)
    loss_1, grads_1 = loss_gradient(trainer_for(layout, flat, X, Y, sw, problem, False, L1),
                                    flat)
    W = flat[:layout.n_coefs]
    np.testing.assert_allclose(loss_1 - loss_0, L1 * np.abs(W).sum() / sw.sum(), rtol=1e-10)
    np.testing.assert_allclose(grads_1[:layout.n_coefs] - grads_0[:layout.n_coefs],
                               L1 * np.sign(W) / sw.sum(), rtol=1e-9, atol=1e-14)
    # Intercepts and PReLU slopes: not penalised, so bit-identical.
    assert np.array_equal(grads_1[layout.n_coefs:], grads_0[layout.n_coefs:])


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_dropout_masks_follow_step(sparse):
    layout, flat, X, Y, sw = make_problem(("prelu", "gelu"), "log_loss-softmax", True,
                                          dropout=(0.3, 0.5))
    trainer = trainer_for(layout, flat, X, Y, sw, "log_loss-softmax", sparse)
    at_step = loss_gradient(trainer, flat)
    again = loss_gradient(trainer, flat)
    assert again[0] == at_step[0] and np.array_equal(again[1], at_step[1])
    trainer.objective.dropout_stream = DROPOUT_STEP + 1
    other = loss_gradient(trainer, flat)
    assert abs(other[0] - at_step[0]) > 1e-6
    # The other step's loss is the reference objective with that step's masks.
    coefs, intercepts = layout.views(flat)[:2]
    expected = ref.backprop(coefs, intercepts, X, Y, sw, layout.activations, "softmax",
                            "log_loss", ALPHA,
                            **reference_args(layout, flat, X.shape[0], DROPOUT_STEP + 1))
    np.testing.assert_allclose(other[0], expected[0], rtol=1e-10)
    assert_same(other[1], ref.flatten(*expected[1:]), rtol=1e-10)
    # The seed selects the masks too.
    trainer.objective.dropout_stream = DROPOUT_STEP
    trainer.objective.dropout_seed = DROPOUT_SEED + 1
    assert abs(loss_gradient(trainer, flat)[0] - at_step[0]) > 1e-6


def test_step_is_irrelevant_without_dropout():
    layout, flat, X, Y, sw = make_problem(("prelu", "gelu"), "log_loss-softmax", True)
    trainer = trainer_for(layout, flat, X, Y, sw, "log_loss-softmax", False)
    at_step = loss_gradient(trainer, flat)
    trainer.objective.dropout_stream = DROPOUT_STEP + 1
    other = loss_gradient(trainer, flat)
    assert other[0] == at_step[0] and np.array_equal(other[1], at_step[1])


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_sparse_matches_dense(activation, problem, weighted):
    layout, flat, X, Y, sw = make_problem(activation, problem, weighted)
    dense = loss_gradient(trainer_for(layout, flat, X, Y, sw, problem, False), flat)
    csr = loss_gradient(trainer_for(layout, flat, X, Y, sw, problem, True), flat)
    np.testing.assert_allclose(csr[0], dense[0], rtol=1e-12)
    assert_same(csr[1], dense[1], rtol=1e-12)


CHUNKED = {
    "relu": ("relu", (0.0, 0.0), 0.0),
    "prelu-gelu-l1-dropout": (("prelu", "gelu"), (0.3, 0.5), L1),
    "selu-prelu-dropout": (("selu", "prelu"), (0.0, 0.4), 0.0),
}


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("network", CHUNKED)
@pytest.mark.parametrize("problem", PROBLEMS)
def test_chunked_accumulation(monkeypatch, problem, network, sparse):
    # 30 rows in chunks of 7: four full chunks and a partial one. Dropout masks are
    # drawn by global row, so chunking must not change them.
    activations, dropout, l1 = CHUNKED[network]
    layout, flat, X, Y, sw = make_problem(activations, problem, True, n_samples=30,
                                          dropout=dropout)
    one_chunk = loss_gradient(trainer_for(layout, flat, X, Y, sw, problem, sparse, l1), flat)
    monkeypatch.setattr(_inference, "CHUNK_ROWS", 7)
    trainer = trainer_for(layout, flat, X, Y, sw, problem, sparse, l1)
    chunked = loss_gradient(trainer, flat)
    assert trainer.ws.rows == 7  # the workspace really holds 7 rows
    np.testing.assert_allclose(chunked[0], one_chunk[0], rtol=1e-12)
    assert_same(chunked[1], one_chunk[1], rtol=1e-12)
    expected = reference_loss_gradient(layout, flat, X, Y, sw, problem, l1)
    np.testing.assert_allclose(chunked[0], expected[0], rtol=1e-10)
    assert_same(chunked[1], expected[1], rtol=1e-10)
