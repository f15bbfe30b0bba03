"""Checks a validated scenario must also pass: those that need the cluster's address
ranges or the routes. The schema imports neither (the packages stack one way:
scenario.schema <- cluster <- paths), so whatever reads a scenario calls `check_scenario`
after validating it.
"""

from __future__ import annotations

from netmodel.cluster.addresses import AllocationError, check_allocation
from netmodel.paths.reachability import unreachable
from netmodel.scenario.schema import Scenario


class ScenarioCheckError(ValueError):
    """A scenario that validates but cannot work; `location` is the field it belongs to."""

    def __init__(self, message: str, location: tuple):
        super().__init__(message)
        self.location = location


def check_scenario(scenario: Scenario) -> None:
    """Raise ScenarioCheckError when an address range cannot hold what the scenario puts in
    it, or when a traffic kind with weight in the mix cannot reach a Pod."""
    try:
        check_allocation(scenario)
    except AllocationError as err:
        raise ScenarioCheckError(str(err), err.location) from None
    for kind, weight in scenario.workload.mix.items():
        reason = unreachable(scenario, kind) if weight > 0 else None
        if reason:
            raise ScenarioCheckError(f"traffic kind {kind} cannot work here: {reason}",
                                     ("workload", "mix", kind))
