"""Queueing stations: a FIFO queue in front of identical servers.

A node's softirq cores, a NIC port and an application Pod's workers are all
`Station`s; only their server count and what they are held for differ.
"""

from __future__ import annotations

import simpy


class Station:
    """`servers` identical servers behind one FIFO queue (a SimPy Resource)."""

    __slots__ = ("env", "name", "resource")

    def __init__(self, env: simpy.Environment, servers: int, name: str = ""):
        self.env = env
        self.name = name
        """What this station is, e.g. 'node-3/softirq'."""
        self.resource = simpy.Resource(env, capacity=servers)

    @property
    def waiting(self) -> int:
        """Jobs queued for a server (not counting those in service)."""
        return len(self.resource.queue)

    def serve(self, seconds: float):
        """SimPy generator: wait for a free server, then hold it for `seconds`."""
        with self.resource.request() as request:
            yield request
            yield self.env.timeout(seconds)
