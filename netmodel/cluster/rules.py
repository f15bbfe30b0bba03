"""kube-proxy's rule layout: how many rules a new connection walks (iptables), and how
much each mode's sync writes (rule counts, restore lines, nftables commands, IPVS
operations, eBPF map updates; second half of this module).

Source: kubernetes pkg/proxy/iptables/proxier.go (`syncProxyRules`,
`writeServiceToEndpointRules`), summarised in reference-figures.md. Per Service
port with endpoints, KUBE-SERVICES holds one rule, in Go-map (random) order, and
its last rule jumps to KUBE-NODEPORTS. A NEW connection to a ClusterIP walks:

  nat PREROUTING: 1 jump to KUBE-SERVICES
  KUBE-SERVICES:  `rank` rules until its Service matches
  KUBE-SVC-*:     1 masquerade check, then statistic rules until one fires
                  (endpoint i of E, 0-based, fires at rule i + 1; the last has no test)
  KUBE-SEP-*:     2 rules (hairpin masquerade mark, DNAT)
  nat POSTROUTING: 1 jump to KUBE-POSTROUTING, 1 RETURN for unmarked packets

so rules walked = rank + (i + 1) + 6, expected (R + 1) / 2 + (E + 1) / 2 + 6.
Established packets skip the nat table (conntrack carries them).
"""

from __future__ import annotations

import numpy as np

FIXED_RULES_WALKED = 6
"""PREROUTING jump, KUBE-SVC masquerade check, 2 KUBE-SEP rules, POSTROUTING jump and RETURN."""


def kube_services_length(services_with_endpoints: int) -> int:
    """Rules in KUBE-SERVICES: one per Service port with endpoints, plus the KUBE-NODEPORTS jump."""
    return services_with_endpoints + 1


def iptables_rules_walked(rank: np.ndarray | int, endpoint_index: np.ndarray | int):
    """Rules walked by a NEW connection to the Service at 1-based `rank` in KUBE-SERVICES
    that picks endpoint `endpoint_index` (0-based) of its KUBE-SVC chain."""
    return rank + endpoint_index + 1 + FIXED_RULES_WALKED


NODEPORT_FIXED_RULES_WALKED = 10
"""PREROUTING jump, 2 KUBE-EXT rules (masquerade mark, jump), KUBE-SVC masquerade check,
2 KUBE-SEP rules, POSTROUTING jump and 3 KUBE-POSTROUTING rules (mark test, mark xor,
MASQUERADE) — the Local policy's KUBE-SVL chain is taken to be the same length."""


def iptables_nodeport_rules_walked(rules_in_kube_services: int, nodeport_rank, endpoint_index):
    """Rules walked by a NEW connection to a NodePort: the whole KUBE-SERVICES chain (its
    last rule jumps to KUBE-NODEPORTS), `nodeport_rank` rules there, then the endpoint's
    statistic rules and the fixed rules."""
    return rules_in_kube_services + nodeport_rank + endpoint_index + 1 + NODEPORT_FIXED_RULES_WALKED


# -- rule counts and sync sizes -------------------------------------------------------
#
# How much a kube-proxy sync writes, per mode, as pure functions of the cluster's shape.
# "Service" below means one Service port with at least one ready endpoint unless a
# parameter says otherwise; `endpoints_per_service` (E) is the same for every Service.
# Layout: Cluster traffic policy, no session affinity, IPv4. Sources: kubernetes
# pkg/proxy/iptables/proxier.go (`syncProxyRules`, `writeServiceToEndpointRules`),
# pkg/proxy/iptables/number_generated_rules_test.go (`TestNumberIptablesRules`),
# pkg/proxy/nftables/proxier.go (`setupNFTables`, `syncProxyRules`, `ensureChain`),
# pkg/proxy/ipvs/proxier.go (`syncService`, `syncEndpoint`), cilium
# pkg/maps/lbmap/lbmap.go (`upsertServiceProto`); see docs/control-plane.md.

