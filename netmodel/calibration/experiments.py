"""What the lab measures: each experiment builds fresh namespaces, runs the probe, and
returns tidy sample rows (one dict per sample) and the checks of what it measured.

Sample row columns: `experiment` (datapath, rules, iptables-sync, nftables-sync);
`variant` (the data path; `iptables/<backend>`, `nftables` or `ipvs`; for a sync, the
iptables backend or `nft`); `target` (a new connection's: `service`, or `pod` straight to
the Pod's IP); `metric` (rr, connect, crr, cpu_kernel, cpu_user, stream_bps, restore_full,
restore_partial, nft_full, nft_transaction, nft_list); `value` (SI: seconds, bit/s, CPU
seconds per round trip); `services`, `walked`, `lines`, `rules`, `commands`, `chains` (-1
where they do not apply); `batch` (a counter of namespace sets); `round` (the pass over the
data paths, -1 elsewhere); `sample` (order within its batch).

Checks (`Check` rows): per batch of new connections, conntrack entries in the node before
and after, whether any sample reused a local port, and the medians of the first and the
second half of the batch (a table that fills up, or a machine that gets busy, shows as
drift).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from netmodel.calibration import tables, topology
from netmodel.calibration.netns import Namespaces
from netmodel.calibration.topology import Cluster, Endpoint
from netmodel.cluster.rules import iptables_rules_walked, iptables_total_rules, kube_services_length

PORT = tables.TARGET_PORT
DIRECT_SHARE = 0.2
"""Share of a rule-walk batch's new connections that go straight to the server Pod's IP:
each batch's own reference, so that a batch measured while the machine was busier does not
shift the differences taken within it."""
CHUNK = 100
"""New connections per turn when several Service counts are measured together."""
DIRECT_EXTRA_RULES = 3
"""Rules a direct Pod connection walks besides KUBE-SERVICES: the PREROUTING jump, the
POSTROUTING jump and KUBE-POSTROUTING's RETURN."""
SYNC_ENDPOINT_NET = "198.18.{}.{}"
"""Endpoint addresses of the sync tables (198.18.128.0/17; DNAT targets only)."""


@dataclass(frozen=True)
class LabConfig:
    """How much the lab measures."""

    services: tuple[int, ...]
    """Service counts (KUBE-SERVICES rules, vmap elements) of the rule-walk experiments."""
    connects: int
    """New connections per Service count and per data path."""
    rr_samples: int
    stream_seconds: float
    stream_reps: int
    sync_services: tuple[int, ...]
    sync_endpoints: int
    sync_reps: int
    nft_batches: tuple[int, ...]
    """Services added per timed nftables transaction."""
    both_backends: bool
    """Also walk the iptables backend the node does not use (legacy or nft), for the record."""
    rounds: int
    """Passes over the data paths (each in a new random order)."""
    sync_cap_s: float
    """An iptables restore slower than this ends the sync sweep (larger tables would take
    far longer: iptables-nft's --noflush restore grows faster than linearly)."""
    seed: int = 20261201


QUICK = LabConfig(services=(1, 2000, 5000, 10000), connects=600, rr_samples=10_000,
                  stream_seconds=0.5, stream_reps=2, sync_services=(250, 500, 1000, 2000),
                  sync_endpoints=2, sync_reps=2, nft_batches=(1, 50, 200), both_backends=False,
                  rounds=4, sync_cap_s=4.0)
FULL = LabConfig(services=(1, 1000, 2500, 5000, 10000, 15000, 20000, 30000), connects=3000,
                 rr_samples=50_000, stream_seconds=2.0, stream_reps=2,
                 sync_services=(1000, 2000, 5000, 10000, 20000), sync_endpoints=2, sync_reps=3,
                 nft_batches=(1, 10, 100, 1000), both_backends=True, rounds=3, sync_cap_s=60.0)


@dataclass(frozen=True)
class Check:
    """What one batch of new connections left behind, and whether it drifted."""

    experiment: str
    variant: str
    services: int
    conntrack_before: int
    conntrack_after: int
    reused_ports: int
    first_half_median_s: float
    second_half_median_s: float

    @property
    def drift(self) -> float:
        """Second half's median over the first's, minus 1."""
        return self.second_half_median_s / self.first_half_median_s - 1


