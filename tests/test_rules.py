"""kube-proxy rule and operation counts (netmodel.cluster.rules) against kube-proxy's own
test values (TestNumberIptablesRules) and hand counts from the proxiers' layout."""

import pytest

from netmodel.cluster.rules import (
    ebpf_map_updates,
    iptables_filter_rules,
    iptables_nat_rules,
    iptables_restore_lines,
    iptables_total_rules,
    ipvs_operations,
    nftables_chains,
    nftables_elements_changed,
    nftables_full_sync_elements,
)

# (Services, endpoints per Service, expected filter rules, expected nat rules), copied from
# kubernetes pkg/proxy/iptables/number_generated_rules_test.go, TestNumberIptablesRules.
CLUSTER_IP_CASES = [(0, 0, 3, 5), (1, 0, 4, 5), (1, 1, 3, 10), (1, 2, 3, 13), (1, 10, 3, 37),
                    (10, 0, 13, 5), (10, 1, 3, 55), (10, 2, 3, 85), (10, 10, 3, 325)]
# LoadBalancer Services there: a node port, 1 external IP, 1 load-balancer IP, 1 source range.
LOAD_BALANCER_CASES = [(0, 0, 3, 5), (1, 0, 7, 5), (1, 1, 4, 16), (1, 2, 4, 19), (1, 10, 4, 43),
                       (10, 0, 43, 5), (10, 1, 13, 115), (10, 2, 13, 145), (10, 10, 13, 385)]


@pytest.mark.parametrize("services,endpoints,filter_rules,nat_rules", CLUSTER_IP_CASES)
def test_cluster_ip_rule_counts_match_kube_proxy_test(services, endpoints, filter_rules, nat_rules):
    assert iptables_nat_rules(services, endpoints) == nat_rules
    without = services if endpoints == 0 else 0
    assert iptables_filter_rules(services_without_endpoints=without) == filter_rules


@pytest.mark.parametrize("services,endpoints,filter_rules,nat_rules", LOAD_BALANCER_CASES)
def test_load_balancer_rule_counts_match_kube_proxy_test(services, endpoints, filter_rules,
                                                         nat_rules):
    assert iptables_nat_rules(services, endpoints, nodeport_services=services, lb_ips=2 * services,
                              lb_source_ranges=services) == nat_rules
    if endpoints == 0:
        filters = iptables_filter_rules(services, nodeport_services_without_endpoints=services,
                                        lb_ips_without_endpoints=2 * services)
    else:
        filters = iptables_filter_rules(firewalled_lb_ips=services)
    assert filters == filter_rules


def test_nat_rules_formula_by_hand():
    # 5 + S*P*(2 + 3E) + 3*S_np*P: 4 Services, 2 ports, 3 endpoints, 1 with a node port
    assert iptables_nat_rules(4, 3, ports_per_service=2, nodeport_services=1) == 5 + 4 * 2 * 11 + 3 * 2
    assert iptables_total_rules(4, 3, ports_per_service=2, nodeport_services=1,
                                services_without_endpoints=2) == 5 + 88 + 6 + 3 + 2 * 2


def _full_restore_by_component(s, e, s_np=0, s0=0):
    """Restore input counted part by part: framing, chain lines, rules of both tables."""
    framing = 4                                   # *filter COMMIT *nat COMMIT
    filter_chains = 5
    nat_chains = 4 + s * (1 + e) + s_np           # top-level, KUBE-SVC, KUBE-SEP, KUBE-EXT
    return (framing + filter_chains + iptables_filter_rules(s0) + nat_chains
            + iptables_nat_rules(s, e, nodeport_services=s_np))


@pytest.mark.parametrize("s,e,s_np,s0", [(0, 1, 0, 0), (10, 2, 0, 0), (2, 1, 1, 0), (50, 7, 20, 5)])
def test_full_restore_is_every_chain_and_rule(s, e, s_np, s0):
    assert iptables_restore_lines(s, e, nodeport_services=s_np,
                                  services_without_endpoints=s0) == _full_restore_by_component(s, e, s_np, s0)


