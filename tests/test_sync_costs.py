"""Sync durations (netmodel.costs.sync): hand computation, the calibration and its residuals
with stated tolerances, and the shapes issue 4 asks for."""

import pytest

from netmodel.cluster.rules import (
    ebpf_map_updates,
    iptables_restore_lines,
    iptables_total_rules,
    ipvs_operations,
    nftables_elements_changed,
)
from netmodel.costs.sync import (
    IPTABLES_ADD_ONE_RULE,
    IPTABLES_ADD_ONE_RULE_HOLDOUT,
    IPVS_ADD_ONE_RULE,
    ebpf_sync_seconds,
    fit_iptables_sync,
    iptables_add_one_rule_residuals,
    iptables_sync_seconds,
    ipvs_sync_seconds,
    nftables_sync_seconds,
)


def iptables(profile, services, endpoints, changed=None):
    return iptables_sync_seconds(profile, iptables_restore_lines(services, endpoints, changed),
                                 iptables_total_rules(services, endpoints))


def nftables_one_changed(profile, services, endpoints):
    return nftables_sync_seconds(profile, nftables_elements_changed(1, endpoints), False,
                                 services, endpoints)


# --- by hand ----------------------------------------------------------------------------

def test_iptables_sync_by_hand(profile):
    assert iptables_sync_seconds(profile, 100, 200) == pytest.approx(73.9e-3 + 300 * 89.3e-6)
    # a full sync of 10 Services x 2 endpoints: 131 lines, 5 + 80 + 3 = 88 rules
    assert iptables(profile, 10, 2) == pytest.approx(73.9e-3 + (131 + 88) * 89.3e-6)


def test_nftables_sync_by_hand(profile):
    # 1 changed Service of 10 x 2 endpoints: 12 commands, 16 + 30 chains listed
    assert nftables_one_changed(profile, 10, 2) == pytest.approx(5e-3 + 12 * 18.4e-6 + 46 * 4.52e-6)
    # full: 70 + 10 * 14 = 210 commands, whatever elements_changed says
    assert nftables_sync_seconds(profile, 3, True, 10, 2) == \
        pytest.approx(5e-3 + 210 * 18.4e-6 + 46 * 4.52e-6)


def test_ipvs_and_ebpf_sync_by_hand(profile):
    assert ipvs_sync_seconds(profile, ipvs_operations(1, services_added=1)) == pytest.approx(4 * 225e-6)
    assert ebpf_sync_seconds(profile, ebpf_map_updates(1, 10, 1, 1)) == pytest.approx(15 * 10e-6)


# --- calibration --------------------------------------------------------------------------

def test_profile_holds_the_fitted_iptables_values(profile):
    fitted = fit_iptables_sync()
    for name, value in fitted.items():  # the profile rounds to 3 significant digits
        assert profile[name] == pytest.approx(value, rel=1e-3), name


# Relative errors of the profile's iptables model at the 2019 points (docs/control-plane.md).
DOCUMENTED_RESIDUALS = {1: 0.008, 1_000: -0.118, 5_000: -0.170, 10_000: 0.137, 20_000: 0.075}
HOLDOUT_RESIDUALS = {100: 0.836, 500: 0.247, 1_500: -0.320, 2_000: -0.166, 15_000: 0.068}


def test_iptables_fit_residuals_within_20_percent(profile):
    rows = iptables_add_one_rule_residuals(profile)
    assert [n for n, *_ in rows] == [n for n, _ in IPTABLES_ADD_ONE_RULE]
    for n, _measured, _modelled, error in rows:
        assert abs(error) <= 0.20, (n, error)          # stated tolerance; worst is -17.0%
        assert error == pytest.approx(DOCUMENTED_RESIDUALS[n], abs=0.005), n


def test_iptables_holdout_points(profile):
    # the same blog's other five points, not fitted: 500+ Services within 35%, the
    # 100-Service point (fixed cost dominates) is +84%
    for n, _measured, _modelled, error in iptables_add_one_rule_residuals(
            profile, IPTABLES_ADD_ONE_RULE_HOLDOUT):
        assert error == pytest.approx(HOLDOUT_RESIDUALS[n], abs=0.005), n
        assert abs(error) <= (0.35 if n >= 500 else 1.0), (n, error)