IPTABLES_NAT_FIXED_RULES = 5
"""nat rules written whatever the Services: KUBE-POSTROUTING (3: RETURN unmarked, mark
xor, MASQUERADE), KUBE-MARK-MASQ (1), and the last KUBE-SERVICES rule jumping to
KUBE-NODEPORTS (1). TestNumberIptablesRules: 0 Services -> 5 nat rules."""

IPTABLES_FILTER_FIXED_RULES = 3
"""filter rules written whatever the Services: KUBE-FORWARD's INVALID drop, mark accept and
RELATED,ESTABLISHED accept. TestNumberIptablesRules: 0 Services -> 3 filter rules (the fake
proxier writes no KUBE-FIREWALL localhost rule; a node with localhost NodePorts has one more)."""

IPTABLES_RESTORE_FIXED_LINES = 4 + 5 + 4
"""Lines of every iptables-restore input besides rules: `*filter`, `COMMIT`, `*nat`,
`COMMIT`; 5 filter chain lines (KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-FORWARD,
KUBE-NODEPORTS, KUBE-PROXY-FIREWALL); 4 nat chain lines (KUBE-SERVICES, KUBE-NODEPORTS,
KUBE-POSTROUTING, KUBE-MARK-MASQ)."""


def iptables_nat_rules(services: int, endpoints_per_service: int, ports_per_service: int = 1,
                       nodeport_services: int = 0, lb_ips: int = 0,
                       lb_source_ranges: int = 0) -> int:
    """Rules in kube-proxy's nat table (iptables mode):

        N = 5 + S*P*(2 + 3E) + 3*S_np*P + L + F   (E >= 1; Services with E = 0 add none)

    per Service port: 1 KUBE-SERVICES rule, KUBE-SVC masquerade check + E statistic rules,
    2 rules in each of the E KUBE-SEP chains; per NodePort port: 1 KUBE-NODEPORTS rule and
    2 KUBE-EXT rules (masquerade mark, jump); L = external and load-balancer IPs (1
    KUBE-SERVICES rule each; their Service's KUBE-EXT chain is taken to exist, as it does for
    type LoadBalancer with node ports); F = loadBalancerSourceRanges CIDRs (1 KUBE-FW rule each).
    `services` counts Services with endpoints, `nodeport_services` those among them with node
    ports; `lb_ips` and `lb_source_ranges` are totals over the cluster.
    Source: iptables proxier.go; TestNumberIptablesRules (E=1 -> 10, E=2 -> 13, E=10 -> 37,
    10 Services x 10 endpoints -> 325; LoadBalancer cases 16, 19, 43, 115, 145, 385).
    """
    if endpoints_per_service <= 0:
        return IPTABLES_NAT_FIXED_RULES
    per_port = (2 + 3 * endpoints_per_service) * services + 3 * nodeport_services
    return IPTABLES_NAT_FIXED_RULES + ports_per_service * per_port + lb_ips + lb_source_ranges


def iptables_filter_rules(services_without_endpoints: int = 0, ports_per_service: int = 1,
                          nodeport_services_without_endpoints: int = 0,
                          lb_ips_without_endpoints: int = 0, firewalled_lb_ips: int = 0) -> int:
    """Rules in kube-proxy's filter table (iptables mode):

        3 + P*(S0 + S0_np) + L0 + L_fw

    a Service port without endpoints gets a REJECT for its ClusterIP (KUBE-SERVICES), one for
    its node port and one per external or load-balancer IP (KUBE-EXTERNAL-SERVICES, L0); a
    load-balancer IP of a Service with endpoints and loadBalancerSourceRanges gets a DROP in
    KUBE-PROXY-FIREWALL (L_fw). Services with endpoints add nothing else.
    Source: iptables proxier.go; TestNumberIptablesRules (ClusterIP: 0 Services -> 3, 1 without
    endpoints -> 4, 10 without -> 13, any with endpoints -> 3; LoadBalancer: 1 without -> 7,
    10 without -> 43, 1 / 10 with endpoints -> 4 / 13).
    """
    per_port = services_without_endpoints + nodeport_services_without_endpoints
    return (IPTABLES_FILTER_FIXED_RULES + ports_per_service * per_port
            + lb_ips_without_endpoints + firewalled_lb_ips)


