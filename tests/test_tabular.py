"""The tabular recipe: RobustScaleSmoothClip against NumPy, and the Pipelines of
make_tabular_classifier / make_tabular_regressor in scikit-learn's workflows."""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.utils.estimator_checks import parametrize_with_checks

from relumlp import (
    PiecewiseLinearEncoder,
    ReLUMLPClassifier,
    ReLUMLPRegressor,
    RobustScaleSmoothClip,
    make_tabular_classifier,
    make_tabular_regressor,
)
from relumlp._tabular import _RECIPE

from _helpers import ignore_convergence


def reference(X_fit, X, clip=3.0):
    """The transform in plain NumPy, column by column."""
    out = np.empty_like(X, dtype=float)
    for j in range(X.shape[1]):
        col = X_fit[:, j][~np.isnan(X_fit[:, j])]
        med = np.median(col)
        q25, q75 = np.percentile(col, [25, 75])
        scale = (q75 - q25) / 1.349
        if not scale > 0:
            scale = np.mean(np.abs(col - med)) * np.sqrt(np.pi / 2)
        if not scale > 0:
            scale = 1.0
        z = (X[:, j] - med) / scale
        out[:, j] = z / np.sqrt(1 + (z / clip) ** 2)
    return out


def test_robust_scale_smooth_clip_is_the_numpy_formula():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_normal(200) * 5 + 3,           # ordinary
                         rng.standard_cauchy(200),                    # heavy tails
                         np.r_[np.zeros(190), rng.standard_normal(10)],  # IQR 0: MAD
                         np.full(200, 7.0)])                          # constant
    X[5, 0] = np.nan
    for clip in (3.0, 1.5):
        t = RobustScaleSmoothClip(clip=clip).fit(X)
        Xt = t.transform(X)
        np.testing.assert_allclose(Xt, reference(X, X, clip), rtol=1e-12, equal_nan=True)
        assert np.nanmax(np.abs(Xt)) < clip
        assert np.isnan(Xt[5, 0]) and np.isfinite(np.delete(Xt, 5, axis=0)).all()
    # Near the median the clip is the identity (to second order).
    t = RobustScaleSmoothClip().fit(X[:, :1])
    x = t.center_[0] + np.array([[1e-3 * t.scale_[0]]])
    assert t.transform(x)[0, 0] == pytest.approx(1e-3, rel=1e-6)


def ple_reference(X_fit, X, n_bins):
    """Piecewise-linear encoding in plain Python loops over columns, bins and rows."""
    columns = []
    for j in range(X.shape[1]):
        col = X_fit[:, j][~np.isnan(X_fit[:, j])]
        edges = sorted(set(np.quantile(col, [t / n_bins for t in range(n_bins + 1)])))
        if len(edges) < 3:
            continue
        for lo, hi in zip(edges[:-1], edges[1:]):
            ramp = []
            for x in X[:, j]:
                ramp.append(np.nan if np.isnan(x) else
                            0.0 if x <= lo else 1.0 if x >= hi else (x - lo) / (hi - lo))
            columns.append(ramp)
    return np.array(columns).T.reshape(len(X), -1)


def test_piecewise_linear_encoder_is_the_numpy_formula():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_normal(300) * 5 + 3,        # continuous
                         rng.integers(0, 4, 300).astype(float),    # 4 levels: 3 bins
                         rng.integers(0, 2, 300).astype(float),    # binary: no ramps
                         rng.standard_exponential(300)])           # skewed
    X[7, 0] = np.nan
    X_new = np.vstack([X[:50], [[-100.0, -1.0, 0.0, 1e6]]])        # beyond the edges
    for n_bins in (2, 8, 16):
        enc = PiecewiseLinearEncoder(n_bins=n_bins).fit(X)
        out = enc.transform(X_new)
        np.testing.assert_allclose(out, ple_reference(X, X_new, n_bins), rtol=1e-12,
                                   atol=1e-15, equal_nan=True)
        assert out.shape[1] == len(enc.get_feature_names_out()) == sum(
            e.size - 1 for e in enc.edges_ if e.size >= 3)
        assert np.isnan(out[7]).sum() == enc.edges_[0].size - 1   # NaN stays NaN
        assert np.nanmin(out) == 0 and np.nanmax(out) == 1
    names = PiecewiseLinearEncoder(n_bins=8).fit(X).get_feature_names_out()
    assert names[0] == "x0_bin0" and not any(n.startswith("x2_") for n in names)
    assert sum(n.startswith("x1_") for n in names) == 3
    # A linear function of the ramps rebuilds any piecewise-linear function on the
    # edges: here |x - median| on the continuous column, exactly.
    enc = PiecewiseLinearEncoder(n_bins=8).fit(X[:, :1])
    edges = enc.edges_[0]
    inside = X[:, 0][(X[:, 0] >= edges[0]) & (X[:, 0] <= edges[-1])][:, None]
    target = np.abs(inside[:, 0] - edges[4])
    coef = np.diff(np.abs(edges - edges[4]))
    np.testing.assert_allclose(enc.transform(inside) @ coef + abs(edges[0] - edges[4]),
                               target, rtol=1e-12, atol=1e-12)


@parametrize_with_checks([RobustScaleSmoothClip(), PiecewiseLinearEncoder()])
def test_sklearn_checks_of_the_transformer(estimator, check):
    check(estimator)


_EARLY_PARTIAL = ("partial_fit with early_stopping=True raises ValueError, as "
                  "scikit-learn's MLP does (the recipe restores the best epoch of a "
                  "validation split)")
