"""The calibration lab (netmodel/calibration/): kube-proxy-shaped tables, isolation, fits,
and (as root with iproute2, iptables and nftables) a real `--quick` lab run whose profile
the model then runs with, against the lab's own measured curves."""

import ipaddress
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from netmodel.calibration import fits, tables, topology
from netmodel.calibration.derive import lab_scenario, same_node_crr
from netmodel.calibration.lab import prerequisites
from netmodel.calibration.netns import LAB_NETWORK, Namespaces, remove_stale
from netmodel.cli import main
from netmodel.cluster.rules import (
    iptables_restore_lines,
    iptables_rules_walked,
    iptables_total_rules,
    nftables_elements_changed,
)
from netmodel.costs.profile import PARAMETERS, load_profile

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d+)?(?![\d.])")


def _table(services: int, endpoints: int) -> tables.ServiceTable:
    eps = tuple(tuple(f"198.18.{128 + (k // 250) % 128}.{2 + k % 250}" for k in range(s * endpoints,
                                                                                   (s + 1) * endpoints))
                for s in range(services))
    return tables.ServiceTable(eps, tuple(reversed(range(services))), "198.18.0.0/15")


def _addresses(text: str) -> set[ipaddress.IPv4Address]:
    return {ipaddress.ip_address(a) for a in _IPV4.findall(text)}


def _inside_the_lab(addresses) -> bool:
    return all(a in LAB_NETWORK or a in LOOPBACK for a in addresses)


# -- kube-proxy's tables -------------------------------------------------------------------------
@pytest.mark.parametrize("services,endpoints", [(1, 1), (10, 2), (100, 3), (1200, 1)])
def test_iptables_restore_has_the_lines_and_rules_the_model_prices(services, endpoints):
    t = _table(services, endpoints)
    full, partial = tables.iptables_restore(t), tables.iptables_restore(t, (0,))
    assert tables.command_count(full) == iptables_restore_lines(services, endpoints)
    assert tables.command_count(partial) == iptables_restore_lines(services, endpoints, changed_services=1)
    rules = sum(line.startswith("-A ") for line in full.splitlines())
    assert rules == iptables_total_rules(services, endpoints)


def test_kube_services_order_and_the_walk():
    t = _table(5, 2)
    rules = [line for line in tables.iptables_restore(t).splitlines() if line.startswith("-A KUBE-SERVICES")]
    assert [t.cluster_ip(s) in rules[k] for k, s in enumerate(t.order)] == [True] * 5
    assert "KUBE-NODEPORTS" in rules[-1]  # the nodeports jump is last, as kube-proxy writes it
    assert t.rank()[t.order[0]] == 1 and iptables_rules_walked(1, 0) == 8


@pytest.mark.parametrize("added,endpoints", [(1, 1), (1, 2), (50, 3)])
def test_nftables_transaction_has_the_commands_the_model_prices(added, endpoints):
    t = _table(added, endpoints)
    text = tables.nftables_transaction(t, range(added))
    assert tables.command_count(text) == nftables_elements_changed(added, endpoints, added_services=added)


def test_every_table_address_is_inside_the_lab():
    t = _table(300, 2)
    for text in (tables.iptables_restore(t), tables.nftables_transaction(t, range(300), setup=True),
                 tables.nftables_lookup_table(t), tables.ipvs_restore(t), tables.ipvs_addresses(t)):
        assert _inside_the_lab(_addresses(text))


# -- isolation -----------------------------------------------------------------------------------
class FakeRunner:
    """Records argument lists and answers like a system where every command works."""

    def __init__(self, listing: str = ""):
        self.calls, self.listing = [], listing

    def __call__(self, argv, input=None, capture_output=True):
        self.calls.append(tuple(argv))
        out = self.listing.encode() if tuple(argv) == ("ip", "netns", "list") else b""
        return subprocess.CompletedProcess(argv, 0, out, b"")


