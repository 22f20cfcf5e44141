"""Bad input -> clear error, nothing changed.

Every invalid parameter value and every malformed input (NaN / inf, wrong shapes, wrong
feature count, empty or 1-D X, string targets for the regressor, bad sample weights, a bad validation set, ...) raises a ValueError (or a
TypeError where scikit-learn raises one; its InvalidParameterError is both) whose message
names the offending argument, and raises it before any fitted attribute of an
already-fitted model changes: a failed ``fit`` / ``partial_fit`` leaves the model exactly
as it was.

``INVALID`` holds at least one bad value for every entry of ``_parameter_constraints``;
``test_invalid_table_covers_every_parameter`` fails when a parameter is added without one.
"""
import copy
import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import is_classifier
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier, MLPRegressor

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor

# Every fit here is 2 epochs on 60 rows: convergence is not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = (ReLUMLPClassifier, ReLUMLPRegressor)
SKLEARN = {ReLUMLPClassifier: MLPClassifier, ReLUMLPRegressor: MLPRegressor}
BASE = dict(hidden_layer_sizes=(5,), max_iter=2, random_state=0)

X, Y_CLF = make_classification(n_samples=60, n_features=5, n_informative=3,
                               n_redundant=0, n_classes=3, random_state=0)
Y_REG = X @ np.array([0.5, -1.0, 0.25, 0.0, 1.0]) + 0.1 * np.random.RandomState(1).randn(60)
Y = {ReLUMLPClassifier: Y_CLF, ReLUMLPRegressor: Y_REG}


def _with(a, index, value):
    """A copy of ``a`` with ``a[index] = value``."""
    a = np.array(a, dtype=np.result_type(a, type(value)))
    a[index] = value
    return a


# ---------------------------------------------------------------- invalid parameters
_COMMON_INVALID = {
    "hidden_layer_sizes": [(0,), (-3,), (5, 0), (2.5,), (5.0,), (True,), [[5]], 0, -1, 2.5,
                           "abc", None],
    "activation": ["bogus", "RELU", ("relu", "bogus"), ["bogus"], ("relu", "relu"), (),
                   [["relu"]], 5, None],
    "solver": ["bogus", "SGD", None],
    "alpha": [-1.0, np.nan, "0.1", None],
    "batch_size": [0, -5, 2.5, "big", None],
    "learning_rate": ["bogus", None],
    "learning_rate_init": [0, 0.0, -0.1, np.nan, "0.1"],
    "power_t": [-0.5, None],
    "max_iter": [0, -1, 2.5, None],
    "shuffle": ["yes", 1, None],
    "random_state": ["seed", 1.5, -1],
    "tol": [-1e-4, None],
    "verbose": ["loud", -1, 1.5],
    "warm_start": ["yes", 1, None],
    "momentum": [-0.1, 1.1, np.nan],
    "nesterovs_momentum": ["yes", None],
    "early_stopping": ["yes", None],
    "validation_fraction": [1.0, -0.1, 1.5, np.nan, None],
    "beta_1": [1.0, -0.1],
    "beta_2": [1.0, -0.1],
    "epsilon": [0.0, -1e-8],
    "n_iter_no_change": [0, -1, 2.5, -np.inf],
    "max_fun": [0, -1, 2.5],
    "negative_slope": [-0.1, np.nan],
    "elu_alpha": [-1.0, None],
    "weight_init": ["zeros", None],
    "alpha_l1": [-1e-3, None],
    "dropout": [1.0, -0.1, (1.0,), (-0.1,), [np.nan], ("a",), (None,), [[0.1]],
                (0.1, 0.2), [], "half", None],
    "max_grad_norm": [0, 0.0, -1.0, "inf"],
    "weight_decay": [-1e-4, None, "0.01"],
    "warmup_iters": [-1, 1.5, None],
    "normalization": ["batchnorm", ("layer", "layer"), ("group",), 1],
    "normalization_eps": [0, -1e-5, None, "1e-5"],
    "normalization_momentum": [-0.1, 1.5, None],
    "record_history": ["yes", 1, None],
    "early_stopping_metric": ["accuracy", None],
}
INVALID = {
    ReLUMLPClassifier: {**_COMMON_INVALID,
                        "class_weight": ["bogus", [1.0, 2.0], 1.0],
                        "label_smoothing": [1.0, -0.1, None, "0.1"]},
    ReLUMLPRegressor: {**_COMMON_INVALID,
                       "loss": ["bogus", "log_loss", "absolute_error", None]},
}


