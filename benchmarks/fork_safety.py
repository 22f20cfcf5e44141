"""What happens after ``fork``: relumlp, scikit-learn (MLP, HistGradientBoosting) and
PyTorch, each trained with several threads in a parent, then used in the workers of a
``multiprocessing`` fork pool.

For each library, a fresh Python process trains a model on 8000 x 256 rows (relumlp and
scikit-learn's MLP: hidden (256, 128); HistGradientBoosting: 50 iterations; PyTorch: the
same MLP, 2 epochs of Adam) with ``--threads`` threads, then maps a task over a
``get_context("fork").Pool(2)``: each worker fits the same kind of model on 2000 rows and
predicts. A pool that answers within ``--timeout`` seconds is "works"; one that does
not is "hangs" (its processes are killed). Usage::

    python benchmarks/fork_safety.py --timeout 30 --markdown fork.md
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

CHILD = r'''
import multiprocessing, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
lib, threads, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
from threadpoolctl import threadpool_limits
rng = np.random.default_rng(0)
X = rng.standard_normal((8000, 256)).astype(np.float32)
y = (X[:, :4].sum(1) > 0).astype(np.int64)

def make():
    if lib == "relumlp":
        from relumlp import ReLUMLPClassifier
        return ReLUMLPClassifier(hidden_layer_sizes=(256, 128), max_iter=2, random_state=0)
    if lib == "sklearn-mlp":
        from sklearn.neural_network import MLPClassifier
        return MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=2, random_state=0)
    if lib == "sklearn-hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier
        return HistGradientBoostingClassifier(max_iter=50, random_state=0)
    raise ValueError(lib)

def torch_fit(Xa, ya):
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 128), torch.nn.ReLU(),
                              torch.nn.Linear(128, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt, yt = torch.from_numpy(Xa), torch.from_numpy(ya)
    for _ in range(2):
        for i in range(0, len(Xt), 256):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(Xt[i:i + 256]), yt[i:i + 256]).backward()
            opt.step()
    with torch.no_grad():
        return net(Xt).argmax(1).numpy()

def fit_predict(rows):
    if lib == "torch":
        return float((torch_fit(X[:rows], y[:rows]) == y[:rows]).mean())
    return float(make().fit(X[:rows], y[:rows]).score(X[:rows], y[:rows]))

if __name__ == "__main__":
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
    with threadpool_limits(threads):
        t0 = time.perf_counter()
        fit_predict(8000)
        parent = time.perf_counter() - t0
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(2)
    t0 = time.perf_counter()
    try:
        pool.map_async(fit_predict, [2000, 2000]).get(timeout=timeout)
        print("RESULT", "works", parent, time.perf_counter() - t0, flush=True)
        pool.close()
    except multiprocessing.TimeoutError:
        print("RESULT", "hangs", parent, time.perf_counter() - t0, flush=True)
        pool.terminate()
'''


def run(lib, threads, timeout):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", CHILD, lib, str(threads), str(timeout)],
                          capture_output=True, text=True, timeout=timeout + 300, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        return {"lib": lib, "outcome": "error", "detail": proc.stderr[-500:]}
    _, outcome, parent, children = line.split()
    return {"lib": lib, "outcome": outcome, "parent_s": float(parent),
            "children_s": float(children)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--libs", default="relumlp,sklearn-mlp,sklearn-hgb,torch")
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    rows = []
    for lib in args.libs.split(","):
        if lib == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                print("torch not installed: skipped")
                continue
        t0 = time.perf_counter()
        r = run(lib, args.threads, args.timeout)
        rows.append(r)
        print(json.dumps(r), f"({time.perf_counter() - t0:.0f} s)", flush=True)
    L = [f"Parent trains with {args.threads} threads, then a fork pool of 2 workers each "
         f"fits and predicts (timeout {args.timeout:.0f} s):", "",
         "| library | parent fit (s) | fork pool | pool time (s) |", "|---|---|---|---|"]
    for r in rows:
        if r["outcome"] == "error":
            L.append(f"| {r['lib']} | – | error | – |")
            continue
        pool = f"{r['children_s']:.1f}" if r["outcome"] == "works" else f"> {args.timeout:.0f}"
        L.append(f"| {r['lib']} | {r['parent_s']:.2f} | {r['outcome']} | {pool} |")
    text = "\n".join(L)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
