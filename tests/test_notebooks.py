"""The notebooks in notebooks/ are committed without outputs and run top to bottom, from
the notebooks folder as Jupyter would start them, through the API only."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_is_a_notebook_for_each_question():
    assert [p.stem for p in NOTEBOOKS] == [
        "01-quickstart-tour", "02-iptables-to-ebpf-rollout", "03-overlay-vs-native",
        "04-exposing-a-service", "05-rollouts-and-programming-latency", "06-headroom"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_using_the_api_only(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    source = "\n".join(c.source for c in code)
    assert "import netmodel" in source and "from netmodel." not in source and "netmodel._" not in source


@pytest.mark.validation
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's mkdtemp results, pytest's to clean
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, "every notebook draws its answer"
