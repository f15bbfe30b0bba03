"""Why a traffic kind cannot work in a scenario, in words a platform engineer acts on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netmodel.scenario.schema import Scenario


OUTSIDE_IN = {
    "external-pod-ip": "a Pod IP is reachable only inside the cluster: the Pod network rides on "
                       "the node network and nothing outside routes to it; expose the Pods through "
                       "a NodePort, LoadBalancer or Ingress",
    "external-clusterip": "a ClusterIP is virtual and answered only by the Service proxy on the "
                          "cluster's nodes; from outside use a NodePort, LoadBalancer or Ingress",
}
"""Addresses an outside client may try that never work, for `netmodel trace`."""


def load_balancer_provider(scenario: "Scenario") -> str:
    """'cloud', 'metallb' or 'none': what answers for `type: LoadBalancer` Services."""
    provider = scenario.external.load_balancer.provider
    if provider == "auto":
        return "cloud" if scenario.cluster.provider == "cloud" else "none"
    return provider


def service_types(scenario: "Scenario") -> set[str]:
    """The Service types present (generated Services share one type)."""
    if scenario.inventory is not None:
        return {s.type for s in scenario.inventory.services}
    return scenario.services.types()


def unreachable(scenario: "Scenario", kind: str) -> str | None:
    """None if `kind` can reach a Pod in `scenario`, else why not and what would fix it."""
    if kind in OUTSIDE_IN:
        return OUTSIDE_IN[kind]
    types = service_types(scenario)
    fix = ("change a listed Service's type" if scenario.inventory is not None
           else "set services.type: {}")
    pending = ("the Service stays EXTERNAL-IP <pending>: bare metal has no LoadBalancer "
               "provider; set external.load_balancer.provider: metallb (or cloud on a cloud), "
               "or use NodePort or an Ingress")
    if kind == "external-nodeport" and not types & {"NodePort", "LoadBalancer"}:
        return ("no Service of type NodePort or LoadBalancer (a ClusterIP is reachable only "
                "inside the cluster); " + fix.format("NodePort"))
    if kind == "external-loadbalancer":
        if "LoadBalancer" not in types:
            return "no Service of type LoadBalancer; " + fix.format("LoadBalancer")
        if load_balancer_provider(scenario) == "none":
            return pending
        if load_balancer_provider(scenario) == "cloud" and scenario.cluster.provider != "cloud":
            return ("external.load_balancer.provider is cloud but cluster.provider is bare-metal: "
                    "no cloud controller creates the load balancer; use metallb")
    if kind == "external-ingress" and scenario.external.ingress.service_type == "LoadBalancer" \
            and load_balancer_provider(scenario) == "none":
        return "the Ingress controller's " + pending.replace("or use NodePort or an Ingress",
                                                             "or set external.ingress.service_type: NodePort")
    if kind == "kubectl-proxy" and scenario.workload.protocol != "http":
        return ("kubectl proxy forwards HTTP only (the API server's services/proxy subresource); "
                "use kubectl port-forward for a plain TCP protocol")
    return None
