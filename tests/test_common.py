"""scikit-learn's estimator checks on both estimators, for every activation."""
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor
from relumlp._activations import HIDDEN_ACTIVATIONS

# The settings scikit-learn's own test suite uses for MLPClassifier / MLPRegressor.
_SMALL = dict(max_iter=100, random_state=0)

_INSTANCES = [
    Est(activation=act, **_SMALL)
    for act in sorted(HIDDEN_ACTIVATIONS)
    for Est in (ReLUMLPClassifier, ReLUMLPRegressor)
] + [
    ReLUMLPClassifier(solver="lbfgs", **_SMALL),
    ReLUMLPRegressor(solver="lbfgs", **_SMALL),
    ReLUMLPClassifier(solver="sgd", weight_init="sklearn", **_SMALL),
    ReLUMLPRegressor(solver="sgd", **_SMALL),
    ReLUMLPClassifier(activation=("prelu", "elu"), hidden_layer_sizes=(50, 20),
                      dropout=0.1, alpha_l1=1e-3, max_grad_norm=10.0, **_SMALL),
    ReLUMLPRegressor(activation="gelu", dropout=(0.1,), alpha_l1=1e-3, **_SMALL),
    # Decoupled weight decay and the cosine schedule with warm-up (adam and sgd).
    ReLUMLPClassifier(weight_decay=1e-2, learning_rate="cosine", warmup_iters=5,
                      learning_rate_init=0.01, label_smoothing=0.1, **_SMALL),
    ReLUMLPRegressor(solver="sgd", weight_decay=1e-3, learning_rate="cosine", **_SMALL),
    # Layer and batch normalization.
    ReLUMLPClassifier(normalization="layer", hidden_layer_sizes=(20, 10), **_SMALL),
    ReLUMLPRegressor(normalization=("layer",), activation="gelu", **_SMALL),
    ReLUMLPClassifier(normalization="batch", hidden_layer_sizes=(20, 10), **_SMALL),
    ReLUMLPRegressor(normalization="batch", solver="lbfgs", **_SMALL),
]


_DROPOUT_SW = (
    "dropout masks are drawn per row position, so a repeated row and a weighted row "
    "see different masks: weights and repetitions cannot give the same model"
)
_TANH_CW = (
    "scikit-learn's MLPClassifier(activation='tanh') with the same sample weights also "
    "predicts class 0 for 0.86 < 0.87 of the test set: saturated tanh units on the "
    "unscaled blobs (cluster_std=20) leave regions without class-0 points unconstrained"
)


def _expected_failed_checks(estimator):
    failing = {}
    if estimator.dropout:
        failing["check_sample_weight_equivalence_on_dense_data"] = _DROPOUT_SW
        failing["check_sample_weight_equivalence_on_sparse_data"] = _DROPOUT_SW
    if isinstance(estimator, ReLUMLPClassifier) and estimator.activation == "tanh":
        failing["check_class_weight_classifiers"] = _TANH_CW
    return failing


# The checks fit on tiny data with few iterations; convergence is not what they test.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(_INSTANCES, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
