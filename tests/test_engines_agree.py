"""Every engine gives the same records on the same replication: the fast engine's compiled
loop against the SimPy reference, to the last bit, over random scenarios (every traffic
kind, mixes, policies, modes, DNS, keep-alive, queue limits, timeouts, churn)."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from netmodel.connections.replication import describe
from netmodel.engines import AUTO, ENGINES, engine_for, simulate
from tests.conftest import make_scenario
from tests.strategies import fast_pods, scenarios

FIELDS = ("kind", "status", "start", "end", "connected", "packet_drops", "ct_evictions", "lookup_cpu",
          "softirq_cpu", "cross_node", "endpoint")


def assert_same_records(a, b):
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    assert a.conntrack_entries == b.conntrack_entries or (
        np.isnan(a.conntrack_entries) and np.isnan(b.conntrack_entries))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(requests=400))
def test_fast_and_simpy_records_are_bitwise_equal(profile, sc):
    profile = fast_pods(profile)
    simpy = ENGINES["simpy"].run(describe(sc, profile, 0))
    fast = ENGINES["fast"].run(describe(sc, profile, 0))
    assert_same_records(simpy, fast)


@pytest.mark.parametrize("case", [
    {"workload": {"rate": 40_000, "timeout": "3ms", "server": {"workers": 1, "queue_limit": 0}}},
    # (conntrack_max: the steady state of 30,000 connections/s would fill the default table
    # before the run, and every SYN would wait on it instead)
    {"cluster": {"nodes": 2, "softirq_cores": 1, "conntrack_max": 10**8}, "workload": {"rate": 30_000}},
    {"workload": {"requests_per_connection": 50, "rate": 20_000}},
    # the kernel's limits: a softirq backlog that drops, a NIC ring that drops, both resent
    {"cluster": {"nodes": 2, "softirq_cores": 1, "netdev_max_backlog": 5, "conntrack_max": 10**8,
                 "tcp_rto_min": "2ms"},
     "workload": {"rate": 12_000, "requests_per_connection": 3, "timeout": "50ms"}},
    {"cluster": {"nodes": 2, "nic_rx_ring": 1, "nic_speed": "100Mbps", "conntrack_max": 10**8,
                 "tcp_rto_min": "1ms"},
     "services": {"type": "NodePort"},
     "workload": {"rate": 20_000, "request_size": "10KiB", "mix": {"external-nodeport": 1,
                                                                  "pod-pod-cross-node": 1}}},
    # found by the property test: a request TCP gave up on, then the next one on the
    # connection; its packets start their own retransmission count
    {"cluster": {"nodes": 2, "softirq_cores": 1, "netdev_max_backlog": 1, "nic_rx_ring": 1,
                 "tcp_syn_retries": 0, "conntrack_time_wait": 0.2, "tcp_retries2": 2,
                 "tcp_rto_min": 0.001},
     "services": {"count": 5, "endpoints_per_service": 1},
     "workload": {"rate": 40_000, "requests_per_connection": 2, "timeout": "2ms",
                  "mix": {"pod-pod-same-node": 1}, "server": {"workers": 1, "queue_limit": 0}}},
    # eBPF: a BPF conntrack map that fills and evicts, DSR replies, XDP at the entry node
    {"cluster": {"nodes": 2, "cni_datapath": "native"}, "services": {"type": "NodePort"},
     "kube_proxy": {"mode": "ebpf", "ebpf": {"masquerade": "bpf", "ct_map_size": 20,
                                             "load_balancer_mode": "dsr", "acceleration": "native"}},
     "workload": {"rate": 20_000, "mix": {"external-nodeport": 1, "pod-clusterip": 1}}},
])
def test_overloaded_runs_agree_too(profile, case):
    """Long queues and many simultaneous events: where tie-breaking decides."""
    sc = make_scenario(**case, run={"requests": 20_000, "drain": "5ms"})
    simpy = ENGINES["simpy"].run(describe(sc, profile, 0))
    assert_same_records(simpy, ENGINES["fast"].run(describe(sc, profile, 0)))


@pytest.mark.parametrize("grown", ["_FIRST_ROOM", "_FIRST_RING"])
def test_a_loop_stopped_to_grow_its_arrays_goes_on_exactly(profile, monkeypatch, grown):
    """The compiled loop returns when its heap is short of room, or when an arriving
    connection's slot in the ring is taken, and runs on after it grows: from a heap of 16
    slots, or a ring of one record, the records are the same."""
    from netmodel.engines import kernel

    sc = make_scenario(cluster={"nodes": 2, "softirq_cores": 1, "conntrack_max": 10**8},
                       workload={"rate": 30_000}, run={"requests": 5_000, "drain": "5ms"})
    whole = ENGINES["fast"].run(describe(sc, profile, 0))
    runs, rings = [], []
    monkeypatch.setattr(kernel, grown, {"_FIRST_ROOM": 16, "_FIRST_RING": 1}[grown])
    monkeypatch.setattr(kernel, "_run", lambda *a, _run=kernel._run: runs.append(1) or _run(*a))

    def grow(state, n, _grown=kernel._grown):
        state = _grown(state, n)
        rings.append(state.conn.size)
        return state
    monkeypatch.setattr(kernel, "_grown", grow)
    assert_same_records(whole, ENGINES["fast"].run(describe(sc, profile, 0)))
    assert len(runs) > 1
    if grown == "_FIRST_RING":  # overloaded: the ring stretched to one record per connection
        assert rings[-1] == len(describe(sc, profile, 0).connections) == 5_000


@pytest.mark.parametrize("near", [1, 2, 7])
def test_the_near_events_beside_the_heap_change_nothing(profile, monkeypatch, near):
    """The loop keeps its next few events sorted beside the heap (kernel._push): with room
    for 1, 2 or 7 of them, nearly every event passes through the heap or evicts one into it,
    and an overloaded run's records are the SimPy engine's still."""
    from netmodel.engines import kernel

    sc = make_scenario(cluster={"nodes": 2, "softirq_cores": 1, "conntrack_max": 10**8},
                       workload={"rate": 30_000}, run={"requests": 3_000, "drain": "50ms"})
    simpy = ENGINES["simpy"].run(describe(sc, profile, 0))
    monkeypatch.setattr(kernel, "_NEAR_ROOM", near)
    assert_same_records(simpy, ENGINES["fast"].run(describe(sc, profile, 0)))


def test_a_cluster_past_int16_node_ids_runs_alike(profile):
    """Past 32,767 nodes placement's node table is int32 (node_table), and the loop is
    compiled for it: the records are the same; a conntrack table that refuses a third of
    the connections' SYNs included."""
    sc = make_scenario(cluster={"nodes": 40_000, "pod_cidr": "10.0.0.0/8", "conntrack_max": 2500},
                       services={"count": 20, "endpoints_per_service": 3, "type": "NodePort"},
                       workload={"mix": {"pod-clusterip": 2, "external-nodeport": 1}},
                       run={"requests": 400})
    rep = describe(sc, profile, 0)
    assert rep.connections.node.dtype == np.int32 and rep.connections.node.max() > 2**15
    simpy = ENGINES["simpy"].run(describe(sc, profile, 0))
    assert_same_records(simpy, ENGINES["fast"].run(rep))


