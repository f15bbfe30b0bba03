"""How long one kube-proxy (or Cilium) sync takes: pure functions of (profile, counts).

The counts come from `netmodel.cluster.rules` (restore lines, rules in the tables, nftables
commands and chains, IPVS operations, BPF map updates); the per-unit costs from the profile.
All results in seconds. Nothing here schedules anything: the sync loop that calls these
(minSyncPeriod, syncPeriod, full vs partial syncs) is the next step of issue 4, see
docs/control-plane.md.

iptables: iptables-restore parses its input line by line, then replaces each table it
touches in the kernel as a whole, so a sync costs a fixed part, a part per line of input and
a part per rule of the replaced tables; a partial sync (MinimizeIPTablesRestore) writes fewer
lines but still replaces the whole table. The three parameters are fitted to the 2019
"time to add one rule" measurements (`IPTABLES_ADD_ONE_RULE`, `fit_iptables_sync`).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from netmodel.cluster.rules import (
    iptables_restore_lines,
    iptables_total_rules,
    nftables_chains,
    nftables_full_sync_elements,
)
from netmodel.costs.profile import Profile

IPTABLES_ADD_ONE_RULE: tuple[tuple[int, float], ...] = (
    (1, 0.077), (1_000, 1.302), (5_000, 6.547), (10_000, 9.491), (20_000, 20.0))
"""(Services, seconds until one new Service's rule is in place), iptables mode, 500 nodes of
2 cores: blog "k8s集群 iptables vs ipvs性能测试" (2019), the five points of
reference-figures.md. Endpoints per Service are not stated; the blog's own rule count (4 per
Service) fits one endpoint per Service (`IPTABLES_CALIBRATION_ENDPOINTS`)."""

IPTABLES_ADD_ONE_RULE_HOLDOUT: tuple[tuple[int, float], ...] = (
    (100, 0.100), (500, 0.491), (1_500, 2.476), (2_000, 2.662), (15_000, 15.125))
"""The same table's other five points (same blog), not used in the fit: a hold-out check."""

IPTABLES_CALIBRATION_ENDPOINTS = 1
"""Endpoints per Service assumed for the 2019 test (see `IPTABLES_ADD_ONE_RULE`)."""

IPVS_ADD_ONE_RULE = (0.8e-3, 0.85e-3, 0.85e-3, 0.85e-3, 0.9e-3, 0.9e-3, 0.9e-3, 0.97e-3,
                     1.0e-3, 1.52e-3)
"""Seconds to add one IPVS rule at 1 to 20,000 Services, same blog and test (reference-figures
row: "IPVS 0.8-1.5 ms flat"); their median, 0.9 ms, calibrates `ipvs_operation`."""


def iptables_sync_seconds(profile: Profile, restore_lines: int, total_rules: int) -> float:
    """Seconds of one iptables-mode sync: `iptables_sync_fixed` + `iptables_restore_line` x
    lines of restore input + `iptables_table_rule` x rules in the tables the kernel replaces
    (nat and filter: `rules.iptables_total_rules`). Lines come from
    `rules.iptables_restore_lines` (full or partial)."""
    return (profile["iptables_sync_fixed"] + restore_lines * profile["iptables_restore_line"]
            + total_rules * profile["iptables_table_rule"])


def nftables_sync_seconds(profile: Profile, elements_changed: int, full: bool, services: int,
                          endpoints_per_service: int, ports_per_service: int = 1,
                          nodeport_services: int = 0) -> float:
    """Seconds of one nftables-mode sync of a table holding `services` Service ports with
    `endpoints_per_service` endpoints each: `nftables_sync_fixed` + `nftables_element` x
    commands in the transaction (`elements_changed` from `rules.nftables_elements_changed`
    for an incremental sync; every element, `rules.nftables_full_sync_elements`, when
    `full`) + `nftables_list_chain` x chains in the table, which kube-proxy lists on every
    sync (`rules.nftables_chains`). With `nftables_list_chain` = 0 an incremental sync
    costs the same at any Service count."""
    if full:
        elements_changed = nftables_full_sync_elements(services, endpoints_per_service,
                                                       ports_per_service, nodeport_services)
    chains = nftables_chains(services, endpoints_per_service, ports_per_service, nodeport_services)
    return (profile["nftables_sync_fixed"] + elements_changed * profile["nftables_element"]
            + chains * profile["nftables_list_chain"])


def ipvs_sync_seconds(profile: Profile, operations: int) -> float:
    """Seconds of one IPVS-mode sync: `ipvs_operation` x kernel operations
    (`rules.ipvs_operations`); flat in the number of Services."""
    return operations * profile["ipvs_operation"]


def ebpf_sync_seconds(profile: Profile, map_updates: int) -> float:
    """Seconds for Cilium to apply a change: `ebpf_map_update` x BPF map updates
    (`rules.ebpf_map_updates`); flat in the number of Services."""
    return map_updates * profile["ebpf_map_update"]


def iptables_full_sync_units(services: int, endpoints_per_service: int) -> int:
    """Restore lines plus table rules of a full sync of `services` ClusterIP Services: the
    regressor of the iptables fit when a line and a rule cost the same."""
    return (iptables_restore_lines(services, endpoints_per_service)
            + iptables_total_rules(services, endpoints_per_service))


def fit_iptables_sync(points: Iterable[tuple[int, float]] = IPTABLES_ADD_ONE_RULE,
                      endpoints_per_service: int = IPTABLES_CALIBRATION_ENDPOINTS
                      ) -> dict[str, float]:
    """Fit `iptables_sync_fixed` (a) and a common per-line and per-rule cost (b) to
    (Services, seconds) points of full syncs: t = a + b x (lines + rules), least squares on
    the relative error (the points span 77 ms to 20 s). Returns the three profile values
    (`iptables_restore_line` = `iptables_table_rule` = b) in seconds.

    The 2019 test ran full syncs only (no partial restore before 1.26), where lines and
    rules both grow with Services, so the data cannot split b between them; taking them
    equal makes a partial sync of one Service cost half a full sync at E = 1 and many
    Services, as KEP-3453's halving of p50 network programming latency suggests.
    """
    services, seconds = (np.asarray(v, dtype=float) for v in zip(*points))
    units = np.array([iptables_full_sync_units(int(n), endpoints_per_service) for n in services])
    design = np.column_stack([np.ones_like(units, dtype=float), units]) / seconds[:, None]
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(seconds), rcond=None)
    return {"iptables_sync_fixed": float(a), "iptables_restore_line": float(b),
            "iptables_table_rule": float(b)}


def iptables_add_one_rule_residuals(profile: Profile,
                                    points: Iterable[tuple[int, float]] = IPTABLES_ADD_ONE_RULE,
                                    endpoints_per_service: int = IPTABLES_CALIBRATION_ENDPOINTS
                                    ) -> list[tuple[int, float, float, float]]:
    """(Services, measured s, modelled s, relative error) of a full sync under `profile` at
    each point."""
    rows = []
    for n, measured in points:
        modelled = iptables_sync_seconds(profile, iptables_restore_lines(n, endpoints_per_service),
                                         iptables_total_rules(n, endpoints_per_service))
        rows.append((n, measured, modelled, modelled / measured - 1.0))
    return rows
