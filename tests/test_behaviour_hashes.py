"""Behaviour pinned bit for bit: weights, curves and predictions of a fixed set of fits.

Every case below (every activation, each solver, dense and sparse, float32 and float64,
dropout, clipping, early stopping, warm start, partial_fit, 1 and 2 OpenMP threads)
is hashed (SHA-256 of the flat parameters, the loss curve, the validation record and
the predictions). The hashes in ``golden/behaviour.json`` were recorded before the
kernel boundary was restructured; a change that alters any result by one bit fails.

Bits depend on the BLAS kernels and libm the machine runs, so the hashes hold on the
machine fingerprint they were recorded on. Elsewhere each array's recorded sketch (its
norm and its projections on fixed random vectors) is compared within a relative
tolerance instead.

Record again (only for an intended change of behaviour, said in the commit)::

    python tests/test_behaviour_hashes.py --record
"""
import hashlib
import json
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info, threadpool_limits

from relumlp import ReLUMLPClassifier, ReLUMLPRegressor, _kernels, openmp_enabled

GOLDEN = Path(__file__).resolve().parent / "golden"
ACTIVATIONS = ("identity", "logistic", "tanh", "relu", "leaky_relu", "prelu", "elu",
               "selu", "gelu", "silu", "swish", "softplus")


# ------------------------------------------------------------------------------ data
def _classification(n=120, n_features=10, n_classes=3, seed=0):
    X, y = make_classification(n_samples=n, n_features=n_features, n_informative=6,
                               n_classes=n_classes, random_state=seed)
    return (X - X.mean(0)) / X.std(0), y


def _regression(n=120, n_features=8, n_targets=1, seed=0):
    X, y = make_regression(n_samples=n, n_features=n_features, n_targets=n_targets,
                           noise=0.5, random_state=seed)
    return (X - X.mean(0)) / X.std(0), (y - y.mean(0)) / y.std(0)


def _data(kind):
    if kind == "clf":
        return _classification()
    if kind == "binary":
        return _classification(n_classes=2, seed=1)
    if kind == "multilabel":
        X, y = _classification(n_classes=3, seed=2)
        return X, np.stack([y == 0, y != 1, (y + np.arange(len(y))) % 2 == 0], axis=1)
    if kind == "reg":
        return _regression()
    if kind == "reg2":
        return _regression(n_targets=2, seed=3)
    if kind == "poisson":
        X, _ = _regression(seed=4)
        rng = np.random.RandomState(4)
        return X, rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    if kind == "wide":  # enough work per minibatch for the row-split epoch
        return _classification(n=400, n_features=50, seed=5)
    raise ValueError(kind)


def _sparse(X):
    return sp.csr_matrix(np.where(np.abs(X) < 0.6, 0.0, X))


