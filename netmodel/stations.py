"""Queueing stations: a FIFO queue in front of identical servers.

A node's softirq cores, a NIC port and an application Pod's workers are all
`Station`s; only their server count and what they are held for differ.

A Station is a lean SimPy resource: a job that finds a free server starts at once
(no request event), and a finishing job hands its server straight to the head of
the queue. This halves the events per hold against `simpy.Resource`; the queueing
discipline (FIFO, `servers` in parallel) is the same and is checked against M/M/1
and M/M/c theory in tests/test_stations.py.
"""

from __future__ import annotations

from collections import deque

import simpy


class Station:
    """`servers` identical servers behind one FIFO queue."""

    __slots__ = ("env", "name", "_free", "_queue")

    def __init__(self, env: simpy.Environment, servers: int, name: str = ""):
        self.env = env
        self.name = name
        """What this station is, e.g. 'node-3/softirq'."""
        self._free = servers
        self._queue: deque[simpy.Event] = deque()

    @property
    def waiting(self) -> int:
        """Jobs queued for a server (not counting those in service)."""
        return len(self._queue)

    @property
    def free(self) -> int:
        """Servers idle now."""
        return self._free

    def serve(self, seconds: float):
        """SimPy generator: wait for a free server, then hold it for `seconds`."""
        yield from self.acquire()
        yield self.env.timeout(seconds)
        self.release()

    def acquire(self):
        """SimPy generator: return once a server is ours (at once if one is free)."""
        if self._free:
            self._free -= 1
        else:
            turn = self.env.event()
            self._queue.append(turn)
            yield turn  # a finishing job handed us its server

    def release(self) -> None:
        """Give our server to the next queued job, or free it."""
        if self._queue:
            self._queue.popleft().succeed()
        else:
            self._free += 1
