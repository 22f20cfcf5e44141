#!/usr/bin/env bash
# Docs: install the documentation requirements, then build the HTML site (gallery included, quick mode)
# with warnings as errors. Needs relumlp installed (.ci/run installs it first).
# Output: docs/_build/html/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

python -m pip install -q -r docs/requirements.txt
# (the notebook and docstring tests run in the main suite: the test extra has nbclient)
python -m sphinx -W --keep-going -b html docs docs/_build/html
echo "docs built: docs/_build/html/index.html"
