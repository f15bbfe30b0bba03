"""Every shipped scenario's figures, drawn from a real (small) run of its sweep: one per
swept axis and traffic kind, units on every axis, the failures and the control plane where
the scenario has them."""

from pathlib import Path

import pytest
import yaml
from matplotlib import image

import netmodel
from netmodel.results.plots import summary_figures, swept_axes

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))


def small(name: str):
    """The shipped scenario at a run size that keeps the test short, each swept axis at its
    two ends (every axis stays, so every facet and figure is still drawn)."""
    path = ROOT / "scenarios" / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    for axis, spec in (raw.get("sweep") or {}).get("axes", {}).items():
        if isinstance(spec, list) and len(spec) > 2:
            raw["sweep"]["axes"][axis] = [spec[0], spec[-1]]
        elif isinstance(spec, dict) and spec.get("num", 0) > 2:
            spec["num"] = 2
    loaded = netmodel.load(path, text=yaml.safe_dump(raw, sort_keys=False))
    run = loaded.scenario.run
    length = {"run.duration": 8.0, "control_plane.duration": 8.0} if run.duration \
        else {"run.requests": 300}
    return netmodel.override(loaded, {**length, "run.replications": 1, "run.warmup": 0})


@pytest.mark.validation
@pytest.mark.parametrize("name", SCENARIOS)
def test_each_shipped_scenario_draws_its_story(name, tmp_path):
    loaded = small(name)
    summary = netmodel.sweep(loaded, tmp_path / name)
    axes = list(loaded.scenario.sweep.axes) if loaded.scenario.sweep else []
    assert swept_axes(summary) == [a for a in axes if a != "kube_proxy.mode"] + (
        ["kube_proxy.mode"] if summary["kube_proxy.mode"].nunique() > 1 else [])
    pngs = sorted((tmp_path / name / "plots").glob("*.png"))
    figures = summary_figures(summary, axes)
    assert sorted(p.stem for p in pngs) == sorted(figures)
    numeric = [a for a in axes if a != "kube_proxy.mode" and summary[a].dtype.kind in "if"]
    for kind in summary["traffic"].unique():
        for axis in numeric or [None]:
            assert any(n.endswith(f"__{kind}") and (axis is None or n.startswith(axis))
                       for n in figures), (axis, kind)
    for fig_name, fig in figures.items():
        for ax in fig.axes:
            assert ax.get_ylabel().endswith(")"), (fig_name, ax.get_ylabel())   # a unit
            if ax.get_xlabel() and ax.get_xlabel() not in ("kube_proxy.mode",):
                x = ax.get_xlabel()
                assert x.endswith(")") or summary[x].dtype.kind not in "if", (fig_name, x)
    if loaded.scenario.control_plane.enabled:
        assert any(n.endswith("__control-plane") for n in figures)
    for png in pngs:
        height, width, _ = image.imread(png).shape
        assert 300 < height and 500 < width
