"""The cluster's objects: nodes, endpoint Pods placed on them, Services, proxy rules."""
