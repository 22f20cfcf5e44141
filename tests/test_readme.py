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
