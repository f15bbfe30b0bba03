"""The listings of `netmodel import kubectl`: where they are in the layouts real dumps come
in, read within the limits, and typed access to their items that names the JSON path of
whatever is wrong.

Layouts (DIR is the folder given; a support bundle's `cluster-resources/` is looked into):

- single files, as `kubectl get ... -A -o json > FILE` writes them: `nodes.json`,
  `services.json` (or `svc.json`), `endpointslices.json`, `endpoints.json`, `pods.json`;
- one file per namespace, as `kubectl cluster-info dump --output-directory DIR` writes them:
  `<namespace>/services.json`, `<namespace>/pods.json`;
- one file per namespace in a folder per kind, as support-bundle collectors (troubleshoot.sh,
  kURL) write them: `services/<namespace>.json`, `endpointslices/<namespace>.json`,
  `endpoints/<namespace>.json`, `pods/<namespace>.json`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any

from netmodel.errors import NetmodelError
from netmodel.limits import LISTING_BYTES
from netmodel.reading import read_json


@dataclass(frozen=True)
class Source:
    """One kind of kubectl listing that the import reads."""

    names: tuple[str, ...]
    """File names accepted, the conventional one first."""
    command: str
    """The kubectl command that makes it."""
    kind: str
    """Kind of its items."""
    required: bool = True

    @property
    def folder(self) -> str:
        """The folder of a support bundle's per-namespace files: 'services', 'pods'."""
        return self.names[0].removesuffix(".json")


NODES = Source(("nodes.json",), "kubectl get nodes -o json", "Node")
SERVICES = Source(("services.json", "svc.json"), "kubectl get svc -A -o json", "Service")
ENDPOINT_SLICES = Source(("endpointslices.json",), "kubectl get endpointslices -A -o json",
                         "EndpointSlice", required=False)
ENDPOINTS = Source(("endpoints.json", "ep.json"), "kubectl get endpoints -A -o json", "Endpoints",
                   required=False)
PODS = Source(("pods.json",), "kubectl get pods -A -o json", "Pod", required=False)
SOURCES = (NODES, SERVICES, ENDPOINT_SLICES, ENDPOINTS, PODS)
ASKED = (NODES, SERVICES, ENDPOINT_SLICES)
"""What a message asks for when there is nothing to read."""
BUNDLE = "cluster-resources"
"""The folder of a support bundle that holds the listings."""
DROPPED_KEYS = frozenset({"managedFields", "kubectl.kubernetes.io/last-applied-configuration"})
"""Keys dropped while a listing is parsed: the bulk of a real dump, never read."""
REDACTED = re.compile(r"\*\*\*|HIDDEN|REDACTED", re.IGNORECASE)
"""What a redacted value looks like (troubleshoot.sh writes ***HIDDEN***)."""

_KINDS = {str: "a string", dict: "a mapping", list: "a list", int: "a whole number",
          bool: "true or false"}