# ----------------------------------------------------------------------------- cases
def _cases():
    cases = {}

    def add(name, est, data, **how):
        cases[name] = dict(est=est, data=data, **how)

    for act in ACTIVATIONS:
        add(f"clf-adam-f64-{act}", (ReLUMLPClassifier, dict(
            hidden_layer_sizes=(8, 6), activation=act, max_iter=6, random_state=0)), "clf")
        add(f"reg-sgd-f32-{act}", (ReLUMLPRegressor, dict(
            hidden_layer_sizes=(7,), activation=act, solver="sgd", max_iter=5,
            learning_rate_init=0.01, random_state=1)), "reg", dtype=np.float32)
        add(f"clf-lbfgs-f64-{act}", (ReLUMLPClassifier, dict(
            hidden_layer_sizes=(5,), activation=act, solver="lbfgs", max_iter=8,
            random_state=2)), "binary")
    for init in ("sklearn", "he_normal", "glorot_normal", "lecun_normal"):
        add(f"init-{init}", (ReLUMLPClassifier, dict(
            hidden_layer_sizes=(6,), weight_init=init, max_iter=3, random_state=3)), "clf")
    # Solvers and schedules.
    for lr in ("constant", "invscaling", "adaptive"):
        for nesterov in (True, False):
            add(f"sgd-{lr}-nesterov{nesterov}", (ReLUMLPClassifier, dict(
                hidden_layer_sizes=(9,), solver="sgd", learning_rate=lr,
                nesterovs_momentum=nesterov, learning_rate_init=0.05, max_iter=12,
                n_iter_no_change=2, tol=1e-2, random_state=4)), "clf")
    add("sgd-no-momentum", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(9,), solver="sgd", momentum=0.0, max_iter=4,
        random_state=5)), "reg")
    add("lbfgs-reg-f32-tanh", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(6, 4), activation="tanh", solver="lbfgs", max_iter=15,
        random_state=6)), "reg", dtype=np.float32)
    add("lbfgs-l1-sparse", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(6,), solver="lbfgs", alpha_l1=1e-3, max_iter=10,
        random_state=7)), "clf", sparse=True)
    # Targets and losses.
    add("multilabel-adam", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), max_iter=4, random_state=8)), "multilabel")
    add("multioutput-reg", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(8,), max_iter=4, random_state=9)), "reg2")
    add("poisson", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(8,), loss="poisson", max_iter=4, random_state=10)), "poisson")
    add("sample-weight", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), max_iter=4, random_state=11)), "clf", sample_weight=True)
    add("class-weight", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), max_iter=4, class_weight="balanced",
        random_state=12)), "clf")
    add("l1-l2", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(8,), alpha=1e-2, alpha_l1=1e-3, max_iter=4,
        random_state=13)), "reg")
    add("batch-7-noshuffle", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), batch_size=7, shuffle=False, max_iter=3,
        random_state=14)), "clf")
    add("per-layer-activations", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8, 7, 6), activation=("prelu", "gelu", "elu"),
        elu_alpha=0.7, negative_slope=0.2, max_iter=4, random_state=15)), "clf")
    # Sparse input.
    add("sparse-adam-f64-relu", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), max_iter=4, random_state=16)), "clf", sparse=True)
    add("sparse-sgd-f32-prelu", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(8, 5), activation="prelu", solver="sgd", max_iter=4,
        random_state=17)), "reg", sparse=True, dtype=np.float32)
    # Dropout and clipping.
    add("dropout-adam", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(10, 8), dropout=0.2, max_iter=4, random_state=18)), "clf")
    add("dropout-per-layer-prelu-f32", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(10, 8), activation="prelu", dropout=(0.3, 0.0), max_iter=4,
        random_state=19)), "clf", dtype=np.float32)
    add("dropout-sparse-sgd", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(10,), dropout=0.1, solver="sgd", max_iter=3,
        random_state=20)), "reg", sparse=True)
    add("clip-adam", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), max_grad_norm=0.5, max_iter=4, random_state=21)), "clf")
    add("clip-sgd-f32", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(8,), max_grad_norm=0.1, solver="sgd", max_iter=4,
        random_state=22)), "reg", dtype=np.float32)
    # Early stopping and validation sets.
    add("es-score-adam", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=2, max_iter=30,
        learning_rate_init=0.05, random_state=23)), "clf")
    add("es-loss-adam", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), early_stopping=True, early_stopping_metric="loss",
        n_iter_no_change=2, max_iter=30, learning_rate_init=0.05, random_state=24)), "clf")
    add("es-sgd-reg", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(8,), solver="sgd", early_stopping=True, n_iter_no_change=3,
        max_iter=20, random_state=25)), "reg")
    add("user-validation", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), max_iter=4, random_state=26)), "clf", validation=True)
    add("diverged-es", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e3, momentum=0.0,
        early_stopping=True, max_iter=5, random_state=27)), "reg", scale=1e3)
    # Warm start and partial_fit.
    add("warm-start-adam", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=28)), "clf",
        fits=3)
    add("warm-start-es-switch", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=29)), "clf",
        fits=2, second={"early_stopping": True})
    add("warm-start-lbfgs", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5, warm_start=True,
        random_state=30)), "reg", fits=2)
    add("partial-fit-clf", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), random_state=31)), "clf", partial=3)
    add("partial-fit-reg-sgd-f32", (ReLUMLPRegressor, dict(
        hidden_layer_sizes=(8,), solver="sgd", random_state=32)), "reg", partial=3,
        dtype=np.float32)
    add("partial-fit-dropout", (ReLUMLPClassifier, dict(
        hidden_layer_sizes=(8,), dropout=0.25, random_state=33)), "clf", partial=3)
    # The row-split parallel epoch (2 threads) and the serial epoch (1 thread).
    for threads in (1, 2):
        for dtype in (np.float32, np.float64):
            name = np.dtype(dtype).name
            add(f"wide-adam-{name}-t{threads}", (ReLUMLPClassifier, dict(
                hidden_layer_sizes=(100,), batch_size=200, max_iter=2,
                random_state=34)), "wide", dtype=dtype, threads=threads)
        add(f"wide-prelu-dropout-t{threads}", (ReLUMLPClassifier, dict(
            hidden_layer_sizes=(100, 20), activation="prelu", dropout=0.1, batch_size=200,
            max_iter=2, random_state=35)), "wide", threads=threads)
        add(f"wide-sgd-l1-t{threads}", (ReLUMLPClassifier, dict(
            hidden_layer_sizes=(100,), solver="sgd", alpha_l1=1e-4, batch_size=128,
            max_iter=2, random_state=36)), "wide", threads=threads)
        add(f"wide-sparse-t{threads}", (ReLUMLPClassifier, dict(
            hidden_layer_sizes=(100,), batch_size=200, max_iter=2, random_state=37)),
            "wide", sparse=True, threads=threads)
        add(f"wide-lbfgs-t{threads}", (ReLUMLPClassifier, dict(
            hidden_layer_sizes=(100,), solver="lbfgs", max_iter=5, random_state=38)),
            "wide", threads=threads)
    return cases


