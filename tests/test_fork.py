"""Fork safety: processes forked after a multi-thread fit can fit and predict, with the
parent's results. Each scenario runs in a subprocess with a timeout (and its children
under a watchdog), so a hang fails the test in bounded time instead of stopping the
suite."""
import io
import json
import os
import subprocess
import sys

import pytest

import relumlp
from relumlp import _kernels

SCENARIO = os.path.join(os.path.dirname(__file__), "_fork_scenario.py")
TIMEOUT_S = 240

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this OS")


def _env():
    """The environment of a subprocess that imports this relumlp."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(relumlp.__file__))]
        + os.environ.get("PYTHONPATH", "").split(os.pathsep))}


def run_scenario(method):
    return subprocess.run([sys.executable, SCENARIO, method], capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=_env())


@needs_fork
@pytest.mark.parametrize("method", ["os.fork", "fork", "futures"])
def test_forked_children_fit_and_predict_like_the_parent(method):
    proc = run_scenario(method)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == (1 if method == "os.fork" else 2)
    for child in results:
        # Bit-identical weights (fit, partial_fit) and predictions; one thread each.
        assert child == {"coefs": True, "partial": True, "predict": True, "proba": True,
                         "one_thread": True}


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_children_start_afresh(method):
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"no {method} start method on this OS")
    proc = run_scenario(method)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results == [{"coefs": True, "partial": True, "predict": True, "proba": True,
                        "one_thread": False}] * 2


@needs_fork
def test_the_watchdog_reports_a_hung_child():
    # A child that never answers: the scenario fails within its timeout, so the tests
    # above would fail, not hang, if relumlp's children hung.
    proc = run_scenario("sleep")
    assert proc.returncode != 0
    assert "TimeoutError" in proc.stderr


def test_fork_state_in_this_process():
    # The test process itself is no fork child: its kernels keep their threads.
    assert relumlp.fork_child_one_thread() is False
    assert _kernels.fork_state()[1] is False
    info = relumlp.show_versions(file=io.StringIO())
    assert info["build"]["fork_child_one_thread"] is False


FRESH_CHILD = r"""
import os, signal, sys
from relumlp import _kernels
import relumlp
assert _kernels.fork_state() == (False, False)
pid = os.fork()
if pid == 0:
    signal.alarm(60)
    # No team ran before this fork: the child keeps its threads, and runs a two-thread
    # region itself, which starts its own pool; its own children then run on one.
    ok = not relumlp.fork_child_one_thread()
    import numpy as np
    Z = np.ones((1000, 100))
    _kernels.bias_activation_forward(Z, np.zeros(100), np.empty_like(Z), 0, n_threads=2)
    ok = ok and _kernels.fork_state() == (True, False)
    grandchild = os.fork()
    if grandchild == 0:
        os._exit(0 if relumlp.fork_child_one_thread() else 3)
    _, status = os.waitpid(grandchild, 0)
    os._exit(0 if ok and os.waitstatus_to_exitcode(status) == 0 else 4)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@needs_fork
def test_a_child_forked_before_any_team_keeps_its_threads():
    proc = subprocess.run([sys.executable, "-c", FRESH_CHILD], capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=_env())
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
