"""Golden records: seeded runs of every shipped scenario, pinned byte for byte.

For each file in scenarios/: the scenario without its sweep and the first and last sweep
points, each cut to a small run (at most 1,500 requests or as many seconds as give about
that many, at most 2 replications). Pinned: a sha256 of every per-request record array of
each replication, the summary rows (floats by repr), and `trace` of every traffic kind of
the scenario without its sweep. A refactor must leave all of them as they are; a change
that is meant to move results updates tests/golden/*.json with

    NETMODEL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py

and says in its commit message which figures moved and why.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from netmodel.connections.trace import trace
from netmodel.engines import simulate
from netmodel.runner.point import run_point
from netmodel.scenario.loader import load_scenario
from netmodel.scenario.sweep import expand_sweep
from netmodel.vocabulary import TRAFFIC_KINDS

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("golden")
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
RECORD_ARRAYS = ("kind", "status", "start", "end", "lookup_cpu", "softirq_cpu", "cross_node",
                 "endpoint", "endpoint_offsets")
MAX_REQUESTS = 1_500
UPDATE = os.environ.get("NETMODEL_UPDATE_GOLDEN") == "1"


def _small(scenario):
    """The scenario cut to a golden-sized run."""
    run = scenario.run
    how, amount = run.length
    cut = {"replications": min(run.replications, 2)}
    if how == "requests":
        cut["requests"] = int(min(amount, MAX_REQUESTS))
    else:
        cut["duration"] = min(amount, MAX_REQUESTS / scenario.workload.rate)
    return scenario.model_copy(update={"run": run.model_copy(update=cut), "sweep": None})


def _cases(path: Path) -> dict[str, tuple]:
    loaded = load_scenario(path)
    cases = {"base": (_small(loaded.scenario), loaded.profile)}
    if loaded.scenario.sweep is not None:
        points = expand_sweep(loaded)
        for point in (points[0], points[-1]):
            cases[f"point-{point.point_id}"] = (_small(point.scenario), point.profile)
    return cases


def _plain(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def _records(scenario, profile) -> list[dict]:
    out = []
    for r in range(scenario.run.replications):
        res = simulate(scenario, profile, r)
        digests = {name: hashlib.sha256(np.ascontiguousarray(getattr(res, name)).tobytes()).hexdigest()
                   for name in RECORD_ARRAYS}
        out.append({"requests": int(res.status.size), "arrays": digests,
                    "conntrack_entries": _plain(float(res.conntrack_entries)),
                    "last_arrival": _plain(float(res.last_arrival))})
    return out


def _traces(scenario, profile) -> dict:
    return {kind: json.loads(json.dumps(trace(scenario, profile, kind).as_dict(), default=_plain))
            for kind in TRAFFIC_KINDS}


def _observe(path: Path) -> dict:
    observed = {}
    for name, (scenario, profile) in _cases(path).items():
        observed[name] = {
            "records": _records(scenario, profile),
            "summary": [{k: _plain(v) for k, v in row.items()} for row in run_point(scenario, profile)],
        }
        if name == "base":
            observed[name]["trace"] = _traces(scenario, profile)
    return json.loads(json.dumps(observed))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_give_their_golden_records(path):
    golden = GOLDEN / f"{path.stem}.json"
    observed = _observe(path)
    if UPDATE or not golden.exists():
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(json.dumps(observed, indent=1, sort_keys=True) + "\n")
        if not UPDATE:
            pytest.fail(f"wrote {golden.name}: a new golden file, commit it")
        return
    expected = json.loads(golden.read_text())
    assert sorted(observed) == sorted(expected)
    for case in expected:
        for part in ("records", "summary", "trace"):
            assert observed[case].get(part) == expected[case].get(part), f"{path.stem} {case} {part}"