@dataclass(frozen=True)
class Item:
    """One object of a listing: its file, its place there ('items[3]') and its data."""

    file: str
    at: str
    data: dict

    def error(self, sub: str, message: str) -> NetmodelError:
        """A NetmodelError at `sub` ('.spec.type') of this item."""
        return NetmodelError(message, file=self.file, field=f"{self.at}{sub}")

    def get(self, *path: str | int, kind: type = str, default: Any = None) -> Any:
        """The value at `path` (keys and list indices) if it is of `kind`; `default` when a
        level is missing or null; a NetmodelError naming the path when a level or the value
        has the wrong type."""
        value: Any = self.data
        for i, key in enumerate(path):
            container = dict if isinstance(key, str) else list
            if not isinstance(value, container):
                raise self.error(_path(path[:i]), f"expected {_KINDS[container]}, got {show(value)}")
            value = value.get(key) if isinstance(key, str) else \
                (value[key] if key < len(value) else None)
            if value is None:
                return default
        if not _is(value, kind):
            raise self.error(_path(path), f"expected {_KINDS[kind]}, got {show(value)}")
        return value

    def text(self, *path: str | int, required: bool = False) -> str | None:
        """A string at `path`; None when missing or empty (an error when `required`)."""
        value = self.get(*path)
        if not value:
            if required:
                raise self.error(_path(path), "missing")
            return None
        return value

    def items(self, *path: str | int, kind: type = dict) -> list[tuple[str, Any]]:
        """(sub path, element) of the list at `path`, each checked to be of `kind`."""
        found = self.get(*path, kind=list, default=[])
        for j, element in enumerate(found):
            if not _is(element, kind):
                raise self.error(f"{_path(path)}[{j}]", f"expected {_KINDS[kind]}, got {show(element)}")
        return [(f"{_path(path)}[{j}]", element) for j, element in enumerate(found)]

    def mapping(self, *path: str) -> dict[str, str]:
        """A mapping of strings to strings at `path` (labels, a selector); {} when missing."""
        found = self.get(*path, kind=dict, default={})
        for key, value in found.items():
            if not isinstance(value, str):
                raise self.error(f"{_path(path)}.{key}", f"expected a string, got {show(value)}")
        return found

    def ip(self, sub: str, text: Any) -> IPv4Address | None:
        """The address `text` found at `sub`: IPv4, or None for IPv6; an error for anything
        else, with a line of its own for a redacted dump."""
        if isinstance(text, str) and REDACTED.search(text):
            raise self.error(sub, f"the dump is redacted ({text!r} in place of an address); "
                                  "the import needs the real addresses: collect it again without "
                                  "redaction (support-bundle --redact=false)")
        if not isinstance(text, str):
            raise self.error(sub, f"expected an IP address, got {show(text)}")
        try:
            ip = ip_address(text)
        except ValueError:
            raise self.error(sub, f"expected an IP address, got {show(text)}") from None
        return ip if isinstance(ip, IPv4Address) else None

    def network(self, sub: str, text: Any) -> IPv4Network | None:
        """The CIDR `text` found at `sub`: IPv4, or None for IPv6."""
        if isinstance(text, str) and REDACTED.search(text):
            raise self.error(sub, f"the dump is redacted ({text!r} in place of a CIDR); collect "
                                  "it again without redaction (support-bundle --redact=false)")
        try:
            net = ip_network(text, strict=False) if isinstance(text, str) else None
        except ValueError:
            net = None
        if net is None:
            raise self.error(sub, f"expected a CIDR, got {show(text)}")
        return net if isinstance(net, IPv4Network) else None


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _path(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _a(noun: str) -> str:
    """'a Node', 'an EndpointSlice'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


class Listings:
    """The listings of one folder, in whichever layout it has."""

    def __init__(self, folder: Path):
        bundle = folder / BUNDLE
        self.root = bundle if bundle.is_dir() else folder
        self.files: dict[Source, list[str]] = {}
        """Source -> the files read for it."""

    def files_of(self, source: Source) -> list[Path]:
        """The files holding `source` in any of the layouts, in a stable order."""
        root = self.root
        single = [root / name for name in source.names if (root / name).is_file()]
        if len(single) > 1:
            raise NetmodelError(f"both {' and '.join(p.name for p in single)} are here; keep one",
                                file=str(single[0]))
        per_namespace = sorted(p for name in source.names for p in root.glob(f"*/{name}")
                               if p.is_file() and p.parent.name != source.folder)
        per_kind = sorted(p for p in (root / source.folder).glob("*.json") if p.is_file()) \
            if source is not NODES else []
        return single + per_namespace + per_kind

    def items(self, source: Source) -> list[Item]:
        """The items of every file of `source` ([] when an optional one has none)."""
        paths = self.files_of(source)
        if not paths and source.required:
            also = f" (also accepted: {', '.join(source.names[1:])})" if source.names[1:] else ""
            raise NetmodelError(f"missing; run '{source.command} > {source.names[0]}'{also}",
                                file=str(self.root / source.names[0]))
        self.files[source] = [str(p) for p in paths]
        return [item for path in paths for item in _listed(path, source)]

    def present(self, source: Source) -> bool:
        return bool(self.files.get(source))


def _listed(path: Path, source: Source) -> list[Item]:
    """The items of one listing file, each checked to be an object of its kind."""
    file, run = str(path), f"run '{source.command} > {path.name}'"
    size = path.stat().st_size
    if size > LISTING_BYTES():
        raise NetmodelError(LISTING_BYTES.refuse(size, "the file's size in bytes"), file=file)
    data = _json_of(path.read_bytes(), file, run)
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict) and "items" in data and isinstance(data["items"], (list, type(None))):
        items = data["items"] or []  # "items": null is an empty List
    elif isinstance(data, dict) and data.get("kind") == source.kind:
        items = [data]
    else:
        got = data.get("kind") if isinstance(data, dict) else data
        raise NetmodelError(f"expected a List of {source.kind}s, got {show(got)}; {run}", file=file)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise NetmodelError(f"expected {_a(source.kind)} object, got {show(item)}",
                                file=file, field=f"items[{i}]")
        kind = item.get("kind")
        if kind is not None and kind != source.kind:
            raise NetmodelError(f"this is {_a(str(kind))}, expected {_a(source.kind)}; {run}",
                                file=file, field=f"items[{i}]")
    return [Item(file, f"items[{i}]", item) for i, item in enumerate(items)]


def _json_of(data: bytes, file: str, run: str) -> Any:
    """The JSON of a listing file; one line on what it is instead when it is not JSON."""
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:64]
    if not start:
        raise NetmodelError(f"empty; {run}", file=file)
    if start[:1] not in (b"{", b"["):
        if b"\0" in data[:4096]:
            raise NetmodelError(f"not text: a binary file; {run}", file=file)
        what = "YAML (-o yaml)" if re.match(rb"(apiVersion|kind|items):", start) else \
            "kubectl's text output"
        raise NetmodelError(f"this is {what}; {run}", file=file)
    return read_json(data, file, _trimmed)


def _trimmed(pairs: list[tuple[str, Any]]) -> dict:
    """An object of the listing without the keys the import never reads."""
    return {k: v for k, v in pairs if k not in DROPPED_KEYS}
