"""The Python examples in docs/api.md run as they are, one after another, from the
repository's root."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_examples_run(monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/api.md").read_text(), re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "pod-clusterip" in out and "cluster.nodes: expected an integer >= 1, got 0" in out
    assert os.path.isdir(namespace["out"]) and (Path(namespace["out"]) / "summary.csv").is_file()
