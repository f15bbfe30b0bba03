"""Endpoint churn: which Pods come and go, and when (issue 4, docs/control-plane.md "Churn").

Two views of one history come out of `generate_churn`:
- the **truth** per endpoint Pod: when it became Ready and entered its EndpointSlice
  (`ready`), when its removal was triggered (`removal`: deleted, or marked not ready after
  its node failed) and when it stopped serving (`dead`: `removal` + `pre_stop` for a
  deletion, the failure itself for a node failure);
- the **EndpointSlice updates** kube-proxy is told about (`EndpointUpdates`): one per
  (time, Service) with the endpoints it adds and removes. `sim/controlplane.py` programs
  them; `ProgrammedEndpoints` then says which endpoints each node's rules hold at any time.

Every Service is a Deployment with `desired` replicas (its initial endpoints), whose
controllers act at once on every change (their own latency is not modelled). Sources of
churn, all from the scenario's `control_plane` section:
- steady churn: Pods replaced at `churn_rate` (Poisson over `duration`): a Ready Pod of a
  Service drawn uniformly is deleted and its ReplicaSet (or rollout) replaces it;
- `rolling_update`: the Deployment controller's rolling step within maxSurge /
  maxUnavailable, reacting to each new Pod becoming Ready;
- `scale`: a new `desired`; the ReplicaSet deletes Pods not Ready first, then the newest;
- `node_failure`: the node's Pods stop at once, are marked not ready after
  `node_monitor_grace_period` and deleted (then replaced) after a further `eviction_timeout`.

A created Pod lands on a node drawn uniformly among the nodes that have not failed and
becomes Ready after a Pod start time (lognormal through the profile's `pod_start_median`
and `pod_start_p99`) plus `readiness_delay`.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from itertools import count

import numpy as np

from netmodel.costs.profile import Profile
from netmodel.scenario.schema import NodeFailure, RollingUpdate, Scale, Scenario

_Z99 = 2.3263478740408408
"""Standard normal 99th percentile: a lognormal's p99 is median * exp(sigma * _Z99)."""


@dataclass(frozen=True)
class EndpointUpdates:
    """EndpointSlice updates in time order: when each change happened (kube-proxy's
    last-change-trigger time), which Service, how many endpoints it adds and removes."""

    times: np.ndarray
    services: np.ndarray
    added: np.ndarray
    removed: np.ndarray

    @property
    def size(self) -> int:
        return int(self.times.size)

    def subset(self, keep: np.ndarray) -> "EndpointUpdates":
        """The updates where `keep` is true, in order."""
        return EndpointUpdates(self.times[keep], self.services[keep], self.added[keep],
                               self.removed[keep])

    @classmethod
    def replacements(cls, times, services) -> "EndpointUpdates":
        """Each update replaces one endpoint of its Service (one removed, one added)."""
        times = np.asarray(times, dtype=float)
        ones = np.ones(times.size, dtype=np.int64)
        return cls(times, np.asarray(services, dtype=np.int64), ones, ones.copy())


@dataclass(frozen=True)
class Churn:
    """Every endpoint Pod of the run (the initial ones first, `first_new` on) and the
    updates that announce them. Times in seconds; -inf / inf: before / after the run."""

    updates: EndpointUpdates
    service: np.ndarray
    node: np.ndarray
    ready: np.ndarray
    removal: np.ndarray
    dead: np.ndarray
    added_by: np.ndarray
    """Index of the update that added each endpoint (-1: there from the start or never Ready)."""
    removed_by: np.ndarray
    """Index of the update that removed each endpoint (-1: never removed)."""
    first_new: int
    failed_at: np.ndarray = field(default_factory=lambda: np.empty(0))
    """Per node, when it failed (inf: never; empty: no node failed)."""

    def endpoints_of(self) -> dict[int, np.ndarray]:
        """Endpoint ids per Service, for the Services whose endpoints changed."""
        changed = np.unique(self.updates.services)
        return {int(s): np.flatnonzero(self.service == s) for s in changed}


