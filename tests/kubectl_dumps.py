"""Synthetic kubectl listings of a large cluster, for the import's size test."""

from __future__ import annotations

import json
from pathlib import Path


def synthetic_dump(folder: Path, services: int, nodes: int) -> None:
    """nodes.json, services.json and endpointslices.json of a cluster of `nodes` nodes and
    `services` Services with two ready endpoints each, as `kubectl get -o json` lists them."""
    folder.mkdir(parents=True)
    node_items = [{"kind": "Node", "metadata": {"name": f"node-{i}"},
                   "spec": {"podCIDR": f"10.{64 + i // 256}.{i % 256}.0/24"},
                   "status": {"addresses": [{"type": "InternalIP",
                                             "address": f"192.168.{i // 250}.{i % 250 + 1}"}],
                              "allocatable": {"pods": "110"}}} for i in range(nodes)]
    service_items, slices = [], []
    for s in range(services):
        namespace, name = f"ns-{s % 100}", f"svc-{s}"
        service_items.append({
            "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "ClusterIP",
                     "clusterIP": f"10.{96 + s // 65536}.{(s // 256) % 256}.{s % 256}",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                     "selector": {"app": name}}})
        endpoints = []
        for e in (2 * s, 2 * s + 1):
            node = e % nodes
            endpoints.append({"addresses": [f"10.{64 + node // 256}.{node % 256}."
                                            f"{(e // nodes) % 250 + 2}"],
                              "conditions": {"ready": True}, "nodeName": f"node-{node}"})
        slices.append({"kind": "EndpointSlice",
                       "metadata": {"name": f"{name}-x", "namespace": namespace,
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "endpoints": endpoints})
    for file, items in (("nodes.json", node_items), ("services.json", service_items),
                        ("endpointslices.json", slices)):
        (folder / file).write_text(json.dumps({"kind": "List", "items": items}))
