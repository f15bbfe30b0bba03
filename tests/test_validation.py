"""The model against queueing theory and published figures: every case of `netmodel validate`
(netmodel/validation/) runs here, quick, and must pass, except the known gaps below, which
must fail and say what the model lacks until the model learns it (then move them out of
KNOWN_GAPS). docs/validation.md tabulates the same rows; keep both in step.
"""

from pathlib import Path

import numpy as np
import pytest

from netmodel.cli import main
from netmodel.costs.profile import load_profile
from netmodel.engines import simulate
from netmodel.validation.cases import CASES, Context, ordered, relative
from netmodel.validation.report import Report, validate
from netmodel.validation.theory import erlang_b, mm1k_blocking
from netmodel.vocabulary import COMPLETED, SERVER_QUEUE_FULL
from tests.conftest import make_scenario

pytestmark = pytest.mark.validation

KNOWN_GAPS = {
    "one TCP stream, native routing, 10G": "engine: no pipelining per segment; no per-byte CPU",
    "VXLAN's cost to one stream": "engine: no pipelining per segment; no per-byte CPU",
    "incremental sync at 44,128 Services x 1": "nftables chain listing grows faster than linearly",
    "p50 programming, full restores, minSyncPeriod 10 s": "default profile's 2019 node is slower",
    "p50 programming, partial restores, minSyncPeriod 10 s": "default profile's 2019 node is slower",
    "p50 programming, partial restores, minSyncPeriod 1 s": "default profile's 2019 node is slower",
    "IPVS client node CPU per new connection": "profile mixes DaoCloud's set-up and Tigera's node",
    "iptables short-connection rate at 20,000 Services / small scale": "walk steeper than TKE's",
    "iptables short-connection rate at 30,000 Services / small scale": "walk steeper than TKE's",
    "Cilium overlay rate at 30,000 Services / small scale": "eBPF lookups flat in the model",
    "iptables / Cilium overlay rate, small scale": "TKE's Cilium costs more than the model's hops",
    "iptables / Cilium overlay rate, 30,000 Services": "walk steeper than TKE's",
    "Service count where Cilium overlay overtakes iptables": "both of the above",
    "TCP_RR Pods on one node, legacy / BPF host routing": "per-packet costs of legacy routing low",
    "TCP_RR Pod to remote Pod, legacy / BPF host routing": "no backlog scheduling delay",
    "TCP_RR Pod to Pod, two nodes: calico / cilium": "one VXLAN cost for every CNI",
    "TCP_RR Pod to Pod, one node: calico / cilium": "one VXLAN cost for every CNI",
}
"""Rows that fail today, and why (docs/validation.md, 'Known gaps')."""


@pytest.fixture(scope="module")
def context():
    default = load_profile("default")
    return Context(default, default, quick=True)


@pytest.mark.parametrize("name", [c.name for c in ordered() if c.group in ("theory", "published")])
def test_case_passes_or_is_a_known_gap(name, context):
    checks = CASES[name].run(context)
    assert checks
    for check in checks:
        if check.case in KNOWN_GAPS:
            assert not check.passed and check.lacks, check
        else:
            assert check.passed, check
            assert check.lacks == ""


def test_every_known_gap_is_still_a_row():
    cases = ("DaoCloud TCP_STREAM", "nftables syncs", "KEP-3453 network programming",
             "Tigera IPVS CPU per connection", "TKE short connections over Service count",
             "TKE eBPF host routing, same node", "Cilium 1.9: eBPF host routing, Pod to remote Pod",
             "DaoCloud cilium against calico")
    ordered()
    rows = {c.case for name in cases
            for c in CASES[name].run(Context(load_profile("default"), load_profile("default"), quick=True))}
    assert set(KNOWN_GAPS) <= rows


def test_a_check_fails_outside_its_tolerance_and_keeps_what_the_model_lacks():
    inside = relative("x", "s", 100e-6, 104e-6, 0.05, "us", lacks="a reason")
    outside = relative("x", "s", 100e-6, 106e-6, 0.05, "us", lacks="a reason")
    assert inside.passed and inside.lacks == "" and inside.error == "+4.0%"
    assert not outside.passed and outside.lacks == "a reason"
    assert (outside.reference, outside.model, outside.tolerance) == ("100 us", "106 us", "±5%")


def test_report_table_and_markdown(tmp_path):
    report = validate(quick=True, cases=["IPVS add one Service", "DaoCloud TCP_RR"])
    assert report.passed and len(report.checks) == 2
    text = report.text()
    assert "[published]" in text and "2 of 2 checks pass" in text
    assert "no lab measurements beside this profile" in text
    md = report.markdown()
    assert md.count("| pass |") == 2 and "## published" in md


def test_validate_command_exit_codes_and_report(tmp_path, capsys):
    out = tmp_path / "v.md"
    assert main(["validate", "--quick", "--case", "DaoCloud TCP_RR", "--report", str(out)]) == 0
    assert out.read_text().startswith("# netmodel validate: profile default")
    assert main(["validate", "--quick", "--case", "DaoCloud TCP_STREAM"]) == 1
    assert "model lacks: a stream's segments do not pipeline" in capsys.readouterr().out
    assert main(["validate", "--profile", "nope"]) == 2
    assert "no shipped cost profile 'nope'" in capsys.readouterr().err
    assert main(["validate", "--case", "no such case"]) == 2


