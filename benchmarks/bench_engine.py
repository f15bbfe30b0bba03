"""Engines side by side: simulated requests per wall-clock second, events, peak memory.

    .venv/bin/python benchmarks/bench_engine.py                  # every case, both engines
    .venv/bin/python benchmarks/bench_engine.py --case clusterip-iptables-10k-services --requests 1000000
    .venv/bin/python benchmarks/bench_engine.py --quickstart     # + the whole quickstart sweep, per engine
    .venv/bin/python benchmarks/bench_engine.py --sweep scenarios/X.yaml

Every (case, engine) runs in a fresh process: `start-up` is its imports and a 10-request
warm-up (for the fast engine: numba's import and its compiled loop loaded from the on-disk
cache; run once before to fill the cache, a cold compile takes 5-15 s), `first` its first
replication of the case, `best` and `median` of the repeats after it; peak
memory is the process's peak RSS less its RSS after imports and a tiny warm-up run, per
request. Events are the discrete events of the replication (the same in both engines, which
walk the same events; counted by the fast engine). Benchmarks are never pass/fail: write
what you measure into benchmarks/README.md with the date and the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "clusterip-iptables-10k-services": {
        "cluster": {"nodes": 1000, "pod_cidr": "10.0.0.0/14"},
        "services": {"count": 10_000, "endpoints_per_service": 10}, "kube_proxy": {"mode": "iptables"}},
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
ENGINES = ("simpy", "fast")


def measure(case: str, engine: str, requests: int, repeats: int) -> dict:
    """In this process: one case on one engine."""
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from netmodel.costs.profile import load_profile
    from netmodel.engines import simulate
    from netmodel.scenario.schema import Scenario

    profile = load_profile("default")
    simulate(Scenario.model_validate({"name": "warm-up", "run": {"requests": 10}}), profile, 0, engine)
    startup = time.perf_counter() - t0
    baseline = _rss_mib()
    sc = Scenario.model_validate({"name": case, **_case(case), "run": {"requests": requests}})
    times, events = [], 0
    for _ in range(repeats + 1):
        t = time.perf_counter()
        events = simulate(sc, profile, 0, engine).events  # records let go: one replication's peak
        times.append(time.perf_counter() - t)
    return {"startup": startup, "first": times[0], "best": min(times[1:]), "median": statistics.median(times[1:]),
            "events": events, "peak_mib": _rss_mib() - baseline}


def _case(name: str) -> dict:
    if name in CASES:
        return CASES[name]
    import yaml

    doc = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
    return {k: v for k, v in doc.items() if k not in ("name", "run", "sweep")}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def side_by_side(cases: list[str], requests: int, repeats: int, engines: tuple[str, ...]) -> None:
    print("| case | requests | events/request | engine | start-up (s) | first (s) | best (s) | "
          "median (s) | requests/s | peak memory (MiB) | B/request | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        found = {e: _in_child(case, e, requests, repeats) for e in engines}
        events = next((f["events"] for f in found.values() if f["events"]), 0)
        for engine, f in found.items():
            ratio = found["simpy"]["best"] / f["best"] if "simpy" in found else float("nan")
            print(f"| {case} | {requests:,} | {events / requests:.1f} | {engine} | {f['startup']:.2f} | "
                  f"{f['first']:.2f} | "
                  f"{f['best']:.3f} | {f['median']:.3f} | {requests / f['best']:,.0f} | "
                  f"{f['peak_mib']:,.0f} | {f['peak_mib'] * 2**20 / requests:,.0f} | {ratio:.1f}x |")


def _in_child(case: str, engine: str, requests: int, repeats: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--measure", case, engine, str(requests),
                           str(repeats)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def bench_sweep(scenario: Path, engines: tuple[str, ...], repeats: int) -> None:
    """Wall and CPU time of a whole sweep with 2 jobs, imports and plots included, per
    engine; `repeats` rounds taken round-robin (a noisy minute hurts every engine alike)."""
    walls: dict[str, list[float]] = {engine: [] for engine in engines}
    cpus: dict[str, list[float]] = {engine: [] for engine in engines}
    for _ in range(repeats):
        for engine in engines:
            wall, cpu = _time_sweep(scenario, engine)
            walls[engine].append(wall)
            cpus[engine].append(cpu)
    for engine in engines:
        print(f"{scenario.name} sweep, --jobs 2, --engine {engine}: wall best "
              f"{min(walls[engine]):.2f} s, median {statistics.median(walls[engine]):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in walls[engine])}); CPU median "
              f"{statistics.median(cpus[engine]):.2f} s")
    if "simpy" in walls and "fast" in walls:
        print(f"{scenario.name} sweep speed-up: {min(walls['simpy']) / min(walls['fast']):.1f}x "
              f"(best), {statistics.median(walls['simpy']) / statistics.median(walls['fast']):.1f}x"
              " (median)")


def _time_sweep(scenario: Path, engine: str) -> tuple[float, float]:
    """(wall, CPU of every process) seconds of one `netmodel sweep` into a new folder."""
    out = Path(tempfile.mkdtemp())
    try:
        before, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([sys.executable, "-m", "netmodel.cli", "sweep", str(scenario), "--out",
                        str(out), "--jobs", "2", "--quiet", "--engine", engine], check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
        wall, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        shutil.rmtree(out)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        case, engine, requests, repeats = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(measure(case, engine, requests, repeats)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", action="append", metavar="NAME",
                        help=f"a case ({', '.join(CASES)}) or a scenario name under scenarios/ "
                             "(its run and sweep left out); default: every case")
    parser.add_argument("--engine", action="append", choices=ENGINES, help="default: both")
    parser.add_argument("--quickstart", action="store_true")
    parser.add_argument("--sweep", type=Path, action="append", default=[], metavar="SCENARIO")
    args = parser.parse_args()
    engines = tuple(args.engine or ENGINES)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    side_by_side(args.case or list(CASES), args.requests, args.repeats, engines)
    for scenario in ([ROOT / "scenarios/quickstart.yaml"] if args.quickstart else []) + args.sweep:
        bench_sweep(scenario, engines, args.repeats)


if __name__ == "__main__":
    main()