def test_auto_takes_the_fast_engine(profile):
    sc = make_scenario(run={"requests": 100})
    assert engine_for(sc, AUTO) == (ENGINES["fast"], None)
    assert_same_records(simulate(sc, profile, 0), simulate(sc, profile, 0, "simpy"))


def test_without_numba_auto_falls_back_to_simpy_and_says_why(monkeypatch, tmp_path, capsys):
    import netmodel.engines.fast as fast
    from netmodel.cli import main
    from netmodel.errors import NetmodelError

    monkeypatch.setattr(fast, "kernel", None)
    sc = make_scenario(run={"requests": 100})
    engine, why = engine_for(sc, AUTO)
    assert engine is ENGINES["simpy"] and why == "fast: numba is not installed (pip install numba)"
    with pytest.raises(NetmodelError, match="engine fast cannot run this point exactly: numba"):
        engine_for(sc, "fast")
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nrun: {requests: 100}\n")
    assert main(["run", str(path)]) == 0
    assert "engine simpy (fast: numba is not installed (pip install numba))" in capsys.readouterr().out




_WALK = """
import hashlib, sys
from netmodel.costs.profile import load_profile
from netmodel.engines import fast, simulate
from netmodel.scenario.schema import Scenario
if sys.argv[1] == "cli":
    fast.without_blas()
records = simulate(Scenario.model_validate({"name": "walk", "run": {"requests": 300}}),
                   load_profile("default"), 0, "fast")
import numba.np.arraymath
print(numba.np.arraymath._HAVE_BLAS, "scipy.linalg" in sys.modules,
      hashlib.sha256(records.end.tobytes() + records.status.tobytes()).hexdigest())
"""


def test_netmodels_own_processes_load_numba_without_blas_and_walk_alike():
    """The CLI's processes skip scipy's BLAS (0.2 s of a start); a library caller's keeps
    it for its own numba code; the records are the same."""
    walks = {who: subprocess.run([sys.executable, "-c", _WALK, who], capture_output=True,
                                 text=True, check=True).stdout.split()
             for who in ("cli", "library")}
    assert walks["cli"][:2] == ["False", "False"]
    assert walks["library"][:2] == ["True", "True"]
    assert walks["cli"][2] == walks["library"][2]
