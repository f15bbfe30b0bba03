"""The fast engine's event loop, compiled by numba: SimPy's semantics, event for event.

The SimPy engine (`simpy_engine.py`) runs three kinds of process: the arrivals, one per
connection, and one per message receive. This loop runs the same processes as explicit
state machines over arrays and schedules the same events in the same order: an event is
(time, priority, id), URGENT for a process's start and NORMAL for timeouts, a station's
turn handed over and a process's end; ids count every scheduling, ends nobody waits for
included, so ties fall as they fall in SimPy. Times are computed as SimPy computes them
(now + delay, the delay summed first), so the records are equal to the last bit.

Stations are FIFO queues in front of identical servers: `free` servers and a linked list
of waiting processes; a finishing job hands its server to the head of the queue (a turn
event) or frees it. Connection c is process c; its message receive (at most one at a
time) is process n + c; the arrivals are process -1.

`_run` is one function on purpose (the one exception to the project's complexity limit):
its parts share two dozen arrays, its helpers are inlined by numba, and inlining more of
them made compiling take close to a minute; the parts are marked by comments. It is
compiled without numba's reference counting (`_nrt=False`): with it, the arrays its
helpers take cost atomic increments and decrements on every event, more than half the
loop's time (the 10k-Services case: 0.32 s against 0.14 s). So it allocates nothing:
`walk` makes its arrays (`State`) and, when the heap is short of room, doubles it and runs
the loop again from where it stopped.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from netmodel.connections.placement import ABSENT, CONTROL_PLANE
from netmodel.vocabulary import (
    APISERVER_THROTTLED,
    COMPLETED,
    RETRIES_EXHAUSTED,
    SERVER_QUEUE_FULL,
    STALE_ENDPOINT,
    TIMEOUT,
)

CPU, WIRE, DELAY, WORK = 0, 1, 2, 3
"""Step kinds as the flattened plans encode them."""
NONE = -3
"""A role outside the cluster (an external client, the cloud LB): no station."""
SERVER_ROLE = 3
APP, LB, INGRESS, APISERVER, PORT_FORWARD, KUBELET, DNS = range(7)
"""Work stations of a step; `Inputs.base` gives where each kind's stations start."""
SOFTIRQ_BASE, TX_BASE, RX_BASE, KUBELET_BASE, POD_BASE, LB_BASE, INGRESS_BASE, APISERVER_BASE, \
    PORT_FORWARD_BASE, DNS_BASE = range(10)

Plans = namedtuple("Plans", "start length kind at to seconds first delay var station")
"""Flattened plans: plan 2 r is route r's set-up, 2 r + 1 its request plan; steps as arrays."""
Inputs = namedtuple("Inputs", "stop arrival dropped first nreq route node control_node endpoint replica "
                              "lookups app dead servers base queue_limit inflight_limit timeout "
                              "path_nodes prefill conntrack_max time_wait lru backlog ring "
                              "syn_retries retries2 rto_min")
"""One replication: per connection and per request arrays, the stations' servers, limits."""
Outputs = namedtuple("Outputs", "start end status softirq_cpu connected packet_drops ct_evictions")
"""The record arrays the loop writes into."""

_URGENT, _NORMAL = 0, 1 << 62
"""Priorities folded into an event's key above its id: (priority, id) in one int64."""
_ARRIVALS = -1
# Connection states: what the process waits for.
_INIT, _ACQ, _SERVE, _TXACQ, _TX, _RECV, _DELAY, _DONE, _RETRY, _SYN_RETRY = range(10)
_BACKLOG_FULL, _RING_FULL, _CONNTRACK_FULL = 0, 1, 2
"""Columns of packet_drops."""
_SYN_RTO = 1.0
"""TCP's initial retransmission timeout, s (as simpy_engine.SYN_RTO)."""
# Receive states.
_R_INIT, _R_ARRIVE, _R_ACQ, _R_SERVE, _R_END, _R_DONE = range(6)


@njit(inline="always")
def _node(node, c, role, control_node):
    """The node of connection c's role (a column of placement's node table): NONE for a
    role off its route or outside the cluster (an outside client, the cloud LB: roles past
    the table, or -1), `control_node` for the API server's."""
    if role < 0 or role >= node.shape[1]:
        return NONE
    i = node[c, role]
    if i == ABSENT:
        return NONE
    return control_node if i == CONTROL_PLANE else i


