"""kube-proxy-shaped rule tables for the lab: the text kube-proxy hands the kernel.

iptables: the input of `iptables-restore --noflush` of a full sync and of a partial sync
(MinimizeIPTablesRestore), ClusterIP Services with E endpoints, Cluster traffic policy, as
kubernetes pkg/proxy/iptables/proxier.go writes them (KUBE-SERVICES in the order given,
KUBE-SVC masquerade check and `statistic` rules, two rules per KUBE-SEP, the KUBE-NODEPORTS
jump last). Their line and rule counts are exactly those of `netmodel.cluster.rules`
(`iptables_restore_lines`, `iptables_total_rules`; tested), so a restore the lab times is
the restore the model prices, and a connection to the Service at rank k walks
`rules.iptables_rules_walked(k, i)` rules.

nftables: kube-proxy's nftables layout (pkg/proxy/nftables/proxier.go): one `service-ips`
verdict map looked up by `ip daddr . meta l4proto . th dport`, a chain per Service that
picks an endpoint with `numgen random mod E vmap`, a chain per endpoint that DNATs. An
incremental transaction adding m Services has `rules.nftables_elements_changed(m, E,
added_services=m)` commands.

Addresses: ClusterIPs in 198.19.0.0/16, endpoints in the lab's Pod networks
(`netns.LAB_NETWORK`); chain names are kube-proxy's (prefix + 16 base32 characters of a
SHA-256 of the Service port name).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass

CLUSTER_IPS = ipaddress.ip_network("198.19.0.0/16")
"""Where the lab's ClusterIPs live (inside netns.LAB_NETWORK)."""
SERVICE_PORT = 80
TARGET_PORT = 8080
MASQUERADE_MARK = "0x4000"
LARGE_CLUSTER_ENDPOINTS = 1000
"""kube-proxy's largeClusterMode: above this many endpoints it leaves out rule comments."""


@dataclass(frozen=True)
class ServiceTable:
    """S ClusterIP Services of E endpoints each, KUBE-SERVICES in the order `order`
    (order[k] is the Service at rank k + 1), endpoints `endpoints[s]` (IPv4 strings)."""

    endpoints: tuple[tuple[str, ...], ...]
    order: tuple[int, ...]
    pod_cidr: str

    @property
    def services(self) -> int:
        return len(self.endpoints)

    def cluster_ip(self, s: int) -> str:
        """Service s's ClusterIP."""
        return str(CLUSTER_IPS.network_address + 16 + s)

    def rank(self) -> dict[int, int]:
        """Service -> its 1-based rank in KUBE-SERVICES."""
        return {s: k + 1 for k, s in enumerate(self.order)}

    def name(self, s: int) -> str:
        return f"ns{s // 1000}/svc-{s}:http"


def _chain(prefix: str, text: str) -> str:
    digest = base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"{prefix}-{digest[:16]}"


def _svc_chain(t: ServiceTable, s: int) -> str:
    return _chain("KUBE-SVC", t.name(s) + "tcp")


def _sep_chain(t: ServiceTable, s: int, i: int) -> str:
    return _chain("KUBE-SEP", t.name(s) + "tcp" + t.endpoints[s][i])


# -- iptables ------------------------------------------------------------------------------
_FILTER = (
    "*filter",
    ":KUBE-SERVICES - [0:0]", ":KUBE-EXTERNAL-SERVICES - [0:0]", ":KUBE-FORWARD - [0:0]",
    ":KUBE-NODEPORTS - [0:0]", ":KUBE-PROXY-FIREWALL - [0:0]",
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
    f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark '
    f"{MASQUERADE_MARK}/{MASQUERADE_MARK} -j ACCEPT",
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack '
    "--ctstate RELATED,ESTABLISHED -j ACCEPT",
    "COMMIT",
)
_NAT_CHAINS = ("*nat", ":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]",
               ":KUBE-POSTROUTING - [0:0]", ":KUBE-MARK-MASQ - [0:0]")
_NAT_FIXED_RULES = (
    f"-A KUBE-POSTROUTING -m mark ! --mark {MASQUERADE_MARK}/{MASQUERADE_MARK} -j RETURN",
    f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQUERADE_MARK}",
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
    "-j MASQUERADE --random-fully",
    f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQUERADE_MARK}",
)
_NODEPORTS_JUMP = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: '
                   'this must be the last rule in this chain" -m addrtype --dst-type LOCAL '
                   "-j KUBE-NODEPORTS")
