"""`python -m tests.sweeping SCENARIO OUT [netmodel sweep options]`: the `netmodel sweep`
command with a slow fake runner (each point takes SLOW_S seconds), to stop sweeps midway
in tests (tests/test_sweep_signals.py)."""

import os
import sys
import time

import netmodel.runner.point
from netmodel.cli import main
from tests.test_sweep_runner import fake_runner

SLOW_S = float(os.environ.get("NETMODEL_TEST_SLOW_S", "0.5"))


def slow(scenario, profile, control_sink=None, engine="auto"):
    """fake_runner's rows, after SLOW_S seconds."""
    time.sleep(SLOW_S)
    return fake_runner(scenario, profile)


if __name__ == "__main__":
    netmodel.runner.point.run_point = slow
    scenario, out, *options = sys.argv[1:]
    sys.exit(main(["sweep", scenario, "--out", out, *options]))
