"""netmodel: a discrete-event capacity model of Kubernetes cluster networking.

A scenario (YAML) describes a cluster, its Services, the kube-proxy mode and a
workload; the engine (SimPy) pushes requests through the hops of the four network
layers (node, Pod, Service, external) with costs from a profile, and a sweep turns
many scenario points into latency and throughput curves.
"""

__version__ = "0.3.0"
