"""The lab's network namespaces: made, used and removed by the lab alone.

Isolation is the contract. Every namespace the lab makes is named `nmlab-<pid>-<name>`;
every command it runs is either `ip netns add|del` of such a name or `ip netns exec` inside
one (`Namespaces.run` is the one door, and it logs every argument list for the isolation
test). No interface is ever made in the caller's namespace: a veth pair is created inside a
lab namespace with its peer placed straight into another. The addresses are those of
`LAB_NETWORK` (RFC 2544's benchmarking block, routed nowhere) and loopback, and no lab
namespace has a link out, so a packet cannot leave the lab even if a rule were wrong.

Namespaces are removed on success, on error, on Ctrl-C and on SIGTERM (`Namespaces` is a
context manager; `lab_signals` turns SIGTERM and SIGHUP into an exception so that the
`finally` runs), and namespaces left by a lab run that died (its pid gone) are removed
before a new run starts (`remove_stale`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from netmodel.errors import NetmodelError
from netmodel.runner.folder import pid_running

PREFIX = "nmlab"
"""Every lab namespace is named PREFIX-<pid>-<name>."""
LAB_NETWORK = ipaddress.ip_network("198.18.0.0/15")
"""RFC 2544's block for benchmarking: Pods, nodes and ClusterIPs of the lab live here."""
_NAME = re.compile(rf"^{PREFIX}-(\d+)-[a-z0-9-]+$")

Runner = Callable[..., subprocess.CompletedProcess]


class LabInterrupted(Exception):
    """SIGTERM or SIGHUP reached the lab: its namespaces are removed, then it stops."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signal = signum
        """The signal's number."""


class Namespaces:
    """The namespaces of one lab run; `with Namespaces() as ns:` removes them all on exit."""

    def __init__(self, runner: Runner = subprocess.run, pid: int | None = None):
        self.runner = runner
        self.prefix = f"{PREFIX}-{os.getpid() if pid is None else pid}-"
        self.made: list[str] = []
        self.log: list[tuple[str, ...]] = []
        """Every argument list the lab ran, in order (the isolation test reads it)."""

    def __enter__(self) -> "Namespaces":
        return self

    def __exit__(self, *exc) -> None:
        self.remove_all()

    def add(self, name: str) -> str:
        """Make namespace `name` (lower-case letters, digits, '-'); returns its full name."""
        full = self.prefix + name
        if not _NAME.match(full):
            raise ValueError(f"bad lab namespace name {name!r}")
        self.made.append(full)  # first: a signal right after `ip netns add` must not orphan it
        self.run(("ip", "netns", "add", full))
        self.exec(full, "ip", "link", "set", "lo", "up")
        return full

    def remove(self, full: str) -> None:
        """Remove one of this run's namespaces."""
        self._own(full)
        if full in self.made:
            self.made.remove(full)
            self.run(("ip", "netns", "del", full), check=False)

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Namespaces made inside the `with` block are removed when it ends (fresh
        namespaces per measurement: no conntrack entry or socket of one batch reaches the
        next)."""
        before = len(self.made)
        try:
            yield
        finally:
            for full in reversed(self.made[before:]):
                self.remove(full)

    def remove_all(self) -> None:
        """Remove every namespace this run made, newest first."""
        for full in reversed(list(self.made)):
            self.remove(full)

    def exec(self, full: str, *argv: str, check: bool = True,
             input: bytes | None = None) -> subprocess.CompletedProcess:
        """Run `argv` inside lab namespace `full`; a failure raises NetmodelError with its
        stderr."""
        self._own(full)
        return self.run(("ip", "netns", "exec", full, *argv), check=check, input=input)

    def exec_argv(self, full: str, *argv: str) -> tuple[str, ...]:
        """The argument list that runs `argv` inside `full` (for a long-running process the
        caller starts itself); logged like any other command."""
        self._own(full)
        cmd = ("ip", "netns", "exec", full, *argv)
        self.log.append(cmd)
        return cmd

    def run(self, argv: Sequence[str], check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess:
        """The one door to the system: log `argv`, run it, raise on failure."""
        argv = tuple(argv)
        self.log.append(argv)
        done = self.runner(argv, input=input, capture_output=True)
        if check and done.returncode != 0:
            err = (done.stderr or b"").decode(errors="replace").strip().splitlines()
            raise NetmodelError(f"lab command failed: {' '.join(argv[:8])}"
                                f"{' ...' if len(argv) > 8 else ''}: {err[-1] if err else done.returncode}")
        return done

    def _own(self, full: str) -> None:
        if not full.startswith(self.prefix):
            raise ValueError(f"{full!r} is not a namespace of this lab run")


def remove_stale(runner: Runner = subprocess.run) -> list[str]:
    """Remove lab namespaces whose run's process is gone (a run killed by SIGKILL or a
    power cut); returns their names. Namespaces of live runs and all others stay."""
    listed = runner(("ip", "netns", "list"), capture_output=True)
    stale = []
    for line in (listed.stdout or b"").decode().splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if match and not pid_running(int(match.group(1))):
            runner(("ip", "netns", "del", name), capture_output=True)
            stale.append(name)
    return stale


@contextmanager
def lab_signals() -> Iterator[None]:
    """While inside: SIGTERM and SIGHUP raise LabInterrupted (Ctrl-C already raises
    KeyboardInterrupt), so the lab's `finally` blocks remove its namespaces."""
    def stop(signum, _frame):
        raise LabInterrupted(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
