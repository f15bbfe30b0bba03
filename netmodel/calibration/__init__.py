"""The calibration lab: measure this kernel's costs inside network namespaces it makes.

A small cluster is built from namespaces (nodes with a cni0 bridge, Pods behind veth pairs,
a veth "underlay" between nodes, VXLAN or native routing), kube-proxy's own rule layouts
are loaded into the node (iptables-restore, nft -f, ipvsadm), and a Python TCP probe
measures round trips, new connections through Services, streams and the programming
times. The fits become a complete cost profile. Modules, bottom up: `netns` (isolation),
`probe` (the tool), `topology` (the clusters), `tables` (kube-proxy's rules), `experiments`
(the measurements), `fits` and `derive` (estimates -> parameters), `plots`, `record`
(files), `lab` (`run_lab`).
"""
