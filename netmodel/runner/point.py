"""Run one scenario point: all its replications, summarised."""

from __future__ import annotations

from collections.abc import Callable

from netmodel.controlplane.syncloop import ControlPlaneResult
from netmodel.costs.profile import Profile
from netmodel.engines import simulate
from netmodel.results.summary import summarize
from netmodel.scenario.schema import Scenario


def run_point(scenario: Scenario, profile: Profile,
              control_sink: Callable[[int, ControlPlaneResult], None] | None = None,
              engine: str = "auto") -> list[dict]:
    """Simulate every replication of `scenario` with `engine` and return one summary row per
    traffic kind.

    Deterministic: the same scenario and profile give identical rows, on any executor.
    With `control_plane.enabled`, each replication's control-plane run is also handed to
    `control_sink(replication, result)` when one is given (`--metrics`).
    """
    results = [simulate(scenario, profile, r, engine) for r in range(scenario.run.replications)]
    control = [res.control for res in results if res.control is not None]
    if control_sink is not None:
        for r, result in enumerate(control):
            control_sink(r, result)
    return summarize(scenario, results, control)
