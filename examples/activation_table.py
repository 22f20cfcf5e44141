"""Every activation on the digits dataset: mean 3-fold CV accuracy and fit time.

Runs one GridSearchCV over ``activation`` (a Pipeline with StandardScaler), once with
scikit-learn's default unshuffled folds and once with shuffled stratified folds, and
prints a Markdown table (the one in the README).

Run: python examples/activation_table.py
"""
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from relumlp import ReLUMLPClassifier
from relumlp._activations import HIDDEN_ACTIVATIONS


def main():
    X, y = load_digits(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clf", ReLUMLPClassifier(alpha=1.0, max_iter=100, random_state=0))])
    grid = {"clf__activation": sorted(HIDDEN_ACTIVATIONS)}
    results = {}
    for name, cv in [("cv=3", 3),
                     ("shuffled", StratifiedKFold(3, shuffle=True, random_state=0))]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search = GridSearchCV(pipe, grid, cv=cv).fit(X, y)
        res = search.cv_results_
        for act, score, t in zip(res["param_clf__activation"], res["mean_test_score"],
                                 res["mean_fit_time"]):
            results.setdefault(act, {})[name] = (score, t)
    print("| activation | mean accuracy, `cv=3` | mean accuracy, shuffled 3-fold | fit time (s) |")
    print("|---|---|---|---|")
    for act, r in results.items():
        print(f"| `{act}` | {r['cv=3'][0]:.4f} | {r['shuffled'][0]:.4f} | {r['shuffled'][1]:.2f} |")


if __name__ == "__main__":
    main()
