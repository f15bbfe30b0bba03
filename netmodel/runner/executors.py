"""Where sweep points run.

A sweep hands each point to any `concurrent.futures.Executor`: the task is a module-level
function of the point's scenario and profile, and nothing it needs lives in a module
global, so it runs the same in this process, a forked worker or a remote one.
`open_executor` makes the two that `netmodel sweep --executor` names:

- `local`: `LocalProcesses`, `jobs` forked worker processes that leave Ctrl-C to the
  sweep (which ends them) and die with it (prctl PR_SET_PDEATHSIG), or this process
  alone when `jobs` is 1;
- `dask`: a Dask distributed client's executor, on a LocalCluster of `jobs` single-thread
  worker processes, or on the cluster whose scheduler is at `scheduler`. The cluster's
  workers must run the same versions of netmodel and its model libraries (checked).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from importlib import metadata
from typing import Any

import netmodel
from netmodel.errors import NetmodelError
from netmodel.units import format_count

EXECUTORS = ("local", "dask")
"""The executors `netmodel sweep --executor` names."""

VERSIONED = ("simpy", "numba", "numpy", "pandas", "pyarrow", "pydantic", "matplotlib")
"""The libraries whose versions a result depends on (recorded in meta.json)."""

_PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process gets when its parent dies (Linux)."""
_DASK_CONNECT_TIMEOUT = "10s"
_STOP_S = 0.5
"""How long an interrupted sweep's Dask workers get to stop before they are killed."""


def package_versions() -> dict[str, str]:
    """netmodel's, Python's and the model libraries' versions in this process."""
    versions = {"netmodel": netmodel.__version__, "python": platform.python_version()}
    versions.update({name: metadata.version(name) for name in VERSIONED})
    return versions


class LocalProcesses(ProcessPoolExecutor):
    """`jobs` worker processes on this machine: forked on Linux (fast to start, sharing
    the imported modules), spawned elsewhere."""

    def __init__(self, jobs: int):
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        super().__init__(max_workers=jobs, mp_context=context, initializer=_worker_started,
                         initargs=(os.getpid(),))

    def terminate(self) -> None:
        """End every worker now: queued points are cancelled and running ones abandoned (an
        interrupted sweep runs them again)."""
        workers = list((self._processes or {}).values())  # shutdown forgets them
        self.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join()


def _worker_started(parent: int) -> None:
    """In a new worker: Ctrl-C in a terminal reaches every process of the foreground group,
    but the sweep decides what stops, so a worker ignores it; SIGTERM (from the sweep
    ending it, or from its death) ends it at once, whatever handler the sweep had; and a
    worker whose sweep died (kill -9), even before this ran, does not run on under init."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


@contextmanager
def open_executor(kind: str, jobs: int, scheduler: str | None = None,
                  quiet: bool = False) -> Iterator[Executor | None]:
    """The executor `kind` names, for `jobs` points at a time (None: run them here), ended
    when the block ends; on an exception (Ctrl-C included) its workers are ended at once."""
    if kind == "dask":
        with _dask(jobs, scheduler, quiet) as executor:
            yield executor
        return
    if jobs < 2:
        yield None
        return
    pool = LocalProcesses(jobs)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.shutdown(wait=True)


@contextmanager
def _dask(jobs: int, scheduler: str | None, quiet: bool) -> Iterator[Executor]:
    """A Dask client's executor on a new LocalCluster or on the cluster at `scheduler`."""
    try:
        import distributed
    except ImportError:
        raise NetmodelError("needs Dask: pip install 'netmodel[dask]'",
                            field="--executor dask") from None
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.ERROR)  # shutting down under Ctrl-C is not worth a warning
    try:
        with _client(distributed, jobs, scheduler) as client:
            _check_workers(client, scheduler, quiet)
            executor = client.get_executor(pure=False)
            try:
                yield executor
            except BaseException:
                executor.shutdown(wait=False)
                raise
    finally:
        logger.setLevel(level)


