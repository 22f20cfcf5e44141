"""relumlp: Cython/OpenMP multilayer perceptrons for scikit-learn users."""
from relumlp._estimators import (
    InconsistentVersionWarning,
    ReLUMLPClassifier,
    ReLUMLPRegressor,
)
from relumlp._onnx import to_onnx
from relumlp._show_versions import show_versions
from relumlp._tabular import (
    PiecewiseLinearEncoder,
    RobustScaleSmoothClip,
    make_tabular_classifier,
    make_tabular_regressor,
)
from relumlp._threads import fork_child_one_thread, openmp_enabled
from relumlp._training import DivergedError
from relumlp._version import __version__

__all__ = [
    "DivergedError",
    "InconsistentVersionWarning",
    "PiecewiseLinearEncoder",
    "ReLUMLPClassifier",
    "ReLUMLPRegressor",
    "RobustScaleSmoothClip",
    "fork_child_one_thread",
    "make_tabular_classifier",
    "make_tabular_regressor",
    "openmp_enabled",
    "show_versions",
    "to_onnx",
    "__version__",
]