def test_restore_lines_by_hand():
    # full: 13 fixed + 3 filter rules + 5 fixed nat rules + S*(3 + 4E)
    assert iptables_restore_lines(10, 2) == 13 + 3 + 5 + 10 * 11 == 131
    # partial, 1 changed: every KUBE-SERVICES rule (10) + the changed one's chains:
    # 1 + E chain lines and 1 + 3E rules = 3 + 7
    assert iptables_restore_lines(10, 2, changed_services=1) == 21 + 10 + 10 == 41
    assert iptables_restore_lines(10, 2, changed_services=0) == 21 + 10
    assert iptables_restore_lines(10, 2, changed_services=10) == iptables_restore_lines(10, 2)
    assert iptables_restore_lines(10, 2, changed_services=1, deleted_chains=3) == 41 + 6
    # a node port Service changed: its KUBE-NODEPORTS rule always, its KUBE-EXT chain (3 lines)
    assert iptables_restore_lines(10, 2, changed_services=1, nodeport_services=4) == 41 + 4 + 3


def test_partial_restore_is_much_smaller_than_full_at_10000_services():
    full = iptables_restore_lines(10_000, 10)
    partial = iptables_restore_lines(10_000, 10, changed_services=1)
    assert (full, partial) == (21 + 10_000 * 43, 21 + 10_000 + 11 + 31)
    assert partial < full / 40


def test_9508_lines_of_issue_14099_imply_about_two_endpoints_per_service():
    # 1,152 Services -> 9,508 lines of iptables-save (kubernetes issue #14099).
    # nat rules only: 5 + 1152 * (2 + 3E) = 9508  ->  E = 2.08
    implied = ((9508 - 5) / 1152 - 2) / 3
    assert implied == pytest.approx(2.083, abs=1e-3)
    assert 1 <= implied <= 3
    assert iptables_nat_rules(1152, 2) / 9508 - 1 == pytest.approx(-0.030, abs=0.001)
    # all restore lines (chain lines too): 21 + 1152 * (3 + 4E) = 9508  ->  E = 1.31
    implied_lines = ((9508 - 21) / 1152 - 3) / 4
    assert implied_lines == pytest.approx(1.309, abs=1e-3)
    assert iptables_restore_lines(1152, 1) < 9508 < iptables_restore_lines(1152, 2)


def test_nftables_commands_by_hand():
    # a changed Service: service chain add, flush, masquerade, numgen vmap (4);
    # each endpoint chain add, flush, masquerade, DNAT (4E)
    assert nftables_elements_changed(1, 2) == 12
    assert nftables_elements_changed(3, 10, ports_per_service=2) == 3 * 2 * 44
    assert nftables_elements_changed(1, 2, added_services=1) == 14   # + set and map element
    assert nftables_elements_changed(1, 2, removed_endpoints=1) == 14  # flush now, delete later
    # full: 70 set-up commands + per Service 1 + P*(1 + 4 + 4E) (+5 per node port)
    assert nftables_full_sync_elements(0, 1) == 70
    assert nftables_full_sync_elements(1, 1) == 80
    assert nftables_full_sync_elements(10, 2, nodeport_services=3) == 70 + 10 * 14 + 15
    assert nftables_full_sync_elements(10, 0) == 70
    assert nftables_chains(10, 2) == 16 + 30
    assert nftables_chains(10, 2, nodeport_services=4) == 16 + 34


def test_incremental_nftables_transaction_does_not_depend_on_cluster_size():
    # the transaction is a function of the change only; a full sync grows with the cluster
    assert nftables_elements_changed(1, 10) == 44
    assert nftables_full_sync_elements(10_000, 10) > 100 * nftables_full_sync_elements(10, 10)


def test_ipvs_operations_by_hand():
    assert ipvs_operations(1, services_added=1) == 4  # real server, virtual server, address, ipset
    assert ipvs_operations(2) == 2                    # one endpoint replaced: delete + add
    # a NodePort Service on a node with 2 IPs: ClusterIP + 2 node-IP virtual servers
    assert ipvs_operations(2, virtual_servers_per_service=3, local_endpoints_changed=1) == 7


def test_ebpf_map_updates_by_hand():
    # one endpoint replaced in a 10-endpoint Service, ClusterIP only: 10 slots + master +
    # rev-NAT, 1 new backend, 1 backend deleted with its stale slot
    assert ebpf_map_updates(1, 10, added_endpoints=1, removed_endpoints=1) == 12 + 1 + 2
    assert ebpf_map_updates(2, 3, frontends_per_service=2) == 2 * 2 * 5