@dataclass
class Connects:
    """A batch of new connections on one namespace set, measured in one or more chunks."""

    batch: int
    experiment: str
    variant: str
    cluster: Cluster
    targets: list[tuple[str, int]]
    walked: list[int] | None = None
    kinds: list[str] = field(default_factory=list)
    """Per connection: 'service' (to a ClusterIP) or 'pod' (to the Pod's IP)."""
    services: int = -1
    done: int = 0
    conntrack_before: int = -1
    crr: list[int] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    def __post_init__(self):
        if not self.kinds:
            self.kinds = ["pod"] * len(self.targets)


def _row(experiment: str, variant: str, metric: str, value: float, batch: int, sample: int = 0,
         **counts: int) -> dict:
    row = {"experiment": experiment, "variant": variant, "metric": metric, "value": float(value),
           "services": -1, "walked": -1, "lines": -1, "rules": -1, "commands": -1, "chains": -1,
           "batch": batch, "round": -1, "sample": sample, "target": ""}
    row.update(counts)
    return row


class Lab:
    """The probes of one lab run: servers it started, clients it ran, files it wrote."""

    def __init__(self, ns: Namespaces, workdir: Path, config: LabConfig):
        self.ns, self.workdir, self.config = ns, workdir, config
        self.rows: list[dict] = []
        self.checks: list[Check] = []
        self.skipped: dict[str, str] = {}
        self.servers: list[subprocess.Popen] = []
        self.batch = 0
        self.round = -1
        """The pass over the data paths being measured (-1: not measuring them)."""
        self.rng = random.Random(config.seed)

    # -- probes ------------------------------------------------------------------------
    def _probe(self, *args: str) -> tuple[str, ...]:
        return (sys.executable, "-m", "netmodel.calibration.probe", *args)

    def serve(self, server: Endpoint) -> subprocess.Popen:
        """Start the probe server in `server`'s namespace; returns once it listens."""
        argv = self.ns.exec_argv(server.ns, *self._probe("serve", server.ip, str(PORT)))
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.servers.append(proc)
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"probe server in {server.ns} did not start")
        return proc

    def stop_servers(self) -> None:
        """End every probe server this lab started (by its process id)."""
        for proc in self.servers:
            proc.terminate()
        for proc in self.servers:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.servers.clear()

    def client(self, where: Endpoint, *args: str) -> dict:
        """Run a probe client in `where`'s namespace; its JSON result."""
        out = self.workdir / f"probe-{len(self.ns.log)}.json"
        self.ns.exec(where.ns, *self._probe(*args, str(out)))
        result = json.loads(out.read_text())
        out.unlink()
        return result

    def timed(self, ns: str, argv: tuple[str, ...], text: str, repeat: int) -> list[float]:
        """Seconds of `repeat` runs of `argv` inside `ns` with `text` on stdin."""
        source = self.workdir / f"input-{len(self.ns.log)}.txt"
        source.write_text(text)
        out = self.workdir / f"time-{len(self.ns.log)}.json"
        self.ns.exec(ns, *self._probe("time", str(out), str(repeat), str(source), "--", *argv))
        result = json.loads(out.read_text())
        out.unlink()
        source.unlink()
        return [t * 1e-9 for t in result["wall_ns"]]

    def conntrack_count(self, node: str) -> int:
        done = self.ns.exec(node, "sysctl", "-n", "net.netfilter.nf_conntrack_count", check=False)
        text = (done.stdout or b"").decode().strip()
        return int(text) if text.isdigit() else -1

    def _cpu_ticks(self, proc: subprocess.Popen) -> tuple[float, float]:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    # -- data paths ----------------------------------------------------------------------
    def datapaths(self) -> None:
        """Round trips, new connections and (where it matters) one stream, per data path;
        `rounds` passes, each in a new random order (so that a busy spell of the machine does
        not land on one path only)."""
        order = [(r, name) for r in range(self.config.rounds)
                 for name in self.rng.sample(topology.DATAPATHS, len(topology.DATAPATHS))]
        for r, name in order:
            self.round = r
            with self.ns.scope():
                self.batch += 1
                cluster = topology.datapath(self.ns, name)
                server = self.serve(cluster.server)
                self._round_trips(name, cluster, server)
                self._connects("datapath", name, cluster, [(cluster.server.ip, PORT)] * self.config.connects)
                if name in ("bridge-conntrack", "native", "vxlan"):
                    self._streams(name, cluster)
                self.stop_servers()
        self.round = -1

    def _round_trips(self, name: str, cluster: Cluster, server: subprocess.Popen) -> None:
        n = self.config.rr_samples
        before = self._cpu_ticks(server)
        result = self.client(cluster.client, "rr", cluster.server.ip, str(PORT), str(n))
        after = self._cpu_ticks(server)
        self.rows += [_row("datapath", name, "rr", t * 1e-9, self.batch, i, round=self.round)
                      for i, t in enumerate(result["rr_ns"])]
        user = result["user_s"] + after[0] - before[0]
        kernel = result["sys_s"] + after[1] - before[1]
        self.rows += [_row("datapath", name, "cpu_kernel", kernel / n, self.batch, round=self.round),
                      _row("datapath", name, "cpu_user", user / n, self.batch, round=self.round)]

    def _streams(self, name: str, cluster: Cluster) -> None:
        for rep in range(self.config.stream_reps):
            r = self.client(cluster.client, "stream", cluster.server.ip, str(PORT),
                            str(self.config.stream_seconds))
            self.rows.append(_row("datapath", name, "stream_bps", r["bytes"] * 8 / (r["elapsed_ns"] * 1e-9),
                                  self.batch, rep))

    def _connects(self, experiment: str, variant: str, cluster: Cluster,
                  targets: list[tuple[str, int]]) -> None:
        """New connections to `targets` in turn, in one go; a check of what they left."""
        batch = Connects(self.batch, experiment, variant, cluster, targets)
        self._start(batch)
        self._chunk(batch, len(targets))
        self._finish(batch)

    def _start(self, b: "Connects") -> None:
        b.conntrack_before = self.conntrack_count(b.cluster.nodes[0]) if b.cluster.nodes else -1

    def _chunk(self, b: "Connects", n: int) -> None:
        """The next `n` of the batch's connections."""
        part = b.targets[b.done:b.done + n]
        listing = self.workdir / f"targets-{b.batch}.txt"
        listing.write_text("".join(f"{a} {p}\n" for a, p in part))
        r = self.client(b.cluster.client, "crr", str(listing), str(b.done))
        listing.unlink()
        for i, (c, f) in enumerate(zip(r["connect_ns"], r["crr_ns"]), start=b.done):
            extra = {"services": b.services, "walked": b.walked[i] if b.walked else -1, "target": b.kinds[i]}
            self.rows += [_row(b.experiment, b.variant, "connect", c * 1e-9, b.batch, i, **extra),
                          _row(b.experiment, b.variant, "crr", f * 1e-9, b.batch, i, **extra)]
        b.crr += r["crr_ns"]
        b.ports += r["local_port"]
        b.done += len(part)

    def _finish(self, b: "Connects") -> None:
        after = self.conntrack_count(b.cluster.nodes[0]) if b.cluster.nodes else -1
        crr = np.asarray(b.crr, dtype=float) * 1e-9
        half = len(crr) // 2
        self.checks.append(Check(b.experiment, b.variant, b.services, b.conntrack_before, after,
                                 len(b.ports) - len(set(b.ports)), float(np.median(crr[:half])),
                                 float(np.median(crr[half:]))))

    # -- Service proxies -------------------------------------------------------------------
    def rule_walks(self, proxies: list[tuple[str, str]]) -> None:
        """New connections to Services drawn uniformly from N (one endpoint each: the
        server Pod) and, as each batch's reference, straight to the Pod, through each of
        `proxies` ((mode, iptables backend or ''): kube-proxy's iptables chains, nftables
        verdict map, IPVS) for every N of the config, all at once: a namespace set per
        (proxy, N), measured in turns of CHUNK connections in a new random order each turn,
        so that a busy spell of the machine falls on every N and every mode alike."""
        with self.ns.scope():
            batches = [self._walk_batch(mode, backend, n, k)
                       for k, ((mode, backend), n) in enumerate((p, n) for p in proxies
                                                                 for n in self.config.services)]
            for b in batches:
                self._start(b)
            while any(b.done < len(b.targets) for b in batches):
                for b in self.rng.sample(batches, len(batches)):
                    if b.done < len(b.targets):
                        self._chunk(b, CHUNK)
            for b in batches:
                self._finish(b)
            self.stop_servers()

    def _walk_batch(self, mode: str, backend: str, n: int, k: int) -> "Connects":
        """A node with kube-proxy's rules for `n` Services, its server Pod serving, and
        the batch's targets."""
        self.batch += 1
        variant = f"{mode}/{backend}" if backend else mode
        cluster = topology.one_node(self.ns, conntrack=True, forward_rule=mode != "iptables", tag=str(k))
        table = tables.ServiceTable(((cluster.server.ip,),) * n, tuple(self._shuffled(n)),
                                    f"{topology.POD_NET.format(0, 0)}/15")
        self._program(mode, backend, cluster.nodes[0], table)
        self.serve(cluster.server)
        picks = [-1 if self.rng.random() < DIRECT_SHARE else self.rng.randrange(n)
                 for _ in range(self.config.connects)]
        rank = table.rank()
        walked = ([int(iptables_rules_walked(rank[s], 0)) if s >= 0
                   else kube_services_length(n) + DIRECT_EXTRA_RULES for s in picks]
                  if mode == "iptables" else None)
        targets = [(table.cluster_ip(s), tables.SERVICE_PORT) if s >= 0 else (cluster.server.ip, PORT)
                   for s in picks]
        return Connects(self.batch, "rules", variant, cluster, targets, walked,
                        ["service" if s >= 0 else "pod" for s in picks], services=n)

    def _shuffled(self, n: int) -> list[int]:
        order = list(range(n))
        self.rng.shuffle(order)
        return order

    def _program(self, mode: str, backend: str, node: str, table: tables.ServiceTable) -> None:
        if mode == "iptables":  # a fresh namespace: no --noflush needed (and far faster)
            self.ns.exec(node, f"iptables-{backend}-restore",
                         input=tables.iptables_restore(table).encode())
            for jump in tables.IPTABLES_JUMPS:
                self.ns.exec(node, f"iptables-{backend}", *jump)
        elif mode == "nftables":
            self.ns.exec(node, "nft", "-f", "-", input=tables.nftables_lookup_table(table).encode())
        else:  # ipvs: ClusterIPs on a dummy device, a virtual server each (kube-proxy's IPVS mode)
            self.ns.exec(node, "sysctl", "-qw", "net.ipv4.vs.conntrack=1")
            self.ns.exec(node, "ip", "link", "add", tables.IPVS_DEVICE, "type", "dummy")
            self.ns.exec(node, "ip", "-batch", "-", input=tables.ipvs_addresses(table).encode())
            self.ns.exec(node, "ipvsadm-restore", input=tables.ipvs_restore(table).encode())

    def ipvs_unavailable(self) -> str | None:
        """Why IPVS cannot be measured here (no ipvsadm, or a kernel without IP_VS), or None."""
        if not shutil.which("ipvsadm") or not shutil.which("ipvsadm-restore"):
            return "ipvsadm is not installed"
        with self.ns.scope():
            probe = self.ns.add("ipvs-check")
            done = self.ns.exec(probe, "ipvsadm", "-Ln", check=False)
        if done.returncode != 0:
            why = (done.stderr or b"").decode(errors="replace").strip().splitlines()
            return f"the kernel has no IP_VS (ipvsadm -Ln: {why[0] if why else done.returncode})"
        return None

    # -- programming costs ---------------------------------------------------------------------
    def _sync_table(self, services: int) -> tables.ServiceTable:
        e = self.config.sync_endpoints
        eps = tuple(tuple(SYNC_ENDPOINT_NET.format(128 + (k // 250) % 128, 2 + k % 250)
                          for k in range(s * e, (s + 1) * e)) for s in range(services))
        return tables.ServiceTable(eps, tuple(self._shuffled(services)), "198.18.0.0/15")

    def iptables_sync(self, backend: str) -> None:
        """iptables-restore of kube-proxy's full and partial (one changed Service) syncs,
        at each Service count of the config (smallest first), into a table that already
        holds the full set. The sweep stops where the next size's restore would exceed
        `sync_cap_s`, judged as if time grew with the square of the size (iptables-nft's
        --noflush restore grows faster than linearly)."""
        reps, e = self.config.sync_reps, self.config.sync_endpoints
        restore = (f"iptables-{backend}-restore", "--noflush", "--counters", "-w", "5")
        sizes = sorted(self.config.sync_services)
        for k, s in enumerate(sizes):
            if self._past_cap(f"iptables-sync/{backend}", "iptables-sync", backend, sizes, k, "a restore"):
                break
            with self.ns.scope():
                self.batch += 1
                node = self.ns.add("sync")
                table = self._sync_table(s)
                rules = iptables_total_rules(s, e)
                full, partial = tables.iptables_restore(table), tables.iptables_restore(table, (0,))
                self._program("iptables", backend, node, table)  # the table a sync replaces
                for metric, text in (("restore_full", full), ("restore_partial", partial)):
                    for i, t in enumerate(self.timed(node, restore, text, reps)):
                        self.rows.append(_row("iptables-sync", backend, metric, t, self.batch, i, services=s,
                                              lines=tables.command_count(text), rules=rules))

    def _past_cap(self, key: str, experiment: str, variant: str, sizes: list[int], k: int,
                  what: str) -> bool:
        """Whether `what` at sizes[k] Services would pass the sync cap (its time grows about
        as the square of the Services, from the slowest so far); if so, say which sizes are
        skipped under `key`."""
        expected = self._slowest(experiment, variant) * (sizes[k] / sizes[k - 1]) ** 2 if k else 0.0
        if expected <= self.config.sync_cap_s:
            return False
        self.skipped[key] = (f"not measured at {', '.join(f'{n:,}' for n in sizes[k:])} Services: {what} "
                             f"there would take about {expected:.0f} s or more (cap {self.config.sync_cap_s:g} s)")
        return True

    def _slowest(self, experiment: str, variant: str) -> float:
        """The longest time measured so far by a sync experiment."""
        times = [r["value"] for r in self.rows if r["experiment"] == experiment and r["variant"] == variant]
        return max(times, default=0.0)

    def nftables_sync(self) -> None:
        """`nft -f` of a full table, then of transactions adding a few to many Services, and
        `nft --json list chains` (kube-proxy lists its chains every sync), per Service count."""
        reps, batches = self.config.sync_reps, self.config.nft_batches
        sizes = sorted(self.config.sync_services)
        for k, s in enumerate(sizes):
            if self._past_cap("nftables-sync", "nftables-sync", "nft", sizes, k, "loading the table"):
                break
            with self.ns.scope():
                self.batch += 1
                node = self.ns.add("sync")
                table = self._sync_table(s + reps * sum(batches))
                full = tables.nftables_transaction(table, range(s), setup=True)
                (t,) = self.timed(node, ("nft", "-f", "-"), full, 1)
                self.rows.append(_row("nftables-sync", "nft", "nft_full", t, self.batch, services=s,
                                      commands=tables.command_count(full)))
                added = s
                for rep in range(reps):
                    for m in batches:
                        text = tables.nftables_transaction(table, range(added, added + m))
                        (t,) = self.timed(node, ("nft", "-f", "-"), text, 1)
                        self.rows.append(_row("nftables-sync", "nft", "nft_transaction", t, self.batch, rep,
                                              services=added, commands=tables.command_count(text),
                                              chains=tables.nftables_chains_of(table, added)))
                        added += m
                    chains = tables.nftables_chains_of(table, added)
                    (t,) = self.timed(node, ("nft", "--json", "list", "chains", "ip"), "", 1)
                    self.rows.append(_row("nftables-sync", "nft", "nft_list", t, self.batch, rep,
                                          services=added, chains=chains))

    def close(self) -> None:
        self.stop_servers()


def iptables_backends() -> dict[str, str]:
    """The iptables backends installed: {'nft': ..., 'legacy': ...} -> their restore binary."""
    return {b: f"iptables-{b}-restore" for b in ("nft", "legacy")
            if shutil.which(f"iptables-{b}-restore") and shutil.which(f"iptables-{b}")}


def checks_table(checks: list[Check]) -> list[dict]:
    """The checks as plain rows (for the lab's JSON record)."""
    return [{**asdict(c), "drift": c.drift} for c in checks]
