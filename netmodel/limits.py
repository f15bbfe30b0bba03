"""What input may ask of the machine: every limit in one table, checked before the work it
guards (a file before it is read, a document while it is composed, sweep points before
they are built, simulated requests before any engine runs).

Each limit has a default sized for the reference machine (2 cores, 24 GiB) and an
environment variable that changes it: ``NETMODEL_MAX_WORK=1e9 netmodel sweep big.yaml``.
docs/scenarios.md lists them (a test keeps that list true).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from netmodel.errors import NetmodelError


@dataclass(frozen=True)
class Limit:
    """One limit: `Limit()` is the number in force (the environment's, else the default)."""

    name: str
    default: int
    what: str
    """What is counted, for the docs and for messages: '{:,} bytes'."""

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return f"NETMODEL_MAX_{self.name.upper()}"

    def __call__(self) -> int:
        text = os.environ.get(self.env, "").strip()
        if not text:
            return self.default
        try:
            value = float(text.replace("_", ""))
        except ValueError:
            value = 0.0
        if not (1 <= value < 2**63):
            raise NetmodelError(f"expected a whole number >= 1 (such as 1e9), got {text!r}",
                                field=self.env)
        return int(value)

    def refuse(self, count: float, what: str) -> str:
        """The end of a message refusing `count` of `what`: says the limit and how to raise it."""
        return (f"{what} is {count:,.0f}, more than the limit of {self():,} "
                f"(raise it with the environment variable {self.env})")


INPUT_BYTES = Limit("input_bytes", 64 * 2**20,
                    "bytes of a scenario file, a profile file or a `--set` value")
LISTING_BYTES = Limit("listing_bytes", 512 * 2**20, "bytes of one kubectl JSON listing file")
NESTING = Limit("nesting", 64, "levels of nesting of a YAML or JSON document")
VALUES = Limit("values", 5_000_000,
               "values of a YAML document (every scalar, list and mapping, aliases expanded)")
SWEEP_POINTS = Limit("sweep_points", 10_000, "points of a sweep (the grid product of its axes)")
SWEEP_VALUES = Limit("sweep_values", 50_000_000,
                     "values of all sweep points together (points x values of the scenario): "
                     "each point is a validated copy of the scenario")
ENDPOINTS = Limit("endpoints", 10_000_000, "endpoint Pods of one cluster")
REQUESTS = Limit("requests", 5_000_000,
                 "requests of one replication (about 450 bytes each while it runs)")
WORK = Limit("work", 100_000_000,
             "requests simulated by one command: points x replications x requests "
             "(x rate x duration with run.duration); the fast engine walks several hundred "
             "thousand a second on one core, the SimPy engine about 15,000")
SYNCS = Limit("syncs", 20_000_000,
              "control-plane work of one replication: (EndpointSlice updates + periodic "
              "syncs) x sampled kube-proxies")

SAMPLES = Limit("samples", 1_000_000, "measured app times of a service_time_file")

LIMITS = (INPUT_BYTES, LISTING_BYTES, NESTING, VALUES, SWEEP_POINTS, SWEEP_VALUES, ENDPOINTS,
          REQUESTS, WORK, SYNCS, SAMPLES)
"""Every limit, in the order docs/scenarios.md lists them."""
