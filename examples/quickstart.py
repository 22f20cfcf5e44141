"""Quickstart: relumlp next to scikit-learn's MLP on the digits dataset.

Trains ReLUMLPClassifier and sklearn's MLPClassifier with the same parameters on
``load_digits`` and prints test accuracy and fit time. relumlp's default is
scikit-learn's model (its initialisation, random draws included), so it reaches the
same test accuracy, only faster; the second row shows He initialisation, one parameter
away.

Run: python examples/quickstart.py
"""
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import relumlp
from relumlp import ReLUMLPClassifier


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    params = dict(hidden_layer_sizes=(100,), max_iter=50, random_state=0)

    print(f"relumlp {relumlp.__version__} (OpenMP: {relumlp.openmp_enabled()})")
    print(f"digits: {X_train.shape[0]} training rows, {X.shape[1]} features, 10 classes\n")
    print(f"{'model':<28}{'fit time (s)':>14}{'test accuracy':>16}")
    for name, est in [
        ("relumlp.ReLUMLPClassifier", ReLUMLPClassifier(**params)),
        ("  weight_init='he_uniform'", ReLUMLPClassifier(weight_init="he_uniform",
                                                          **params)),
        ("sklearn MLPClassifier", MLPClassifier(**params)),
    ]:
        model = make_pipeline(StandardScaler(), est)
        times = []
        for _ in range(3):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                model.fit(X_train, y_train)
                times.append(time.perf_counter() - start)
        best = sorted(times)[1]
        print(f"{name:<28}{best:>14.3f}{model.score(X_test, y_test):>16.4f}")
    print("\n(median of 3 fits, 50 epochs of Adam each)")


if __name__ == "__main__":
    main()
