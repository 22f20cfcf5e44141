"""Fork after a multi-thread fit, then fit and predict in the children (run by
test_fork.py in a subprocess, so that a hang can only stop that subprocess).

Usage: ``python _fork_scenario.py METHOD`` with METHOD one of ``os.fork``, ``fork``
(a multiprocessing pool), ``futures`` (a fork-based ProcessPoolExecutor), ``spawn``,
``forkserver``, or ``sleep`` (a child that never answers: checks the watchdog). Prints
one JSON line: per child, whether it matched the parent bit for bit.
"""
import json
import multiprocessing
import os
import signal
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

WATCHDOG_S = 60     # a child slower than this is stopped and reported as hung


def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 64))
    y = (X[:, :3] @ [1.0, -1.0, 0.5] > 0).astype(int) + (X[:, 3] > 1)
    return X, y


def model():
    from relumlp import ReLUMLPClassifier

    # 6 x 200 x 16.5k weights: enough work per minibatch for the row-split epoch.
    return ReLUMLPClassifier(hidden_layer_sizes=(128, 64), max_iter=3, random_state=0)


def work(fitted=None):
    """What a child does: fit, partial_fit, predict, predict_proba. Returns arrays."""
    import relumlp

    X, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model().fit(X, y)
        partial = model()
        for rows in (slice(0, 2000), slice(2000, 4000)):
            partial.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
    fitted = fit if fitted is None else fitted
    return {"coefs": [c.tolist() for c in fit.coefs_],
            "partial": [c.tolist() for c in partial.coefs_],
            "predict": fitted.predict(X).tolist(),
            "proba": fitted.predict_proba(X).tolist(),
            "one_thread": relumlp.fork_child_one_thread()}


def _sleep_forever(_=None):
    signal.pause()


def _child_task(fitted):
    signal.alarm(WATCHDOG_S)     # a child that hangs dies rather than lingers
    return work(fitted)


def main(method):
    from relumlp import _kernels

    X, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parent_fit = model().fit(X, y)
    # The parallel fit needs 2 CPUs; on 1 CPU start the OpenMP pool with 2 threads
    # explicitly, so that the children inherit one in every case.
    Z = np.ones((1000, 100))
    _kernels.bias_activation_forward(Z, np.zeros(100), np.empty_like(Z), 0,
                                     n_threads=2)
    assert _kernels.fork_state() == (True, False), _kernels.fork_state()
    reference = work(parent_fit)
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        if method == "os.fork":
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                signal.alarm(WATCHDOG_S)
                with os.fdopen(write_fd, "w") as f:
                    json.dump(work(parent_fit), f)
                os._exit(0)
            os.close(write_fd)
            with os.fdopen(read_fd) as f:
                text = f.read()
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"child exited with status {status} (hung: SIGALRM)")
            results.append(json.loads(text))
        elif method in ("fork", "spawn", "forkserver", "sleep"):
            ctx = multiprocessing.get_context("fork" if method == "sleep" else method)
            with ctx.Pool(2) as pool:
                task = _sleep_forever if method == "sleep" else _child_task
                async_result = pool.map_async(task, [parent_fit, parent_fit])
                results = async_result.get(timeout=WATCHDOG_S if method != "sleep" else 3)
        elif method == "futures":
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(2, mp_context=ctx) as ex:
                futures = [ex.submit(_child_task, parent_fit) for _ in range(2)]
                results = [f.result(timeout=WATCHDOG_S) for f in futures]
        else:
            raise ValueError(method)
    out = [{key: result[key] == reference[key]
            for key in ("coefs", "partial", "predict", "proba")}
           | {"one_thread": result["one_thread"]} for result in results]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