@pytest.mark.parametrize("variant", topology.DATAPATHS)
def test_lab_commands_stay_in_lab_namespaces_and_addresses(variant):
    runner = FakeRunner()
    with Namespaces(runner, pid=4242) as ns:
        with ns.scope():
            cluster = topology.datapath(ns, variant)
        assert ns.made == []  # the scope removed them
    for argv in runner.calls:
        assert argv[:2] == ("ip", "netns"), argv
        assert argv[2] in ("add", "del", "exec") and argv[3].startswith("nmlab-4242-"), argv
    assert _inside_the_lab(_addresses(" ".join(" ".join(a) for a in runner.calls)))
    assert _inside_the_lab({ipaddress.ip_address(cluster.client.ip), ipaddress.ip_address(cluster.server.ip)})


def test_namespaces_refuse_what_is_not_theirs_and_remove_all_on_exit():
    runner = FakeRunner()
    with pytest.raises(RuntimeError):
        with Namespaces(runner, pid=7) as ns:
            ns.add("node")
            with pytest.raises(ValueError):
                ns.exec("default", "ip", "link")
            with pytest.raises(ValueError):
                ns.add("Bad_Name")
            raise RuntimeError("a failure in the middle of the lab")
    assert runner.calls[-1] == ("ip", "netns", "del", "nmlab-7-node")


def test_remove_stale_takes_only_dead_lab_runs():
    dead = 2**22 + 12345  # above the default pid_max: no such process
    listing = (f"nmlab-{dead}-node (id: 3)\nnmlab-{os.getpid()}-node\nnmlab-{dead}-pod\n"
               f"somebody-else\nnmlab-x-node\n")
    runner = FakeRunner(listing)
    assert remove_stale(runner) == [f"nmlab-{dead}-node", f"nmlab-{dead}-pod"]
    assert [c for c in runner.calls if c[2] == "del"] == [("ip", "netns", "del", f"nmlab-{dead}-node"),
                                                          ("ip", "netns", "del", f"nmlab-{dead}-pod")]


def test_missing_root_or_tools_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "nft" else f"/usr/sbin/{tool}")
    assert prerequisites("nft") == ["root (it creates network namespaces)", "nft (nftables)"]
    assert main(["calibrate", "lab", "--out", str(tmp_path / "p.yaml")]) == 2
    assert capsys.readouterr().err == ("netmodel: error: calibrate lab: needs root (it creates network "
                                       "namespaces), nft (nftables)\n")


# -- fits --------------------------------------------------------------------------------------------
def test_a_clamped_set_up_says_what_the_labs_handshake_cost():
    """The lab's own connect() against its round trip on the walks' path: the model prices a
    handshake as a round trip of data messages (seen on a quiet 2-CPU VM: 57-59 us of 126)."""
    from netmodel.calibration.record import LabRecord
    from netmodel.validation.lab import SETUP_CLAMPED, setup_clamped_why

    def lab(connect):
        rr = [(0, 125e-6), (0, 126e-6), (0, 127e-6), (1, 140e-6), (1, 141e-6), (1, 142e-6)]
        rows = [{"experiment": "datapath", "variant": "bridge-conntrack", "metric": m, "value": v,
                 "round": r} for m, values in (("connect", [(0, c) for c in connect]), ("rr", rr))
                for r, v in values]
        rows.append({"experiment": "datapath", "variant": "loopback", "metric": "connect", "value": 1.0,
                     "round": 0})
        return LabRecord(pd.DataFrame(rows), {"quick": True})

    why = setup_clamped_why(lab([58e-6, 58.7e-6, 60e-6]))
    assert why.startswith(SETUP_CLAMPED + ": the model charges a handshake's SYN and SYN-ACK")
    assert "connect() took 58.7 us here, 47% of one (126 us, two Pods on one bridge, tracked)" in why
    assert setup_clamped_why(lab([])) == SETUP_CLAMPED + (": the two probes disagreed on this machine "
                                                          "in this run (a busy machine; rerun the lab)")
    assert setup_clamped_why(lab([130e-6])).endswith("(a busy machine; rerun the lab)")
    assert "connect()" not in setup_clamped_why(lab([130e-6]))


