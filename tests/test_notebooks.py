"""The learners' notebooks (notebooks/*.ipynb) run top to bottom, as committed.

Each notebook is executed cell by cell in a fresh Jupyter kernel of this Python (nbclient,
the executor nbmake and nbconvert use), from the notebooks/ folder as Jupyter would, in
its default mode: the small subset that CI can afford (``MINICNN_NOTEBOOK_FULL`` unset).
A failing cell fails the test with its traceback. The notebooks are stored without outputs
(notebooks/README.md says why), and running them leaves ``git status`` as it was: what
they write goes to a temporary folder.
"""
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from checkout import REPO, git_status

NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01_convolution_by_hand.ipynb", "02_backprop_small_cnn.ipynb",
            "03_cats_vs_dogs.ipynb", "04_fashion_mnist.ipynb"]
CELL_TIMEOUT_S = 600        # one cell; a whole notebook takes about a minute in CI mode
KERNEL_NAME = "minicnn-notebook-test"


def test_every_notebook_is_there():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    """No outputs, execution counts or widget state in git: diffs show only what changed in
    the cells, and a learner's first run is the first run."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb["metadata"]
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, (
                f"{path.name}: cell {i} holds outputs; clear them before committing "
                "(Jupyter: Edit > Clear Outputs of All Cells)")


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    """A kernel spec that runs this very Python (the one with minicnn installed), whatever
    ``python3`` kernels the user's Jupyter folders hold: found first through JUPYTER_PATH."""
    folder = tmp_path_factory.mktemp("jupyter")
    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "minicnn tests", "language": "python"}))
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(folder), previous]))
    yield KERNEL_NAME
    if previous is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = previous


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, kernel_name, monkeypatch):
    try:        # the dev extra brings them; CI must run the notebooks, not skip them
        import ipykernel  # noqa: F401
        import nbclient
        import nbformat
    except ImportError as error:
        pytest.fail(f"{error}: install the test dependencies with pip install -e '.[dev]'")
    monkeypatch.delenv("MINICNN_NOTEBOOK_FULL", raising=False)     # CI mode: the small subset
    monkeypatch.setenv("MPLBACKEND", "agg")          # no display; %matplotlib inline still draws
    before = git_status()
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name=kernel_name,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(error))         # IPython's colours
        pytest.fail(f"{path.name} stopped at a cell:\n{plain}", pytrace=False)
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.0f} s")
    after = git_status()
    assert after == before, ("the notebook changed what git sees in the repository: "
                             f"{sorted(after ^ before)}")
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "error"]
    assert not errors