class _Cluster:
    """Every Service's Pods and the controllers that act on them: the ReplicaSet keeps
    `desired` Pods, a rollout replaces them within maxSurge / maxUnavailable, the node
    lifecycle controller marks and evicts a failed node's Pods. Records the truth per Pod
    and the endpoint changes (time, Service, order, endpoint, +1 / -1) announcing it."""

    def __init__(self, offsets: np.ndarray, nodes_of: np.ndarray, nodes: int,
                 start: "PodStart", place: np.random.Generator, pre_stop: float):
        self.service = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets)).tolist()
        self.node = nodes_of.tolist()
        n = len(self.node)
        self.ready = [-math.inf] * n
        self.removal = [math.inf] * n
        self.dead = [math.inf] * n
        self.first_new = n
        self.pods: list[list[int]] = [list(range(offsets[s], offsets[s + 1]))
                                      for s in range(len(offsets) - 1)]
        """Pods of each Service that exist (not deleted, not evicted), oldest first."""
        self.desired = [len(p) for p in self.pods]
        """Each Deployment's spec.replicas."""
        self.rollouts: dict[int, tuple[RollingUpdate, set[int]]] = {}
        """Service -> (rollout spec, its old Pods)."""
        self.failed: dict[int, float] = {}
        """Failed node -> when."""
        self.changes: list[tuple[float, int, int, int, int]] = []
        self.nodes, self.start, self.place, self.pre_stop = nodes, start, place, pre_stop
        self.order = count()

    # -- Pods ---------------------------------------------------------------------------
    def available(self, e: int, t: float) -> bool:
        """Ready, as the controllers see it (a failed node's Pods until it is marked)."""
        return self.ready[e] <= t < self.removal[e]

    def create(self, s: int, t: float) -> int:
        """A new Pod of Service s at t on a node that has not failed, Ready after its start
        time; with every node failed it stays Pending (never Ready)."""
        healthy = [n for n in range(self.nodes) if n not in self.failed] if self.failed else None
        e = len(self.node)
        if healthy is None or healthy:
            pick = int(self.place.integers(self.nodes if healthy is None else len(healthy)))
            self.node.append(pick if healthy is None else healthy[pick])
            self.ready.append(t + self.start.draw())
        else:
            self.node.append(0)
            self.ready.append(math.inf)
        self.service.append(s)
        self.removal.append(math.inf)
        self.dead.append(math.inf)
        self.pods[s].append(e)
        return e

    def remove_endpoint(self, e: int, t: float) -> None:
        """Pod e leaves its EndpointSlice at t (announced if it had been Ready)."""
        if self.removal[e] < math.inf:
            return
        self.removal[e] = t
        if self.ready[e] < t:
            self.changes.append((t, self.service[e], next(self.order), e, -1))
        else:
            self.ready[e] = math.inf   # deleted before it was Ready: never announced

    def delete(self, e: int, t: float) -> None:
        """Pod e deleted at t: out of its EndpointSlice now, serving until preStop ends."""
        self.pods[self.service[e]].remove(e)
        self.remove_endpoint(e, t)
        self.dead[e] = min(self.dead[e], t + self.pre_stop)

    def announce_ready(self) -> None:
        """Record the +1 change of every Pod that became Ready (after all events)."""
        for e in range(self.first_new, len(self.node)):
            if self.ready[e] < math.inf:
                self.changes.append((self.ready[e], self.service[e], next(self.order), e, +1))

    # -- nodes --------------------------------------------------------------------------
    def fail(self, node: int, t: float) -> None:
        """The node stops: every Pod on it stops serving; one still starting never gets Ready."""
        self.failed.setdefault(node, t)
        for e in (e for e, n in enumerate(self.node) if n == node):
            self.dead[e] = min(self.dead[e], t)
            if self.ready[e] > t and self.removal[e] == math.inf:
                self.ready[e] = math.inf

    def mark(self, node: int, t: float) -> list[int]:
        """The node lifecycle controller marks the node: its Pods leave the EndpointSlices
        (they still exist until evicted); returns the Services touched."""
        touched = []
        for s, pods in enumerate(self.pods):
            for e in (e for e in pods if self.node[e] == node):
                self.remove_endpoint(e, t)
                touched.append(s)
        return sorted(set(touched))

    def evict(self, node: int, t: float) -> list[int]:
        """The failed node's Pods are deleted (their ReplicaSets then replace them)."""
        touched = []
        for s, pods in enumerate(self.pods):
            for e in [e for e in pods if self.node[e] == node]:
                self.delete(e, t)
                touched.append(s)
        return sorted(set(touched))

    # -- controllers --------------------------------------------------------------------
    def reconcile(self, s: int, t: float) -> None:
        """The Deployment of Service s at t: its ReplicaSet, or its rollout, until no step applies."""
        if s in self.rollouts:
            self._roll(s, t)
            return
        pods, want = self.pods[s], self.desired[s]
        if len(pods) > want:  # scale down: not-available first, then newest first
            doomed = sorted(pods, key=lambda e: (self.available(e, t), -e))[:len(pods) - want]
            for e in doomed:
                self.delete(e, t)
        for _ in range(want - len(pods)):
            self.create(s, t)

    def _roll(self, s: int, t: float) -> None:
        """One rollout step of the Deployment controller (pkg/controller/deployment/rolling.go,
        simplified): scale the new Pods up to replicas + maxSurge, then the old ones down, first
        those not available, as far as replicas - maxUnavailable available Pods allow."""
        spec, old_set = self.rollouts[s]
        replicas = self.desired[s]
        surge, unavailable = spec.pods(replicas)
        min_available = replicas - unavailable
        most = replicas + surge if replicas > 0 else 0  # scaled to 0: no surge either
        while True:
            pods = self.pods[s]
            old = [e for e in pods if e in old_set]
            new = [e for e in pods if e not in old_set]
            if len(pods) > most:                  # scaled down during the rollout
                doomed = sorted(old, key=lambda e: (self.available(e, t), e)) + \
                    sorted(new, key=lambda e: (self.available(e, t), -e))
                for e in doomed[:len(pods) - most]:
                    self.delete(e, t)
                continue
            if len(pods) < most and len(new) < replicas:
                self.create(s, t)
                continue
            new_unavailable = sum(1 for e in new if not self.available(e, t))
            unhealthy = [e for e in old if not self.available(e, t)]
            room = len(pods) - min_available - new_unavailable
            if unhealthy and room > 0:
                self.delete(unhealthy[0], t)
                continue
            available = sum(1 for e in pods if self.available(e, t))
            healthy_old = [e for e in old if self.available(e, t)]
            if healthy_old and available - 1 >= min_available:
                self.delete(healthy_old[0], t)
                continue
            if not old and len(new) == replicas and new_unavailable == 0:
                del self.rollouts[s]
            return

    def build(self) -> Churn:
        """Group the changes into updates, one per (time, Service)."""
        self.announce_ready()
        ready = np.array(self.ready)
        n = len(self.node)
        added_by = np.full(n, -1, dtype=np.int64)
        removed_by = np.full(n, -1, dtype=np.int64)
        times, services, added, removed = [], [], [], []
        for t, s, _, e, sign in sorted(self.changes):
            if not times or times[-1] != t or services[-1] != s:
                times.append(t)
                services.append(s)
                added.append(0)
                removed.append(0)
            u = len(times) - 1
            if sign > 0:
                added[-1] += 1
                added_by[e] = u
            else:
                removed[-1] += 1
                removed_by[e] = u
        updates = EndpointUpdates(np.array(times, dtype=float), np.array(services, dtype=np.int64),
                                  np.array(added, dtype=np.int64), np.array(removed, dtype=np.int64))
        failed_at = np.full(self.nodes, math.inf) if self.failed else np.empty(0)
        for node, t in self.failed.items():
            failed_at[node] = t
        return Churn(updates, np.array(self.service, dtype=np.int64),
                     np.array(self.node, dtype=np.int64), ready, np.array(self.removal),
                     np.array(self.dead), added_by, removed_by, self.first_new, failed_at)


