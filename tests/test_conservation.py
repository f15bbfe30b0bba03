"""Nothing lost, whatever the scenario: a property test over random small clusters."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netmodel.runner.point import run_point
from netmodel.vocabulary import TRAFFIC_KINDS
from tests.conftest import make_scenario

KINDS = st.dictionaries(st.sampled_from(TRAFFIC_KINDS), st.floats(0.1, 3), min_size=1, max_size=4)
AT = st.floats(0, 1.5).map(lambda t: f"{t:.3f}s")
EVENTS = st.lists(st.one_of(
    st.builds(lambda s, at, surge, unavailable: {"rolling_update": {
        "service": s, "at": at, "max_surge": surge, "max_unavailable": unavailable}},
        st.integers(0, 4), AT, st.sampled_from([0, 1, "25%", "100%"]), st.sampled_from([0, 1, "50%"])),
    st.builds(lambda s, at, n: {"scale": {"service": s, "at": at, "replicas": n}},
              st.integers(0, 4), AT, st.integers(0, 5)),
    st.builds(lambda node, at: {"node_failure": {"node": node, "at": at}}, st.integers(0, 1), AT)),
    max_size=4)
CONTROL = st.one_of(st.none(), st.builds(
    lambda rate, events, pre_stop: {"enabled": True, "churn_rate": rate, "duration": "1.5s",
                                    "events": events, "pre_stop": pre_stop, "sampled_nodes": 2,
                                    "node_monitor_grace_period": "200ms", "eviction_timeout": "100ms"},
    st.sampled_from([0, 2, 20]), EVENTS, st.sampled_from(["0s", "20ms"])))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mix=KINDS, nodes=st.integers(2, 6), endpoints=st.integers(1, 3),
       rate=st.sampled_from([200, 5_000, 40_000]), keep_alive=st.integers(1, 4),
       policy=st.sampled_from(["Cluster", "Local"]), queue_limit=st.integers(0, 3),
       inflight=st.integers(1, 5), timeout_ms=st.sampled_from([2, 50, 10_000]),
       drain_ms=st.sampled_from([1, 20]), mode=st.sampled_from(["iptables", "ipvs", "nftables", "ebpf"]),
       dns=st.booleans(), seed=st.integers(0, 2**32), control=CONTROL)
def test_every_request_ends_completed_dropped_or_in_flight(
        profile, mix, nodes, endpoints, rate, keep_alive, policy, queue_limit, inflight,
        timeout_ms, drain_ms, mode, dns, seed, control):
    """Also under churn (Pods starting in 50-200 ms so that they come and go within the run)."""
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
        run={"requests": 300, "drain": f"{drain_ms}ms", "seed": seed},
        **({"control_plane": control} if control else {}))
    fast_pods = profile.with_overrides({"pod_start_median": "50ms", "pod_start_p99": "200ms"})
    rows = run_point(sc, fast_pods)
    assert sorted(r["traffic"] for r in rows) == sorted(mix)
    assert sum(r["requests"] for r in rows) == 300
    for r in rows:
        drops = sum(v for k, v in r.items() if k.startswith("dropped_"))
        assert r["dropped"] == drops
        assert r["requests"] == r["completed"] + r["dropped"] + r["in_flight"]
        assert 0 <= r["measured"] <= r["completed"]
