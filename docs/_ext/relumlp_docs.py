"""Sphinx helpers for the relumlp documentation.

- ``gallery-finding`` directive: shows the ``Finding:`` lines that a gallery example
  printed when sphinx-gallery ran it for this build, read from the example's
  generated page, with a link to that page. Nothing is copied by hand, so the
  findings page always shows the numbers of the run that built it.
- ``skip_foreign_members``: API pages document what relumlp defines; the methods the
  estimators inherit from scikit-learn (get_params, score, set_output, ...) carry
  scikit-learn's docstrings, whose cross-references point into scikit-learn's docs.
- ``GalleryOrder``: the gallery's order, from the choice of activation to its cost,
  as on the findings page; examples not listed come last, by file name.
"""
from __future__ import annotations

import os
from pathlib import Path

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

FINDING = "Finding:"
OUTPUT_BLOCK = ".. rst-class:: sphx-glr-script-out"


class GalleryOrder:
    """sphinx-gallery ``within_subsection_order``: a sort key for example file names."""

    ORDER = [
        "plot_which_activation.py",
        "plot_grid_search_activations.py",
        "plot_dying_relu.py",
        "plot_learning_rate.py",
        "plot_width_depth.py",
        "plot_training_set_size.py",
        "plot_dropout_regularisation.py",
        "plot_initialisation.py",
        "plot_activation_cost.py",
    ]

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        rank = self.ORDER.index(filename) if filename in self.ORDER else len(self.ORDER)
        return rank, filename

    def __repr__(self):  # sphinx-gallery compares configurations by repr
        return f"<{type(self).__name__}>"


def skip_foreign_members(app, what, name, obj, skip, options):
    """autodoc-skip-member: skip class members that relumlp does not define."""
    if what != "class":
        return None
    target = obj.fget if isinstance(obj, property) else obj
    module = getattr(target, "__module__", None) or ""
    return True if not module.startswith("relumlp") else None


def printed_output(rst_text):
    """The lines a gallery example printed, from the page sphinx-gallery generated."""
    lines = rst_text.splitlines()
    printed = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != OUTPUT_BLOCK:
            i += 1
            continue
        # ".. rst-class:: sphx-glr-script-out", blank, " .. code-block:: none", blank,
        # then the output, indented by four spaces, up to the first less indented line.
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(".. code-block::"):
            i += 1
        i += 1
        while i < len(lines) and not lines[i].strip():
            i += 1
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
            printed.append(lines[i][4:])
            i += 1
    return printed


def findings(printed):
    """Each printed line that starts with "Finding:", with its indented continuation lines."""
    found = []
    for line in printed:
        if line.startswith(FINDING):
            found.append(line[len(FINDING):].strip())
        elif found and line[:1].isspace() and line.strip() and found[-1] is not None:
            found[-1] += " " + line.strip()
        else:
            found.append(None)  # ends the previous finding's continuation lines
    return [f for f in found if f]


class GalleryFinding(SphinxDirective):
    """``.. gallery-finding:: plot_example.py``: what that example printed as its finding."""

    required_arguments = 1
    has_content = False

    def run(self):
        name = self.arguments[0]
        conf = self.config.sphinx_gallery_conf
        srcdir = Path(self.env.srcdir)
        examples_dir = srcdir / conf["examples_dirs"]
        gallery_dir = conf["gallery_dirs"]
        source = examples_dir / name
        page = srcdir / gallery_dir / f"{Path(name).stem}.rst"
        label = f"sphx_glr_{gallery_dir.replace('/', '_')}_{name}"

        if not source.exists():
            if self.config.relumlp_findings_require_all:
                logger.warning("gallery-finding: %s does not exist", source,
                               location=self.get_location())
            para = nodes.paragraph()
            para += nodes.emphasis(text=f"{name} is not in this build of the gallery.")
            return [para]
        self.env.note_dependency(str(page))
        if not page.exists():
            logger.warning("gallery-finding: %s has no generated page (was the gallery "
                           "built? plot_gallery=0 skips it)", name,
                           location=self.get_location())
            return []
        found = findings(printed_output(page.read_text(encoding="utf-8")))
        if not found:
            logger.warning("gallery-finding: %s printed no line starting with %r",
                           name, FINDING, location=self.get_location())
            return []

        box = nodes.container(classes=["relumlp-finding"])
        for text in found:
            para = nodes.paragraph()
            para += nodes.strong(text="Finding: ")
            para += nodes.Text(text)  # printed text, not reST
            box += para
        source_line = nodes.paragraph()
        size = ("in quick mode" if os.environ.get("RELUMLP_EXAMPLE_QUICK") == "1"
                else "at full size")
        source_line += self.parse_inline(
            f"Printed by :ref:`{label}` when it ran {size} for this build of the "
            "documentation (see :ref:`findings-how`).")[0]
        box += source_line
        return [box]


def setup(app):
    app.add_config_value("relumlp_findings_require_all", True, "env", types=[bool])
    app.add_directive("gallery-finding", GalleryFinding)
    app.connect("autodoc-skip-member", skip_foreign_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