class PodStart:
    """Pod creation -> Ready: lognormal start time (profile) plus the readiness delay."""

    def __init__(self, profile: Profile, readiness_delay: float, rng: np.random.Generator):
        median, p99 = profile["pod_start_median"], profile["pod_start_p99"]
        self.median = median
        self.sigma = math.log(p99 / median) / _Z99 if median > 0 and p99 > median else 0.0
        self.delay, self.rng = readiness_delay, rng

    def draw(self) -> float:
        return self.median * math.exp(self.sigma * float(self.rng.standard_normal())) + self.delay


def generate_churn(scenario: Scenario, profile: Profile, offsets: np.ndarray,
                   nodes_of: np.ndarray, rng: dict[str, np.random.Generator]) -> Churn:
    """The churn of one replication over the initial layout (`offsets`, `nodes_of` as in
    `Topology`), with the control plane's streams `rng` (`sim/controlplane.py`)."""
    cp = scenario.control_plane
    cluster = _Cluster(np.asarray(offsets), np.asarray(nodes_of), scenario.node_count,
                       PodStart(profile, cp.readiness_delay, rng["pod-start"]), rng["pod-node"],
                       cp.pre_stop)
    controllers = _Controllers(cluster, cp, rng["changed-endpoint"])
    for i, event in enumerate(cp.events):
        controllers.at(event.what.at, "event", i)
    for t, s in _steady(cp.churn_rate, cp.duration, len(offsets) - 1, rng):
        controllers.at(t, "replace", s)
    controllers.run()
    return cluster.build()


