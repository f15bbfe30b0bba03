"""Overload as the kernel does it: a full softirq backlog, NIC ring or conntrack table drops
packets, TCP sends them again after its retransmission timeout (and gives up after its
retries), every drop counted where it happened; percentiles that count the requests that
timed out."""

import math

import numpy as np
import pytest

from netmodel.runner.point import run_point
from netmodel.vocabulary import PACKET_DROPS, RETRIES_EXHAUSTED
from tests.conftest import make_scenario, walked

BACKLOG, RING, CONNTRACK = range(len(PACKET_DROPS))


def overloaded(rate, backlog=1000, conntrack_max=100_000_000, **cluster):
    """Two nodes with one softirq core each, Pod-to-Pod across them: the softirq CPU of a
    request is 348 us over both nodes, so the cores carry about 5,750 requests/s."""
    return make_scenario(
        cluster={"nodes": 2, "softirq_cores": 1, "netdev_max_backlog": backlog,
                 "conntrack_max": conntrack_max, **cluster},
        services={"count": 4, "endpoints_per_service": 2},
        workload={"rate": rate, "mix": {"pod-pod-cross-node": 1}, "timeout": "2s"},
        run={"requests": None, "duration": "6s", "warmup": "1s", "drain": "0.5s"})


@pytest.mark.validation
def test_an_overloaded_softirq_drops_at_its_backlog_and_says_so(profile):
    """At 1.74x the cores' capacity (the review's case) a node's backlog fills and drops;
    TCP sends the packets again after its timeout. Completed throughput: 2,915/s with the
    kernel's backlog against 835/s with an unbounded queue (where every request waits
    seconds); the drops and the requests that timed out show in the summary."""
    (kernel,) = run_point(overloaded(10_000), profile)
    (unbounded,) = run_point(overloaded(10_000, backlog=10_000_000), profile)
    assert kernel["packets_dropped_softirq_backlog_full"] > 10_000
    assert unbounded["packets_dropped_softirq_backlog_full"] == 0
    assert kernel["throughput_rps"] > 3 * unbounded["throughput_rps"]
    assert kernel["dropped_timeout"] > 0 and kernel["p99_with_timeouts_s"] == 2.0
    assert kernel["p99_s"] < 2.0  # the completed ones alone hide the timeouts
    assert math.isnan(unbounded["p99_s"]) or unbounded["p99_s"] > kernel["p50_s"]


def test_below_capacity_nothing_drops(profile):
    (row,) = run_point(overloaded(3_000), profile)
    assert row["packets_dropped_softirq_backlog_full"] == 0 and row["completed"] == row["requests"]
    assert row["p99_with_timeouts_s"] == row["p99_s"]


def test_a_full_conntrack_table_drops_syns_until_tcp_gives_up(profile):
    """100 new connections/s through two nodes hold 12,000 TIME_WAIT entries in steady
    state: a table of 1,000 is full from the start (it is prefilled), every SYN is dropped
    and sent again after 1 s, 2 s, 4 s: with 2 SYN retries, each connection fails after 3 s."""
    sc = make_scenario(cluster={"nodes": 2, "conntrack_max": 1000, "tcp_syn_retries": 2},
                       workload={"rate": 100, "mix": {"pod-pod-cross-node": 1}, "timeout": "10s"},
                       run={"requests": 300})
    _, res = walked(sc, profile)
    assert (res.packet_drops[:, CONNTRACK] == 3).all()  # the SYN and its 2 retransmissions
    assert (res.status == RETRIES_EXHAUSTED).all()
    assert np.allclose(res.end - res.start, 3.0)
    roomy = sc.model_copy(update={"cluster": sc.cluster.model_copy(update={"conntrack_max": 100_000})})
    _, fine = walked(roomy, profile)
    assert fine.packet_drops.sum() == 0


def test_the_prefilled_entries_expire_over_time_wait(profile):
    """Time_wait 2 s: the prefill (200 entries) is gone after 2 s; the run's own connections
    (100/s, each on both nodes) then hold about 200 entries: a table of 150 drops some
    SYNs early and fewer once the prefill has expired... but the steady state refills it."""
    sc = make_scenario(cluster={"nodes": 2, "conntrack_max": 150, "conntrack_time_wait": "2s"},
                       workload={"rate": 100, "mix": {"pod-pod-cross-node": 1},
                                 "arrival": "constant"},
                       run={"requests": 1000})
    _, res = walked(sc, profile)
    dropped = res.packet_drops[:, CONNTRACK] > 0
    assert dropped.any() and not dropped.all()


def test_a_full_nic_ring_drops_and_tcp_sends_again(profile):
    """Requests from outside through one node's NIC at a rate its port cannot take with a
    ring of 1: the ring drops, the retransmission comes after tcp_rto_min."""
    sc = make_scenario(cluster={"nodes": 2, "nic_rx_ring": 1, "nic_speed": "100Mbps",
                                "conntrack_max": 100_000_000},
                       services={"count": 1, "endpoints_per_service": 1, "type": "NodePort"},
                       workload={"rate": 20_000, "request_size": "10KiB",
                                 "mix": {"external-nodeport": 1}},
                       run={"requests": 2000})
    (row,) = run_point(sc, profile)
    assert row["packets_dropped_nic_ring_full"] > 100
    assert row["completed"] > 0