def _short(value):
    text = repr(value)
    return text if len(text) <= 20 else text[:17] + "..."


INVALID_CASES = [
    pytest.param(Est, name, value, id=f"{Est.__name__[7:]}-{name}={_short(value)}")
    for Est in ESTIMATORS
    for name, values in INVALID[Est].items()
    for value in values
]


# ---------------------------------------------------------------- helpers
# Not part of the fitted model: _random_state is re-seeded from random_state by every
# fit / partial_fit call and used only while training; _validated_params remembers which
# parameter values were last validated. Keys ending in "_cache" are memoisation.
_VOLATILE = {"_random_state", "_validated_params"}


def _is_volatile(key):
    return key in _VOLATILE or (isinstance(key, str) and key.endswith("_cache"))


def snapshot(est):
    return copy.deepcopy({k: v for k, v in vars(est).items() if not _is_volatile(k)})


def assert_state_equal(before, after, path="est"):
    """Recursive equality: arrays by value and dtype, lists / dicts elementwise."""
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        assert isinstance(before, np.ndarray) and isinstance(after, np.ndarray), path
        assert before.dtype == after.dtype, f"{path}: dtype {before.dtype} -> {after.dtype}"
        assert before.shape == after.shape, f"{path}: shape {before.shape} -> {after.shape}"
        assert np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"), path
    elif sp.issparse(before):
        assert sp.issparse(after) and (before != after).nnz == 0, path
    elif isinstance(before, dict):
        assert isinstance(after, dict), path
        before = {k: v for k, v in before.items() if not _is_volatile(k)}
        after = {k: v for k, v in after.items() if not _is_volatile(k)}
        assert set(before) == set(after), (
            f"{path}: keys added {sorted(set(after) - set(before))}, "
            f"removed {sorted(set(before) - set(after))}")
        for key in before:
            assert_state_equal(before[key], after[key], f"{path}.{key}")
    elif isinstance(before, (list, tuple)):
        assert type(before) is type(after), f"{path}: {type(before)} -> {type(after)}"
        assert len(before) == len(after), f"{path}: length {len(before)} -> {len(after)}"
        for i, (a, b) in enumerate(zip(before, after)):
            assert_state_equal(a, b, f"{path}[{i}]")
    elif isinstance(before, np.random.RandomState):
        assert_state_equal(before.get_state(), after.get_state(), path)
    elif isinstance(before, (float, np.floating)) and np.isnan(before):
        assert isinstance(after, (float, np.floating)) and np.isnan(after), path
    elif hasattr(before, "__dict__") and not isinstance(before, type):
        assert type(before) is type(after), f"{path}: {type(before)} -> {type(after)}"
        assert_state_equal(vars(before), vars(after), path)
    else:
        assert type(before) is type(after), f"{path}: {type(before)} -> {type(after)}"
        assert before == after, f"{path}: {before!r} -> {after!r}"



_FITTED_CACHE = {}


def fitted(Est, **params):
    """A fitted model (fitted once per configuration, handed out as a deep copy)."""
    key = (Est, tuple(sorted(params.items())))
    if key not in _FITTED_CACHE:
        _FITTED_CACHE[key] = Est(**{**BASE, **params}).fit(X, Y[Est])
    return copy.deepcopy(_FITTED_CACHE[key])


def outputs(est):
    out = {"predict": est.predict(X), "transform": est.transform(X)}
    if hasattr(est, "predict_proba"):
        out["predict_proba"] = est.predict_proba(X)
    return out


def capture(est):
    """(state, outputs) of a fitted model; outputs first, as predicting fills caches."""
    outputs_before = outputs(est)
    return snapshot(est), outputs_before