class _Controllers:
    """The controllers acting on the cluster, one queued action after another in time
    order: ReplicaSets replacing deleted Pods, Deployments (scaling, rolling), the node
    lifecycle controller marking and evicting a failed node's Pods."""

    def __init__(self, cluster: _Cluster, cp, changed_endpoint: np.random.Generator):
        self.cluster, self.cp, self.changed_endpoint = cluster, cp, changed_endpoint
        self.events = [event.what for event in cp.events]
        self.queue: list[tuple[float, int, str, int]] = []
        self.order = count()

    def at(self, t: float, action: str, target: int) -> None:
        heapq.heappush(self.queue, (t, next(self.order), action, target))

    def run(self) -> None:
        """Every action, and the Deployments' look at the Services each touched."""
        cluster = self.cluster
        scheduled = len(cluster.node)
        act = {"replace": self._replace, "mark": self._mark, "evict": self._evict,
               "event": self._event, "ready": lambda target, t: [target]}
        while self.queue:
            t, _, action, target = heapq.heappop(self.queue)
            for s in act[action](target, t):  # the Deployment looks again
                cluster.reconcile(s, t)
            for e in range(scheduled, len(cluster.node)):   # Pods created just now
                if cluster.ready[e] < math.inf:
                    self.at(cluster.ready[e], "ready", cluster.service[e])
            scheduled = len(cluster.node)

    def _replace(self, s: int, t: float) -> list[int]:
        """A Ready Pod of Service `s` deleted; its ReplicaSet replaces it."""
        ready = [e for e in self.cluster.pods[s] if self.cluster.available(e, t)]
        if not ready:
            return []
        self.cluster.delete(ready[int(self.changed_endpoint.integers(len(ready)))], t)
        return [s]

    def _mark(self, node: int, t: float) -> list[int]:
        self.at(t + self.cp.eviction_timeout, "evict", node)
        return self.cluster.mark(node, t)

    def _evict(self, node: int, t: float) -> list[int]:
        return self.cluster.evict(node, t)

    def _event(self, i: int, t: float) -> list[int]:
        what = self.events[i]
        if isinstance(what, NodeFailure):
            self.cluster.fail(what.node, t)
            self.at(t + self.cp.node_monitor_grace_period, "mark", what.node)
            return []
        if isinstance(what, Scale):
            self.cluster.desired[what.service] = what.replicas
        else:  # a rollout: every existing Pod (a running rollout's new ones too) is old
            self.cluster.rollouts[what.service] = (what, set(self.cluster.pods[what.service]))
        return [what.service]