IPTABLES_JUMPS = (
    ("-t", "nat", "-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals",
     "-j", "KUBE-SERVICES"),
    ("-t", "nat", "-A", "OUTPUT", "-m", "comment", "--comment", "kubernetes service portals",
     "-j", "KUBE-SERVICES"),
    ("-t", "nat", "-A", "POSTROUTING", "-m", "comment", "--comment",
     "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING"),
    ("-t", "filter", "-A", "FORWARD", "-m", "comment", "--comment", "kubernetes forwarding rules",
     "-j", "KUBE-FORWARD"),
)
"""The base-chain jumps kube-proxy adds with `iptables -A` (not part of its restores)."""


def _service_rules(t: ServiceTable, s: int) -> list[str]:
    """KUBE-SVC (masquerade check, one statistic rule per endpoint) and KUBE-SEP rules."""
    svc, ip, e = _svc_chain(t, s), t.cluster_ip(s), len(t.endpoints[s])
    comments = t.services * e <= LARGE_CLUSTER_ENDPOINTS
    note = f'-m comment --comment "{t.name(s)} cluster IP" ' if comments else ""
    rules = [f"-A {svc} {note}-p tcp -m tcp -d {ip}/32 --dport {SERVICE_PORT} ! -s {t.pod_cidr} "
             "-j KUBE-MARK-MASQ"]
    for i, ep in enumerate(t.endpoints[s]):
        sep = _sep_chain(t, s, i)
        pick = f"-m statistic --mode random --probability {1 / (e - i):.10f} " if i < e - 1 else ""
        rules.append(f'-A {svc} -m comment --comment "{t.name(s)} -> {ep}:{TARGET_PORT}" {pick}-j {sep}'
                     if comments else f"-A {svc} {pick}-j {sep}")
    for i, ep in enumerate(t.endpoints[s]):
        sep = _sep_chain(t, s, i)
        rules += [f"-A {sep} -s {ep}/32 -j KUBE-MARK-MASQ",
                  f"-A {sep} -p tcp -m tcp -j DNAT --to-destination {ep}:{TARGET_PORT}"]
    return rules


def _service_chains(t: ServiceTable, s: int) -> list[str]:
    return [f":{_svc_chain(t, s)} - [0:0]"] + [f":{_sep_chain(t, s, i)} - [0:0]"
                                                for i in range(len(t.endpoints[s]))]


def _kube_services_rule(t: ServiceTable, s: int) -> str:
    return (f'-A KUBE-SERVICES -m comment --comment "{t.name(s)} cluster IP" -m tcp -p tcp '
            f"-d {t.cluster_ip(s)}/32 --dport {SERVICE_PORT} -j {_svc_chain(t, s)}")


def iptables_restore(t: ServiceTable, changed: tuple[int, ...] | None = None) -> str:
    """iptables-restore input of a full sync (`changed` None) or of a partial sync that
    rewrites the Services in `changed`: filter in full, every KUBE-SERVICES rule, and the
    own chains of the Services written."""
    written = range(t.services) if changed is None else changed
    lines = list(_FILTER) + list(_NAT_CHAINS)
    for s in written:
        lines += _service_chains(t, s)
    lines += _NAT_FIXED_RULES
    lines += [_kube_services_rule(t, s) for s in t.order]
    lines.append(_NODEPORTS_JUMP)
    for s in written:
        lines += _service_rules(t, s)
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# -- nftables ------------------------------------------------------------------------------
NFT_TABLE = "kube-proxy"
_NFT = f"ip {NFT_TABLE}"


def _nft_chain(kind: str, text: str) -> str:
    return _chain(kind, text).lower()


def nftables_setup(pod_cidr: str) -> list[str]:
    """The table, its base chains, the masquerade chains, the service-ips map and the
    cluster-ips set, and the lookup rule: what kube-proxy's nftables mode writes before any
    Service."""
    return [
        f"add table {_NFT}",
        f"add chain {_NFT} nat-prerouting {{ type nat hook prerouting priority dstnat ; }}",
        f"add chain {_NFT} nat-output {{ type nat hook output priority -100 ; }}",
        f"add chain {_NFT} nat-postrouting {{ type nat hook postrouting priority srcnat ; }}",
        f"add chain {_NFT} services", f"add chain {_NFT} masquerading",
        f"add chain {_NFT} mark-for-masquerade",
        f"add map {_NFT} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}",
        f"add set {_NFT} cluster-ips {{ type ipv4_addr ; }}",
        f"add rule {_NFT} nat-prerouting jump services",
        f"add rule {_NFT} nat-output jump services",
        f"add rule {_NFT} nat-postrouting jump masquerading",
        f"add rule {_NFT} masquerading meta mark & {MASQUERADE_MARK} == 0 return",
        f"add rule {_NFT} masquerading meta mark set meta mark ^ {MASQUERADE_MARK}",
        f"add rule {_NFT} masquerading masquerade fully-random",
        f"add rule {_NFT} mark-for-masquerade meta mark set meta mark | {MASQUERADE_MARK}",
        f"add rule {_NFT} services ip daddr . meta l4proto . th dport vmap @service-ips",
    ]


