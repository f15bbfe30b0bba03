"""Placing connections all at once (numpy, for a cluster without churn) gives what placing
them one by one gives (Placer, the reference, also used under churn and by trace)."""

from pathlib import Path
from unittest.mock import patch

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netmodel
from netmodel.cluster.topology import build_topology, search_right
from netmodel.connections import vectorized
from netmodel.connections.placement import (
    ABSENT,
    PATH_ROLES,
    ROLES,
    Placer,
    path_nodes,
    place_connections,
)
from netmodel.connections.replication import describe
from netmodel.connections.vectorized import place_static
from netmodel.connections.workload import _clock, draw_demand
from netmodel.costs.model import CostModel
from netmodel.streams import streams
from netmodel.vocabulary import TRAFFIC_KINDS
from tests.strategies import scenarios

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("drop", "route", "node", "endpoint", "position", "replica", "dns_upstream", "lookup",
          "lookup_cpu")


def demand_of(sc, rep):
    """The replication's demand with its placement draws (describe lets them go once spent)."""
    rng = streams(sc.run.seed, 0)
    build_topology(sc, rng)
    demand = draw_demand(sc, rep.topology, rng)
    assert np.array_equal(demand.arrival, rep.demand.arrival) and not rep.demand.draws
    return demand


def one_by_one(sc, profile, rep):
    placer = Placer(sc, CostModel(profile, sc), rep.topology)
    demand = demand_of(sc, rep)
    return place_connections(placer, [TRAFFIC_KINDS[k] for k in demand.kind.tolist()],
                             demand.service, demand.draws, demand.clock)


def assert_same(sc, profile):
    rep = describe(sc, profile, 0)
    loop = one_by_one(sc, profile, rep)
    at_once = place_static(sc, CostModel(profile, sc), rep.topology, demand_of(sc, rep))
    for name in FIELDS:
        assert np.array_equal(getattr(loop, name), getattr(at_once, name)), name
    assert loop.routes == at_once.routes


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(requests=600, churn=False))
def test_placing_at_once_equals_placing_one_by_one(profile, sc):
    assert_same(sc, profile)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(requests=600, churn=False), block=st.integers(1, 64))
def test_placing_in_blocks_equals_placing_one_by_one(profile, sc, block):
    """place_static places its connections and numbers its routes a block at a time (IPVS
    round robin settled after every block): blocks of any size place them as Placer does."""
    with patch.object(vectorized, "_BLOCK", block):
        assert_same(sc, profile)


def test_the_listed_cluster_with_headless_and_nodeport_services(profile):
    loaded = netmodel.load(ROOT / "scenarios/reference-cluster.yaml", settings={
        "workload.mix": {"pod-clusterip": 2, "pod-pod-cross-node": 1, "external-nodeport": 1,
                         "kubectl-proxy": 1}, "dns.enabled": True, "kube_proxy.mode": "ipvs"})
    assert_same(loaded.scenario, profile)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200))
def test_the_clock_reads_each_arrival_as_timeouts_one_after_another_do(times):
    arrival = np.sort(np.array(times))
    expected, now = [], 0.0
    for t in arrival.tolist():
        now = now + max(t - now, 0.0)
        expected.append(now)
    assert _clock(arrival).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(weights=st.lists(st.sampled_from([0.0, 1e-9, 0.5, 1.0, 3.0, 1000.0]), min_size=64, max_size=400),
       seed=st.integers(0, 2**32 - 1))
def test_the_guided_search_finds_what_searchsorted_finds(weights, seed):
    """Services drawn by popularity: the guide table's answer equals np.searchsorted's,
    for random draws and for draws on, just below and just above every cdf value."""
    w = np.array(weights)
    if w.sum() == 0:
        w[0] = 1.0
    cdf = np.cumsum(w) / w.sum()
    edges = np.concatenate([cdf, np.nextafter(cdf, 0.0), np.nextafter(cdf, 1.0), [0.0]])
    u = np.concatenate([np.random.default_rng(seed).random(2_000), edges[edges < 1.0]])
    assert np.array_equal(search_right(cdf, u), np.searchsorted(cdf, u, side="right"))


@settings(max_examples=100, deadline=None)
@given(rows=st.integers(0, 50), seed=st.integers(0, 2**32 - 1))
def test_path_nodes_are_each_rows_distinct_nodes_but_dns(rows, seed):
    table = np.random.default_rng(seed).integers(-2, 4, size=(rows, len(ROLES))).astype(np.int32)
    for row, path in zip(table.tolist(), path_nodes(table).tolist()):
        kept = [i for i in path if i != ABSENT]
        assert len(kept) == len(set(kept)) and set(kept) == set(row[:PATH_ROLES]) - {ABSENT}
