"""How long `netmodel validate` and `netmodel calibrate lab` take.

Run: `.venv/bin/python benchmarks/bench_trust.py` (validate --quick by group); add
`--full` for the full validate, `--lab` (root, Linux) for `calibrate lab --quick` and
`--lab-full` for the full lab. Benchmarks are never pass/fail; write what you measure into
benchmarks/README.md with the date, the machine and its load average.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import netmodel


def _validate(quick: bool) -> None:
    for group in ("theory", "published"):
        start = time.perf_counter()
        report = netmodel.validate(quick=quick, groups=[group])
        print(f"validate{' --quick' if quick else ''} --group {group}: {time.perf_counter() - start:.1f} s, "
              f"{report.summary()}")


def _lab(quick: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "node.yaml"
        start = time.perf_counter()
        netmodel.calibrate(out, quick=quick)
        record = json.loads(out.with_name("node.lab.json").read_text())
        print(f"calibrate lab{' --quick' if quick else ''}: {time.perf_counter() - start:.1f} s "
              f"(load average {record['machine']['load_average'][0]:.1f} at start, "
              f"{record['load_average_end'][0]:.1f} at end)")
        start = time.perf_counter()
        report = netmodel.validate(out, quick=True, groups=["lab"])
        print(f"validate --group lab: {time.perf_counter() - start:.1f} s, {report.summary()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the full validate")
    parser.add_argument("--lab", action="store_true", help="calibrate lab --quick (root)")
    parser.add_argument("--lab-full", action="store_true", help="the full calibrate lab (root)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    _validate(quick=True)
    if args.full:
        _validate(quick=False)
    if args.lab:
        _lab(quick=True)
    if args.lab_full:
        _lab(quick=False)


if __name__ == "__main__":
    main()
