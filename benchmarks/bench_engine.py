"""Engine speed: simulated requests per wall-clock second, and the quickstart sweep.

Run: `.venv/bin/python benchmarks/bench_engine.py` (add `--quickstart` to time the
whole quickstart sweep with 2 jobs, `--sweep scenarios/X.yaml` for any other sweep). Benchmarks are never pass/fail; write what you
measure into benchmarks/README.md with the date and the machine.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netmodel.costs.profile import load_profile
from netmodel.engines import simulate
from netmodel.scenario.schema import Scenario

CASES = {
    "clusterip-iptables-10k-services": {
        "cluster": {"nodes": 1000, "pod_cidr": "10.0.0.0/14"}, "services": {"count": 10_000, "endpoints_per_service": 10},
        "kube_proxy": {"mode": "iptables"}},
    "clusterip-keepalive-100": {
        "cluster": {"nodes": 100}, "services": {"count": 100, "endpoints_per_service": 10},
        "workload": {"requests_per_connection": 100}},
    "pod-pod-same-node": {
        "services": {"count": 10, "endpoints_per_service": 3},
        "workload": {"mix": {"pod-pod-same-node": 1}}},
    "saturated-softirq": {
        "cluster": {"nodes": 2, "softirq_cores": 1}, "services": {"count": 10, "endpoints_per_service": 4},
        "workload": {"rate": 5000}},
    "rolling-update-coupled": {  # control plane first (20 kube-proxies), then routing by their rules
        "cluster": {"nodes": 100, "pod_cidr": "10.0.0.0/14"},
        "services": {"count": 1000, "endpoints_per_service": 10, "popularity": "zipf"},
        "control_plane": {"enabled": True, "churn_rate": 0, "duration": "20s", "sampled_nodes": 20,
                          "events": [{"rolling_update": {"service": 0, "at": "2s"}}]}},
}


def bench_engine(requests: int, repeats: int) -> None:
    profile = load_profile("default")
    print(f"| case | requests | best of {repeats} (s) | requests/s |")
    print("|---|---|---|---|")
    for name, doc in CASES.items():
        sc = Scenario.model_validate({"name": name, **doc, "run": {"requests": requests}})
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            simulate(sc, profile, 0)
            times.append(time.perf_counter() - t)
        best = min(times)
        print(f"| {name} | {requests:,} | {best:.2f} (median {statistics.median(times):.2f}) | "
              f"{requests / best:,.0f} |")


def bench_sweep(scenario: Path) -> None:
    """Wall time of a whole sweep with 2 jobs, plots included."""
    out = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "netmodel.cli", "sweep", str(scenario),
                        "--out", str(out), "--jobs", "2", "--quiet"], check=True)
        print(f"{scenario.name} sweep, --jobs 2: {time.perf_counter() - t:.1f} s wall")
    finally:
        shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quickstart", action="store_true")
    parser.add_argument("--sweep", type=Path, action="append", default=[], metavar="SCENARIO")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    bench_engine(args.requests, args.repeats)
    root = Path(__file__).resolve().parents[1]
    for scenario in ([root / "scenarios/quickstart.yaml"] if args.quickstart else []) + args.sweep:
        bench_sweep(scenario)


if __name__ == "__main__":
    main()
