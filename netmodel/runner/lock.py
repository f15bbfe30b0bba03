"""Who is writing a results folder: `OUT/.netmodel.lock`.

A sweep holds a POSIX record lock (`fcntl.lockf`) on the lock file while it runs, and
writes into it who holds it: pid, host, the process's start time and when it started.
POSIX record locks belong to a process, not to file descriptors, so the worker processes
a sweep forks never hold it, and the kernel drops it when the sweep dies, however it
dies. A sweep that gets the lock but finds a holder recorded knows that the previous
sweep was killed (kill -9, out of memory, power cut) and says so as it takes over; one
that finds the lock taken refuses, naming the holder. On a filesystem without locks the
record alone guards the folder: a recorded holder that is still running refuses.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: only the record guards a folder
    fcntl = None

from netmodel.errors import NetmodelError
from netmodel.runner.folder import LOCK, os_error, pid_running

_HELD: set[tuple[int, int]] = set()
"""(device, inode) of the lock files this process holds: POSIX locks do not keep out a
second sweep of the same process (a thread, a notebook cell), this does."""
_HELD_GUARD = threading.Lock()


@contextmanager
def exclusive(out_dir: Path) -> Iterator[None]:
    """Hold `out_dir`'s lock for the sweep (a NetmodelError if another sweep holds it)."""
    path = out_dir / LOCK
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as err:
        raise os_error(path, err, "--out") from None
    try:
        key = _enter(handle, out_dir)
        try:
            _take(handle, out_dir)
            try:
                yield
            finally:  # ended, not killed: the next sweep has nothing to take over
                os.ftruncate(handle, 0)
        finally:
            with _HELD_GUARD:
                _HELD.discard(key)
    finally:
        os.close(handle)  # releases the record lock


def _enter(handle: int, out_dir: Path) -> tuple[int, int]:
    """Register the lock file as held by this process (refuse if it already is)."""
    stat = os.fstat(handle)
    key = (stat.st_dev, stat.st_ino)
    with _HELD_GUARD:
        if key in _HELD:
            raise _busy(out_dir, _current())
        _HELD.add(key)
    return key


def _take(handle: int, out_dir: Path) -> None:
    """Lock, check the previous holder, record this process as the holder."""
    previous = _read(handle)
    if not _lock(handle, out_dir) and previous is not None and _alive(previous):
        raise _busy(out_dir, previous)
    if previous is not None:
        print(f"netmodel: the sweep that was writing to {out_dir} ({_describe(previous)}) "
              "ended without finishing; taking over", file=sys.stderr)
    data = (json.dumps(_current(), sort_keys=True) + "\n").encode()
    try:
        os.ftruncate(handle, 0)
        os.pwrite(handle, data, 0)
        os.fsync(handle)
    except OSError as err:
        raise os_error(out_dir / LOCK, err, "--out") from None


def _lock(handle: int, out_dir: Path) -> bool:
    """Take the record lock: True if taken, False if the filesystem has no locks; a
    NetmodelError naming the holder if another process has it."""
    if fcntl is None:
        return False
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        raise _busy(out_dir, _read(handle)) from None
    except OSError:  # ENOLCK, EOPNOTSUPP: e.g. a network filesystem without a lock daemon
        return False
    return True


def _busy(out_dir: Path, holder: dict | None) -> NetmodelError:
    if holder is not None and not _alive(holder):
        return NetmodelError(
            f"{out_dir} is locked, but not by a running netmodel sweep on this machine (the "
            f"last recorded, {_describe(holder)}, is gone); if no sweep writes there, delete "
            f"{out_dir / LOCK}", field="--out")
    who = f" ({_describe(holder)})" if holder is not None else ""
    return NetmodelError(f"another netmodel sweep{who} is writing to {out_dir}; wait for it "
                         "to end or use another --out", field="--out")


def _read(handle: int) -> dict | None:
    """The holder recorded in the lock file, None if none (or not readable as one)."""
    try:
        doc = json.loads(os.pread(handle, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("pid"), int):
        return None
    return doc


def _current() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot": _boot_id(),
            "process_start": _process_start(os.getpid()),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _alive(holder: dict) -> bool:
    """Whether the recorded holder is still running: on another host, assume so; here,
    the same pid in the same boot with the same process start time."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder["pid"]
    if holder.get("boot") != _boot_id() or not pid_running(pid):
        return False
    start = _process_start(pid)
    return start is None or start == holder.get("process_start")


def _describe(holder: dict) -> str:
    where = "" if holder.get("host") == socket.gethostname() else f" on {holder.get('host')}"
    return f"pid {holder['pid']}{where}, started {holder.get('started', 'at an unknown time')}"


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks after boot (Linux), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])