def assert_unchanged(est, before, outputs_before):
    assert_state_equal(before, snapshot(est))
    for name, value in outputs(est).items():
        np.testing.assert_array_equal(value, outputs_before[name], err_msg=name)


def assert_not_fitted(est, Est):
    """A failed fit on a fresh estimator leaves no fitted attribute behind."""
    added = {k for k in set(vars(est)) - set(vars(Est(**BASE))) if not _is_volatile(k)}
    assert not added, f"a failed fit left attributes {sorted(added)}"


def _names(message, name):
    return re.search(rf"(?<![A-Za-z_]){re.escape(name)}(?![A-Za-z])", message)


# ---------------------------------------------------------------- the table is complete
@pytest.mark.parametrize("Est", ESTIMATORS, ids=lambda E: E.__name__)
def test_invalid_table_covers_every_parameter(Est):
    constraints = set(Est._parameter_constraints)
    assert set(INVALID[Est]) == constraints, (
        "every parameter needs at least one invalid value in INVALID; missing "
        f"{sorted(constraints - set(INVALID[Est]))}, unknown "
        f"{sorted(set(INVALID[Est]) - constraints)}")
    # ... and every constructor parameter has a constraint to validate it.
    assert set(Est().get_params()) == constraints
    assert all(INVALID[Est][name] for name in constraints)


# ---------------------------------------------------------------- invalid parameters
@pytest.mark.parametrize("Est, name, value", INVALID_CASES)
def test_invalid_parameter_fresh(Est, name, value):
    est = Est(**BASE).set_params(**{name: value})
    with pytest.raises((ValueError, TypeError)) as exc:
        est.fit(X, Y[Est])
    assert _names(str(exc.value), name), str(exc.value)
    assert_not_fitted(est, Est)


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("Est, name, value", INVALID_CASES)
def test_invalid_parameter_leaves_fitted_model_unchanged(Est, name, value, warm_start):
    est = fitted(Est, warm_start=warm_start)
    before, outputs_before = capture(est)
    good = est.get_params()[name]
    est.set_params(**{name: value})
    with pytest.raises((ValueError, TypeError)) as exc:
        est.fit(X, Y[Est])
    assert _names(str(exc.value), name), str(exc.value)
    est.set_params(**{name: good})
    assert_unchanged(est, before, outputs_before)


@pytest.mark.parametrize("Est, name, value", INVALID_CASES)
def test_invalid_parameter_partial_fit_leaves_model_unchanged(Est, name, value):
    est = fitted(Est)
    before, outputs_before = capture(est)
    good = est.get_params()[name]
    est.set_params(**{name: value})
    if name == "solver":
        # partial_fit only exists for the stochastic solvers (as in scikit-learn).
        with pytest.raises(AttributeError, match="partial_fit"):
            est.partial_fit(X, Y[Est])
    else:
        with pytest.raises((ValueError, TypeError)) as exc:
            est.partial_fit(X, Y[Est])
        assert _names(str(exc.value), name), str(exc.value)
    est.set_params(**{name: good})
    assert_unchanged(est, before, outputs_before)


def _error(fit):
    try:
        fit()
    except Exception as e:  # noqa: BLE001 - we compare whatever scikit-learn raises
        return e
    return None


@pytest.mark.parametrize(
    "Est, name",
    [pytest.param(Est, name, id=f"{Est.__name__[7:]}-{name}")
     for Est in ESTIMATORS for name in INVALID[Est]
     if name in SKLEARN[Est]._parameter_constraints])
def test_invalid_parameter_exception_type_matches_sklearn(Est, name):
    """Where scikit-learn rejects the value with a TypeError / ValueError, so do we."""
    compared = 0
    for value in INVALID[Est][name]:
        theirs = _error(lambda: SKLEARN[Est](**{**BASE, "max_iter": 1, name: value})
                        .fit(X, Y[Est]))
        ours = _error(lambda: Est(**{**BASE, name: value}).fit(X, Y[Est]))
        assert ours is not None
        for kind in (ValueError, TypeError):
            if isinstance(theirs, kind):
                assert isinstance(ours, kind), (value, theirs, ours)
                compared += 1
    assert compared  # at least one value is invalid for scikit-learn too