CASES = _cases()


def run_case(case):
    """Run one case; return the named result arrays (all that a user can observe)."""
    cls, params = case["est"]
    X, y = _data(case["data"])
    X = X * case.get("scale", 1.0)
    dtype = case.get("dtype", np.float64)
    X = X.astype(dtype)
    if case.get("sparse"):
        X = _sparse(X)
    fit_kw = {}
    if case.get("sample_weight"):
        fit_kw["sample_weight"] = np.linspace(0.2, 2.0, X.shape[0])
    if case.get("validation"):
        fit_kw.update(X_val=X[:30], y_val=y[:30])
        X, y = X[30:], y[30:]
    est = cls(**params)
    with warnings.catch_warnings(), threadpool_limits(case.get("threads", 1), "openmp"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        if case.get("partial"):
            parts = np.array_split(np.arange(X.shape[0]), case["partial"])
            for i, rows in enumerate(parts):
                kw = {"classes": np.unique(y)} if (cls is ReLUMLPClassifier and i == 0) else {}
                est.partial_fit(X[rows], y[rows], **kw)
        else:
            for i in range(case.get("fits", 1)):
                if i == 1 and case.get("second"):
                    est.set_params(**case["second"])
                est.fit(X, y, **fit_kw)
        out = est.predict_proba if hasattr(est, "predict_proba") else est.predict
        X_pred = X if sp.issparse(X) else np.ascontiguousarray(X)
        result = {
            "params": np.concatenate([a.ravel() for a in est.coefs_ + est.intercepts_]
                                     + [s for s in est.prelu_slopes_ if s is not None]),
            "loss_curve": np.asarray(getattr(est, "loss_curve_", []), dtype=np.float64),
            "n_iter": np.asarray([est.n_iter_, getattr(est, "t_", 0) or 0]),
            "validation": np.asarray(
                [v for v in (getattr(est, "validation_scores_", None) or [])]
                + [v for v in (getattr(est, "validation_loss_curve_", None) or [])],
                dtype=np.float64),
            "predict_all": out(X_pred),
            "predict_one": out(X_pred[:1]),
            "predict_three": out(X_pred[:3]),
        }
    return result


def digest(result):
    h = hashlib.sha256()
    for key in sorted(result):
        arr = np.ascontiguousarray(result[key])
        h.update(key.encode())
        h.update(str(arr.dtype).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def fingerprint():
    """What decides the last bits: the CPU's vector ISA, BLAS build and kernel, libm,
    and the vector math level (libmvec's ISA variants round differently)."""
    blas = sorted(
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
        for i in threadpool_info() if i.get("user_api") == "blas")
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {
        "machine": platform.machine(),
        "libc": " ".join(platform.libc_ver()),
        "cpu": sorted(flags & {"fma", "avx2", "avx512f"}),
        "blas": blas,
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "openmp": bool(openmp_enabled()),
        "vector_math": _kernels.vector_math(),
    }


def sketch(arr):
    """Shape, dtype, non-finite count, norm and 8 projections of the finite part."""
    arr = np.asarray(arr)
    flat = arr.astype(np.float64).ravel()
    finite = np.isfinite(flat)
    values = np.where(finite, flat, 0.0)
    directions = np.random.RandomState(0).standard_normal((8, flat.size))
    return {"shape": list(arr.shape), "dtype": str(arr.dtype),
            "nonfinite": int((~finite).sum()), "norm": float(np.linalg.norm(values)),
            "projections": (directions @ values).tolist()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_behaviour_unchanged(name):
    meta = json.loads((GOLDEN / "behaviour.json").read_text())
    result = run_case(CASES[name])
    if meta["fingerprint"] == fingerprint():
        assert digest(result) == meta["hashes"][name], (
            f"{name}: results differ from the recorded ones (bit for bit)")
        return
    # Another machine: its BLAS and libm round differently; the numbers stay close.
    for key, value in result.items():
        got, ref = sketch(value), meta["sketches"][name][key]
        for field in ("shape", "dtype", "nonfinite"):
            assert got[field] == ref[field], (name, key, field)
        rtol = 1e-3 if value.dtype == np.float32 else 1e-6
        # A projection on a unit-variance direction moves by at most ~sqrt(size) times
        # the norm of the change; compare each against the recorded norm.
        bound = rtol * max(ref["norm"], 1e-12) * np.sqrt(max(value.size, 1)) * 4
        np.testing.assert_allclose(got["norm"], ref["norm"], rtol=rtol, atol=1e-12,
                                   err_msg=f"{name}/{key}")
        assert np.max(np.abs(np.subtract(got["projections"], ref["projections"]))) <= bound, (
            name, key)


def test_cases_cover_the_promised_grid():
    seen_acts = {c["est"][1].get("activation") for c in CASES.values()}
    assert set(ACTIVATIONS) <= seen_acts
    solvers = {c["est"][1].get("solver", "adam") for c in CASES.values()}
    assert solvers == {"adam", "sgd", "lbfgs"}
    assert {c.get("threads", 1) for c in CASES.values()} == {1, 2}
    assert any(c.get("sparse") for c in CASES.values())
    assert {np.dtype(c.get("dtype", np.float64)) for c in CASES.values()} == {
        np.dtype(np.float32), np.dtype(np.float64)}
    for key in ("dropout", "max_grad_norm", "early_stopping", "warm_start"):
        assert any(key in c["est"][1] for c in CASES.values()), key
    assert any(c.get("partial") for c in CASES.values())


def record():
    GOLDEN.mkdir(exist_ok=True)
    hashes, sketches = {}, {}
    for name in sorted(CASES):
        result = run_case(CASES[name])
        hashes[name] = digest(result)
        sketches[name] = {key: sketch(value) for key, value in result.items()}
    (GOLDEN / "behaviour.json").write_text(json.dumps(
        {"fingerprint": fingerprint(), "hashes": hashes, "sketches": sketches},
        indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(hashes)} cases in {GOLDEN}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        sys.exit("usage: python tests/test_behaviour_hashes.py --record")
