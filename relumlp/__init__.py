"""relumlp: Cython/OpenMP multilayer perceptrons for scikit-learn users."""
from relumlp._estimators import (
    InconsistentVersionWarning,
    ReLUMLPClassifier,
    ReLUMLPRegressor,
)
from relumlp._threads import openmp_enabled
from relumlp._version import __version__

__all__ = [
    "InconsistentVersionWarning",
    "ReLUMLPClassifier",
    "ReLUMLPRegressor",
    "openmp_enabled",
    "__version__",
]