@njit(inline="always")
def _push(heap_t, heap_k, heap_p, size, t, key, pid):
    """Add an event; returns the heap's new size (the arrays have room)."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        pt, pk = heap_t[parent], heap_k[parent]
        if pt < t or (pt == t and pk < key):
            break
        heap_t[i], heap_k[i], heap_p[i] = pt, pk, heap_p[parent]
        i = parent
    heap_t[i], heap_k[i], heap_p[i] = t, key, pid
    return size + 1


@njit(inline="always")
def _pop(heap_t, heap_k, heap_p, size):
    """Remove the first event (read from index 0 before); returns the new size."""
    size -= 1
    t, key, pid = heap_t[size], heap_k[size], heap_p[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        right = child + 1
        if right < size and (heap_t[right] < heap_t[child] or (
                heap_t[right] == heap_t[child] and heap_k[right] < heap_k[child])):
            child = right
        if t < heap_t[child] or (t == heap_t[child] and key < heap_k[child]):
            break
        heap_t[i], heap_k[i], heap_p[i] = heap_t[child], heap_k[child], heap_p[child]
        i = child
    heap_t[i], heap_k[i], heap_p[i] = t, key, pid
    return size


@njit(inline="always")
def _enqueue(st, pid, head, tail, nxt, waiting):
    """Wait in station st's FIFO queue."""
    nxt[pid] = -1
    if tail[st] >= 0:
        nxt[tail[st]] = pid
    else:
        head[st] = pid
    tail[st] = pid
    waiting[st] += 1


@njit(inline="always")
def _next_in_line(st, head, tail, nxt, waiting):
    """The process that gets station st's server (it leaves the queue), or -1."""
    q = head[st]
    if q >= 0:
        head[st] = nxt[q]
        if head[st] < 0:
            tail[st] = -1
        waiting[st] -= 1
    return q


@njit(inline="always")
def _send(c, s, now, n, dst, s_sec, base, rsub, rstep, rstation, heap_t, heap_k, heap_p, size, eid):
    """Connection c's NIC sends step s's message: the receive at `dst` starts (unless the
    message leaves the cluster) and the sender serialises it. Returns (size, eid)."""
    if dst != NONE:
        rsub[c], rstep[c], rstation[c] = _R_INIT, s, base[RX_BASE] + dst
        size = _push(heap_t, heap_k, heap_p, size, now, _URGENT + eid, n + c)
        eid += 1
    size = _push(heap_t, heap_k, heap_p, size, now + s_sec[s], _NORMAL + eid, c)
    return size, eid + 1


