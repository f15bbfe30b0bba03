"""Endpoint churn: which Pods come and go, and when (issue 4, docs/control-plane.md "Churn").

Two views of one history come out of `generate_churn`:
- the **truth** per endpoint Pod: when it became Ready and entered its EndpointSlice
  (`ready`), when its removal was triggered (`removal`: deleted, or marked not ready after
  its node failed) and when it stopped serving (`dead`: `removal` + `pre_stop` for a
  deletion, the failure itself for a node failure);
- the **EndpointSlice updates** kube-proxy is told about (`EndpointUpdates`): one per
  (time, Service) with the endpoints it adds and removes. `sim/controlplane.py` programs
  them; `ProgrammedEndpoints` then says which endpoints each node's rules hold at any time.

Sources of churn, all from the scenario's `control_plane` section:
- steady churn: Pods replaced at `churn_rate` (Poisson over `duration`), each a Pod of a
  Service drawn uniformly, deleted, and a replacement created at once (its ReplicaSet);
- `rolling_update`: the Deployment controller's surge/unavailable arithmetic, reacting to
  each new Pod becoming Ready (controller latency not modelled);
- `scale`: Pods created or deleted (newest first) at once;
- `node_failure`: the node's Pods stop at once, are marked not ready after
  `node_monitor_grace_period` and replaced after a further `eviction_timeout`.

A created Pod lands on a node drawn uniformly among the nodes that have not failed and
becomes Ready after a Pod start time (lognormal through the profile's `pod_start_median`
and `pod_start_p99`) plus `readiness_delay`.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
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

    def endpoints_of(self) -> dict[int, np.ndarray]:
        """Endpoint ids per Service, for the Services whose endpoints changed."""
        changed = np.unique(self.updates.services)
        return {int(s): np.flatnonzero(self.service == s) for s in changed}


class _History:
    """Builds a Churn: Pods, their times, and the updates announcing them."""

    def __init__(self, offsets: np.ndarray, nodes_of: np.ndarray, nodes: int,
                 start: "PodStart", place: np.random.Generator):
        self.service = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets)).tolist()
        self.node = nodes_of.tolist()
        n = len(self.node)
        self.ready = [-math.inf] * n
        self.removal = [math.inf] * n
        self.dead = [math.inf] * n
        self.first_new = n
        self.live: list[list[int]] = [list(range(offsets[s], offsets[s + 1]))
                                      for s in range(len(offsets) - 1)]
        """Pods of each Service not being deleted (Ready or starting), oldest first."""
        self.changes: list[tuple[float, int, int, int]] = []
        """(time, order, endpoint, +1 added / -1 removed)."""
        self.failed: set[int] = set()
        self.nodes = nodes
        self.start, self.place = start, place
        self.order = count()

    def create(self, s: int, t: float) -> int:
        """A new Pod of Service s created at t: placed, Ready after its start time."""
        healthy = [n for n in range(self.nodes) if n not in self.failed] if self.failed else None
        if healthy is None:
            node = int(self.place.integers(self.nodes))
        else:
            node = healthy[int(self.place.integers(len(healthy)))] if healthy else 0
        e = len(self.node)
        self.service.append(s)
        self.node.append(node)
        self.ready.append(t + self.start.draw())
        self.removal.append(math.inf)
        self.dead.append(math.inf)
        self.live[s].append(e)
        self.changes.append((self.ready[e], next(self.order), e, +1))
        return e

    def delete(self, e: int, t: float, dead: float) -> None:
        """Pod e's removal triggered at t; it stops serving at `dead`."""
        self.live[self.service[e]].remove(e)
        self.removal[e], self.dead[e] = t, dead
        if self.ready[e] < min(t, dead):  # announced only if it had been Ready
            self.changes.append((t, next(self.order), e, -1))
        else:
            self.ready[e] = math.inf

    def build(self) -> Churn:
        """Group the changes into updates, one per (time, Service)."""
        ready = np.array(self.ready)
        changes = sorted(c for c in self.changes if c[0] < math.inf and
                         (c[3] < 0 or ready[c[2]] < math.inf))
        n = len(self.node)
        added_by = np.full(n, -1, dtype=np.int64)
        removed_by = np.full(n, -1, dtype=np.int64)
        times, services, added, removed = [], [], [], []
        for t, _, e, sign in changes:
            s = self.service[e]
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
        return Churn(updates, np.array(self.service, dtype=np.int64),
                     np.array(self.node, dtype=np.int64), ready, np.array(self.removal),
                     np.array(self.dead), added_by, removed_by, self.first_new)


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
    history = _History(np.asarray(offsets), np.asarray(nodes_of), scenario.node_count,
                       PodStart(profile, cp.readiness_delay, rng["pod-start"]), rng["pod-node"])
    queue: list[tuple[float, int, object]] = []
    order = count()

    def at(t: float, action) -> None:
        heapq.heappush(queue, (t, next(order), action))

    rolling: dict[int, _Rollout] = {}
    for event in cp.events:
        what = event.what
        at(what.at, what)
    for t, s in _steady(cp.churn_rate, cp.duration, len(offsets) - 1, rng):
        at(t, ("replace", s))
    while queue:
        t, _, action = heapq.heappop(queue)
        if isinstance(action, tuple) and action[0] == "replace":
            s = action[1]
            if s in rolling or not history.live[s]:
                continue  # a rolling Service's Pods are the rollout's business
            ready = [e for e in history.live[s] if history.ready[e] <= t]
            if not ready:
                continue
            e = ready[int(rng["changed-endpoint"].integers(len(ready)))]
            history.delete(e, t, t + cp.pre_stop)
            history.create(s, t)
        elif isinstance(action, tuple) and action[0] == "ready":
            rollout = rolling.get(action[1])
            if rollout is not None and rollout.step(t, at):
                del rolling[action[1]]
        elif isinstance(action, RollingUpdate):
            rollout = _Rollout(history, action, cp.pre_stop)
            if not rollout.step(t, at):
                rolling[action.service] = rollout
        elif isinstance(action, Scale):
            pods = history.live[action.service]
            for _ in range(action.replicas - len(pods)):
                history.create(action.service, t)
            for e in sorted(pods, key=lambda e: -e)[:max(len(pods) - action.replicas, 0)]:
                history.delete(e, t, t + cp.pre_stop)
        elif isinstance(action, NodeFailure):
            history.failed.add(action.node)
            marked = t + cp.node_monitor_grace_period
            for s, pods in enumerate(history.live):
                for e in [e for e in pods if history.node[e] == action.node]:
                    history.delete(e, marked, t)
                    at(marked + cp.eviction_timeout, ("recreate", s))
        elif isinstance(action, tuple) and action[0] == "recreate":
            history.create(action[1], t)
    return history.build()


