"""Which profile parameter each lab measurement identifies, and how.

- tcp_stack_tx, tcp_stack_rx: the kernel CPU per message over loopback (getrusage of
  probe client and server), split 8:5 as in the default profile.
- rx_wakeup: the loopback one-way latency minus that CPU (wake-up, scheduling and the
  probe's own user time).
- veth, bridge, conntrack_established + netfilter_established: differences of one-way
  latencies: veth pair minus loopback; same-node Pods minus loopback minus 2 veth; tracked
  minus untracked (the hooks and the lookup together, split as the default profile).
- vxlan_encap, vxlan_decap: (Pods across VXLAN minus Pods across native routing) / 2.
- iptables_rule: the slope of new-connection latency against rules walked.
- connection_setup: the latency at zero rules walked, minus the model's same-node round
  trips, halved (client and server node).
- nftables_lookup (ipvs_lookup): what a Service connection costs over a direct Pod
  connection through nftables (IPVS), minus the same at zero iptables rules.
- iptables_sync_fixed, iptables_restore_line, iptables_table_rule: iptables-restore of
  full and partial syncs, t = a + line x lines + rule x rules.
- nftables_sync_fixed, nftables_element, nftables_list_chain: `nft -f` transactions
  (t = a + element x commands + c x chains) plus `nft --json list chains` (t = a' + c' x
  chains).

A difference that comes out below zero (noise larger than the hop) is taken as 0 and
says so. Everything else keeps the default profile's value and says that the lab did not
identify it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from netmodel.calibration import fits
from netmodel.calibration.fits import Estimate
from netmodel.costs.model import CostModel, zero_load_seconds
from netmodel.costs.profile import Parameter, Profile, load_profile
from netmodel.paths import Placement, route
from netmodel.paths.dataplane import dataplane_of
from netmodel.scenario.loader import validate_scenario
from netmodel.scenario.schema import Scenario
from netmodel.units import format_quantity


@dataclass(frozen=True)
class Measured:
    """A parameter the lab identified: its value (SI), interval, and how it was derived."""

    name: str
    value: float
    estimate: Estimate
    how: str
    note: str = ""


def lab_scenario(mode: str = "iptables", services: int = 1, requests: int = 2000,
                 kind: str = "pod-clusterip") -> Scenario:
    """A scenario shaped like the lab's rule walks: one node, `services` Services whose one
    endpoint is the same server Pod (an inventory, as the lab DNATs every ClusterIP to one
    Pod), drawn uniformly; 1-byte request and response, no app time, a new connection per
    request (the probe's `crr`), a light load (100/s) so that nothing queues."""
    endpoint = [{"ip": "10.244.0.3", "node": "node"}]
    return validate_scenario({
        "name": "calibration-lab", "cluster": {"nodes": 1},
        "inventory": {"nodes": [{"name": "node", "pod_cidr": "10.244.0.0/24"}],
                      "services": [{"name": f"svc-{i}", "ports": [{"port": 80}], "endpoints": endpoint}
                                   for i in range(services)]},
        "services": {"popularity": "uniform"}, "kube_proxy": {"mode": mode},
        "workload": {"rate": 100, "request_size": "1B", "response_size": "1B",
                     "requests_per_connection": 1, "mix": {kind: 1},
                     "server": {"service_time": 0, "service_time_distribution": "constant"}},
        "run": {"requests": requests, "seed": 1}})


def same_node_crr(profile: Profile) -> float:
    """The model's zero-load latency of a new same-node ClusterIP connection's first request
    with no rule lookup (what `crr` measures at zero rules walked), in seconds."""
    scenario = lab_scenario()
    model = CostModel(profile, scenario)
    connect, request = model.route_plans(route("pod-clusterip", Placement(same_node=True), dataplane_of(scenario)))
    return zero_load_seconds(connect) + zero_load_seconds(request)


def _clamped(name: str, estimate: Estimate, how: str) -> Measured:
    if estimate.value > 0:
        return Measured(name, estimate.value, estimate, how)
    return Measured(name, 0.0, estimate, how, note=f"{estimate.text()}: not above zero (smaller than "
                    "the noise), 0 taken")


_DATAPATH_HOW = {
    "tcp_stack_tx": "kernel CPU per message over loopback (getrusage of probe client and server, "
                    "sampled at the scheduler tick), 8/13 of it as in the default profile's split",
    "tcp_stack_rx": "kernel CPU per message over loopback, 5/13 of it (see tcp_stack_tx)",
    "rx_wakeup": "one-way loopback latency (half the median 1-byte round trip) minus its kernel CPU: "
                 "wake-up, scheduling and the probe's user time",
    "veth": "one-way latency, Pods joined by one veth pair minus loopback",
    "bridge": "one-way latency, two Pods on one node's cni0 bridge minus loopback minus 2 veth",
    "conntrack_established": "one-way latency, same-node Pods with conntrack (bridge-nf-call-iptables=1, "
                             "KUBE-FORWARD) minus without",
    "netfilter_established": "see conntrack_established",
    "vxlan_encap": "half of: one-way latency, Pods on two nodes over VXLAN minus over native routing "
                   "(encap and decap split evenly)",
    "vxlan_decap": "see vxlan_encap",
}


def datapath(samples: pd.DataFrame) -> list[Measured]:
    """The data-path parameters (`fits.datapath_fit`); when the kernel CPU per message is at
    least the loopback latency (a busy machine's cache misses, or the tick-sampled CPU
    time), the stack takes the whole latency and rx_wakeup is 0, and their sources say so."""
    dp = samples[samples["experiment"] == "datapath"]
    rr, cpu = dp[dp["metric"] == "rr"], dp[dp["metric"].str.startswith("cpu_")]
    lo, kernel = fits.loopback(rr, cpu)
    note = "" if kernel < lo else (f"kernel CPU per message {kernel * 1e6:.3g} us is not below the one-way "
                                   f"loopback latency {lo * 1e6:.3g} us: the stack takes all of it, no "
                                   "wake-up delay is left")
    out = []
    for name, est in fits.datapath_fit(rr, cpu).items():
        m = _clamped(name, est, _DATAPATH_HOW[name])
        if note and name in ("tcp_stack_tx", "tcp_stack_rx", "rx_wakeup"):
            m = Measured(m.name, m.value, m.estimate, m.how, note)
        out += _netfilter_split(m) if name == "conntrack_established" else [m]
    return out


def _netfilter_split(tracked: Measured) -> list[Measured]:
    """The tracked-minus-untracked difference is a packet's netfilter hooks and its conntrack
    lookup together (the model's `netfilter` and `conntrack` hops): the lab cannot tell them
    apart, so it splits the sum as the default profile does."""
    default = load_profile("default")
    share = default["conntrack_established"] / (default["conntrack_established"]
                                                + default["netfilter_established"])
    note = (f"the lab measures conntrack_established + netfilter_established together "
            f"({tracked.estimate.text()}); split {share:.3g} : {1 - share:.3g} as the default profile")
    out = []
    for name, part in (("conntrack_established", share), ("netfilter_established", 1 - share)):
        e = tracked.estimate
        out.append(Measured(name, tracked.value * part,
                            Estimate(e.value * part, e.low * part, e.high * part, e.samples),
                            tracked.how, "; ".join(filter(None, (tracked.note, note)))))
    return out


def _crr(samples: pd.DataFrame, variant: str) -> pd.DataFrame:
    return samples[(samples["experiment"] == "rules") & (samples["variant"] == variant)
                   & (samples["metric"] == "crr")]


def walks(samples: pd.DataFrame, variant: str) -> tuple[Estimate, Estimate, Estimate]:
    """(iptables_rule, latency at zero rules, Service over Pod connection at zero rules) of
    one iptables backend's walks (`fits.walk_fit`)."""
    return fits.walk_fit(_crr(samples, variant))


def flat(samples: pd.DataFrame, variant: str) -> tuple[Estimate, Estimate, Estimate]:
    """(slope per Service, median, Service over Pod connection) of nftables' or IPVS' new
    connections (`fits.flat_fit`)."""
    return fits.flat_fit(_crr(samples, variant))


def _difference(a: Estimate, b: Estimate) -> Estimate:
    """a - b, its interval from both half-widths in quadrature."""
    half = ((a.high - a.low) ** 2 + (b.high - b.low) ** 2) ** 0.5 / 2
    value = a.value - b.value
    return Estimate(value, value - half, value + half, a.samples + b.samples)


def proxies(samples: pd.DataFrame, backend: str, profile: Profile) -> list[Measured]:
    """iptables_rule, connection_setup, nftables_lookup (and ipvs_lookup when measured);
    `profile` holds the data-path parameters already derived (for the model's round trips)."""
    rule, zero, overhead = walks(samples, f"iptables/{backend}")
    base = same_node_crr(profile.with_overrides({"connection_setup": "0s"}))
    setup = Estimate((zero.value - base) / 2, (zero.low - base) / 2, (zero.high - base) / 2, zero.samples)
    out = [
        Measured("iptables_rule", rule.value, rule,
                 f"slope of new-connection latency (connect and first 1-byte round trip) against rules "
                 f"walked through kube-proxy's KUBE-SERVICES (iptables-{backend}), Services drawn "
                 f"uniformly; medians of {fits.WALK_BINS} bins per Service count, slope within batches"),
        _clamped("connection_setup", setup,
                 f"(latency at zero rules walked, {zero.text()}, minus the model's same-node round trips "
                 f"without set-up, {base * 1e6:.4g} us) / 2: client and server node; it includes the "
                 f"DNAT binding of a Service connection ({overhead.text()} over a direct Pod connection)"),
    ]
    for mode, name in (("nftables", "nftables_lookup"), ("ipvs", "ipvs_lookup")):
        if (samples["variant"] == mode).any():
            slope, level, over = flat(samples, mode)
            out.append(_clamped(name, _difference(over, overhead),
                                f"Service over direct Pod connection through {mode} ({over.text()}; "
                                f"median {level.text()}, slope {slope.value * 1e12:.3g} ns per 1,000 "
                                f"Services) minus the same at zero iptables rules ({overhead.text()})"))
    return out


IPTABLES_SYNC = ("lines", "rules")
NFT_TRANSACTION = ("commands", "chains")
NFT_LIST = ("chains",)


def iptables_sync_fit(samples: pd.DataFrame, backend: str) -> list[Estimate] | None:
    """[a, per line, per rule] of the backend's timed restores, or None if none."""
    rows = samples[(samples["experiment"] == "iptables-sync") & (samples["variant"] == backend)]
    return fits.linear_fit(rows, IPTABLES_SYNC) if len(rows) else None


def nftables_sync_fit(samples: pd.DataFrame) -> tuple[list[Estimate], list[Estimate]] | None:
    """([a, per command, per chain] of transactions, [a', per chain] of listings), or None."""
    rows = samples[samples["experiment"] == "nftables-sync"]
    if not len(rows):
        return None
    return (fits.linear_fit(rows[rows["metric"] == "nft_transaction"], NFT_TRANSACTION),
            fits.linear_fit(rows[rows["metric"] == "nft_list"], NFT_LIST))


def syncs(samples: pd.DataFrame, backend: str) -> list[Measured]:
    """iptables and nftables sync parameters from `iptables_sync_fit`, `nftables_sync_fit`."""
    out = []
    ipt = iptables_sync_fit(samples, backend)
    if ipt is not None:
        rows = samples[(samples["experiment"] == "iptables-sync") & (samples["variant"] == backend)]
        how = (f"iptables-{backend}-restore --noflush --counters of kube-proxy's full and partial (one "
               f"changed Service) syncs of {_range(rows)} Services x 2 endpoints; t = a + line x lines "
               "+ rule x rules, least squares on relative error")
        out += [_clamped(name, est, f"{how}: {part}") for name, est, part in
                zip(("iptables_sync_fixed", "iptables_restore_line", "iptables_table_rule"), ipt,
                    ("a", "line", "rule"))]
    nft = nftables_sync_fit(samples)
    if nft is not None:
        (fixed_tx, element, chain_tx), (fixed_ls, chain_ls) = nft
        rows = samples[samples["experiment"] == "nftables-sync"]
        how = (f"nft -f transactions adding 1 to {int(rows['commands'].max()):,} commands to kube-proxy's "
               f"table of {_range(rows)} Services (t = a + element x commands + c x chains) and nft "
               "--json list chains (t = a' + c' x chains)")
        out += [_clamped("nftables_sync_fixed", _sum(fixed_tx, fixed_ls), how + ": a + a'"),
                _clamped("nftables_element", element, how + ": element"),
                _clamped("nftables_list_chain", _sum(chain_tx, chain_ls), how + ": c + c'")]
    return out


def _sum(a: Estimate, b: Estimate) -> Estimate:
    half = ((a.high - a.low) ** 2 + (b.high - b.low) ** 2) ** 0.5 / 2
    value = a.value + b.value
    return Estimate(value, value - half, value + half, a.samples + b.samples)


def _range(frame: pd.DataFrame) -> str:
    s = frame["services"]
    return f"{int(s.min()):,} to {int(s.max()):,}"


def apply(profile: Profile, measured: list[Measured], source: str) -> Profile:
    """`profile` with the measured values, each sourced `source` + how + interval."""
    params = dict(profile.parameters)
    for m in measured:
        old = params[m.name]
        text = format_quantity(float(f"{m.value:.4g}"), "time")
        why = f"{source}; {m.how}; {m.estimate.text()}" + (f"; {m.note}" if m.note else "")
        params[m.name] = Parameter(m.name, float(f"{m.value:.4g}"), text, old.per, why)
    return Profile(profile.name, profile.description, params)
