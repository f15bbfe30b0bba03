"""netmodel: a discrete-event capacity model of Kubernetes cluster networking.

A scenario (YAML) describes a cluster, its Services, the kube-proxy mode and a workload;
an engine pushes requests through the hops of the four network layers (node, Pod,
Service, external) with costs from a profile, and a sweep turns many scenario points into
latency and throughput curves. The functions below are the public API (docs/api.md);
`netmodel.api` holds them, imported on first use so that `import netmodel` stays light.
"""

__version__ = "0.4.0"

__all__ = ["LoadedScenario", "NetmodelError", "Trace", "__version__", "calibrate", "compare",
           "figures", "import_kubectl", "load", "open_results", "override", "plot", "point", "points",
           "records", "report", "run", "sweep", "trace", "validate"]

_FROM = {"LoadedScenario": "netmodel.scenario.loader", "NetmodelError": "netmodel.errors",
         "Trace": "netmodel.connections.trace"}


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'netmodel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_FROM.get(name, "netmodel.api")), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