def iptables_total_rules(services: int, endpoints_per_service: int, ports_per_service: int = 1,
                         nodeport_services: int = 0, services_without_endpoints: int = 0) -> int:
    """Rules in kube-proxy's nat and filter tables together (ClusterIP and NodePort Services,
    no external or load-balancer IPs): what iptables-restore hands the kernel to replace."""
    return (iptables_nat_rules(services, endpoints_per_service, ports_per_service, nodeport_services)
            + iptables_filter_rules(services_without_endpoints, ports_per_service))


def iptables_restore_lines(services: int, endpoints_per_service: int,
                           changed_services: int | None = None, ports_per_service: int = 1,
                           nodeport_services: int = 0, services_without_endpoints: int = 0,
                           deleted_chains: int = 0) -> int:
    """Lines of the iptables-restore input of one sync; `changed_services=None` is a full sync.

    Every sync writes: 13 fixed lines (table headers, COMMITs, top-level chain lines), the
    filter table in full, the 5 fixed nat rules, and the top-level rules of every Service
    port (1 in KUBE-SERVICES, +1 in KUBE-NODEPORTS for a node port). A full sync also writes
    each Service port's own chains: chain lines 1 + E (+1 KUBE-EXT) and rules 1 + 3E (+2
    KUBE-EXT); a partial sync (MinimizeIPTablesRestore, beta 1.27, GA 1.28) writes them only
    for the `changed_services` (whose endpoints or spec changed since the last sync). With
    `ports_per_service` = 1 a full sync is

        13 + F + 5 + S*(3 + 4E) + 4*S_np   lines, F = filter rules.

    `deleted_chains`: stale KUBE-SEP/KUBE-SVC chains removed in this sync, 2 lines each (chain
    line and `-X`); kube-proxy does this every sync below 1,000 endpoints, else once per
    syncPeriod. Approximation: changed Services are assumed to keep E endpoints and their node
    port status; rule comments (dropped above 1,000 endpoints, largeClusterMode) change the
    bytes, not the line count. Source: iptables proxier.go (`syncProxyRules`: the skipped
    Services' chains go to a discarding buffer); KEP-3453.
    """
    e = endpoints_per_service
    if e <= 0:
        services = nodeport_services = 0
    top_level = services + nodeport_services
    own_chains_per_port = (1 + e) + (1 + 3 * e)
    own_ext_per_port = 1 + 2
    if changed_services is None:
        changed, changed_np = services, nodeport_services
    else:
        changed = min(changed_services, services)
        changed_np = min(changed, nodeport_services)
    own = changed * own_chains_per_port + changed_np * own_ext_per_port
    filter_rules = iptables_filter_rules(services_without_endpoints, ports_per_service)
    return (IPTABLES_RESTORE_FIXED_LINES + filter_rules + IPTABLES_NAT_FIXED_RULES
            + ports_per_service * (top_level + own) + 2 * deleted_chains)


NFTABLES_SETUP_COMMANDS = 70
"""Commands of a full nftables sync before any Service (`setupNFTables`, NodePorts on all
addresses, a ServiceCIDR known): table 1; 8 base chains added and flushed 16; 11 jumps to 6
regular chains (12 add/flush + 11 rules) 23; KUBE-MARK-MASQ chain 2; masquerade rules 4;
cluster-ips set and its 2 rules 3; nodeport-ips set add/delete 2; no-endpoint maps 2; reject
chain and rule 3; endpoint-check rules 2; firewall map and rule 2; service maps and their
rules 4; 6 map and set flushes 6."""

NFTABLES_FIXED_CHAINS = 16
"""Chains in the kube-proxy nftables table whatever the Services: 8 base chains and 8 regular
ones (services, masquerading, mark-for-masquerade, cluster-ips-check, service- and
nodeport-endpoints-check, firewall-check, reject)."""


