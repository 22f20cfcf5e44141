"""Shared fixtures: running an example script the way a user does."""
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
