"""The fast engine: the reference engine's walk as a compiled event loop.

Everything about a replication but the walk is already arrays (`Replication`): this module
lays the plans, the roles of each connection and the stations out as numpy arrays and
hands them to `kernel.walk`, a numba-compiled loop that runs SimPy's processes as state
machines, event for event; its records equal the SimPy engine's to the last bit
(tests/test_engines_agree.py). numba compiles the loop once per machine and keeps it in its
on-disk cache; without numba the engine says so and `auto` takes the SimPy engine.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from netmodel.connections.placement import ROLES
from netmodel.connections.records import Records
from netmodel.connections.replication import Plans, Replication
from netmodel.costs.model import VARIABLE
from netmodel.paths import EXTERNAL_CLIENT

try:
    from netmodel.engines import kernel
except ImportError:  # numba is not installed
    kernel = None

_BLAS = "scipy.linalg.cython_blas"
_NUMBA_BLAS = {"allowed": True}
"""Whether numba may import scipy's BLAS in this process: see `without_blas`."""

_ROLE = {role: i for i, role in enumerate((*ROLES, EXTERNAL_CLIENT, "lb"))}
"""Role -> column of placement's node table (the kernel's server role is column 3); an
outside client and the cloud LB have none (kernel._node: NONE)."""
_VARIABLE = {name: i for i, name in enumerate(VARIABLE)}
"""Per-connection part -> its slot: the three rule walks (a connection's), then the app time."""
assert _ROLE["server"] == 3 and _VARIABLE["app"] == 3


def without_blas() -> None:
    """Say that this process is netmodel's own (the CLI's, and the sweep workers it forks):
    when the loop first runs, numba's implementations load without scipy's BLAS. numba
    imports scipy.linalg to offer np.dot and linear algebra, which the loop does not use:
    0.2 s of every such process's start, half its warm-up. A library caller's process is
    left alone, as numba could not compile linear algebra in it afterwards."""
    _NUMBA_BLAS["allowed"] = False


def _load_numba() -> None:
    """Load numba's implementations, without BLAS if `without_blas` was said (once)."""
    if _NUMBA_BLAS["allowed"] or "numba.np.arraymath" in sys.modules or _BLAS in sys.modules:
        return
    from numba.core.registry import cpu_target

    sys.modules[_BLAS] = None  # its import fails at once: numba goes on without BLAS
    try:
        cpu_target.target_context.refresh()
    finally:
        del sys.modules[_BLAS]


class FastEngine:
    """Walks a replication in a compiled event loop; the same records as SimPyEngine."""

    name = "fast"

    def unsupported(self, scenario) -> str | None:
        """Only without numba: the loop does everything the SimPy engine does."""
        if kernel is None:
            return "numba is not installed (pip install numba)"
        return None

    def run(self, replication: Replication) -> Records:
        rep = replication
        sc = rep.scenario
        rec = rep.recorder()
        conns, demand = rep.connections, rep.demand
        servers, base, nodes = _stations(rep)
        inputs = kernel.Inputs(
            rep.stop, demand.arrival, conns.drop, demand.first,
            demand.requests, conns.route, conns.node, nodes, conns.endpoint, conns.replica,
            conns.lookup, demand.app, _dead(rep), servers, base,
            sc.workload.server.queue_limit, sc.external.kubectl.max_requests_inflight,
            float(sc.workload.timeout),
            rep.conntrack_prefill.astype(np.int64), rep.conntrack.limit, float(rep.conntrack.hold),
            rep.conntrack.lru, sc.cluster.netdev_max_backlog * sc.cluster.softirq_cores,
            sc.cluster.nic_rx_ring, sc.cluster.tcp_syn_retries, sc.cluster.tcp_retries2,
            float(sc.cluster.tcp_rto_min))
        _load_numba()
        events = kernel.walk(inputs, _plans(rep.plans),
                             kernel.Outputs(rec.start, rec.end, rec.status, rec.softirq_cpu,
                                            rec.connected, rec.packet_drops, rec.ct_evictions))
        return dataclasses.replace(rep.finish(rec), events=int(events))


def _plans(plans: tuple[Plans, ...]) -> "kernel.Plans":
    """Every route's set-up (plan 2 r) and request (2 r + 1) steps as flat arrays."""
    steps = [step for route in plans for plan in route for step in plan]
    lengths = np.array([len(plan) for route in plans for plan in route], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    kinds = {"cpu": kernel.CPU, "wire": kernel.WIRE, "delay": kernel.DELAY, "work": kernel.WORK}
    stations = {"app": kernel.APP, "lb": kernel.LB, "ingress": kernel.INGRESS,
                "apiserver": kernel.APISERVER, "port-forward-stream": kernel.PORT_FORWARD,
                "kubelet": kernel.KUBELET, "dns": kernel.DNS, None: -1}
    variables = np.full((len(steps), 4), -1, dtype=np.int8)
    for i, step in enumerate(steps):
        assert len(step.variable) <= 4, step
        variables[i, :len(step.variable)] = [_VARIABLE[v] for v in step.variable]
    return kernel.Plans(starts, lengths,
            np.array([kinds[s.kind] for s in steps], dtype=np.int8),
            np.array([_ROLE[s.at] for s in steps], dtype=np.int8),
            np.array([_ROLE[s.to] if s.to is not None else -1 for s in steps], dtype=np.int8),
            np.array([s.seconds for s in steps], dtype=np.float64),
            np.array([s.first_packet for s in steps], dtype=np.float64),
            np.array([s.delay for s in steps], dtype=np.float64),
            variables,
            np.array([stations[s.station] for s in steps], dtype=np.int8))


def _stations(rep: Replication) -> tuple[np.ndarray, np.ndarray, int]:
    """Servers of every station and the first index of each kind (see kernel.walk): the
    nodes' softirq cores, NIC tx and rx ports and kubelets (the control-plane node last),
    every endpoint Pod's workers, the cloud LB, Ingress replicas, API server, port-forward
    stream, CoreDNS replicas."""
    sc = rep.scenario
    nodes = rep.topology.nodes
    per_node = nodes + 1
    pods = len(_dead(rep))
    ext, dns = sc.external, sc.dns
    parts = [np.full(per_node, sc.cluster.softirq_cores), np.ones(per_node), np.ones(per_node),
             np.ones(per_node), np.full(pods, sc.workload.server.workers),
             [ext.load_balancer.instances], np.full(ext.ingress.replicas, ext.ingress.workers),
             [ext.kubectl.apiserver_cores], [1], np.full(dns.coredns_replicas, dns.coredns_cores)]
    sizes = [len(p) for p in parts]
    base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return np.concatenate(parts).astype(np.int64), base, nodes


def _dead(rep: Replication) -> np.ndarray:
    """When each endpoint's Pod stops serving (inf: never)."""
    if rep.programmed is not None:
        return rep.programmed.churn.dead.astype(np.float64)
    return np.full(int(rep.topology.endpoint_offsets[-1]), np.inf)