def test_report_passes_only_when_every_check_does():
    passing = relative("a", "s", 1.0, 1.0, 0.1)
    failing = relative("b", "s", 1.0, 2.0, 0.1, lacks="why")
    assert Report("p", True, [("theory", passing)]).passed
    assert not Report("p", True, [("theory", passing), ("published", failing)]).passed


def test_quickstart_shows_iptables_growing_and_the_others_flat():
    """The shipped quickstart's promise, on fewer requests: iptables p50 grows with the
    Service count (by over 5% from 10 to 10,000 Services); IPVS, nftables and eBPF stay
    within 1% of their value at 10 Services."""
    from netmodel.runner.point import run_point
    from netmodel.scenario.loader import load_scenario
    from netmodel.scenario.sweep import expand_sweep

    loaded = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml")
    p50: dict[str, dict[int, float]] = {}
    for point in expand_sweep(loaded):
        sc = point.scenario.model_copy(update={"run": point.scenario.run.model_copy(
            update={"requests": 2000, "replications": 1})})
        (row,) = run_point(sc, point.profile)
        p50.setdefault(row["kube_proxy.mode"], {})[sc.services.count] = row["p50_s"]
    counts = sorted(p50["iptables"])
    assert counts[0] == 10 and counts[-1] == 10_000
    ipt = [p50["iptables"][n] for n in counts]
    assert ipt[-1] > 1.05 * ipt[0] and ipt[-1] == max(ipt)
    for mode in ("ipvs", "nftables", "ebpf"):
        flat = [p50[mode][n] / p50[mode][10] for n in counts]
        assert max(abs(f - 1) for f in flat) < 0.01, (mode, flat)


# -- an endpoint Pod as a queue with finite room (issue 15) -------------------------------

def _refused_share(profile, workers: int, queue_limit: int, load: float, replications: int,
                   requests: int) -> tuple[float, float]:
    """The share of requests an endpoint Pod refuses (server-queue-full) at offered load
    `load` (Erlangs: arrival rate x mean app time): mean over replications and its standard
    error. One node, Pod-to-Pod on the node, app time exponential with mean 20 ms so that
    the network's ~30 us in front of the Pod leaves its arrivals Poisson; the first 5% of
    each run is cut."""
    mean = 20e-3
    sc = make_scenario(cluster={"nodes": 1, "conntrack_max": 100_000_000},  # the Pod alone limits
                       services={"count": 1, "endpoints_per_service": 1},
                       workload={"rate": load / mean, "mix": {"pod-pod-same-node": 1},
                                 "server": {"workers": workers, "queue_limit": queue_limit,
                                            "service_time": mean}},
                       run={"requests": requests, "warmup": 0.05 * requests * mean / load})
    shares = []
    for r in range(replications):
        res = simulate(sc, profile, r)
        measured = res.start >= res.warmup
        shares.append(float(np.mean(res.status[measured] == SERVER_QUEUE_FULL)))
    return float(np.mean(shares)), float(np.std(shares, ddof=1) / np.sqrt(replications))


@pytest.mark.parametrize("workers,load", [(c, f * c) for c in (1, 4, 16) for f in (0.5, 1, 2)])
def test_a_pod_without_waiting_room_refuses_as_erlang_b(profile, workers, load):
    """queue_limit 0 is M/M/c/c: refused exactly when every worker is busy. 0.3 refused
    every request. Tolerance: 4 standard errors over 4 replications of 20,000 requests,
    and at least 2% of the figure."""
    share, se = _refused_share(profile, workers, 0, load, replications=4, requests=20_000)
    expected = erlang_b(workers, load)
    assert share == pytest.approx(expected, abs=max(4 * se, 0.02 * expected))


@pytest.mark.parametrize("queue_limit,rho", [(1, 0.5), (3, 0.8), (3, 1.2)])
def test_a_single_worker_pod_with_waiting_room_refuses_as_mm1k(profile, queue_limit, rho):
    """One worker and queue_limit waiting: M/M/1/K with K = queue_limit + 1."""
    share, se = _refused_share(profile, 1, queue_limit, rho, replications=4, requests=20_000)
    expected = mm1k_blocking(rho, queue_limit + 1)
    assert share == pytest.approx(expected, abs=max(4 * se, 0.02 * expected))


def test_an_idle_loss_system_refuses_nothing(profile):
    """The issue's case: quickstart-like light load with queue_limit 0 refused all 1,500
    requests in 0.3; with four workers mostly idle, none is refused."""
    sc = make_scenario(cluster={"nodes": 4}, workload={"server": {"queue_limit": 0}},
                       run={"requests": 1500})
    res = simulate(sc, profile, 0)
    assert (res.status == SERVER_QUEUE_FULL).sum() == 0 and (res.status == COMPLETED).all()
