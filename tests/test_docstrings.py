"""The Examples sections of the public docstrings run and print what they claim."""
import doctest
import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning

import relumlp
import relumlp._estimators
import relumlp._onnx
import relumlp._show_versions
import relumlp._tabular
import relumlp._threads
import relumlp._training
import relumlp.diagnostics
import relumlp.plotting


@pytest.mark.parametrize(
    "module", [relumlp._estimators, relumlp._onnx, relumlp._show_versions, relumlp._tabular,
               relumlp._threads, relumlp._training,
               relumlp.diagnostics, relumlp.plotting],
    ids=lambda m: m.__name__,
)
def test_doctests(module):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
