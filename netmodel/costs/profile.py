"""Cost profiles: every cost parameter with its value, unit and source.

A profile is a YAML file (`netmodel/costs/profiles/<name>.yaml` for shipped ones).
`PARAMETERS` below is the list of names the model uses and their dimensions; the
numbers live only in the profile files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from netmodel.errors import NetmodelError
from netmodel.limits import INPUT_BYTES
from netmodel.reading import read_yaml
from netmodel.units import parse_quantity

PARAMETERS: dict[str, str] = {
    "tcp_stack_tx": "time",
    "tcp_stack_rx": "time",
    "nic_rx": "time",
    "rx_wakeup": "time",
    "conntrack_established": "time",
    "veth": "time",
    "bridge": "time",
    "vxlan_encap": "time",
    "vxlan_decap": "time",
    "link_latency": "time",
    "connection_setup": "time",
    "iptables_rule": "time",
    "ipvs_lookup": "time",
    "nftables_lookup": "time",
    "ebpf_lookup": "time",
    "ebpf_maglev_lookup": "time",
    "netfilter_established": "time",
    "ipvs_established": "time",
    "bpf_ct_lookup": "time",
    "bpf_redirect": "time",
    "bpf_lb_packet": "time",
    "xdp_rx": "time",
    "ip_tcp_header": "size",
    "ethernet_framing": "size",
    "vxlan_overhead": "size",
    "gso_max_size": "size",
    "snat_setup": "time",
    "cloud_lb_per_message": "time",
    "cloud_lb_latency": "time",
    "tls_handshake": "time",
    "ingress_request": "time",
    "apiserver_proxy": "time",
    "port_forward_stream": "time",
    "kubelet_stream": "time",
    "coredns_query": "time",
    "dns_upstream_latency": "time",
    "iptables_sync_fixed": "time",
    "iptables_restore_line": "time",
    "iptables_table_rule": "time",
    "nftables_sync_fixed": "time",
    "nftables_element": "time",
    "nftables_list_chain": "time",
    "ipvs_operation": "time",
    "ebpf_map_update": "time",
    "apiserver_write": "time",
    "watch_send_per_watcher": "time",
    "endpointslice_object_bytes": "size",
    "endpointslice_endpoint_bytes": "size",
    "apiserver_egress": "bitrate",
    "pod_start_median": "time",
    "pod_start_p99": "time",
}
"""Parameter name -> dimension ('time' in seconds, 'size' in bytes, 'bitrate' in bit/s)."""


@dataclass(frozen=True)
class Parameter:
    """One cost parameter: SI value, the text it came from, what it is per, its source."""

    name: str
    value: float
    text: str
    per: str
    source: str


@dataclass(frozen=True)
class Profile:
    """A loaded cost profile; `profile["veth"]` is the SI value of a parameter."""

    name: str
    description: str
    parameters: Mapping[str, Parameter]

    def __getitem__(self, name: str) -> float:
        return self.parameters[name].value

    def with_overrides(self, overrides: Mapping[str, Any], *, file: str | None = None,
                       lines: Mapping[str, int] | None = None) -> "Profile":
        """Return a copy with scenario overrides (`costs:` key) applied and sourced."""
        params = dict(self.parameters)
        for name, raw in overrides.items():
            line = (lines or {}).get(name)
            if name not in PARAMETERS:
                raise NetmodelError(f"unknown cost parameter (known: {', '.join(PARAMETERS)})",
                                    file=file, line=line, field=f"costs.{name}")
            value = _parse(name, raw, file=file, line=line, field=f"costs.{name}")
            params[name] = Parameter(name, value, str(raw), self.parameters[name].per,
                                     "scenario override")
        return Profile(self.name, self.description, params)

    def digest(self) -> str:
        """Short hash of all values: two profiles with the same numbers agree."""
        blob = json.dumps({k: p.value for k, p in sorted(self.parameters.items())})
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_profile(ref: str, base_dir: Path | None = None) -> Profile:
    """Load a shipped profile by name, or a YAML file (relative to `base_dir`)."""
    text, where = _profile_text(ref, base_dir)
    doc, lines = read_yaml(text, where, "profile")
    if not isinstance(doc, dict) or not isinstance(doc.get("parameters"), dict):
        raise NetmodelError("a profile is a mapping with a 'parameters' mapping", file=where,
                            line=lines[()])
    raw = doc["parameters"]
    missing = [n for n in PARAMETERS if n not in raw]
    unknown = [n for n in raw if n not in PARAMETERS]
    if missing or unknown:
        raise NetmodelError(f"missing parameters {_show(missing)}, unknown parameters "
                            f"{_show(unknown)}", file=where, line=lines.get(("parameters",)))
    params = {}
    for name, entry in raw.items():
        field, line = f"parameters.{name}", lines.get(("parameters", name))
        if not isinstance(entry, dict) or set(entry) != {"value", "per", "source"}:
            raise NetmodelError("expected a mapping with exactly value, per, source",
                                file=where, line=line, field=field)
        for key in ("per", "source"):
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise NetmodelError(f"expected text, got {_show(entry[key])}", file=where,
                                    line=lines.get(("parameters", name, key), line),
                                    field=f"{field}.{key}")
        value = _parse(name, entry["value"], file=where, field=f"{field}.value",
                       line=lines.get(("parameters", name, "value"), line))
        params[name] = Parameter(name, value, str(entry["value"]), entry["per"], entry["source"])
    for key in ("name", "description"):
        if not isinstance(doc.get(key, ""), str):
            raise NetmodelError(f"expected text, got {_show(doc[key])}", file=where,
                                line=lines.get((key,)), field=key)
    return Profile(doc.get("name", ref), doc.get("description", ""), params)


def _profile_text(ref: str, base_dir: Path | None) -> tuple[str, str]:
    """The text of profile `ref` and the file name to give in messages."""
    if ref.endswith((".yaml", ".yml")):
        path = Path(ref) if base_dir is None else base_dir / ref
        if not path.is_file():
            raise NetmodelError(f"cost profile file not found: {path}", field="profile")
        where = str(path)
        if path.stat().st_size > INPUT_BYTES():
            raise NetmodelError(INPUT_BYTES.refuse(path.stat().st_size, "the file's size in bytes"),
                                file=where)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise NetmodelError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                                file=where) from None
    else:
        res = resources.files("netmodel.costs") / "profiles" / f"{ref}.yaml"
        if not res.is_file():
            shipped = sorted(p.name[:-5] for p in (resources.files("netmodel.costs") / "profiles").iterdir()
                             if p.name.endswith(".yaml"))
            raise NetmodelError(f"no shipped cost profile {ref!r} (shipped: {', '.join(shipped)}; "
                                "or give a path ending in .yaml)", field="profile")
        text, where = res.read_text(encoding="utf-8"), f"netmodel/costs/profiles/{ref}.yaml"
    return text, where


def _parse(name: str, raw: Any, *, file: str | None, field: str, line: int | None = None) -> float:
    dimension = PARAMETERS[name]
    if _is_bare_number(raw) and float(raw) != 0:
        raise NetmodelError(f"give a unit, e.g. '{raw}{_UNIT_HINT[dimension]}'",
                            file=file, line=line, field=field)
    try:
        value = parse_quantity(raw, dimension)
    except ValueError as exc:
        raise NetmodelError(str(exc), file=file, line=line, field=field) from None
    if value < 0:
        raise NetmodelError("must not be negative", file=file, line=line, field=field)
    return value


_UNIT_HINT = {"time": "us", "size": "B", "bitrate": "Gbps"}


def _is_bare_number(raw: Any) -> bool:
    """A number without a unit, written as a YAML number or as text ('3', '1e-6')."""
    if isinstance(raw, bool):
        return False
    if isinstance(raw, (int, float)):
        return True
    try:
        float(str(raw))
    except ValueError:
        return False
    return True


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