class _Rollout:
    """One Deployment rollout: old Pods (those live when it starts) out, as many new in."""

    def __init__(self, history: _History, spec: RollingUpdate, pre_stop: float):
        self.history, self.service, self.pre_stop = history, spec.service, pre_stop
        self.old = list(history.live[spec.service])
        self.replicas = len(self.old)
        self.surge, self.unavailable = spec.pods(self.replicas)
        self.new: list[int] = []

    def step(self, t: float, at) -> bool:
        """Reconcile at t: scale the new Pods up and the old ones down as far as maxSurge
        and maxUnavailable allow; True when the rollout is complete."""
        h = self.history
        live = set(h.live[self.service])  # a node failure may have taken some Pods
        self.old = [e for e in self.old if e in live]
        self.new = [e for e in self.new if e in live]
        while True:
            changed = False
            while len(self.old) + len(self.new) < self.replicas + self.surge \
                    and len(self.new) < self.replicas:
                e = h.create(self.service, t)
                self.new.append(e)
                at(h.ready[e], ("ready", self.service))
                changed = True
            ready_new = sum(1 for e in self.new if h.ready[e] <= t)
            while self.old and len(self.old) + ready_new - 1 >= self.replicas - self.unavailable:
                h.delete(self.old.pop(0), t, t + self.pre_stop)
                changed = True
            if not changed:
                return not self.old and ready_new == len(self.new)


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

        def at(by: np.ndarray, never: float) -> np.ndarray:
            out = np.full((by.size, sampled), never)
            has = by >= 0
            out[has] = done[by[has]]
            return out

        return cls(churn, at(churn.added_by, -math.inf), at(churn.removed_by, math.inf),
                   churn.endpoints_of())

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
        """Per (endpoint removed, simulated node): how long the node's rules still held the
        endpoint after its Pod stopped serving (0 when it left the rules in time)."""
        gone = self.churn.removed_by >= 0
        late = self.removed_at[gone] - self.churn.dead[gone][:, None]
        return np.maximum(late, 0.0).ravel()
