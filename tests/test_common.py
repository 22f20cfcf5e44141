"""scikit-learn's estimator checks on small instances of both estimators."""
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor

# The settings scikit-learn's own test suite uses for MLPClassifier / MLPRegressor.
_SMALL = dict(max_iter=100, random_state=0)



@parametrize_with_checks(
    [
        ReLUMLPClassifier(**_SMALL),
        ReLUMLPRegressor(**_SMALL),
        ReLUMLPClassifier(solver="lbfgs", **_SMALL),
        ReLUMLPRegressor(solver="lbfgs", **_SMALL),
    ],
)
# The checks fit on tiny data with few iterations; convergence is not what they test.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
