"""A large cluster's kubectl listings: `netmodel import kubectl`, then `netmodel check` of
the scenario it wrote.

Run: `.venv/bin/python benchmarks/bench_import.py` (default: 10,000 and 70,000 Services on
500 nodes, two endpoints each, from `tests/kubectl_dumps.synthetic_dump`; `--services N`
repeatable, `--nodes N`, `--repeats N`). Each step is the whole command in a new process:
wall seconds (best of the repeats, taken round-robin) and the peak memory of its best
run. Benchmarks are never pass/fail; write what you measure into benchmarks/README.md with
the date and the machine.
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
sys.path.insert(0, str(ROOT))

from tests.kubectl_dumps import synthetic_dump  # noqa: E402


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one netmodel command in a new process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, *argv], cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"netmodel {' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return time.perf_counter() - start, float(done.stdout.splitlines()[-1])


_PEAK = """
import resource, sys
from netmodel.cli import main
status = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
sys.exit(status)
"""


def bench(services: int, nodes: int, repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        synthetic_dump(work / "cluster", services=services, nodes=nodes)
        listings = sum(p.stat().st_size for p in (work / "cluster").iterdir())
        scenario = work / "cluster.yaml"
        steps = {"import kubectl": ["import", "kubectl", str(work / "cluster"), "-o", str(scenario),
                                    "--force"],
                 "check": ["check", str(scenario)]}
        runs: dict[str, list[tuple[float, float]]] = {step: [] for step in steps}
        for _ in range(repeats):
            for step, argv in steps.items():
                runs[step].append(timed(argv))
        print(f"{services:,} Services, {nodes:,} nodes: {listings / 1e6:.1f} MB of JSON, "
              f"{scenario.stat().st_size / 1e6:.1f} MB of scenario YAML")
        for step, results in runs.items():
            wall, peak = min(results)
            print(f"  {step}: best {wall:.2f} s ({', '.join(f'{w:.2f}' for w, _ in results)}), "
                  f"peak {peak:.0f} MiB")
    finally:
        shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, action="append")
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    for services in args.services or [10_000, 70_000]:
        bench(services, args.nodes, args.repeats)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
