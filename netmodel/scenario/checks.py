"""Checks a validated scenario must also pass: those that need the cluster's address
ranges or the routes, and the limits on what one point may ask of the machine
(`netmodel.limits`: endpoint Pods, requests, simulated time, control-plane work). The
schema imports neither (the packages stack one way: scenario.schema <- cluster <- paths),
so whatever reads a scenario calls `check_scenario` after validating it.
"""

from __future__ import annotations

from netmodel.cluster.addresses import AllocationError, check_allocation
from netmodel.limits import ENDPOINTS, REQUESTS, SYNCS, WORK
from netmodel.paths.dataplane import dataplane_problem
from netmodel.paths.reachability import unreachable
from netmodel.scenario.schema import DAY, Scenario


class ScenarioCheckError(ValueError):
    """A scenario that validates but cannot work; `location` is the field it belongs to."""

    def __init__(self, message: str, location: tuple):
        super().__init__(message)
        self.location = location


def check_scenario(scenario: Scenario) -> None:
    """Raise ScenarioCheckError when the scenario asks more than the limits allow, its data
    plane cannot run on its kernel or CNI, an address range cannot hold what the scenario
    puts in it, or a traffic kind with weight in the mix cannot reach a Pod."""
    check_size(scenario)
    problem = dataplane_problem(scenario)
    if problem is not None:
        raise ScenarioCheckError(*problem)
    try:
        check_allocation(scenario)
    except AllocationError as err:
        raise ScenarioCheckError(str(err), err.location) from None
    for kind, weight in scenario.workload.mix.items():
        reason = unreachable(scenario, kind) if weight > 0 else None
        if reason:
            raise ScenarioCheckError(f"traffic kind {kind} cannot work here: {reason}",
                                     ("workload", "mix", kind))


def endpoint_count(scenario: Scenario) -> int:
    """Endpoint Pods of the cluster: listed, or services.count x endpoints_per_service."""
    if scenario.inventory is not None:
        return sum(len(s.endpoints) for s in scenario.inventory.services)
    return scenario.services.count * scenario.services.endpoints_per_service


def requests_per_replication(scenario: Scenario) -> float:
    """Requests one replication generates: run.requests, or rate x duration."""
    how, amount = scenario.run.length
    return amount if how == "requests" else amount * scenario.workload.rate


def simulated_work(scenario: Scenario) -> float:
    """Requests simulated for the point: replications x requests of one."""
    return scenario.run.replications * requests_per_replication(scenario)


def check_size(scenario: Scenario) -> None:
    """Raise ScenarioCheckError when one point is larger than the limits allow (checked
    before anything is allocated for it)."""
    run, cp = scenario.run, scenario.control_plane
    endpoints = endpoint_count(scenario)
    if endpoints > ENDPOINTS():
        where = ("inventory", "services") if scenario.inventory is not None else ("services",)
        raise ScenarioCheckError(ENDPOINTS.refuse(endpoints, "the number of endpoint Pods"), where)
    how, amount = run.length
    length = ("run", "requests") if how == "requests" else ("run", "duration")
    arrivals = amount / scenario.workload.rate if how == "requests" else amount
    if arrivals > DAY:
        raise ScenarioCheckError(
            f"run.requests / workload.rate = {arrivals:,.3g} s of arrivals: more than a day of "
            "simulated time, where float seconds lose the nanoseconds the costs are made of; "
            "raise the rate or lower the requests", ("run", "requests"))
    per_replication = requests_per_replication(scenario)
    if per_replication > REQUESTS():
        what = "run.requests" if how == "requests" else "workload.rate x run.duration"
        raise ScenarioCheckError(REQUESTS.refuse(per_replication, what), length)
    if simulated_work(scenario) > WORK():
        raise ScenarioCheckError(WORK.refuse(simulated_work(scenario),
                                             "run.replications x requests"), ("run",))
    if cp.enabled:
        syncs = control_plane_work(scenario)
        if syncs > SYNCS():
            raise ScenarioCheckError(SYNCS.refuse(syncs, "(EndpointSlice updates + periodic "
                                                         "syncs) x sampled kube-proxies"),
                                     ("control_plane",))


def control_plane_work(scenario: Scenario) -> float:
    """What one replication's control plane simulates: each endpoint change and each
    periodic sync, on every sampled kube-proxy (an estimate from above: a rollout or a
    node failure changes at most every endpoint twice)."""
    cp = scenario.control_plane
    changes = 2 * cp.churn_rate * cp.duration
    for event in cp.events:
        what = event.what
        if event.node_failure is not None:
            changes += 2 * endpoint_count(scenario)
        else:
            replicas = _endpoints_of(scenario, what.service)
            changes += 2 * max(replicas, getattr(what, "replicas", replicas))
    horizon = cp.duration + max([e.what.at for e in cp.events] + [0.0]) \
        + cp.node_monitor_grace_period + cp.eviction_timeout
    syncs = changes + horizon / scenario.kube_proxy.sync_period
    return syncs * min(cp.sampled_nodes, scenario.node_count)


def _endpoints_of(scenario: Scenario, service: int) -> int:
    if scenario.inventory is not None:
        return len(scenario.inventory.services[service].endpoints)
    return scenario.services.endpoints_per_service
