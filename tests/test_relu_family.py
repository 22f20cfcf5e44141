"""The ReLU family at the estimator level: every name trains, the activations keep
units alive as their names promise, and L1, dropout and clipping have their effects."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor
from relumlp._activations import HIDDEN_ACTIVATIONS
from relumlp.diagnostics import dead_units, hidden_activations

ALL_ACTIVATIONS = sorted(HIDDEN_ACTIVATIONS)
DIGITS = dict(n=None, scale="standard")  # the digits fixture: every row, standardised


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_over_every_activation(digits):
    """Every activation name is searchable and reaches >= 0.95 CV accuracy on digits.

    The folds are shuffled: digits is ordered by writer, and with unshuffled 3-fold CV
    even a linear model (activation='identity', or LogisticRegression) stays near 0.93.
    """
    X, y = digits
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", ReLUMLPClassifier(alpha=1.0, max_iter=100, random_state=0))])
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, {"clf__activation": ALL_ACTIVATIONS}, cv=cv)
    search.fit(X, y)
    scores = dict(zip(search.cv_results_["param_clf__activation"],
                      search.cv_results_["mean_test_score"]))
    assert set(scores) == set(ALL_ACTIVATIONS)
    low = {a: s for a, s in scores.items() if s < 0.95}
    assert not low, f"activations below 0.95 mean CV accuracy: {low}"


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("Est", [ReLUMLPClassifier, ReLUMLPRegressor])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_every_activation_every_solver_dense_sparse_dtypes(Est, solver):
    import scipy.sparse as sp

    rng = np.random.RandomState(0)
    X = rng.randn(40, 6)
    X[X < 0.3] = 0  # sparse-ish
    y = (X[:, 0] + X[:, 1] > 0.5).astype(int) if Est is ReLUMLPClassifier else X[:, 0] - X[:, 2]
    for act in ALL_ACTIVATIONS:
        for data in (X, sp.csr_matrix(X), X.astype(np.float32)):
            est = Est(hidden_layer_sizes=(5,), activation=act, solver=solver, max_iter=5,
                      random_state=0).fit(data, y)
            pred = est.predict(data)
            assert pred.shape[0] == 40
            assert all(np.isfinite(c).all() for c in est.coefs_)
            assert est.coefs_[0].dtype == data.dtype


def test_activation_tuple_per_layer(digits):
    X, y = digits
    clf = ReLUMLPClassifier((16, 8, 8), activation=("relu", "prelu", "selu"), max_iter=5,
                            random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.prelu_slopes_[0] is None and clf.prelu_slopes_[2] is None
    assert clf.prelu_slopes_[1].shape == (8,)
    # The learned slopes moved away from their initial value.
    assert not np.allclose(clf.prelu_slopes_[1], clf.negative_slope)
    with pytest.raises(ValueError, match="activation has 2 entries"):
        ReLUMLPClassifier((4, 4, 4), activation=("relu", "tanh")).fit(X, y)
    with pytest.raises(ValueError, match="bogus"):
        ReLUMLPClassifier((4,), activation=("bogus",)).fit(X, y)


def test_weight_init_variance():
    """He keeps the activation scale through a deep relu net; Glorot shrinks it."""
    rng = np.random.RandomState(0)
    X = rng.randn(500, 256)
    y = rng.randint(0, 2, 500)
    scales = {}
    for init in ["he_normal", "glorot_uniform"]:
        clf = ReLUMLPClassifier((256,) * 8, weight_init=init, max_iter=1, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.partial_fit(X[:1], y[:1], classes=[0, 1])
        scales[init] = np.sqrt(np.mean(hidden_activations(clf, X, layer=-1) ** 2))
    assert 0.3 < scales["he_normal"] < 3
    assert scales["glorot_uniform"] < 0.5 * scales["he_normal"]


def test_weight_init_sklearn_matches_sklearn_draws(digits):
    from sklearn.neural_network import MLPClassifier

    X, y = digits
    a = ReLUMLPClassifier((20,), weight_init="sklearn", max_iter=1, random_state=3)
    b = MLPClassifier((20,), max_iter=1, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y)
        b.fit(X, y)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=1e-10, atol=1e-13)


def _dead_fraction(act, X, y, random_state):
    clf = ReLUMLPClassifier((12,) * 6, activation=act, learning_rate_init=0.1,
                            max_iter=10, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    masks = dead_units(clf, X)
    return np.mean(np.concatenate(masks))


def test_leaky_family_keeps_units_alive(digits):
    """On a deep narrow network with a large learning rate, relu units die; the
    activations with a negative branch keep more units alive (on average over seeds)."""
    X, y = digits
    dead = {act: np.mean([_dead_fraction(act, X, y, s) for s in range(3)])
            for act in ["relu", "leaky_relu", "prelu", "elu"]}
    assert dead["relu"] > 0.3, dead
    for act in ["leaky_relu", "prelu", "elu"]:
        assert dead[act] < 0.6 * dead["relu"], dead


def test_dead_units_definition():
    clf = ReLUMLPClassifier((3,), max_iter=1, random_state=0)
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, [0, 1, 1])
    clf.coefs_[0][...] = [[1.0, -1.0, 0.5], [1.0, -1.0, -2.0]]
    clf.intercepts_[0][...] = [0.0, 0.0, 0.0]
    masks = dead_units(clf, X)
    np.testing.assert_array_equal(masks[0], [False, True, False])
    Z = hidden_activations(clf, X, pre_activation=True)
    np.testing.assert_allclose(Z, X @ clf.coefs_[0])


def test_l1_gives_more_near_zero_weights(digits):
    X, y = digits
    fits = {}
    for l1 in [0.0, 2.0]:
        clf = ReLUMLPClassifier((50,), alpha_l1=l1, max_iter=40, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        fits[l1] = clf
    small = {l1: np.mean(np.abs(c.coefs_[0]) < 1e-2) for l1, c in fits.items()}
    assert small[2.0] > small[0.0] + 0.2, small
    assert fits[2.0].score(X, y) > 0.9


def test_l1_with_lbfgs_lowers_l1_norm(digits):
    X, y = digits
    norms = []
    for l1 in [0.0, 1.0]:
        clf = ReLUMLPClassifier((20,), solver="lbfgs", alpha_l1=l1, max_iter=100,
                                random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        norms.append(sum(np.abs(c).sum() for c in clf.coefs_))
    assert norms[1] < 0.7 * norms[0]


def test_dropout_effects(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(64,), max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = ReLUMLPClassifier(**kw).fit(X, y)
        zero = ReLUMLPClassifier(dropout=0.0, **kw).fit(X, y)
        zero_tuple = ReLUMLPClassifier(dropout=(0.0,), **kw).fit(X, y)
        dropped = ReLUMLPClassifier(dropout=0.5, **kw).fit(X, y)
        again = ReLUMLPClassifier(dropout=0.5, **kw).fit(X, y)
    for other in (zero, zero_tuple):
        for a, b in zip(plain.coefs_, other.coefs_):
            assert np.array_equal(a, b)
    # Training loss (measured with dropout on) rises, the model still fits.
    assert dropped.loss_ > plain.loss_ * 1.2
    assert dropped.score(X, y) > 0.95
    # Reproducible, and no dropout at predict time (predictions are deterministic).
    for a, b in zip(dropped.coefs_, again.coefs_):
        assert np.array_equal(a, b)
    assert np.array_equal(dropped.predict_proba(X), dropped.predict_proba(X))


def test_dropout_independent_of_thread_count(digits):
    from threadpoolctl import threadpool_limits

    X, y = digits
    coefs = []
    for n in (1, 2):
        with threadpool_limits(n, user_api="openmp"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = ReLUMLPClassifier((300,), dropout=0.3, max_iter=2, batch_size=400,
                                    random_state=0).fit(X, y)
        coefs.append(clf.coefs_)
    # Same masks on 1 and 2 threads; the row-split products differ in the last bits
    # only (the kernel tests check the masks themselves bit for bit).
    for a, b in zip(*coefs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_dropout_rejected_with_lbfgs(digits):
    X, y = digits
    with pytest.raises(ValueError, match="dropout"):
        ReLUMLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        ReLUMLPClassifier((5, 5), dropout=(0.1, 1.0)).fit(X, y)


def test_max_grad_norm_limits_steps(digits):
    """With plain SGD (no momentum) each step moves the weights by at most lr * max_norm."""
    X, y = digits
    lr, max_norm = 0.5, 0.01
    clf = ReLUMLPClassifier((10,), solver="sgd", momentum=0.0, learning_rate_init=lr,
                            max_grad_norm=max_norm, batch_size=len(X), random_state=0,
                            max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        before = clf._flat.copy()
        clf.set_params(warm_start=True).fit(X, y)
    step = np.linalg.norm(clf._flat - before)
    assert step == pytest.approx(lr * max_norm, rel=1e-6)
    unclipped = ReLUMLPClassifier((10,), solver="sgd", momentum=0.0, learning_rate_init=lr,
                                  batch_size=len(X), random_state=0, max_iter=1,
                                  warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unclipped.fit(X, y)
        before = unclipped._flat.copy()
        unclipped.fit(X, y)
    assert np.linalg.norm(unclipped._flat - before) > 10 * lr * max_norm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ALL_ACTIVATIONS)
def test_extreme_inputs_stay_finite(act, dtype):
    """Training on huge feature values never produces NaN in the forward pass."""
    X = np.array([[1e4, -1e4], [-1e4, 1e4], [3.0, -2.0], [0.5, 0.1]], dtype=dtype)
    clf = ReLUMLPRegressor(hidden_layer_sizes=(4,), activation=act, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[2:], [0.0, 1.0])
        H = hidden_activations(clf, X)
        Z = hidden_activations(clf, X, pre_activation=True)
    assert np.isfinite(Z).all()
    # softplus/elu/selu/gelu/silu/logistic/tanh of +-1e4 are finite numbers.
    assert np.isfinite(H).all()