def test_walk_fit_recovers_the_rule_cost_despite_batch_shifts():
    rng = np.random.default_rng(1)
    rows = []
    for batch, (n, shift) in enumerate([(1, 0.0), (2000, 8e-6), (5000, -6e-6), (10_000, 4e-6)]):
        for i in range(800):
            service = rng.random() >= 0.2
            walked = rng.integers(1, n + 1) + 7 if service else n + 4
            value = 60e-6 + shift + 15e-9 * walked + (3e-6 if service else 0) + rng.exponential(4e-6)
            rows.append({"batch": batch, "services": n, "walked": walked, "value": value,
                         "target": "service" if service else "pod"})
    rule, zero, overhead = fits.walk_fit(pd.DataFrame(rows))
    assert rule.low <= 15e-9 <= rule.high and rule.value == pytest.approx(15e-9, rel=0.05)
    assert zero.value == pytest.approx(60e-6 + 3e-6 + 4e-6 * math.log(2), rel=0.1)
    assert overhead.value == pytest.approx(3e-6, abs=1.5e-6)


def test_flat_fit_and_linear_fit():
    rng = np.random.default_rng(2)
    rows = [{"batch": b, "services": n, "value": 80e-6 + (1e-6 if t else 0) + rng.normal(0, 2e-6),
             "target": "service" if t else "pod"}
            for b, n in enumerate((1, 5000, 20000)) for t in rng.random(500) >= 0.2]
    slope, level, over = fits.flat_fit(pd.DataFrame(rows))
    assert slope.low <= 0 <= slope.high and level.value == pytest.approx(81e-6, rel=0.02)
    x = rng.integers(100, 10_000, 40)
    frame = pd.DataFrame({"lines": x, "rules": 3 * x, "batch": 0,
                          "value": (0.01 + 40e-6 * x + 5e-6 * 3 * x) * rng.normal(1, 0.01, 40)})
    a, line, rule = fits.linear_fit(frame.assign(rules=x * rng.integers(1, 5, 40)), ("lines", "rules"))
    assert a.samples == 40 and line.value > 0


def test_datapath_parameters_by_hand():
    latency = {"loopback": 7e-6, "veth": 7.2e-6, "bridge": 8.1e-6, "bridge-conntrack": 9.2e-6,
               "native": 12e-6, "vxlan": 15.2e-6}
    tx, rx, wakeup, veth, bridge, ct, encap, decap = fits.datapath_parameters(latency, 5.2e-6)
    assert (tx + rx, wakeup) == pytest.approx((5.2e-6, 1.8e-6))
    assert tx / rx == pytest.approx(8 / 5)
    assert (veth, bridge, ct, encap, decap) == pytest.approx((0.2e-6, 0.7e-6, 1.1e-6, 1.6e-6, 1.6e-6))


def test_the_model_lab_connection_by_hand(profile):
    """A new same-node ClusterIP connection's first request: set-up on both ends, the SYN
    without a wake-up, three more messages with one: 2 cs + 4 M - w."""
    p = profile
    m = (p["tcp_stack_tx"] + 2 * p["veth"] + p["bridge"] + p["conntrack_established"]
         + p["netfilter_established"] + p["tcp_stack_rx"] + p["rx_wakeup"])
    assert same_node_crr(p) == pytest.approx(2 * p["connection_setup"] + 4 * m - p["rx_wakeup"])
    sc = lab_scenario("nftables", 3000)
    assert (sc.cluster.nodes, len(sc.inventory.services), sc.kube_proxy.mode) == (1, 3000, "nftables")