_ZERO_SPLIT = ("the check's weights are 0 for whole classes; the recipe's stratified 20 % "
               "validation split can hold only zero-weight rows")


def _recipe_failures(estimator):
    failing = {name: _EARLY_PARTIAL for name in (
        "check_fit_score_takes_y", "check_estimators_partial_fit_n_features",
        "check_n_features_in_after_fitting")}
    failing.update({f"check_sample_weight_equivalence_on_{kind}_data": _ZERO_SPLIT
                    for kind in ("dense", "sparse")})
    return failing


# The recipe's parameters, with fewer epochs (the suite's time budget).
_CHECKED = {**_RECIPE, "max_iter": 30, "random_state": 0}


@parametrize_with_checks([ReLUMLPClassifier(**_CHECKED), ReLUMLPRegressor(**_CHECKED)],
                         expected_failed_checks=_recipe_failures)
def test_sklearn_checks_of_the_recipes_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _frame():
    pd = pytest.importorskip("pandas")
    X, y = load_wine(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    X = X.copy()
    X.loc[rng.random(len(X)) < 0.1, "alcohol"] = np.nan
    X["region"] = pd.Categorical(rng.choice(["north", "south", "east"], len(X)))
    X["grade"] = rng.choice(["a", "b", None], len(X))
    return X, y


@ignore_convergence
def test_classifier_pipeline_on_a_frame_with_categories_and_gaps():
    X, y = _frame()
    model = make_tabular_classifier(max_iter=20, random_state=0).fit(X, y)
    assert model.named_steps["mlp"].label_smoothing == 0.1
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-10)
    assert model.score(X, y) > 0.8
    # Unknown categories at prediction time are encoded as all zeros, not an error.
    X2 = X.copy()
    X2["grade"] = "z"
    assert model.predict(X2).shape == (len(X),)
    names = model.named_steps["preprocess"].get_feature_names_out()
    assert "alcohol" in names and any(n.startswith("region_") for n in names)
    # Numeric columns also enter as ramps on quantile bins; n_bins=None drops them.
    assert "alcohol_bin0" in names and not any(n.startswith("region_bin") for n in names)
    plain = make_tabular_classifier(n_bins=None, max_iter=2).named_steps["preprocess"]
    plain_names = plain.fit(X, y).get_feature_names_out()
    assert not any("_bin" in n for n in plain_names) and "alcohol" in plain_names
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)


@ignore_convergence
def test_pipelines_in_cross_validation_and_grid_search():
    X, y = _frame()
    scores = cross_validate(make_tabular_classifier(max_iter=5, random_state=0), X, y, cv=3)
    assert len(scores["test_score"]) == 3
    grid = GridSearchCV(make_tabular_classifier(max_iter=5, random_state=0),
                        {"mlp__weight_decay": [0.0, 0.05]}, cv=2).fit(X, y)
    assert grid.best_params_["mlp__weight_decay"] in (0.0, 0.05)
    Xd, yd = load_diabetes(return_X_y=True)
    reg = make_tabular_regressor(max_iter=10, random_state=0, hidden_layer_sizes=(32,))
    reg.fit(Xd, yd)
    assert reg.predict(Xd).shape == (len(yd),)
    # The target is standardised for training and mapped back for predictions.
    scaler = reg.transformer_
    np.testing.assert_allclose([scaler.mean_[0], scaler.scale_[0]], [yd.mean(), yd.std()])
    inner = reg.regressor_.named_steps["mlp"].predict(
        reg.regressor_.named_steps["preprocess"].transform(Xd))
    np.testing.assert_allclose(reg.predict(Xd), inner * yd.std() + yd.mean(), rtol=1e-12)
    assert GridSearchCV(reg, {"regressor__mlp__alpha": [0.0, 1e-3]}, cv=2).fit(
        Xd, yd).best_params_["regressor__mlp__alpha"] in (0.0, 1e-3)
    # set_output: the preprocessing step hands a DataFrame on.
    pre = make_tabular_classifier().named_steps["preprocess"].set_output(transform="pandas")
    assert list(pre.fit_transform(X).columns) == list(pre.get_feature_names_out())


@ignore_convergence
def test_the_recipes_network_exports_to_onnx():
    # The preprocessing is not exported (skl2onnx has no converter for
    # RobustScaleSmoothClip): the network is, and reproduces the Pipeline from the
    # preprocessed features; a regressor's target scaling is applied afterwards.
    ort = pytest.importorskip("onnxruntime")
    from relumlp import to_onnx

    X, y = _frame()

    def run(est, Z):
        model = to_onnx(est, dtype=np.float64)
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        return sess.run(None, {"X": np.ascontiguousarray(Z, dtype=np.float64)})

    clf = make_tabular_classifier(max_iter=5, random_state=0).fit(X, y)
    Z = clf.named_steps["preprocess"].transform(X)
    label, proba = run(clf.named_steps["mlp"], Z)
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(label, clf.predict(X))

    Xd, yd = load_diabetes(return_X_y=True)
    reg = make_tabular_regressor(max_iter=5, random_state=0).fit(Xd, yd)
    (out,) = run(reg.regressor_.named_steps["mlp"],
                 reg.regressor_.named_steps["preprocess"].transform(Xd))
    back = reg.transformer_.inverse_transform(out).ravel()
    np.testing.assert_allclose(back, reg.predict(Xd), rtol=1e-12)
