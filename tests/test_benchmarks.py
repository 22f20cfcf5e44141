"""The benchmark scripts stay runnable: each compiles on this Python, and the harness
parses its workload selection (running them is the benchmarks' job, not the suite's:
their timings are measured in benchmarks/RESULTS.md)."""
import py_compile
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))


def test_there_are_benchmarks():
    assert "bench.py" in {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_compiles(script, tmp_path):
    py_compile.compile(str(script), cfile=str(tmp_path / "out.pyc"), doraise=True)


def test_harness_selects_workloads(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = pytest.importorskip("bench")
    args = bench.parse_args(["--only", "A1,P1", "--quick"])
    assert args.selected == ["P1", "A1"] and args.repeats == 1
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "W9"])
    assert set(bench.A1_ACTIVATIONS) >= {"relu", "gelu", "silu", "softplus", "tanh"}
    sys.modules.pop("bench", None)