def test_nftables_calibration_point_and_known_miss(profile):
    # PR #126013: 1 new Service at 10,000 Services x 2 endpoints, partial sync, ~141 ms
    new_service = nftables_elements_changed(1, 2, added_services=1)
    assert nftables_sync_seconds(profile, new_service, False, 10_000, 2) == \
        pytest.approx(0.141, rel=0.01)
    # issue #139513: an incremental sync at 44,128 Services x 1 took 1.33 s, mostly listing;
    # the linear listing cost is 0.40 s there (listing grows super-linearly): documented miss
    ratio = nftables_sync_seconds(profile, nftables_elements_changed(1, 1), False, 44_128, 1) / 1.328
    assert 0.25 <= ratio <= 0.35


@pytest.mark.parametrize("services,endpoints,measured", [
    (44_125, 1, 16 * 60 + 44),   # issue #139513, full sync
    (5_006, 50, 13 * 60 + 15),   # issue #135639, 250,011 endpoints
    (10_000, 2, 8 * 60),         # PR #126013, full sync before partial syncs (~8 min)
])
def test_pathological_nftables_full_syncs_are_upper_bounds(profile, services, endpoints, measured):
    modelled = nftables_sync_seconds(profile, 0, True, services, endpoints)
    assert 1.0 < modelled < measured / 30


def test_ipvs_add_one_service_inside_measured_range(profile):
    modelled = ipvs_sync_seconds(profile, ipvs_operations(1, services_added=1))
    assert modelled == pytest.approx(sorted(IPVS_ADD_ONE_RULE)[4], rel=0.01)  # median, 0.9 ms
    assert min(IPVS_ADD_ONE_RULE) <= modelled <= max(IPVS_ADD_ONE_RULE)


# --- shapes ---------------------------------------------------------------------------------

def test_iptables_sync_grows_with_rules(profile):
    counts = [10, 100, 1_000, 10_000]
    for changed in (None, 1):
        times = [iptables(profile, n, 10, changed) for n in counts]
        assert times == sorted(times) and len(set(times)) == len(times)
    assert iptables(profile, 1_000, 20) > iptables(profile, 1_000, 10)


def test_partial_restore_cheaper_than_full_at_10000_services(profile):
    full, partial = iptables(profile, 10_000, 10), iptables(profile, 10_000, 10, changed=1)
    assert partial < full
    assert partial / full == pytest.approx(0.441, abs=0.005)
    # KEP-3453's halving, by construction of the equal line and rule costs, at E = 1
    assert iptables(profile, 10_000, 1, changed=1) / iptables(profile, 10_000, 1) == \
        pytest.approx(0.5, abs=0.01)


def test_incremental_syncs_of_other_modes_do_not_grow_with_services(profile):
    no_listing = profile.with_overrides({"nftables_list_chain": "0ns"})
    assert nftables_one_changed(no_listing, 100, 10) == nftables_one_changed(no_listing, 10_000, 10)
    # IPVS and eBPF counts depend on the change only: same change, same seconds at any size
    assert ipvs_sync_seconds(profile, ipvs_operations(2)) == pytest.approx(0.45e-3)
    assert ebpf_sync_seconds(profile, ebpf_map_updates(1, 10, 1, 1)) == pytest.approx(0.15e-3)


def test_nftables_listing_grows_far_less_than_iptables(profile):
    # with the default listing cost nftables grows with Services, but at 10,000 Services x
    # 10 endpoints one changed Service costs < 1/50 of iptables' partial sync
    small, large = nftables_one_changed(profile, 100, 10), nftables_one_changed(profile, 10_000, 10)
    assert small < large < iptables(profile, 10_000, 10, changed=1) / 50
    assert large / small < iptables(profile, 10_000, 10, changed=1) / iptables(profile, 100, 10, changed=1)