# ---------------------------------------------------------------- parameter combinations
# Each value is valid on its own; together (or with this data / method) they are not.
_NEG_Y = np.abs(Y_REG) * np.where(np.arange(60) == 0, -1, 1)

# late: checked by _fit after the data was validated (and, for the split, after the
# weights were initialised): _fit must still roll everything back.
COMBINATIONS = [
    pytest.param(ReLUMLPClassifier, dict(solver="lbfgs", dropout=0.5), "fit", Y_CLF,
                 "dropout", False, id="clf-dropout-with-lbfgs"),
    pytest.param(ReLUMLPRegressor, dict(solver="lbfgs", dropout=(0.2,)), "fit", Y_REG,
                 "dropout", False, id="reg-dropout-with-lbfgs"),
    pytest.param(ReLUMLPClassifier, dict(early_stopping=True), "partial_fit", Y_CLF,
                 "early_stopping", False, id="clf-partial_fit-early_stopping"),
    pytest.param(ReLUMLPRegressor, dict(early_stopping=True), "partial_fit", Y_REG,
                 "early_stopping", False, id="reg-partial_fit-early_stopping"),
    pytest.param(ReLUMLPClassifier, dict(class_weight="balanced"), "partial_fit", Y_CLF,
                 "class_weight", False, id="clf-partial_fit-class_weight-balanced"),
    pytest.param(ReLUMLPClassifier, dict(class_weight={7: 2.0}), "fit", Y_CLF,
                 "class_weight", True, id="clf-class_weight-unknown-class"),
    pytest.param(ReLUMLPRegressor, dict(loss="poisson"), "fit", _NEG_Y, "loss", False,
                 id="reg-poisson-negative-y"),
    pytest.param(ReLUMLPRegressor, dict(early_stopping=True, validation_fraction=0.01),
                 "fit", Y_REG, "validation_fraction", True,
                 id="reg-validation-set-too-small"),
]


def _call(est, method, y):
    if method == "partial_fit" and isinstance(est, ReLUMLPClassifier) \
            and not hasattr(est, "classes_"):
        return est.partial_fit(X, y, classes=np.unique(Y_CLF))
    return getattr(est, method)(X, y)


@pytest.mark.parametrize("Est, params, method, y, name, late", COMBINATIONS)
def test_invalid_combination_fresh(Est, params, method, y, name, late):
    est = Est(**{**BASE, **params})
    with pytest.raises(ValueError) as exc:
        _call(est, method, y)
    assert _names(str(exc.value), name), str(exc.value)
    assert_not_fitted(est, Est)


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("Est, params, method, y, name, late", COMBINATIONS)
def test_invalid_combination_leaves_fitted_model_unchanged(Est, params, method, y, name,
                                                           late, warm_start):
    est = fitted(Est, warm_start=warm_start)
    before, outputs_before = capture(est)
    good = {k: est.get_params()[k] for k in params}
    est.set_params(**params)
    with pytest.raises(ValueError) as exc:
        _call(est, method, y)
    assert _names(str(exc.value), name), str(exc.value)
    est.set_params(**good)
    assert_unchanged(est, before, outputs_before)


def test_warm_start_with_other_hidden_layer_sizes_leaves_model_unchanged():
    est = fitted(ReLUMLPClassifier, warm_start=True)
    before, outputs_before = capture(est)
    est.set_params(hidden_layer_sizes=(4, 3))
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        est.fit(X, Y_CLF)
    est.set_params(hidden_layer_sizes=BASE["hidden_layer_sizes"])
    assert_unchanged(est, before, outputs_before)


def test_empty_hidden_layer_sizes_is_valid():
    """Not a bad value: no hidden layer is a linear model, as in scikit-learn."""
    est = ReLUMLPRegressor(**{**BASE, "hidden_layer_sizes": ()}).fit(X, Y_REG)
    assert [c.shape for c in est.coefs_] == [(5, 1)]
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        est.transform(X)


