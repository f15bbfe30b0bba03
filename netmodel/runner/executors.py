"""Where sweep points run.

A sweep hands each point to any `concurrent.futures.Executor` (a Dask client's
`get_executor()` included): the task is a module-level function of the point's scenario
and profile, and nothing it needs lives in a module global, so it runs the same in this
process, a forked worker or a remote one. `LocalProcesses` is the executor `--jobs N`
makes: N forked worker processes that leave Ctrl-C to the sweep (which ends them) and
die with it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process gets when its parent dies (Linux)."""


class LocalProcesses(ProcessPoolExecutor):
    """`jobs` worker processes on this machine: forked on Linux (fast to start, sharing
    the imported modules), spawned elsewhere."""

    def __init__(self, jobs: int):
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        super().__init__(max_workers=jobs, mp_context=context, initializer=_worker_started)

    def terminate(self) -> None:
        """End every worker now: queued points are cancelled and running ones abandoned (an
        interrupted sweep runs them again)."""
        workers = list((self._processes or {}).values())  # shutdown forgets them
        self.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join()


def _worker_started() -> None:
    """In a new worker: Ctrl-C in a terminal reaches every process of the foreground group,
    but the sweep decides what stops, so a worker ignores it; and a worker whose sweep died
    (kill -9) is terminated instead of running on under init."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