def nftables_elements_changed(changed_services: int, endpoints_per_service: int,
                              ports_per_service: int = 1, added_services: int = 0,
                              removed_endpoints: int = 0) -> int:
    """Commands in the transaction of an incremental nftables sync (one `nft -f` run).

    Per changed Service port: its service chain is added and flushed and gets 2 rules
    (masquerade check, `numgen random mod E vmap`), and each of its E endpoint chains is added,
    flushed and gets 2 rules (masquerade, DNAT): 4 + 4E. The chains of a changed Service are
    rewritten whole, so the count follows E, not the number of endpoints that changed. A new
    Service also adds its cluster-ips set element and service-ips map element (2); map
    elements of existing Services are rewritten only if their value changes. A removed
    endpoint's chain is flushed now and deleted in a later sync (2). Source: nftables
    proxier.go (`ensureChain`, `nftElementStorage.ensureElem`, `writeServiceToEndpointRules`).
    """
    per_port = 4 + 4 * endpoints_per_service
    return (changed_services * ports_per_service * per_port + 2 * added_services
            + 2 * removed_endpoints)


def nftables_full_sync_elements(services: int, endpoints_per_service: int,
                                ports_per_service: int = 1, nodeport_services: int = 0) -> int:
    """Commands in a full nftables sync's transaction: the 70 set-up commands, then per Service
    its cluster-ips element (1) and per port its service-ips element and chains (1 + 4 + 4E),
    per node port a service-nodeports element and a KUBE-EXT-like external chain (1 + 4).
    Source: nftables proxier.go (`setupNFTables` flushes every map and set, so every element
    is written again)."""
    if endpoints_per_service <= 0:
        services = nodeport_services = 0
    per_port = 1 + 4 + 4 * endpoints_per_service
    return (NFTABLES_SETUP_COMMANDS + services * (1 + ports_per_service * per_port)
            + nodeport_services * ports_per_service * 5)


def nftables_chains(services: int, endpoints_per_service: int, ports_per_service: int = 1,
                    nodeport_services: int = 0) -> int:
    """Chains in kube-proxy's nftables table: 16 fixed, per Service port 1 service chain and E
    endpoint chains, per node port 1 external chain. kube-proxy lists them on every sync to
    find stale ones (`nft list chains`), full or not. Source: nftables proxier.go."""
    if endpoints_per_service <= 0:
        services = nodeport_services = 0
    return NFTABLES_FIXED_CHAINS + ports_per_service * (services * (1 + endpoints_per_service)
                                                        + nodeport_services)


def ipvs_operations(changed_endpoints: int, virtual_servers_per_service: int = 1,
                    local_endpoints_changed: int = 0, services_added: int = 0) -> int:
    """Kernel operations of an IPVS sync: one real-server add or delete (netlink) per changed
    endpoint on each of its Service's virtual servers (one per ClusterIP:port, one per node
    IP for a node port, one per external or load-balancer IP); one KUBE-LOOP-BACK ipset entry
    per changed endpoint that runs on this node; per new Service its virtual servers, the
    ClusterIP bound to kube-ipvs0 and its KUBE-CLUSTER-IP ipset entry. A removed endpoint
    with open connections is first set to weight 0 (graceful termination) and deleted later:
    counted once here. Source: ipvs proxier.go (`syncService`, `syncEndpoint`, ipset
    handling in `syncProxyRules`)."""
    return (changed_endpoints * virtual_servers_per_service + local_endpoints_changed
            + services_added * (virtual_servers_per_service + 2))


def ebpf_map_updates(changed_services: int, endpoints_per_service: int, added_endpoints: int = 0,
                     removed_endpoints: int = 0, frontends_per_service: int = 1) -> int:
    """BPF map updates Cilium's socket LB makes for a change: per changed Service and frontend
    (ClusterIP:port, NodePort, ...) the service map's backend slots 1..E, its master entry and
    its reverse-NAT entry (E + 2); per added endpoint one backend-map entry; per removed
    endpoint its backend-map entry and a stale slot per frontend. Source: cilium
    pkg/maps/lbmap/lbmap.go (`upsertServiceProto` rewrites every slot of the frontend)."""
    return (changed_services * frontends_per_service * (endpoints_per_service + 2)
            + added_endpoints + removed_endpoints * (1 + frontends_per_service))
