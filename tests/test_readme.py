"""The README's Python snippets run as written."""
import re
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python snippet"
    for code in blocks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    assert "relumlpclassifier__activation" in capsys.readouterr().out


def test_readme_layout_matches_the_package():
    """Every file of the package is in the README's Layout block, and every relumlp/
    path there exists."""
    text = README.read_text()
    block = text[text.index("## Layout"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    listed = set(re.findall(r"^relumlp/(\S+)", block, flags=re.M))
    package = README.parent / "relumlp"
    shipped = {p.name for p in package.iterdir()
               if p.suffix in (".py", ".pyx", ".pxd", ".h") or p.name == "py.typed"}
    assert listed == shipped, (sorted(shipped - listed), sorted(listed - shipped))