@njit(inline="always")
def _table_full(node, now, x, live, head, expires, exp_next, cap):
    """Whether node's conntrack table is full at `now`, its expired entries let go first
    (as conntrack.ConntrackTables.full). Entry e is connection e // width's on a node of
    its path; the connection's entries expire together."""
    h = head[node]
    width = x.path_nodes.shape[1]
    while h >= 0 and expires[h // width] <= now:
        h = exp_next[h]
        live[node] -= 1
    head[node] = h
    return _prefilled(node, now, x, cap) + live[node] >= x.conntrack_max


@njit(inline="always")
def _prefilled(node, now, x, cap):
    """Prefilled entries still held at `now` (as ConntrackTables._before)."""
    left = int(x.prefill[node] * (x.time_wait - now) / x.time_wait) if now < x.time_wait else 0
    return min(left, cap[node])


@njit(inline="always")
def _evict(node, now, x, live, head, exp_next, cap):
    """A full LRU map drops its oldest entry (as ConntrackTables.evict)."""
    h = head[node]
    if h >= 0:
        head[node] = exp_next[h]
        live[node] -= 1
    elif _prefilled(node, now, x, cap) > 0:
        cap[node] = _prefilled(node, now, x, cap) - 1


State = namedtuple("State", "free waiting head tail nxt sub req stp pend held cpu svc inapi "
                             "connecting rsub rstation rstep rdropped attempt tracked live "
                             "prefill_cap ct_head ct_tail expires exp_next heap_t heap_k heap_p scalars")
"""The loop's working arrays (see `_state`); `scalars` keeps its counters between runs."""
_SIZE, _EID, _INFLIGHT, _NEXT_ARRIVAL, _EVENTS = range(5)
"""Slots of State.scalars: the heap's size, the next event id, the API server's requests in
flight, the next arrival, the events processed."""


def walk(x, p, out) -> int:
    """Run one replication (Inputs x, Plans p) until x.stop, writing its Outputs; returns
    the number of events processed."""
    state = _state(x)
    while not _run(x, p, out, state):  # the heap is short of room
        state = _grown(state)
    return int(state.scalars[_EVENTS])


def _state(x) -> State:
    """Every station free, every connection yet to start, the arrivals' start (event id 0)
    in the heap; id 1 is the stop, URGENT at `stop`: nothing at the stop's instant runs."""
    n, nodes, stations = x.arrival.shape[0], x.prefill.size, x.servers.size
    room = _FIRST_ROOM
    heap_t, heap_k, heap_p = np.empty(room), np.empty(room, np.int64), np.empty(room, np.int64)
    heap_t[0], heap_k[0], heap_p[0] = 0.0, _URGENT, _ARRIVALS
    scalars = np.zeros(5, np.int64)
    scalars[_SIZE], scalars[_EID] = 1, 2
    return State(
        # stations: free servers, queue length, queue head and tail, next in queue
        x.servers.copy(), np.zeros(stations, np.int64), np.full(stations, -1, np.int64),
        np.full(stations, -1, np.int64), np.full(2 * n, -1, np.int32),
        # connections: state, request, step, plan end, station held, walk CPU, service
        # seconds, holds an API server slot, walks its set-up
        np.zeros(n, np.int8), np.zeros(n, np.int64), np.zeros(n, np.int32), np.zeros(n, np.int32),
        np.zeros(n, np.int32), np.zeros(n), np.zeros(n), np.zeros(n, np.bool_), np.zeros(n, np.bool_),
        # receives: state, port, step, dropped by the ring; retransmissions of the current
        # packet; holds conntrack entries on its path
        np.full(n, _R_DONE, np.int8), np.zeros(n, np.int32), np.zeros(n, np.int32),
        np.zeros(n, np.bool_), np.zeros(n, np.int32), np.zeros(n, np.bool_),
        # conntrack: live entries per node, each node's entries in order of expiry (a linked
        # list of entries c * width + k: connection c's on the k-th node of its path), when
        # each connection's entries expire
        np.zeros(nodes, np.int64), x.prefill.copy(), np.full(nodes, -1, np.int64),
        np.full(nodes, -1, np.int64), np.empty(n), np.empty(x.path_nodes.size, np.int32),
        heap_t, heap_k, heap_p, scalars)


def _grown(state: State) -> State:
    """The heap at twice its size."""
    def twice(a):
        return np.concatenate((a, np.empty_like(a)))
    return state._replace(heap_t=twice(state.heap_t), heap_k=twice(state.heap_k),
                          heap_p=twice(state.heap_p))


_ROOM = 8
"""Free heap slots the loop keeps: an event schedules a few more at most."""
_FIRST_ROOM = 1024
"""The heap's first size (it doubles when short of room)."""


@njit(cache=True, _nrt=False)
def _run(x, p, out, w):  # noqa: C901 - one compiled loop, see the module docstring
    """Walk events until x.stop (returns True) or until the heap is short of room
    (returns False: grow it and run again). Compiled without numba's
    reference counting: with it, every array a helper takes cost two atomic operations
    per event, a third of the loop's time."""
    # -- inputs, outputs and working arrays as locals (the loop reads them often) --------
    stop, arrival, dropped, first, nreq, route = x.stop, x.arrival, x.dropped, x.first, x.nreq, x.route
    node_of, cp, endpoint, replica = x.node, x.control_node, x.endpoint, x.replica
    lookups, app, dead = x.lookups, x.app, x.dead
    base, queue_limit, inflight_limit, timeout = x.base, x.queue_limit, x.inflight_limit, x.timeout
    p_start, p_len, s_kind, s_at, s_to = p.start, p.length, p.kind, p.at, p.to
    s_sec, s_first, s_delay, s_var, s_station = p.seconds, p.first, p.delay, p.var, p.station
    start, end, status, softirq_cpu, connected = (out.start, out.end, out.status, out.softirq_cpu,
                                                  out.connected)
    drops = out.packet_drops
    path_nodes, backlog, ring = x.path_nodes, x.backlog, x.ring
    n = arrival.shape[0]
    free, waiting, head, tail, nxt = w.free, w.waiting, w.head, w.tail, w.nxt
    sub, req, stp, pend, held, cpu, svc = w.sub, w.req, w.stp, w.pend, w.held, w.cpu, w.svc
    inapi, connecting, rsub, rstation, rstep = w.inapi, w.connecting, w.rsub, w.rstation, w.rstep
    rdropped, attempt, tracked = w.rdropped, w.attempt, w.tracked
    live, prefill_cap, ct_head, ct_tail = w.live, w.prefill_cap, w.ct_head, w.ct_tail
    expires, exp_next, heap_t, heap_k, heap_p = w.expires, w.exp_next, w.heap_t, w.heap_k, w.heap_p
    scalars = w.scalars
    size, eid, inflight = scalars[_SIZE], scalars[_EID], scalars[_INFLIGHT]
    next_arrival, events = scalars[_NEXT_ARRIVAL], scalars[_EVENTS]
    done = True
    while True:
        if size + _ROOM >= heap_t.size:
            done = False
            break
        if size == 0:
            break
        now = heap_t[0]
        if now >= stop:
            break
        pid = heap_p[0]
        size = _pop(heap_t, heap_k, heap_p, size)
        events += 1

        # -- the arrivals: the connection whose time came starts, the next is awaited -----
        if pid == _ARRIVALS:
            if next_arrival > 0 and dropped[next_arrival - 1] == 0:
                size = _push(heap_t, heap_k, heap_p, size, now, _URGENT + eid, next_arrival - 1)
                eid += 1
            if next_arrival < n:
                size = _push(heap_t, heap_k, heap_p, size,
                             now + max(arrival[next_arrival] - now, 0.0), _NORMAL + eid, _ARRIVALS)
                eid += 1
                next_arrival += 1
            else:
                eid += 1  # the arrivals end: an event nobody waits for
            continue

        # -- a message receive: first bits after one packet and the link latency, then the
        # switch port's queue, the whole message, the end --------------------------------
        if pid >= n:
            c = pid - n
            s = rstep[c]
            rstate = rsub[c]
            st = rstation[c]
            if rstate == _R_INIT:
                size = _push(heap_t, heap_k, heap_p, size, now + (s_first[s] + s_delay[s]),
                             _NORMAL + eid, pid)
                eid += 1
                rsub[c] = _R_ARRIVE
                continue
            if rstate == _R_ARRIVE and free[st] == 0 and waiting[st] >= ring:  # the ring drops it
                rdropped[c] = True
                size = _push(heap_t, heap_k, heap_p, size, now, _NORMAL + eid, pid)  # its end
                eid += 1
                rsub[c] = _R_END
                continue
            if rstate == _R_ARRIVE and free[st] == 0:
                _enqueue(st, pid, head, tail, nxt, waiting)
                rsub[c] = _R_ACQ
                continue
            if rstate == _R_ARRIVE or rstate == _R_ACQ:
                rdropped[c] = False
                if rstate == _R_ARRIVE:
                    free[st] -= 1
                size = _push(heap_t, heap_k, heap_p, size, now + s_sec[s], _NORMAL + eid, pid)
                eid += 1
                rsub[c] = _R_SERVE
                continue
            if rstate == _R_SERVE:
                q = _next_in_line(st, head, tail, nxt, waiting)
                if q >= 0:
                    size = _push(heap_t, heap_k, heap_p, size, now, _NORMAL + eid, q)
                    eid += 1
                else:
                    free[st] += 1
                size = _push(heap_t, heap_k, heap_p, size, now, _NORMAL + eid, pid)  # its end
                eid += 1
                rsub[c] = _R_END
                continue
            rsub[c] = _R_DONE  # its end is processed: the sender goes on if it waits
            if sub[c] != _RECV:
                continue
        else:
            c = pid

        # -- connection c resumes from what it waited for -------------------------------
        state = sub[c]
        retransmit = -1  # a packet dropped at this point (a packet_drops column) is sent again
        if state == _INIT or state == _SYN_RETRY:
            if state == _INIT:
                req[c] = first[c]
                plan = 2 * route[c]
                connecting[c] = p_len[plan] > 0
                if not connecting[c]:
                    plan += 1
                stp[c] = p_start[plan]
                pend[c] = p_start[plan] + p_len[plan]
                cpu[c] = 0.0
                inapi[c] = False
            if connecting[c]:  # the SYN needs an entry in each conntrack table on its path
                full = 0
                for k in range(path_nodes.shape[1]):
                    node = path_nodes[c, k]
                    if node >= 0 and _table_full(node, now, x, live, ct_head, expires, exp_next,
                                                 prefill_cap):
                        full += 1
                if full and x.lru:  # an LRU map (BPF conntrack) evicts its oldest entry
                    for k in range(path_nodes.shape[1]):
                        node = path_nodes[c, k]
                        if node >= 0 and _prefilled(node, now, x, prefill_cap) + live[node] >= \
                                x.conntrack_max:
                            _evict(node, now, x, live, ct_head, exp_next, prefill_cap)
                    out.ct_evictions[req[c]] += full
                elif full:
                    drops[req[c], _CONNTRACK_FULL] += 1
                    if attempt[c] >= x.syn_retries:
                        for k in range(req[c], first[c] + nreq[c]):
                            start[k] = now if np.isnan(start[k]) else start[k]
                            end[k] = now
                            status[k] = RETRIES_EXHAUSTED
                        sub[c] = _DONE
                        eid += 1  # the connection's process ends
                        continue
                    size = _push(heap_t, heap_k, heap_p, size, now + _SYN_RTO * 2.0 ** attempt[c],
                                 _NORMAL + eid, c)
                    eid += 1
                    attempt[c] += 1
                    sub[c] = _SYN_RETRY
                    continue
                for k in range(path_nodes.shape[1]):
                    if path_nodes[c, k] >= 0:
                        live[path_nodes[c, k]] += 1
                tracked[c] = True
                attempt[c] = 0
        elif state == _ACQ:  # a server was handed over: serve
            size = _push(heap_t, heap_k, heap_p, size, now + svc[c], _NORMAL + eid, c)
            eid += 1
            sub[c] = _SERVE
            continue
        elif state == _TXACQ:  # the NIC is ours
            size, eid = _send(c, stp[c], now, n, _node(node_of, c, s_to[stp[c]], cp), s_sec, base, rsub,
                              rstep, rstation, heap_t, heap_k, heap_p, size, eid)
            sub[c] = _TX
            continue
        elif state == _SERVE or state == _TX:
            q = _next_in_line(held[c], head, tail, nxt, waiting)
            if q >= 0:
                size = _push(heap_t, heap_k, heap_p, size, now, _NORMAL + eid, q)
                eid += 1
            else:
                free[held[c]] += 1
            if state == _TX and _node(node_of, c, s_to[stp[c]], cp) != NONE and rsub[c] != _R_DONE:
                sub[c] = _RECV  # the message is still being received
                continue
            if state == _TX and _node(node_of, c, s_to[stp[c]], cp) != NONE and rdropped[c]:
                retransmit = _RING_FULL
            else:
                if state == _TX:
                    attempt[c] = 0
                stp[c] += 1
        elif state == _DELAY:
            stp[c] += 1
        elif state == _RECV:  # the receive ended
            if rdropped[c]:
                retransmit = _RING_FULL
            else:
                attempt[c] = 0
                stp[c] += 1
        # (_RETRY: the step runs again)

        # -- connection c runs until it waits, or ends ------------------------------------
        while True:
            s = stp[c]
            refused = 0
            if retransmit >= 0:  # TCP sends the dropped packet again after its timeout
                drops[req[c], retransmit] += 1
                retransmit = -1
                if attempt[c] >= (x.syn_retries if connecting[c] else x.retries2):
                    refused = RETRIES_EXHAUSTED
                else:
                    rto = _SYN_RTO if connecting[c] else x.rto_min
                    size = _push(heap_t, heap_k, heap_p, size, now + rto * 2.0 ** attempt[c],
                                 _NORMAL + eid, c)
                    eid += 1
                    attempt[c] += 1
                    sub[c] = _RETRY
                    break
            elif s < pend[c]:
                kind = s_kind[s]
                if kind == DELAY:
                    size = _push(heap_t, heap_k, heap_p, size, now + s_sec[s], _NORMAL + eid, c)
                    eid += 1
                    sub[c] = _DELAY
                    break
                if kind == WIRE and _node(node_of, c, s_at[s], cp) != NONE:  # the sender's NIC
                    st = base[TX_BASE] + _node(node_of, c, s_at[s], cp)
                    held[c] = st
                    if free[st] == 0:
                        _enqueue(st, c, head, tail, nxt, waiting)
                        sub[c] = _TXACQ
                        break
                    free[st] -= 1
                    size, eid = _send(c, s, now, n, _node(node_of, c, s_to[s], cp), s_sec, base, rsub,
                                      rstep, rstation, heap_t, heap_k, heap_p, size, eid)
                    sub[c] = _TX
                    break
                if kind == WIRE:  # from outside: only the receiving port queues
                    st = base[RX_BASE] + _node(node_of, c, s_to[s], cp)
                    seconds = s_sec[s]
                    if free[st] == 0 and waiting[st] >= ring:
                        retransmit = _RING_FULL
                        continue
                elif kind == CPU and _node(node_of, c, s_at[s], cp) == NONE:
                    stp[c] += 1  # an external client's own CPU is not the cluster's
                    continue
                else:  # CPU or work: the fixed part plus the per-connection parts, in order
                    seconds = s_sec[s]
                    for j in range(4):
                        v = s_var[s, j]
                        if v < 0:
                            break
                        if connecting[c]:
                            seconds += lookups[c, v] if v < 3 else 0.0
                        else:
                            seconds += app[req[c]] if v == 3 else 0.0
                    if kind == CPU:
                        st = base[SOFTIRQ_BASE] + _node(node_of, c, s_at[s], cp)
                        if free[st] == 0 and waiting[st] >= backlog:
                            retransmit = _BACKLOG_FULL
                            continue
                        cpu[c] += seconds
                    else:
                        code = s_station[s]
                        if code == APP:
                            st = base[POD_BASE] + endpoint[c]
                            if free[st] == 0 and waiting[st] >= queue_limit:
                                refused = SERVER_QUEUE_FULL
                        elif code == APISERVER:
                            st = base[APISERVER_BASE]
                            if inapi[c]:  # the response leaves the API server
                                inflight -= 1
                                inapi[c] = False
                            elif inflight >= inflight_limit:
                                refused = APISERVER_THROTTLED
                            else:
                                inflight += 1
                                inapi[c] = True
                        elif code == LB:
                            st = base[LB_BASE]
                        elif code == INGRESS:
                            st = base[INGRESS_BASE] + replica[c]
                        elif code == PORT_FORWARD:
                            st = base[PORT_FORWARD_BASE]
                        elif code == KUBELET:
                            st = base[KUBELET_BASE] + _node(node_of, c, SERVER_ROLE, cp)
                        else:
                            st = base[DNS_BASE] + replica[c]
                if refused == 0:  # serve at st, after its queue if every server is busy
                    attempt[c] = 0
                    held[c] = st
                    svc[c] = seconds
                    if free[st] == 0:
                        _enqueue(st, c, head, tail, nxt, waiting)
                        sub[c] = _ACQ
                        break
                    free[st] -= 1
                    size = _push(heap_t, heap_k, heap_p, size, now + seconds, _NORMAL + eid, c)
                    eid += 1
                    sub[c] = _SERVE
                    break
            # -- the walk ends (refused: a station refused the request) -------------------
            r = req[c]
            r1 = first[c] + nreq[c]
            softirq_cpu[r] += cpu[c]
            attempt[c] = 0  # the next walk's packets start their own count
            if refused != 0 and inapi[c]:  # refused by the Pod behind the API server
                inflight -= 1
            more = True
            if connecting[c] and refused != 0:  # the set-up failed: every request fails
                for k in range(r, r1):
                    if np.isnan(start[k]):
                        start[k] = now
                    end[k] = now
                    status[k] = refused
                more = False
            elif not connecting[c]:
                end[r] = now
                if refused != 0:
                    status[r] = refused
                else:
                    status[r] = COMPLETED if now - start[r] <= timeout else TIMEOUT
                r += 1
                if r >= r1:
                    more = False
                else:
                    start[r] = now
                    if not now < dead[endpoint[c]]:  # conntrack keeps the dead Pod
                        for k in range(r, r1):
                            if np.isnan(start[k]):
                                start[k] = now
                            end[k] = now
                            status[k] = STALE_ENDPOINT
                        more = False
            if not more:
                if tracked[c]:  # its entries expire after TIME_WAIT
                    for k in range(path_nodes.shape[1]):
                        node = path_nodes[c, k]
                        if node < 0:
                            continue
                        e = c * path_nodes.shape[1] + k
                        exp_next[e] = -1
                        if ct_head[node] >= 0:
                            exp_next[ct_tail[node]] = e
                        else:
                            ct_head[node] = e
                        ct_tail[node] = e
                    expires[c] = now + x.time_wait
                sub[c] = _DONE
                eid += 1  # the connection's process ends: an event nobody waits for
                break
            if connecting[c]:
                connected[r] = now
            req[c] = r
            connecting[c] = False
            plan = 2 * route[c] + 1
            stp[c] = p_start[plan]
            pend[c] = p_start[plan] + p_len[plan]
            cpu[c] = 0.0
            inapi[c] = False
    scalars[_SIZE], scalars[_EID], scalars[_INFLIGHT] = size, eid, inflight
    scalars[_NEXT_ARRIVAL], scalars[_EVENTS] = next_arrival, events
    return done
