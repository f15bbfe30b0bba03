"""Where things are: endpoint Pods on nodes, Service order in KUBE-SERVICES, popularity.

Built once per (scenario point, replication) from seeded random streams, so that the
same seed gives the same cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netmodel.scenario.schema import Scenario


@dataclass(frozen=True)
class Topology:
    """Placement and ordering for one replication.

    `endpoint_node[s, e]` is the node index of endpoint `e` of Service `s`;
    `kube_services_rank[s]` is the 1-based position of Service `s` in the
    iptables KUBE-SERVICES chain; `popularity_cdf` is the cumulative share of
    calls that go to Services 0..s.
    """

    nodes: int
    endpoint_node: np.ndarray
    kube_services_rank: np.ndarray
    popularity_cdf: np.ndarray

    @property
    def services(self) -> int:
        return self.endpoint_node.shape[0]

    @property
    def endpoints_per_service(self) -> int:
        return self.endpoint_node.shape[1]

    def pick_services(self, u: np.ndarray) -> np.ndarray:
        """Service index for each uniform draw in [0, 1), by popularity."""
        return np.minimum(np.searchsorted(self.popularity_cdf, u, side="right"),
                          self.services - 1)


def build_topology(scenario: Scenario, placement: np.random.Generator,
                   ordering: np.random.Generator) -> Topology:
    """Place every endpoint Pod on a free Pod slot of a node, chosen uniformly at random
    (a scheduler without spreading constraints), and shuffle KUBE-SERVICES."""
    cluster, services = scenario.cluster, scenario.services
    n_pods = services.count * services.endpoints_per_service
    slots = placement.choice(cluster.nodes * cluster.pods_per_node, size=n_pods, replace=False)
    endpoint_node = (slots // cluster.pods_per_node).reshape(
        services.count, services.endpoints_per_service)
    rank = ordering.permutation(services.count) + 1
    if services.popularity == "zipf":
        weights = 1.0 / np.arange(1, services.count + 1) ** services.zipf_exponent
    else:
        weights = np.ones(services.count)
    cdf = np.cumsum(weights) / weights.sum()
    return Topology(cluster.nodes, endpoint_node, rank, cdf)
