"""What a connection is and does, for every engine and for `netmodel trace`.

`workload` draws the clients' demand, `placement` puts each connection's roles on nodes
and decides its rule walks and route, `replication` puts them together with the cluster,
the control plane and the plans, `records` holds what became of each request and
`conntrack` estimates the busiest node's table. Nothing here runs a clock: engines
(`netmodel.engines`) walk the plans.
"""
