"""`netmodel calibrate lab`: measure this kernel in namespaces and write a complete profile.

Order of work: check what the lab needs (Linux, root, iproute2, procps' sysctl, iptables,
nftables; one line naming what is missing), remove namespaces of dead lab runs, then
inside a `Namespaces` context and with SIGTERM/SIGHUP trapped: the data paths, the rule
walks (iptables on the node's backend, nftables, IPVS where the kernel has it), the
programming costs (iptables-restore, nft -f); then the fits (`derive`), the plots and the
files (`record`). The profile starts from the default one: each parameter the lab
identified is replaced, with a source naming the date, kernel, tools, samples, fit and
interval; every other one keeps the default value and says why the lab did not measure it.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from netmodel.calibration import derive, plots, record
from netmodel.calibration.derive import Measured
from netmodel.calibration.experiments import FULL, QUICK, Lab, LabConfig, checks_table, iptables_backends
from netmodel.calibration.netns import Namespaces, lab_signals, remove_stale
from netmodel.costs.profile import Parameter, Profile, load_profile
from netmodel.errors import NetmodelError

Progress = Callable[[str], None]

NOT_IDENTIFIED = {
    "nic_rx": "the lab's nodes are joined by a veth pair, not a NIC",
    "link_latency": "the lab's nodes are joined by a veth pair, not a cable and switch",
    "ebpf_lookup": "the lab runs no eBPF socket load balancer",
    "snat_setup": "the lab does not masquerade NodePort traffic",
    "ipvs_operation": "the lab does not time IPVS syncs",
    "ebpf_map_update": "the lab does not time BPF map updates",
    "ebpf_maglev_lookup": "the lab runs no eBPF load balancer",
    "ipvs_established": "the lab sends no packets of established flows through IPVS",
    **dict.fromkeys(("bpf_ct_lookup", "bpf_redirect", "bpf_lb_packet", "xdp_rx"),
                    "the lab loads no BPF programs (tc or XDP)"),
}
"""Why the lab leaves a parameter at its default (the rest: not a kernel measurement)."""


def prerequisites(backend: str) -> list[str]:
    """What the lab needs that this machine lacks (empty: all there)."""
    if platform.system() != "Linux":
        return [f"Linux (this is {platform.system()})"]
    missing = [] if os.geteuid() == 0 else ["root (it creates network namespaces)"]
    tools = {"ip": "iproute2", "sysctl": "procps", "nft": "nftables",
             f"iptables-{backend}-restore": "iptables", f"iptables-{backend}": "iptables"}
    missing += [f"{tool} ({package})" for tool, package in tools.items() if not shutil.which(tool)]
    return missing


def node_backend() -> str:
    """The iptables backend this node uses (what `iptables -V` says), nft if unknown."""
    return "legacy" if "legacy" in record.first_line(["iptables", "-V"]) else "nft"


def _measure(lab: Lab, backend: str, progress: Progress) -> None:
    c = lab.config
    progress(f"data paths: {c.rounds} passes over 7 ({c.rr_samples:,} round trips, "
             f"{c.connects:,} connections each)")
    lab.datapaths()
    others = [b for b in iptables_backends() if b != backend] if c.both_backends else []
    proxies = [("iptables", b) for b in [backend, *others]] + [("nftables", "")]
    why = lab.ipvs_unavailable()
    if why is None:
        proxies.append(("ipvs", ""))
    else:
        lab.skipped["ipvs"] = why
    progress(f"{', '.join(m if not b else f'{m}-{b}' for m, b in proxies)}: new connections through "
             f"{', '.join(f'{n:,}' for n in c.services)} Services, interleaved")
    lab.rule_walks(proxies)
    progress(f"iptables-{backend}-restore: full and partial syncs of "
             f"{min(c.sync_services):,} to {max(c.sync_services):,} Services")
    lab.iptables_sync(backend)
    progress("nft -f and nft list chains")
    lab.nftables_sync()


def _derive(samples: pd.DataFrame, backend: str, skipped: dict[str, str],
            source: str) -> tuple[Profile, list[Measured]]:
    default = load_profile("default")
    measured = derive.datapath(samples)
    with_paths = derive.apply(default, measured, source)
    measured += derive.proxies(samples, backend, with_paths) + derive.syncs(samples, backend)
    profile = derive.apply(default, measured, source)
    done = {m.name for m in measured}
    reasons = {**NOT_IDENTIFIED, **({"ipvs_lookup": f"IPVS skipped: {skipped['ipvs']}"}
                                    if "ipvs" in skipped else {})}
    params = dict(profile.parameters)
    for name, p in params.items():
        if name not in done:
            why = reasons.get(name, "not a property of the node's kernel")
            params[name] = Parameter(name, p.value, p.text, p.per,
                                     f"not identified by the lab ({why}): default kept; {p.source}")
    return Profile(profile.name, profile.description, params), measured


def _figures(samples: pd.DataFrame, backend: str, measured: list[Measured]) -> dict:
    walks = {v: derive.walks(samples, v) for v in sorted(samples["variant"].unique())
             if v.startswith("iptables/")}
    flat = {m: derive.flat(samples, m) for m in ("nftables", "ipvs") if (samples["variant"] == m).any()}
    figures = {"iptables-walk": plots.iptables_walk(samples, walks),
               "nftables-flat": plots.flat_lookups(samples, flat),
               "datapaths": plots.datapaths(samples, [m for m in measured
                                                      if m.name in derive.fits.DATAPATH_PARAMETERS]),
               "streams": plots.streams(samples)}
    ipt = derive.iptables_sync_fit(samples, backend)
    if ipt is not None:
        figures["iptables-sync"] = plots.iptables_sync(samples, backend, ipt)
    nft = derive.nftables_sync_fit(samples)
    if nft is not None:
        figures["nftables-sync"] = plots.nftables_sync(samples, *nft)
    return figures


def run_lab(out: Path, quick: bool = False, iptables_backend: str = "auto",
            progress: Progress | None = None, config: LabConfig | None = None) -> record.LabFiles:
    """Measure this machine's kernel and write the profile `out` (+ samples, record,
    plots beside it); `quick`: the small configuration CI runs (under two minutes)."""
    progress = progress or (lambda _text: None)
    backend = node_backend() if iptables_backend == "auto" else iptables_backend
    missing = prerequisites(backend)
    if missing:
        raise NetmodelError(f"needs {', '.join(missing)}", field="calibrate lab")
    if not out.parent.is_dir():
        raise NetmodelError(f"folder {out.parent} does not exist", file=str(out))
    config = config or (QUICK if quick else FULL)
    date, started, mach = datetime.date.today().isoformat(), time.monotonic(), record.machine()
    stale = remove_stale()
    with lab_signals(), Namespaces() as ns, tempfile.TemporaryDirectory(prefix="netmodel-lab-") as work:
        lab = Lab(ns, Path(work), config)
        try:
            _measure(lab, backend, progress)
        finally:
            lab.close()
    samples = pd.DataFrame(lab.rows)
    tools = record.tools(backend)
    progress("fitting and writing")
    profile, measured = _derive(samples, backend, lab.skipped,
                                record.source_prefix(date, quick, mach, tools))
    profile = replace(profile, name=out.stem, description=(
        f"Measured by netmodel calibrate lab on {mach['host']} ({mach['cpu']}, Linux {mach['kernel']}) "
        f"on {date}; parameters the lab cannot identify keep the default profile's values."))
    plot_files = plots.save(_figures(samples, backend, measured), record.sidecars(out)["plots"])
    doc = {"date": date, "quick": quick, "machine": mach, "tools": tools, "iptables_backend": backend,
           "config": asdict(config), "load_average_end": list(os.getloadavg()),
           "elapsed_s": time.monotonic() - started, "stale_namespaces_removed": stale,
           "estimates": {m.name: {**asdict(m.estimate), "how": m.how, "note": m.note} for m in measured},
           "other_backends": {v: [asdict(e) for e in derive.walks(samples, v)]
                              for v in sorted(samples["variant"].unique())
                              if v.startswith("iptables/") and v != f"iptables/{backend}"},
           "checks": checks_table(lab.checks), "skipped": lab.skipped,
           "commands": [list(c) for c in ns.log]}
    return record.write(out, profile, samples, doc, plot_files)
