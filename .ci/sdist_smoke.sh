#!/usr/bin/env bash
# Packaging check for users: build the sdist and the wheel with `python -m build`,
# install the sdist in a fresh venv against the MINIMUM supported scikit-learn, and
# run a smoke test plus the estimator tests there (the main CI run covers the latest
# scikit-learn). Called by .ci/run; runs from the repository root.
set -euo pipefail
MIN_SKLEARN="1.9.0"   # keep in sync with pyproject.toml's scikit-learn>=
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python -m pip install -q build
python -m build --sdist --wheel --outdir "$work/dist" . > "$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log"; exit 1; }
ls "$work/dist"
sdist=$(ls "$work"/dist/relumlp-*.tar.gz)

python -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q "scikit-learn==$MIN_SKLEARN" pytest hypothesis
"$py" -m pip install -q "$sdist"

# Outside the repository, so that the installed package is the one imported.
mkdir "$work/run"
cp -r tests pyproject.toml "$work/run/"
cd "$work/run"
MIN_SKLEARN="$MIN_SKLEARN" "$py" - <<'PY'
import os, sklearn, relumlp
from sklearn.datasets import load_digits
from relumlp import ReLUMLPClassifier
assert sklearn.__version__ == os.environ["MIN_SKLEARN"], sklearn.__version__
assert "site-packages" in relumlp.__file__, relumlp.__file__
X, y = load_digits(return_X_y=True)
clf = ReLUMLPClassifier(max_iter=30, random_state=0).fit(X / 16, y)
print(f"sdist smoke test: relumlp {relumlp.__version__} (OpenMP: {relumlp.openmp_enabled()}), "
      f"scikit-learn {sklearn.__version__}, training accuracy {clf.score(X / 16, y):.3f}")
assert clf.score(X / 16, y) > 0.95
PY
"$py" -m pytest -q -p no:cacheprovider tests/test_estimators.py tests/test_sklearn_parity.py \
    tests/test_callbacks.py tests/test_bad_input.py