def _steady(rate: float, duration: float, services: int,
            rng: dict[str, np.random.Generator]) -> list[tuple[float, int]]:
    """Poisson replacement times over [0, duration) and the Service each touches."""
    if rate == 0:
        return []
    times = poisson_times(rate, duration, rng["change-arrivals"])
    chosen = rng["changed-service"].integers(0, services, size=times.size)
    return list(zip(times.tolist(), chosen.tolist()))


def poisson_times(rate: float, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of a Poisson process of `rate` over [0, duration)."""
    chunk = int(rate * duration * 1.2) + 16
    times = np.cumsum(rng.exponential(1.0 / rate, chunk))
    while times[-1] < duration:
        times = np.concatenate([times, times[-1] + np.cumsum(rng.exponential(1.0 / rate, chunk))])
    return times[times < duration]


@dataclass(frozen=True)
class ProgrammedEndpoints:
    """What the data plane sees under churn: per endpoint and simulated kube-proxy, when
    the endpoint entered (`added_at`, -inf: before the run) and left (`removed_at`, inf:
    never) that node's rules, next to the truth in `churn`. Node n of the cluster follows
    simulated kube-proxy n mod `sampled` (all of them when the cluster has no more nodes)."""

    churn: Churn
    added_at: np.ndarray
    removed_at: np.ndarray
    endpoints: dict[int, np.ndarray]
    """Endpoint ids of each Service whose endpoints changed (others keep the topology's)."""

    @classmethod
    def of(cls, churn: Churn, programming: np.ndarray) -> "ProgrammedEndpoints":
        """From the control plane's (update, node) programming durations."""
        done = churn.updates.times[:, None] + programming      # when each update is in place
        sampled = programming.shape[1]

        def at(by: np.ndarray, never: np.ndarray) -> np.ndarray:
            out = np.repeat(never[:, None], sampled, axis=1)
            has = by >= 0
            out[has] = done[by[has]]
            return out

        # Not added by an update: there from the start (-inf), or never Ready (inf).
        initial = np.where(churn.ready == -math.inf, -math.inf, math.inf)
        return cls(churn, at(churn.added_by, initial),
                   at(churn.removed_by, np.full(churn.ready.size, math.inf)), churn.endpoints_of())

    @property
    def sampled(self) -> int:
        return self.added_at.shape[1]

    def in_rules(self, service: int, node: int, t: float) -> np.ndarray | None:
        """Endpoint ids in `node`'s rules for `service` at `t`; None: unchanged Service."""
        ids = self.endpoints.get(service)
        if ids is None:
            return None
        m = node % self.sampled
        return ids[(self.added_at[ids, m] <= t) & (t < self.removed_at[ids, m])]

    def listed(self, service: int, t: float) -> np.ndarray | None:
        """Endpoint ids the EndpointSlice lists as ready at `t` (what clients reading it
        directly see); None: unchanged Service."""
        ids = self.endpoints.get(service)
        if ids is None:
            return None
        c = self.churn
        return ids[(c.ready[ids] <= t) & (t < c.removal[ids])]

    def serving(self, endpoint: int, t: float) -> bool:
        """Whether the endpoint's Pod still serves at `t`."""
        return t < self.churn.dead[endpoint]

    def stale_windows(self) -> np.ndarray:
        """Per (endpoint removed, simulated node): how long the node's rules held the
        endpoint while its Pod no longer served (0 when it left the rules in time, or was
        never in them)."""
        gone = self.churn.removed_by >= 0
        since = np.maximum(self.churn.dead[gone][:, None], self.added_at[gone])
        return np.maximum(self.removed_at[gone] - since, 0.0).ravel()
