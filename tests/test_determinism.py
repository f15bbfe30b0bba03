"""The real model: the same scenario and seed give the same bytes, whatever --jobs."""

from netmodel.runner.sweep import run_sweep
from netmodel.scenario.loader import load_scenario

SCENARIO = """\
name: determinism
cluster: {nodes: 20}
services: {count: 10, endpoints_per_service: 3}
workload:
  rate: 4000/s
  requests_per_connection: 2
  mix: {pod-clusterip: 3, pod-pod-cross-node: 1}
run: {requests: 600, warmup: 20ms, seed: 11, replications: 2}
control_plane:                   # churn while the requests run, routed by programmed rules
  enabled: true
  churn_rate: 20/s
  duration: 1s
  sampled_nodes: 5
  events: [{rolling_update: {service: 0, at: 10ms}}, {node_failure: {node: 3, at: 20ms}}]
  node_monitor_grace_period: 50ms
sweep:
  axes:
    services.count: [10, 100]
    kube_proxy.mode: [iptables, ipvs]
"""


def test_real_sweep_is_byte_identical_for_one_or_two_jobs(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    loaded = load_scenario(path)
    run_sweep(loaded, tmp_path / "one", jobs=1, quiet=True)
    run_sweep(loaded, tmp_path / "two", jobs=2, quiet=True)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*")
                   if p.is_file())
    assert {"summary.parquet", "summary.csv", "meta.json"} <= {str(f) for f in files}
    assert "plots/services.count__stale-endpoints.png" in {str(f) for f in files}
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
