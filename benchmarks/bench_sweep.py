"""Sweep speed against workers: one sweep run with --jobs 1, --jobs 2 and on Dask.

Run: `.venv/bin/python benchmarks/bench_sweep.py` (default: scenarios/rolling-update.yaml,
16 points; `--scenario FILE`, `--runs local:1 local:2 dask:2`, `--repeats N`, `--engine
NAME`). Each run is
the whole `netmodel sweep` command into a new folder (start-up, points, summary, plots),
wall-clock seconds, best of the repeats, taken round-robin; the speed-up is against the
first run's best. The load
average is printed before and after: another process on the machine's cores makes the
numbers worthless. Benchmarks are never pass/fail; write what you measure into
benchmarks/README.md with the date and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_sweep(scenario: Path, executor: str, jobs: int, engine: str) -> float:
    """Wall seconds of one whole `netmodel sweep` into a new folder."""
    out = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "netmodel.cli", "sweep", str(scenario), "--out",
                        str(out / "results"), "--quiet", "--executor", executor, "--jobs",
                        str(jobs), "--engine", engine], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(out)


def _cpu() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios/rolling-update.yaml")
    parser.add_argument("--runs", nargs="+", default=["local:1", "local:2", "dask:2"],
                        metavar="EXECUTOR:JOBS")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--engine", default="auto", help="netmodel sweep --engine")
    args = parser.parse_args()
    print(f"{_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"| {args.scenario.name}, --engine {args.engine} | wall (s), best of {args.repeats} "
          "(all runs) | speed-up |")
    print("|---|---|---|")
    times: dict[str, list[float]] = {run: [] for run in args.runs}
    for _ in range(args.repeats):  # round-robin: a noisy minute hurts every run alike
        for run in args.runs:
            executor, jobs = run.split(":")
            times[run].append(time_sweep(args.scenario, executor, int(jobs), args.engine))
    first = min(times[args.runs[0]])
    for run, seconds in times.items():
        executor, jobs = run.split(":")
        print(f"| --executor {executor} --jobs {jobs} | {min(seconds):.1f} "
              f"({', '.join(f'{t:.1f}' for t in seconds)}) | {first / min(seconds):.2f}x |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