@contextmanager
def _client(distributed, jobs: int, scheduler: str | None) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a LocalCluster closed at the end."""
    if scheduler is not None:
        with _connect(distributed.Client, scheduler) as client:
            yield client
        return
    cluster = _local_cluster(distributed.LocalCluster, jobs)
    try:
        with distributed.Client(cluster) as client:
            yield client
    except BaseException:
        cluster.sync(_stop_workers, cluster)  # now, not after Dask's grace period
        raise
    finally:
        cluster.close()


async def _stop_workers(cluster) -> None:
    """End a LocalCluster's worker processes at once (their points are abandoned)."""
    await asyncio.gather(*(nanny.close(timeout=_STOP_S) for nanny in cluster.workers.values()),
                         return_exceptions=True)


def _local_cluster(local_cluster, jobs: int):
    """A LocalCluster of `jobs` single-thread worker processes that ignore Ctrl-C, as local
    workers do (the sweep decides what stops). A handler does not survive a worker's exec
    but an ignored signal does, so Ctrl-C is ignored here until the workers are forked,
    while the cluster starts in a thread; then it works again."""
    import dask.config

    made: dict[str, Any] = {}

    def start() -> None:
        try:
            made["cluster"] = local_cluster(n_workers=jobs, threads_per_worker=1,
                                            processes=True,
                                            # a free port: with None, Dask still takes 8787 and
                                            # warns when another cluster holds it
                                            dashboard_address=":0")
        except BaseException as err:  # handed to the caller below
            made["error"] = err

    starter = threading.Thread(target=start, name="netmodel-dask-start", daemon=True)
    with dask.config.set(_quiet_workers(dask.config)):
        if threading.current_thread() is not threading.main_thread():
            start()
        else:
            try:
                with _sigint_ignored():
                    starter.start()
                    while starter.is_alive() and _spawned_workers() < jobs:
                        time.sleep(0.01)
                starter.join()
            except BaseException:  # interrupted: wait for the cluster anyway, and close it
                starter.join()
                if "cluster" in made:
                    made["cluster"].close()
                raise
    if "error" in made:
        raise made["error"]
    return made["cluster"]


def _spawned_workers() -> int:
    """Worker processes this process has spawned so far (multiprocessing's, past exec)."""
    import psutil  # a dependency of distributed

    count = 0
    for child in psutil.Process().children():
        try:
            count += any("spawn_main" in part for part in child.cmdline())
        except psutil.Error:
            pass
    return count


def _quiet_workers(config) -> dict:
    """Dask settings for LocalCluster workers that log critical errors only. Their
    warnings are cancelled tasks, and their errors either come back to the sweep as the
    task's exception or are a stopped sweep's noise: a worker's heartbeat to the
    scheduler just closed by SIGTERM logged a traceback into the sweep's one-line message
    (seen in CI)."""
    environ = config.get("distributed.nanny.pre-spawn-environ")
    return {"distributed.nanny.pre-spawn-environ": {**environ,
                                                    "DASK_LOGGING__DISTRIBUTED": "critical"}}


def _connect(client_type, scheduler: str):
    try:
        return client_type(scheduler, timeout=_DASK_CONNECT_TIMEOUT)
    except (OSError, ValueError) as err:
        raise NetmodelError(f"cannot reach a Dask scheduler at {scheduler}: {err}",
                            field="--scheduler") from None


def _check_workers(client, scheduler: str | None, quiet: bool) -> None:
    """Refuse workers whose model libraries differ from ours (their results would); say
    how many there are."""
    ours = package_versions()
    for worker, theirs in sorted(client.run(package_versions).items()):
        if theirs != ours:
            differ = ", ".join(f"{k} {theirs.get(k)} (here {v})" for k, v in ours.items()
                               if theirs.get(k) != v)
            raise NetmodelError(f"Dask worker {worker} runs {differ}: results would differ; "
                                "install the same versions on every worker",
                                field="--scheduler")
    if not quiet:
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        where = f"at {scheduler}" if scheduler else "(LocalCluster)"
        waiting = "; points wait for one" if n == 0 else ""
        print(f"dask: {format_count(n, 'worker')} {where}{waiting}", file=sys.stderr)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
