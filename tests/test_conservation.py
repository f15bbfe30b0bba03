"""Nothing lost, whatever the scenario: a property test over random small clusters."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netmodel.paths import TRAFFIC_KINDS
from netmodel.run.point import run_point
from tests.conftest import make_scenario

KINDS = st.dictionaries(st.sampled_from(TRAFFIC_KINDS), st.floats(0.1, 3), min_size=1, max_size=4)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mix=KINDS, nodes=st.integers(2, 6), endpoints=st.integers(1, 3),
       rate=st.sampled_from([200, 5_000, 40_000]), keep_alive=st.integers(1, 4),
       policy=st.sampled_from(["Cluster", "Local"]), queue_limit=st.integers(0, 3),
       inflight=st.integers(1, 5), timeout_ms=st.sampled_from([2, 50, 10_000]),
       drain_ms=st.sampled_from([1, 20]), mode=st.sampled_from(["iptables", "ipvs", "nftables", "ebpf"]),
       dns=st.booleans(), seed=st.integers(0, 2**32))
def test_every_request_ends_completed_dropped_or_in_flight(
        profile, mix, nodes, endpoints, rate, keep_alive, policy, queue_limit, inflight,
        timeout_ms, drain_ms, mode, dns, seed):
    sc = make_scenario(
        cluster={"nodes": nodes}, kube_proxy={"mode": mode},
        services={"count": 5, "endpoints_per_service": endpoints, "type": "LoadBalancer",
                  "external_traffic_policy": policy},
        external={"load_balancer": {"provider": "metallb", "metallb_mode": "bgp"},
                  "ingress": {"replicas": 1, "workers": 1},
                  "kubectl": {"apiserver_cores": 1, "max_requests_inflight": inflight}},
        dns={"enabled": dns, "name": "external"},
        workload={"rate": rate, "requests_per_connection": keep_alive, "mix": mix,
                  "timeout": f"{timeout_ms}ms",
                  "server": {"workers": 1, "queue_limit": queue_limit}},
        run={"requests": 300, "drain": f"{drain_ms}ms", "seed": seed})
    rows = run_point(sc, profile)
    assert sorted(r["traffic"] for r in rows) == sorted(mix)
    assert sum(r["requests"] for r in rows) == 300
    for r in rows:
        drops = sum(v for k, v in r.items() if k.startswith("dropped_"))
        assert r["dropped"] == drops
        assert r["requests"] == r["completed"] + r["dropped"] + r["in_flight"]
        assert 0 <= r["measured"] <= r["completed"]
