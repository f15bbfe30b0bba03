"""kube-proxy's iptables rule layout: how many rules a new connection walks.

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
