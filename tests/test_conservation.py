"""Nothing lost, whatever the scenario: a property test over random small clusters."""

from hypothesis import HealthCheck, given, settings

from netmodel.runner.point import run_point
from tests.strategies import fast_pods, scenarios


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios())
def test_every_request_ends_completed_dropped_or_in_flight(profile, sc):
    """Also under churn (Pods starting in 50-200 ms so that they come and go within the run)."""
    rows = run_point(sc, fast_pods(profile))
    mix = [k for k, w in sc.workload.mix.items() if w > 0]
    assert sorted(r["traffic"] for r in rows) == sorted(mix)
    assert sum(r["requests"] for r in rows) == 300
    for r in rows:
        drops = sum(v for k, v in r.items() if k.startswith("dropped_"))
        assert r["dropped"] == drops
        assert r["requests"] == r["completed"] + r["dropped"] + r["in_flight"]
        assert 0 <= r["measured"] <= r["completed"]
