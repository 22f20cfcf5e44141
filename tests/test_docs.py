"""Every public name has a numpydoc docstring with its sections, and the docs' code runs.

The Sphinx build (docs/conf.py) validates the docstrings' form; the sections that some
docstrings still lack are checked here, per public name, against KNOWN_GAPS, which may
only shrink: a new public name must come with every section, and a gap that gets fixed
must be removed from the list.
"""
import inspect
import re
import warnings
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

import relumlp
import relumlp.diagnostics
import relumlp.plotting

DOCS = Path(__file__).resolve().parents[1] / "docs"

# numpydoc checks for a missing docstring, section or description.
SECTIONS = {
    "GL08": "no docstring",
    "SS01": "no summary",
    "PR01": "parameters not documented",
    "PR02": "documented parameters that do not exist",
    "PR07": "parameter without description",
    "RT01": "no Returns section",
    "RT03": "return value without description",
    "EX01": "no Examples section",
}
KNOWN_GAPS: dict = {}  # every public name has every section


def _public_names():
    names = [f"relumlp.{n}" for n in relumlp.__all__ if n != "__version__"]
    for module in (relumlp.diagnostics, relumlp.plotting):
        names += [f"{module.__name__}.{n}" for n, obj in vars(module).items()
                  if inspect.isfunction(obj) and not n.startswith("_")
                  and obj.__module__ == module.__name__]
    # Methods the estimators define (or take from relumlp's base class); those from
    # scikit-learn (get_params, score, set_output, ...) carry scikit-learn's docstrings.
    for cls in (relumlp.ReLUMLPClassifier, relumlp.ReLUMLPRegressor):
        for n in dir(cls):
            obj = getattr(cls, n)
            if (not n.startswith("_") and callable(obj)
                    and getattr(obj, "__module__", "").startswith("relumlp")):
                names.append(f"relumlp.{cls.__name__}.{n}")
    return names


PUBLIC = _public_names()


def test_public_names_are_found():
    for name in ["relumlp.ReLUMLPClassifier", "relumlp.to_onnx",
                 "relumlp.diagnostics.activation_summary",
                 "relumlp.plotting.plot_activation_comparison",
                 "relumlp.ReLUMLPRegressor.from_sklearn"]:
        assert name in PUBLIC
    assert set(KNOWN_GAPS) <= set(PUBLIC), set(KNOWN_GAPS) - set(PUBLIC)


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_sections(name):
    validate = pytest.importorskip(
        "numpydoc.validate", reason="checking the docstrings needs numpydoc: "
        "pip install -r docs/requirements.txt").validate
    errors = validate(name)["errors"]
    missing = {code for code, _ in errors if code in SECTIONS}
    known = KNOWN_GAPS.get(name, set())
    new = missing - known
    assert not new, f"{name}: " + "; ".join(
        f"{code} {SECTIONS[code]}: {msg}" for code, msg in errors if code in new)
    fixed = known - missing
    assert not fixed, (f"{name} now has {sorted(fixed)}: remove them from KNOWN_GAPS "
                       "in tests/test_docs.py")


# The user guide's Python snippets run as written (the README's, which some pages
# include, are run by test_readme.py).
PAGES = sorted(p for p in DOCS.rglob("*.rst")
               if "_build" not in p.parts and "auto_examples" not in p.parts
               and "generated" not in p.parts and "_templates" not in p.parts)
CODE = re.compile(r"^( *)\.\. code-block:: python\n\n((?:\1   .*\n|\n)+)", re.M)


def _snippets(page):
    text = page.read_text(encoding="utf-8")
    blocks = []
    for indent, body in CODE.findall(text):
        lines = [line[len(indent) + 3:] for line in body.splitlines()]
        blocks.append("\n".join(lines))
    return blocks


@pytest.mark.parametrize("page", [p for p in PAGES if _snippets(p)],
                         ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_snippets_run(page):
    code = _snippets(page)
    if any("onnxruntime" in block for block in code):
        pytest.importorskip("onnxruntime")
    namespace = {"__name__": "__docs__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for block in code:  # one namespace per page: later snippets use earlier ones
            exec(compile(block, str(page), "exec"), namespace)


def test_findings_are_read_from_the_gallery_output():
    """docs/_ext/relumlp_docs.py takes the findings page's lines from what examples print."""
    pytest.importorskip("sphinx", reason="the docs extension needs Sphinx")
    import importlib.util

    spec = importlib.util.spec_from_file_location("relumlp_docs",
                                                  DOCS / "_ext" / "relumlp_docs.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    # The shape of a page sphinx-gallery generates: code, then its captured output.
    page = "\n".join([
        ".. code-block:: Python",
        "",
        '    print("Finding: from the source, not the output")',
        "",
        ".. rst-class:: sphx-glr-script-out",
        "",
        " .. code-block:: none",
        "",
        "    | activation | accuracy |",
        "    Finding: relu is as good as any",
        "      and cheaper.",
        "",
        "    Finding: elu keeps its units.",
        "",
        "Some text after the output.",
        "Finding: in the text, not printed",
    ])
    printed = ext.printed_output(page)
    assert printed[0] == "| activation | accuracy |"
    assert ext.findings(printed) == ["relu is as good as any and cheaper.",
                                     "elu keeps its units."]


_INCLUDE = re.compile(
    r"^\.\. include:: (?P<path>\S+)\n(?P<opts>(?:   :[\w-]+:.*\n)+)", re.M)


def _included_ranges():
    for page in sorted(DOCS.rglob("*.rst")):
        if "_build" in page.parts or "generated" in page.parts or "auto_examples" in page.parts:
            continue
        for m in _INCLUDE.finditer(page.read_text()):
            opts = dict(re.findall(r"   :([\w-]+):\s*(.*)", m.group("opts")))
            if "start-after" in opts or "end-before" in opts:
                yield page, (page.parent / m.group("path")).resolve(), opts


@pytest.mark.parametrize("page, target, opts", list(_included_ranges()),
                         ids=lambda v: v.name if isinstance(v, Path) else None)
def test_included_markdown_ranges(page, target, opts):
    """The docs include parts of README.md / RESULTS.md between marker lines: each
    marker must occur once, and the part must hold no markdown heading (myst would warn
    that the included document's headings do not start at H1, failing the -W build)."""
    text = target.read_text()
    start, end = opts.get("start-after"), opts.get("end-before")
    for marker in filter(None, (start, end)):
        assert text.count(marker) == 1, (page.name, marker)
    part = text.split(start, 1)[1] if start else text
    part = part.split(end, 1)[0] if end else part
    in_fence = False
    for line in part.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        assert in_fence or not line.startswith("#"), (page.name, line)


def test_estimator_parameters_are_documented_in_signature_order():
    # numpydoc's PR03, which the -W docs build enforces: caught here, before CI's build.
    import inspect
    import re

    from relumlp import ReLUMLPClassifier, ReLUMLPRegressor
    for cls in (ReLUMLPClassifier, ReLUMLPRegressor):
        doc = cls.__doc__
        section = doc[doc.index("Parameters\n    ----------"):doc.index("Attributes\n")]
        groups = re.findall(r"^    ([a-z_0-9, ]+) :", section, re.M)
        documented = [name for group in groups for name in group.split(", ")]
        assert documented == list(inspect.signature(cls).parameters), cls.__name__
