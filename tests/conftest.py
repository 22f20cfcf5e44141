"""Shared pytest fixtures: the digits data a module asks for, and running an example
script the way a user does. (Plain shared helpers are in _helpers.py.)"""
import runpy
import sys
from pathlib import Path

import pytest

try:  # matplotlib is optional (relumlp[plot]); headless before any test imports pyplot
    import matplotlib
except ImportError:
    pass
else:
    matplotlib.use("Agg")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def digits(request):
    """``(X, y)`` of scikit-learn's digits, prepared as the requesting module's
    ``DIGITS`` says: the keyword arguments of ``_helpers._digits`` (rows ``n`` and the
    ``scale`` of the pixels), for instance ``DIGITS = dict(n=600, scale="unit")`` for
    ``X[:600] / 16``. One copy per module: tests must not modify it in place."""
    from _helpers import _digits  # imports relumlp: only when a module asks

    spec = getattr(request.module, "DIGITS", None)
    if spec is None:
        raise LookupError(f"{request.module.__name__} uses the digits fixture but sets no "
                          "DIGITS = dict(n=..., scale=...)")
    return _digits(**spec)


@pytest.fixture
def run_example(tmp_path, monkeypatch):
    """Run examples/<name> as __main__ with argv [path, tmp_path] (figures go to
    tmp_path) and RELUMLP_EXAMPLE_QUICK=1; return the script's globals. Figures are
    closed before and after, so a test can count the ones the script left open."""
    plt = pytest.importorskip("matplotlib.pyplot")
    monkeypatch.setenv("RELUMLP_EXAMPLE_QUICK", "1")
    plt.close("all")

    def run(name, *, output=True):
        path = EXAMPLES / name
        monkeypatch.setattr(sys, "argv", [str(path)] + ([str(tmp_path)] if output else []))
        return runpy.run_path(str(path), run_name="__main__")

    yield run
    plt.close("all")
