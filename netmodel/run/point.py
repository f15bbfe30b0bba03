"""Run one scenario point: all its replications, summarised."""

from __future__ import annotations

from netmodel.costs.profile import Profile
from netmodel.results.summary import summarize
from netmodel.scenario.schema import Scenario
from netmodel.sim.engine import simulate


def run_point(scenario: Scenario, profile: Profile) -> list[dict]:
    """Simulate every replication of `scenario` and return one summary row per traffic kind.

    Deterministic: the same scenario and profile give identical rows, on any executor.
    """
    results = [simulate(scenario, profile, r) for r in range(scenario.run.replications)]
    return summarize(scenario, results)