NFTABLES_SETUP_CHAINS = 6
"""Chains `nftables_setup` makes."""


def nftables_service(t: ServiceTable, s: int) -> list[str]:
    """Commands that add Service s: its chain (add, flush, masquerade check, numgen vmap),
    each endpoint's chain (add, flush, masquerade, DNAT), and its cluster-ips and
    service-ips elements: 4 + 4E + 2."""
    name = t.name(s)
    svc = _nft_chain("service", name)
    eps = [(_nft_chain("endpoint", name + ep), ep) for ep in t.endpoints[s]]
    picks = " , ".join(f"{i} : goto {chain}" for i, (chain, _) in enumerate(eps))
    out = [f"add chain {_NFT} {svc}", f"flush chain {_NFT} {svc}"]
    for chain, _ in eps:  # chains exist before the rules that jump to them
        out += [f"add chain {_NFT} {chain}", f"flush chain {_NFT} {chain}"]
    out += [f"add rule {_NFT} {svc} ip daddr {t.cluster_ip(s)} tcp dport {SERVICE_PORT} "
            f"ip saddr != {t.pod_cidr} jump mark-for-masquerade",
            f"add rule {_NFT} {svc} numgen random mod {len(eps)} vmap {{ {picks} }}"]
    for chain, ep in eps:
        out += [f"add rule {_NFT} {chain} ip saddr {ep} jump mark-for-masquerade",
                f"add rule {_NFT} {chain} meta l4proto tcp dnat to {ep}:{TARGET_PORT}"]
    out += [f"add element {_NFT} cluster-ips {{ {t.cluster_ip(s)} }}",
            f"add element {_NFT} service-ips {{ {t.cluster_ip(s)} . tcp . {SERVICE_PORT} : goto {svc} }}"]
    return out


def nftables_transaction(t: ServiceTable, services: range | tuple[int, ...],
                         setup: bool = False) -> str:
    """One `nft -f` transaction adding `services` (with the set-up commands first when
    `setup`: a full load of a fresh table)."""
    commands = nftables_setup(t.pod_cidr) if setup else []
    for s in services:
        commands += nftables_service(t, s)
    return "\n".join(commands) + "\n"


def nftables_lookup_table(t: ServiceTable, chunk: int = 1000) -> str:
    """A table for timing lookups: the set-up, Service 0 as kube-proxy writes it, and every
    other Service as a `service-ips` element pointing at Service 0's chain (all Services of
    a lookup table share one endpoint). A connection walks the same rules as in
    kube-proxy's table (map lookup, one service chain, one endpoint chain); what is left
    out, a chain per Service, is never walked, and one transaction holding thousands of
    chains takes nft 1.0 minutes to load (it grows faster than linearly)."""
    commands = nftables_setup(t.pod_cidr) + nftables_service(t, 0)
    shared = _nft_chain("service", t.name(0))
    for k in range(1, t.services, chunk):
        elements = " , ".join(f"{t.cluster_ip(s)} . tcp . {SERVICE_PORT} : goto {shared}"
                              for s in range(k, min(k + chunk, t.services)))
        commands.append(f"add element {_NFT} service-ips {{ {elements} }}")
    return "\n".join(commands) + "\n"


def nftables_chains_of(t: ServiceTable, services: int) -> int:
    """Chains in the lab's nftables table holding the first `services` Services."""
    return NFTABLES_SETUP_CHAINS + sum(1 + len(t.endpoints[s]) for s in range(services))


def command_count(text: str) -> int:
    """Lines of a restore input or commands of an nft transaction."""
    return text.count("\n")


# -- IPVS ----------------------------------------------------------------------------------
IPVS_DEVICE = "kube-ipvs0"


def ipvs_restore(t: ServiceTable) -> str:
    """`ipvsadm-restore` input: a virtual server per ClusterIP:port (round robin) with the
    Service's endpoints as masqueraded real servers, as kube-proxy's IPVS mode makes them."""
    lines = []
    for s in range(t.services):
        vip = f"{t.cluster_ip(s)}:{SERVICE_PORT}"
        lines.append(f"-A -t {vip} -s rr")
        lines += [f"-a -t {vip} -r {ep}:{TARGET_PORT} -m -w 1" for ep in t.endpoints[s]]
    return "\n".join(lines) + "\n"


def ipvs_addresses(t: ServiceTable) -> str:
    """`ip -batch` input binding every ClusterIP to the kube-ipvs0 dummy device."""
    return "".join(f"addr add {t.cluster_ip(s)}/32 dev {IPVS_DEVICE}\n" for s in range(t.services))