# ---------------------------------------------------------------- bad data in fit
def _strings(n):
    return np.array(["a", "b"] * (n // 2))


# name -> (estimators, build(Est) -> (X, y, fit kwargs), match, sklearn_parity, partial_fit)
# sklearn_parity: scikit-learn's MLP rejects the same input while validating it; we must
# raise the same kind of exception (False where it accepts the input or crashes later).
_BOTH = ESTIMATORS
_CLF = (ReLUMLPClassifier,)
_REG = (ReLUMLPRegressor,)
DATA = {
    "X-NaN": (_BOTH, lambda E: (_with(X, (3, 1), np.nan), Y[E], {}), r"NaN", True, True),
    "X-inf": (_BOTH, lambda E: (_with(X, (3, 1), np.inf), Y[E], {}), r"infinity", True,
              True),
    "X--inf": (_BOTH, lambda E: (_with(X, (3, 1), -np.inf), Y[E], {}), r"infinity", True,
               True),
    "X-complex": (_BOTH, lambda E: (X + 1j, Y[E], {}), r"Complex", True, True),
    "X-strings": (_BOTH, lambda E: (np.full(X.shape, "a"), Y[E], {}), r"string", True,
                  True),
    "X-empty": (_BOTH, lambda E: (X[:0], Y[E][:0], {}), r"0 sample\(s\)", True, True),
    "X-1d": (_BOTH, lambda E: (X[:, 0], Y[E], {}), r"Expected 2D array", True, True),
    "X-3d": (_BOTH, lambda E: (X[:, :, None], Y[E], {}), r"dim 3", True, True),
    "X-no-features": (_BOTH, lambda E: (X[:, :0], Y[E], {}), r"0 feature\(s\)", True,
                      True),
    "X-y-lengths": (_BOTH, lambda E: (X, Y[E][:-1], {}), r"inconsistent numbers of samples",
                    True, True),
    "y-NaN": (_BOTH, lambda E: (X, _with(Y[E], 3, np.nan), {}), r"\by\b.*NaN", True, True),
    "y-inf": (_REG, lambda E: (X, _with(Y_REG, 3, np.inf), {}), r"\by\b.*infinity", True,
              True),
    "y-continuous": (_CLF, lambda E: (X, Y_REG, {}), r"Unknown label type", True, True),
    "y-strings": (_REG, lambda E: (X, _strings(60), {}), r"\by\b", False, True),
    "y-numeric-strings": (_REG, lambda E: (X, np.full(60, "1.5"), {}), r"\by\b", False,
                          True),
    "y-object-strings": (_REG, lambda E: (X, _strings(60).astype(object), {}), r"\by\b",
                         False, True),
    "y-complex": (_REG, lambda E: (X, Y_REG + 1j, {}), r"Complex", True, True),
    "sample_weight-short": (_BOTH, lambda E: (X, Y[E], dict(sample_weight=np.ones(59))),
                            r"sample_weight", True, True),
    "sample_weight-long": (_BOTH, lambda E: (X, Y[E], dict(sample_weight=np.ones(61))),
                           r"sample_weight", True, True),
    "sample_weight-negative": (_BOTH, lambda E: (X, Y[E], dict(
        sample_weight=_with(np.ones(60), 5, -1.0))), r"sample_weight", False, True),
    "sample_weight-NaN": (_BOTH, lambda E: (X, Y[E], dict(
        sample_weight=_with(np.ones(60), 5, np.nan))), r"sample_weight", True, True),
    "sample_weight-2d": (_BOTH, lambda E: (X, Y[E], dict(sample_weight=np.ones((60, 1)))),
                         r"[Ss]ample[ _]weights?", True, True),
    "sample_weight-all-zero": (_BOTH, lambda E: (X, Y[E], dict(sample_weight=np.zeros(60))),
                               r"[Ss]ample[ _]weights?", True, True),
    "X_val-without-y_val": (_BOTH, lambda E: (X, Y[E], dict(X_val=X[:10])),
                            r"X_val and y_val", False, False),
    "y_val-without-X_val": (_BOTH, lambda E: (X, Y[E], dict(y_val=Y[E][:10])),
                            r"X_val and y_val", False, False),
    "X_val-y_val-lengths": (_BOTH, lambda E: (X, Y[E], dict(X_val=X[:10], y_val=Y[E][:9])),
                            r"X_val has 10 rows and y_val 9", False, False),
    "X_val-empty": (_BOTH, lambda E: (X, Y[E], dict(X_val=X[:0], y_val=Y[E][:0])),
                    r"X_val", False, False),
    "X_val-features": (_BOTH, lambda E: (X, Y[E], dict(X_val=X[:10, :4],
                                                       y_val=Y[E][:10])),
                       r"X_val.*features", False, False),
    "X_val-NaN": (_BOTH, lambda E: (X, Y[E], dict(X_val=_with(X[:10], (2, 2), np.nan),
                                                  y_val=Y[E][:10])),
                  r"X_val.*NaN", False, False),
    "X_val-1d": (_BOTH, lambda E: (X, Y[E], dict(X_val=X[0], y_val=Y[E][:1])),
                 r"Expected 2D array", False, False),
    "y_val-NaN": (_REG, lambda E: (X, Y_REG, dict(X_val=X[:10],
                                                  y_val=_with(Y_REG[:10], 2, np.nan))),
                  r"y_val.*NaN", False, False),
    "y_val-inf": (_REG, lambda E: (X, Y_REG, dict(X_val=X[:10],
                                                  y_val=_with(Y_REG[:10], 2, np.inf))),
                  r"y_val.*infinity", False, False),
    "y_val-strings": (_REG, lambda E: (X, Y_REG, dict(X_val=X[:10], y_val=_strings(10))),
                      r"y_val", False, False),
    "y_val-outputs": (_REG, lambda E: (X, Y_REG, dict(X_val=X[:10],
                                                      y_val=np.ones((10, 2)))),
                      r"y_val", False, False),
    "y_val-unknown-class": (_CLF, lambda E: (X, Y_CLF, dict(X_val=X[:10],
                                                            y_val=np.full(10, 7))),
                            r"y_val.*class", False, False),
    "y_val-multilabel": (_CLF, lambda E: (X, Y_CLF, dict(X_val=X[:10],
                                                         y_val=np.ones((10, 3), int))),
                         r"y_val", False, False),
}


def _data_cases(method=None):
    return [pytest.param(Est, case, id=f"{Est.__name__[7:]}-{case}")
            for case, (ests, _, _, _, partial) in DATA.items() for Est in ests
            if method != "partial_fit" or partial]


@pytest.mark.parametrize("Est, case", _data_cases())
def test_bad_data_fresh(Est, case):
    _, build, match, _, _ = DATA[case]
    X_bad, y_bad, kwargs = build(Est)
    est = Est(**BASE)
    with pytest.raises(ValueError, match=match):
        est.fit(X_bad, y_bad, **kwargs)
    assert_not_fitted(est, Est)


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("Est, case", _data_cases())
def test_bad_data_leaves_fitted_model_unchanged(Est, case, warm_start):
    _, build, match, _, _ = DATA[case]
    X_bad, y_bad, kwargs = build(Est)
    est = fitted(Est, warm_start=warm_start)
    before, outputs_before = capture(est)
    with pytest.raises(ValueError, match=match):
        est.fit(X_bad, y_bad, **kwargs)
    assert_unchanged(est, before, outputs_before)


@pytest.mark.parametrize("Est, case", _data_cases("partial_fit"))
def test_bad_data_partial_fit_leaves_model_unchanged(Est, case):
    _, build, match, _, _ = DATA[case]
    X_bad, y_bad, kwargs = build(Est)
    est = fitted(Est)
    before, outputs_before = capture(est)
    with pytest.raises(ValueError, match=match):
        est.partial_fit(X_bad, y_bad, **kwargs)
    assert_unchanged(est, before, outputs_before)


@pytest.mark.parametrize(
    "Est, case", [p for p in _data_cases() if DATA[p.values[1]][3]])
def test_bad_data_exception_type_matches_sklearn(Est, case):
    X_bad, y_bad, kwargs = DATA[case][1](Est)
    theirs = _error(lambda: SKLEARN[Est](**{**BASE, "max_iter": 1})
                    .fit(X_bad, y_bad, **kwargs))
    ours = _error(lambda: Est(**BASE).fit(X_bad, y_bad, **kwargs))
    assert theirs is not None, "scikit-learn accepts this input: not a parity case"
    assert type(ours) is type(theirs), (theirs, ours)


def test_sklearn_crashes_or_accepts_where_we_give_a_clear_error():
    """The cases without parity: scikit-learn fits, or fails late with a TypeError."""
    sk_reg = MLPRegressor(**BASE)
    sk_reg.fit(X, Y_REG, sample_weight=_with(np.ones(60), 5, -1.0))  # negative weight
    with pytest.raises(TypeError):  # string targets: a ufunc error inside training
        MLPRegressor(**BASE).fit(X, _strings(60))


# ------------------------------------------- bad data where the failed fit changed state
# Data that differs from the fitted data (another feature count, other classes), so that
# a prematurely stored n_features_in_ / classes_ would show.
_X4 = X[:, :4]
_Y_AB = np.where(Y_CLF == 0, "a", "b")
LATE_ERRORS = [
    pytest.param(ReLUMLPClassifier, dict(), _Y_AB,
                 dict(sample_weight=_with(np.ones(60), 5, -1.0)), "sample_weight",
                 id="clf-negative-sample_weight"),
    pytest.param(ReLUMLPRegressor, dict(), Y_REG, dict(sample_weight=np.ones(59)),
                 "sample_weight", id="reg-sample_weight-length"),
    pytest.param(ReLUMLPClassifier, dict(class_weight={7: 2.0}), _Y_AB, dict(),
                 "class_weight", id="clf-class_weight-unknown-class"),
    pytest.param(ReLUMLPClassifier, dict(), _Y_AB,
                 dict(X_val=_X4[:10], y_val=np.full(10, "z")), "y_val",
                 id="clf-y_val-unknown-class"),
    pytest.param(ReLUMLPRegressor, dict(early_stopping=True, validation_fraction=0.01),
                 Y_REG, dict(), "validation_fraction", id="reg-validation-set-too-small"),
]


@pytest.mark.parametrize("already_fitted", [True, False], ids=["fitted", "fresh"])
@pytest.mark.parametrize("Est, params, y, kwargs, name", LATE_ERRORS)
def test_late_fit_error_leaves_model_unchanged(Est, params, y, kwargs, name,
                                               already_fitted):
    est = fitted(Est) if already_fitted else Est(**BASE)
    before, outputs_before = capture(est) if already_fitted else (snapshot(est), None)
    est.set_params(**params)
    with pytest.raises(ValueError, match=name):
        est.fit(_X4, y, **kwargs)
    est.set_params(**{k: Est(**BASE).get_params()[k] for k in params})
    if already_fitted:
        assert_unchanged(est, before, outputs_before)
    else:
        assert_not_fitted(est, Est)


@pytest.mark.parametrize("Est", ESTIMATORS, ids=lambda E: E.__name__)
def test_early_error_on_new_data_leaves_fitted_model_unchanged(Est):
    """Errors found while validating X / y come before n_features_in_ / classes_ change."""
    est = fitted(Est)
    before, outputs_before = capture(est)
    y_bad = _with(Y_REG if Est is ReLUMLPRegressor else Y_CLF.astype(float), 0, np.nan)
    with pytest.raises(ValueError, match=r"NaN|\bclass"):
        est.fit(_X4, y_bad)
    if Est is ReLUMLPRegressor:
        est.set_params(loss="poisson")
        with pytest.raises(ValueError, match="loss"):
            est.fit(_X4, _NEG_Y)
        with pytest.raises(ValueError, match=r"\by\b"):
            est.fit(_X4, _strings(60))
        est.set_params(loss="squared_error")
    assert_unchanged(est, before, outputs_before)


def test_failed_fit_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=list("abcde"))
    est = ReLUMLPClassifier(**BASE).fit(frame, Y_CLF)
    before = snapshot(est)
    for bad in (_with(X, (0, 0), np.nan),
                pd.DataFrame(_with(X, (0, 0), np.nan), columns=list("vwxyz"))):
        with pytest.raises(ValueError, match="NaN"):
            est.fit(bad, Y_CLF)
    assert_state_equal(before, snapshot(est))
    np.testing.assert_array_equal(est.feature_names_in_, list("abcde"))


# ---------------------------------------------------------------- bad data at predict time
PREDICT_DATA = {
    "features": (X[:, :4], r"4 features.*expecting 5"),
    "too-many-features": (np.hstack([X, X[:, :1]]), r"6 features.*expecting 5"),
    "NaN": (_with(X, (2, 3), np.nan), r"NaN"),
    "inf": (_with(X, (2, 3), np.inf), r"infinity"),
    "empty": (X[:0], r"0 sample\(s\)"),
    "1d": (X[0], r"Expected 2D array"),
    "complex": (X + 1j, r"Complex"),
}
METHODS = {
    ReLUMLPClassifier: ["predict", "predict_proba", "predict_log_proba", "score",
                        "transform"],
    ReLUMLPRegressor: ["predict", "score", "transform"],
}


def _predict_call(est, method, X_bad):
    if method == "score":
        y = Y_CLF if is_classifier(est) else Y_REG
        return est.score(X_bad, y[:X_bad.shape[0] if X_bad.ndim == 2 else 1])
    return getattr(est, method)(X_bad)


_SK_FITTED = {}


def sklearn_fitted(Est):
    if Est not in _SK_FITTED:
        _SK_FITTED[Est] = SKLEARN[Est](**BASE).fit(X, Y[Est])
    return _SK_FITTED[Est]


@pytest.mark.parametrize("case", list(PREDICT_DATA))
@pytest.mark.parametrize(
    "Est, method",
    [pytest.param(Est, m, id=f"{Est.__name__[7:]}-{m}") for Est in ESTIMATORS
     for m in METHODS[Est]])
def test_bad_data_at_predict_time(Est, method, case):
    X_bad, match = PREDICT_DATA[case]
    est = fitted(Est)
    before, outputs_before = capture(est)
    with pytest.raises(ValueError, match=match) as ours:
        _predict_call(est, method, X_bad)
    assert_unchanged(est, before, outputs_before)
    if method != "transform":  # scikit-learn's MLP raises the same
        with pytest.raises(type(ours.value)):
            _predict_call(sklearn_fitted(Est), method, X_bad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_rows", [1, 3, 4, 5, 4096 + 7])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_found_by_the_prediction_kernels(bad, n_rows, dtype):
    """Plain float arrays skip the separate finiteness pass: the kernels find NaN and
    infinity in the first layer's product, wherever they are (first row, last row, a
    later chunk, a few-rows call) and even where a weight is 0 (inf * 0 is NaN), and
    the message is scikit-learn's."""
    rng = np.random.default_rng(5)
    est = ReLUMLPClassifier(**BASE).fit(X.astype(dtype), Y_CLF)
    est.coefs_[0][2] = 0  # feature 2 feeds nothing: its inf must still be found
    match = "NaN" if np.isnan(bad) else "infinity"
    for row in sorted({0, n_rows // 2, n_rows - 1}):
        for feature in (0, 2, 4):
            X_bad = rng.normal(size=(n_rows, 5)).astype(dtype)
            X_bad[row, feature] = bad
            for method in ("predict", "predict_proba"):
                with pytest.raises(ValueError, match=match):
                    getattr(est, method)(X_bad)


def test_finite_float64_input_too_large_for_a_float32_model_is_not_an_error():
    # X is finite, so it is valid input: the conversion to the model's float32 warns
    # of the overflow (NumPy's RuntimeWarning) and only that row is not finite.
    est = ReLUMLPRegressor(**BASE).fit(X.astype(np.float32), Y_REG)
    X_big = X.copy()
    X_big[0, 0] = 1e300
    with pytest.warns(RuntimeWarning, match="overflow"):
        pred = est.predict(X_big)
    assert pred.shape == (60,)
    assert np.isfinite(pred[1:]).all()
