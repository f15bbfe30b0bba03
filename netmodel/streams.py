"""Seeded random streams, one per purpose.

Each stream is a numpy Generator seeded from (scenario seed, replication, purpose),
so points that differ only in configuration draw the same arrivals, Service choices
and service times (common random numbers): a comparison of iptables with eBPF is
not swamped by sampling noise, and the same input always gives the same output.
"""

from __future__ import annotations

import numpy as np

PURPOSES = ("placement", "rule-order", "arrivals", "traffic-kind", "client-node",
            "service", "endpoint", "service-time", "entry-node", "proxy", "service-type")
"""Purpose names; their position is part of the seed, so only ever append."""


def streams(seed: int, replication: int, purposes: tuple[str, ...] = PURPOSES,
            domain: tuple[int, ...] = ()) -> dict[str, np.random.Generator]:
    """One independent Generator per purpose for this seed and replication.

    A model other than the data plane passes its own `purposes` and a `domain` prefix of
    the spawn key (e.g. the control plane's), so its draws never coincide with these.
    """
    return {name: np.random.Generator(np.random.PCG64(
                np.random.SeedSequence(entropy=seed, spawn_key=(*domain, replication, i))))
            for i, name in enumerate(purposes)}
