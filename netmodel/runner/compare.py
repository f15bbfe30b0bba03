"""`netmodel compare`: run a comparison's sweep (and a rolling update of each setting when
the scenario does not simulate the control plane) into one results folder, then decide.

The folder is a sweep's (`runner/sweep.py`) plus comparison.json, decision.csv, the
compare__*.png difference figures under plots/ and, for the rolling update, rollout/ (a
results folder of its own); `runner/results_folder.py` reads it back.
"""

from __future__ import annotations

import json
from concurrent.futures import Executor
from pathlib import Path

import pandas as pd

from netmodel.results.compare import Comparison, Facts, comparison_figures, decision_table, verdict
from netmodel.results.plots import png_bytes
from netmodel.runner.folder import write_atomic
from netmodel.runner.results_folder import COMPARISON, DECISION_CSV, ROLLOUT, write_text
from netmodel.runner.sweep import PLOTS, run_sweep
from netmodel.scenario.compare import ComparisonPlan, rollout_comparison


def run_comparison(plan: ComparisonPlan, out: Path, *, jobs: int = 1,
                   executor: Executor | str | None = None, scheduler: str | None = None,
                   quiet: bool = True, force: bool = False, engine: str = "auto") -> Comparison:
    """Run `plan` into folder `out` (resumable like a sweep) and write its decision."""
    out = Path(out)
    options = dict(jobs=jobs, executor=executor, scheduler=scheduler, quiet=quiet, force=force,
                   engine=engine, series=plan.field)
    summary = run_sweep(plan.loaded, out, **options)
    rollout = None
    if not plan.loaded.scenario.control_plane.enabled:
        rolled = rollout_comparison(plan)
        rollout = run_sweep(rolled, out / ROLLOUT, **options)
    facts = _facts(plan, summary, rollout)
    axes = list(plan.loaded.scenario.sweep.axes)
    table = decision_table(summary, facts)
    sentences = tuple(verdict(table, summary, facts, [a for a in axes if a not in plan.along]))
    along = {name: [str(v) for v in values] for name, values in plan.along.items()}
    comparison = Comparison(plan.field, facts.settings, plan.reference, table, sentences, summary,
                            plan.notes, str(out), along)
    for name, fig in comparison_figures(summary, axes, plan.field, facts.settings[0]).items():
        write_atomic(out / PLOTS / f"{name}.png", png_bytes(fig))
    write_text(out / DECISION_CSV, table.to_csv(index=False))
    write_text(out / COMPARISON, json.dumps(
        {"field": plan.field, "settings": list(facts.settings), "baseline": facts.settings[0],
         "along": along, "reference": plan.reference, "reference_points": facts.reference_points,
         "verdict": list(sentences), "notes": list(plan.notes),
         "rollout": ROLLOUT if rollout is not None else None}, indent=2, default=str) + "\n")
    return comparison


def _facts(plan: ComparisonPlan, summary: pd.DataFrame, rollout: pd.DataFrame | None) -> Facts:
    """The reference points (in the order of the settings: the first is the baseline),
    the node count and the request rate."""
    reference = plan.reference_points()
    points = {p.point_id: p for p in plan.points()}
    scenario = points[next(iter(reference.values()))].scenario
    nodes = len(scenario.inventory.nodes) if scenario.inventory is not None else scenario.cluster.nodes
    return Facts(plan.field, tuple(reference), reference, nodes, scenario.workload.rate, rollout)
