"""Sphinx configuration of the relumlp documentation.

Build (what .ci/docs.sh runs): ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
The gallery runs every ``examples/plot_*.py`` in quick mode (RELUMLP_EXAMPLE_QUICK=1,
set here unless the environment sets it): the whole build takes about a minute on two
cores.
"""
import os
import sys
from pathlib import Path

import relumlp

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

# Reduced sizes for every gallery example; RELUMLP_EXAMPLE_QUICK=0 builds them full size.
os.environ.setdefault("RELUMLP_EXAMPLE_QUICK", "1")
# One thread per BLAS / OpenMP pool: the gallery runs examples one after another, and a
# spinning second pool on a busy 2-core machine only slows them down.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

project = "relumlp"
author = "the relumlp developers"
copyright = "the relumlp developers"
release = relumlp.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",  # only for `.. include::` of the README's and RESULTS.md's tables
    "relumlp_docs",
]
templates_path = ["_templates"]
exclude_patterns = ["_build"]
source_suffix = {".rst": "restructuredtext"}  # markdown only through includes
default_role = "literal"  # `name` renders as code, as in the docstrings

# -- autodoc / autosummary / numpydoc -------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False  # the class template lists the methods itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# Validation while the API pages are built: every check except
# - ES01 (extended summary), SA01 (See Also), RT02 (return type without a name),
#   SS05 (summary starting with an infinitive), SA03 (See Also descriptions): style the
#   current docstrings do not follow, and not missing sections;
# - EX01 (no Examples), PR01 (undocumented parameter), PR07 (parameter without
#   description), RT03 (return value without description): missing sections that some
#   current docstrings have. tests/test_docs.py enforces these per public name (the
#   known gaps are listed there and may only shrink), which the build cannot do.
# Any other failure (missing Parameters/Returns sections, unknown sections, wrong
# parameter names, bad formatting) fails the -W build.
numpydoc_validation_checks = {"all", "ES01", "SA01", "RT02", "SS05", "SA03",
                              "EX01", "PR01", "PR07", "RT03"}
# Methods inherited from scikit-learn are not documented here (relumlp_docs.py).

# -- sphinx-gallery --------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Only the plot_*.py examples form the gallery, and all of them run.
    # (quickstart.py, activation_table.py, sparse_text.py and notebooks/ stay scripts.)
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"^(?!plot_)",
    "within_subsection_order": "relumlp_docs.GalleryOrder",
    # sphinx-gallery runs each example from examples/ with no arguments; the examples
    # then save no PNG files (only a directory given as argv[1] gets them), and the
    # gallery takes the figures from matplotlib itself.
    "download_all_examples": True,
    "first_notebook_cell": "%matplotlib inline",
    "doc_module": ("relumlp",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"relumlp": None},
    "show_memory": False,
    "remove_config_comments": True,
}

# -- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"relumlp {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False
