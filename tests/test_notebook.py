"""examples/notebooks/relu_analysis.ipynb runs in a real Jupyter kernel and shows what it promises.

The notebook is committed without outputs; this test executes it with nbclient in an
ipykernel kernel running this interpreter, then checks that no cell failed or wrote
to stderr and that each tagged cell displays what its tag says (see
examples/notebooks/make_relu_analysis.py, which writes the notebook).
"""
import json
import runpy
import sys
import warnings
from pathlib import Path

import pytest

REASON = ("executing the notebook needs nbformat, nbclient and ipykernel: "
          "pip install -r docs/requirements.txt")
with warnings.catch_warnings():
    # jupyter_core 5.0 to 5.8 warn, when jupyter_client imports jupyter_core.paths,
    # that Jupyter will move to platformdirs' paths (5.9.1, tested here, no longer
    # does). It is about the Jupyter installation, raised at import, so during
    # collection, where pytest's filterwarnings = error applies and a mark does not.
    warnings.filterwarnings("ignore", category=DeprecationWarning,
                            message="Jupyter is migrating its paths")
    nbformat = pytest.importorskip("nbformat", reason=REASON)
    nbclient = pytest.importorskip("nbclient", reason=REASON)
    pytest.importorskip("ipykernel", reason=REASON)
pytest.importorskip("pandas", reason="the notebook displays DataFrames")
pytest.importorskip("matplotlib", reason="the notebook draws with relumlp.plotting")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "examples" / "notebooks"
NOTEBOOK = NOTEBOOKS / "relu_analysis.ipynb"
KERNEL = "relumlp-test-python"


def _tagged(nb, tag):
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert cells, f"no cell tagged {tag!r}"
    return cells


def _html(cell):
    return [o["data"]["text/html"] for o in cell.outputs
            if o["output_type"] in ("execute_result", "display_data")
            and "text/html" in o.get("data", {})]


def test_notebook_is_committed_as_generated_and_without_outputs():
    committed = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in committed.cells if c.cell_type == "code"), \
        "commit the notebook without outputs"
    generated = runpy.run_path(str(NOTEBOOKS / "make_relu_analysis.py"))["build"]()
    assert committed == generated, (
        "relu_analysis.ipynb differs from what make_relu_analysis.py writes: run "
        "python examples/notebooks/make_relu_analysis.py")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after a run in a kernel of this interpreter (sys.executable)."""
    # A kernelspec of our own, found first through JUPYTER_PATH, so the kernel runs this
    # interpreter even when a user-level "python3" kernelspec points at another one.
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter_path / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "relumlp test kernel", "language": "python"}))
    workdir = tmp_path_factory.mktemp("notebook")  # the kernel's cwd: nothing lands in the repo

    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(jupyter_path))
    # The kernel inherits the environment: keep its thread pools to one thread each so
    # that it runs the same on a busy 2-core machine as on an idle one.
    mp.setenv("OMP_NUM_THREADS", "1")
    mp.setenv("OPENBLAS_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=120, startup_timeout=60,
        resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"a notebook cell raised:\n{exc}")
    finally:
        mp.undo()
    return nb



def test_no_cell_fails_or_warns(executed):
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            assert out["output_type"] != "error", f"{cell.source}\n{out}"
            assert not (out["output_type"] == "stream" and out["name"] == "stderr"), \
                f"cell wrote to stderr:\n{cell.source}\n---\n{out['text']}"


def test_every_plotting_cell_shows_a_figure(executed):
    for cell in _tagged(executed, "plot"):
        images = [o for o in cell.outputs if o["output_type"] == "display_data"
                  and "image/png" in o.get("data", {})]
        assert images, f"no image/png output from:\n{cell.source}"


def test_estimator_html_repr(executed):
    (cell,) = _tagged(executed, "estimator-repr")
    assert any("ReLUMLPClassifier" in html and "<div" in html for html in _html(cell))


def test_history_frame_table(executed):
    (cell,) = _tagged(executed, "history-table")
    (html,) = _html(cell)
    assert "<table" in html
    for column in ("loss", "dead_fraction_0", "dead_fraction_1", "grad_norm_0"):
        assert f"<th>{column}</th>" in html
    assert html.count("<tr") >= 1 + 30  # the header and 30 epochs


def test_dead_unit_tables(executed):
    summary, deep = _tagged(executed, "summary-table")
    assert "<th>dead_fraction</th>" in _html(summary)[0]
    deep_html = _html(deep)[0]
    assert "<table" in deep_html and "dead units, layer 5" in deep_html
    printed = "".join(o["text"] for o in summary.outputs if o["output_type"] == "stream")
    assert "hidden layer 0:" in printed and "hidden layer 1:" in printed


def test_grid_search_table(executed):
    (cell,) = _tagged(executed, "grid-table")
    (html,) = _html(cell)
    assert "<table" in html and "mean_test_score" in html
    for activation in ("relu", "leaky_relu", "elu", "gelu", "tanh"):
        assert f"<td>{activation}</td>" in html
