"""Public surface: __all__, show_versions, py.typed, feature names of hidden units."""
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import relumlp
from relumlp import ReLUMLPClassifier, ReLUMLPRegressor


def test_all_names_exist():
    for name in relumlp.__all__:
        assert hasattr(relumlp, name), name
    assert {"ReLUMLPClassifier", "ReLUMLPRegressor", "show_versions"} <= set(relumlp.__all__)


def test_py_typed_marker_ships():
    assert (Path(relumlp.__file__).parent / "py.typed").is_file()


def test_show_versions_reports_versions_and_threads():
    buf = io.StringIO()
    info = relumlp.show_versions(file=buf)
    text = buf.getvalue()
    for name in ("relumlp", "numpy", "scipy", "scikit-learn", "threadpoolctl"):
        assert info["dependencies"][name], name
        assert name in text
    assert info["build"]["openmp_enabled"] == relumlp.openmp_enabled()
    assert info["build"]["elementwise_threads"] >= 1
    apis = {pool["user_api"] for pool in info["threadpools"]}
    assert "blas" in apis  # numpy/scipy's BLAS is always loaded
    if relumlp.openmp_enabled():
        assert "openmp" in apis
    assert all(pool["num_threads"] >= 1 for pool in info["threadpools"])


@pytest.mark.parametrize("est_cls", [ReLUMLPClassifier, ReLUMLPRegressor])
def test_hidden_unit_names(est_cls):
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = est_cls(hidden_layer_sizes=(5, 3), max_iter=2, random_state=0).fit(X, y)
    assert list(model.get_feature_names_out()) == [f"layer1_unit{j}" for j in range(3)]
    assert list(model.get_feature_names_out(layer=0)) == [
        f"layer0_unit{j}" for j in range(5)]
    assert model.get_feature_names_out().dtype == object
    assert model.transform(X).shape[1] == len(model.get_feature_names_out())
    with pytest.raises(ValueError, match="layer"):
        model.get_feature_names_out(layer=2)


def test_hidden_unit_names_in_a_pandas_pipeline():
    pd = pytest.importorskip("pandas")
    iris = load_iris(as_frame=True)
    X, y = iris.data, iris.target
    pipe = make_pipeline(ReLUMLPClassifier((4,), max_iter=3, random_state=0),
                         LogisticRegression()).set_output(transform="pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X, y)
    features = pipe[0].transform(X)
    assert isinstance(features, pd.DataFrame)
    assert list(features.columns) == [f"layer0_unit{j}" for j in range(4)]
    assert list(pipe[0].feature_names_in_) == list(X.columns)
    # Column names are checked exactly as scikit-learn's MLP checks them.
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = MLPClassifier((4,), max_iter=3, random_state=0).fit(X, y)
    renamed = X.rename(columns=lambda c: c + "_renamed")
    for model in (pipe[0], sk):
        with pytest.raises(ValueError, match="feature names should match"):
            model.predict(renamed)
        with pytest.warns(UserWarning, match="does not have valid feature names"):
            model.predict(np.asarray(X))