# -- the lab itself (root, Linux, iproute2, iptables, nftables) --------------------------------------
def _lab_reason() -> str | None:
    if sys.platform != "linux":
        return "the calibration lab needs Linux"
    missing = prerequisites("nft")
    return f"the calibration lab needs {', '.join(missing)}" if missing else None


needs_lab = pytest.mark.skipif(_lab_reason() is not None, reason=str(_lab_reason()))


def _lab_namespaces(pid: int) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.startswith(f"nmlab-{pid}-")]


@pytest.fixture(scope="module")
def quick_lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab") / "node.yaml"
    assert main(["calibrate", "lab", "--quick", "--out", str(out)]) == 0
    return out


@needs_lab
@pytest.mark.validation
def test_quick_lab_writes_a_complete_sourced_profile(quick_lab):
    profile = load_profile(str(quick_lab))
    assert set(profile.parameters) == set(PARAMETERS)
    for p in profile.parameters.values():
        assert p.source.startswith(("measured: netmodel calibrate lab", "not identified by the lab")), p.name
    measured = [p for p in profile.parameters.values() if p.source.startswith("measured")]
    assert {p.name for p in measured} >= {"iptables_rule", "connection_setup", "tcp_stack_tx", "veth",
                                          "vxlan_encap", "iptables_restore_line", "nftables_element"}
    assert all("95% CI" in p.source and "samples" in p.source for p in measured)
    record = json.loads(quick_lab.with_name("node.lab.json").read_text())
    assert record["quick"] and record["config"]["connects"] == 600  # its time: benchmarks/README.md
    samples = pd.read_parquet(quick_lab.with_name("node.samples.parquet"))
    assert {"datapath", "rules", "iptables-sync", "nftables-sync"} <= set(samples["experiment"])
    plots = sorted(p.name for p in quick_lab.with_name("node-plots").iterdir())
    assert plots == ["datapaths.png", "iptables-sync.png", "iptables-walk.png", "nftables-flat.png",
                     "nftables-sync.png", "streams.png"]
    assert all((quick_lab.with_name("node-plots") / p).read_bytes()[:4] == b"\x89PNG" for p in plots)


@needs_lab
@pytest.mark.validation
def test_quick_lab_stayed_in_its_namespaces_and_left_none(quick_lab):
    record = json.loads(quick_lab.with_name("node.lab.json").read_text())
    prefixes = {c[3].rsplit("-", 1)[0].split("-")[1] for c in record["commands"] if c[:2] == ["ip", "netns"]}
    assert len(prefixes) == 1  # one run, one pid
    for argv in record["commands"]:
        assert argv[:2] == ["ip", "netns"] and argv[2] in ("add", "del", "exec"), argv
        assert argv[3].startswith("nmlab-"), argv
    assert _inside_the_lab(_addresses(" ".join(" ".join(c) for c in record["commands"])))
    made = {c[3] for c in record["commands"] if c[2] == "add"}
    removed = {c[3] for c in record["commands"] if c[2] == "del"}
    assert made == removed and _lab_namespaces(int(prefixes.pop())) == []
    for check in record["checks"]:
        assert check["reused_ports"] == 0, check


@needs_lab
@pytest.mark.validation
def test_model_with_the_lab_profile_reproduces_the_measured_connection_curves(quick_lab):
    """The model run with the calibrated profile reproduces the lab's new-connection latency
    through iptables per Service count within validation.lab.CURVE_TOLERANCE (15%); nftables
    stays flat beside iptables' walk; a row that misses says why, and only for a reason the
    lab's own numbers show (a hop it measured below zero, or nftables' own path on this
    node). Asserted so that a shared machine's noise cannot flip it: --quick takes one batch
    per Service count, and batches move by ~10% with the machine's load."""
    from netmodel.validation.lab import (
        CURVE_TOLERANCE,
        NFT_NOT_FLAT,
        QUICK_NOISE,
        SETUP_CLAMPED,
        setup_clamped,
    )
    from netmodel.validation.report import validate

    profile = load_profile(str(quick_lab))
    report = validate(str(quick_lab), quick=True, groups=("lab",))
    rows = {c.case: c for _, c in report.checks}
    curves = [c for name, c in rows.items() if "new Service connection" in name]
    assert len(curves) == 8
    iptables = [c for c in curves if c.case.startswith("iptables")]
    # the walk: the most rules walked within tolerance; below, a miss only where the
    # lab's own probes disagreed (it says so in connection_setup's source and in the row)
    clamped = setup_clamped(profile)
    # ... unless connection_setup was clamped: then the model's floor sits above the lab's
    # by what its handshake over-charges (the row says so; +50-65% at 1 Service on a quiet
    # 2-CPU VM, three runs), and what must hold is the walk's rise from the fewest to the
    # most rules, within twice the tolerance (those three runs: -12% to -19%)
    largest, fewest = iptables[-1], iptables[0]
    rise = (largest.value - fewest.value) / (largest.reference_value - fewest.reference_value)
    assert largest.passed or (clamped and largest.lacks.startswith(SETUP_CLAMPED)
                              and abs(rise - 1) < 2 * CURVE_TOLERANCE), (largest, rise)
    # one --quick batch per count: a row below may miss by that noise (a fresh-clone CI run
    # here failed so once, on an iptables row that was not clamped), never by twice the
    # tolerance, and says so
    assert all(c.passed or (clamped and c.lacks.startswith(SETUP_CLAMPED)) or c.lacks == QUICK_NOISE
               for c in iptables), [(c.case, c.error, c.lacks[:40]) for c in iptables]
    # nftables: flat beside iptables' walk, in the lab as in the model; a row that misses
    # names the node's own path under nftables, or the clamp above
    nft = [c for c in curves if c.case.startswith("nftables")]
    rise = nft[-1].reference_value - nft[0].reference_value
    walk = iptables[-1].reference_value - iptables[0].reference_value
    assert rise < 0.5 * walk, (rise, walk)
    assert max(c.value for c in nft) < 1.01 * min(c.value for c in nft)   # the model's lookup is flat
    assert all(c.passed or "the node's own path" in c.lacks
               or c.lacks.startswith(SETUP_CLAMPED) or c.lacks in (NFT_NOT_FLAT, QUICK_NOISE) for c in nft), nft
    one_way = rows["one-way latency, Pods on one node (calibration)"]
    hops = ("tcp_stack_tx", "tcp_stack_rx", "rx_wakeup", "veth", "bridge", "conntrack_established")
    assert one_way.passed or any("not above zero" in profile.parameters[h].source for h in hops), one_way
    stream = rows["one TCP stream, Pods on one node"]
    assert stream.passed or "no per-byte cost" in stream.lacks
    pods = [c for name, c in rows.items() if "Pod-to-Pod" in name]
    assert not pods[-1].passed and "walks all of KUBE-SERVICES" in pods[-1].lacks


@needs_lab
@pytest.mark.parametrize("sig,code,said", [
    (signal.SIGTERM, 143, "stopped by SIGTERM; its namespaces are removed"),
    (signal.SIGINT, 130, "netmodel: interrupted")])
def test_a_signal_removes_the_lab_namespaces(tmp_path, sig, code, said):
    proc = subprocess.Popen([sys.executable, "-m", "netmodel.cli", "calibrate", "lab", "--quick", "--out",
                             str(tmp_path / "p.yaml")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not _lab_namespaces(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _lab_namespaces(proc.pid), "the lab made no namespace within a minute"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert said in err.decode()
    assert _lab_namespaces(proc.pid) == [] and not (tmp_path / "p.yaml").exists()


@needs_lab
def test_stale_namespaces_of_a_dead_run_are_removed():
    dead = 2**22 + 4321
    name = f"nmlab-{dead}-left"
    subprocess.run(["ip", "netns", "add", name], check=True)
    assert name in remove_stale()
    assert _lab_namespaces(dead) == []
