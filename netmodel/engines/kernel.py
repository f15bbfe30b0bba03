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
them made compiling take close to a minute; the parts are marked by comments. Inlining
costs compile time per call site (numba copies the helper's IR there): what is rare
stays out of line (`_spill`). It is
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

from netmodel.connections.placement import ABSENT, CONTROL_PLANE, PATH_ROLES
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
                              "prefill conntrack_max time_wait lru backlog ring "
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
def _before(t, key, t2, key2):
    """Whether event (t, key) comes before (t2, key2)."""
    return t < t2 or (t == t2 and key < key2)


@njit(inline="always")
def _push(w, t, key, pid):
    """Schedule an event: among the near events (State.near_*, the least last) unless they
    are full and it comes after all of them; the farthest of a full near array goes to the
    heap to make room. Most events land a few microseconds ahead, before nearly every
    pending one: in a heap each would climb to the top and be sifted down again (~30 ns
    more a pair with 37 events than with 2), here it passes a few."""
    near = w.scalars[_NEAR]
    nt, nk, npid = w.near_t, w.near_k, w.near_p
    if near == nt.shape[0]:
        if _spill(w.scalars, nt, nk, npid, w.heap_t, w.heap_k, w.heap_p, t, key, pid):
            return
        near -= 1
    j = near
    while j > 0 and _before(nt[j - 1], nk[j - 1], t, key):
        nt[j], nk[j], npid[j] = nt[j - 1], nk[j - 1], npid[j - 1]
        j -= 1
    nt[j], nk[j], npid[j] = t, key, pid
    w.scalars[_NEAR] = near + 1


@njit(_nrt=False)
def _spill(scalars, nt, nk, npid, heap_t, heap_k, heap_p, t, key, pid):
    """A full near array: the event goes to the heap if it comes after all the near
    ones (True), else the farthest near one does, making room (False). Not inlined:
    each of `_push`'s call sites would copy it and its two heap pushes (numba's
    compile time of the loop: 43 s with them, 25 s without)."""
    if not _before(t, key, nt[0], nk[0]):
        scalars[_SIZE] = _heap_push(heap_t, heap_k, heap_p, scalars[_SIZE], t, key, pid)
        return True
    scalars[_SIZE] = _heap_push(heap_t, heap_k, heap_p, scalars[_SIZE], nt[0], nk[0], npid[0])
    for j in range(1, nt.shape[0]):
        nt[j - 1], nk[j - 1], npid[j - 1] = nt[j], nk[j], npid[j]
    return False


@njit(inline="always")
def _heap_push(heap_t, heap_k, heap_p, size, t, key, pid):
    """Add an event to the heap; returns its new size (the arrays have room)."""
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
def _heap_pop(heap_t, heap_k, heap_p, size):
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
def _slot_mask(size):
    """Connection c's record in a ring of `size` records is ring[c & mask]: a power of two,
    or (mask -1) one record per connection."""
    return size - 1 if size & (size - 1) == 0 else -1


@njit(inline="always")
def _link(conn, mask, pid, n, to):
    """Process pid's next in its queue is `to` (the link is in its connection's record)."""
    if pid >= n:
        conn[(pid - n) & mask].rlink = to
    else:
        conn[pid & mask].link = to


@njit(inline="always")
def _linked(conn, mask, pid, n):
    """Process pid's next in its queue."""
    if pid >= n:
        return conn[(pid - n) & mask].rlink
    return conn[pid & mask].link


@njit(inline="always")
def _enqueue(st, pid, station, conn, mask, n):
    """Wait in station st's FIFO queue."""
    _link(conn, mask, pid, n, -1)
    if station[st].tail >= 0:
        _link(conn, mask, station[st].tail, n, pid)
    else:
        station[st].head = pid
    station[st].tail = pid
    station[st].waiting += 1


@njit(inline="always")
def _next_in_line(st, station, conn, mask, n):
    """The process that gets station st's server (it leaves the queue), or -1."""
    q = station[st].head
    if q >= 0:
        station[st].head = _linked(conn, mask, q, n)
        if station[st].head < 0:
            station[st].tail = -1
        station[st].waiting -= 1
    return q


@njit(inline="always")
def _send(c, rc, s, now, n, dst, s_sec, base, w, eid):
    """Connection c's NIC sends step s's message: the receive at `dst` starts (unless the
    message leaves the cluster) and the sender serialises it. Returns the next event id."""
    if dst != NONE:
        rc.rsub, rc.rstep, rc.rstation = _R_INIT, s, base[RX_BASE] + dst
        _push(w, now, _URGENT + eid, n + c)
        eid += 1
    _push(w, now + s_sec[s], _NORMAL + eid, c)
    return eid + 1


@njit(inline="always")
def _path_node(node, c, k):
    """The node of connection c's k-th role (k < PATH_ROLES) where it holds a conntrack
    entry: a cluster node no role before it has (placement.path_nodes' distinct nodes),
    or -1."""
    i = node[c, k]
    if i < 0:  # absent, or the control plane's
        return -1
    for j in range(k):
        if node[c, j] == i:
            return -1
    return i


@njit(inline="always")
def _table_full(node, now, x, live, head, end, exp_next, cap):
    """Whether node's conntrack table is full at `now`, its expired entries let go first
    (as conntrack.ConntrackTables.full). Entry e is connection e % n's on its node of role
    e // n; the connection's entries expire together, the hold after its last request's
    end."""
    h = head[node]
    while h >= 0:
        c = h % x.arrival.shape[0]
        if end[x.first[c] + x.nreq[c] - 1] + x.time_wait > now:
            break
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


State = namedtuple("State", "station conn live prefill_cap ct_head ct_tail "
                             "exp_next heap_t heap_k heap_p near_t near_k near_p scalars")
"""The loop's working arrays (see `_state`); `scalars` keeps its counters between runs."""
CONNECTION = np.dtype([
    # what the process waits for, what its message receive waits for
    ("sub", np.int8), ("rsub", np.int8),
    # holds an API server slot, walks its set-up, its receive was dropped by the ring, holds
    # conntrack entries on its path; retransmissions of the current packet
    ("inapi", np.bool_), ("connecting", np.bool_), ("rdropped", np.bool_), ("tracked", np.bool_),
    ("attempt", np.int16),
    # request, step, plan end, station held, the receive's port and step
    ("req", np.int64), ("stp", np.int32), ("pend", np.int32), ("held", np.int32),
    ("rstation", np.int32), ("rstep", np.int32),
    # the next process in the queue the connection's process (its receive's) waits in; the
    # connection
    ("link", np.int32), ("rlink", np.int32), ("id", np.int32),
    # walk CPU, service seconds
    ("cpu", np.float64), ("svc", np.float64)], align=True)
"""A live connection's state in the loop: one 64-byte record, one cache line, in a ring
(`State.conn`) where connection c has slot c mod its size. The ring spans the connections
from the oldest still alive to the newest, so it stays small and in cache (64 records for
200,000 connections of the 10k-Services case); one connection alive all run stretches it
to one record per connection, as many as an array of them (`_grown`). As 16 arrays a
record's fields sat at the same offsets of 16 page-aligned blocks, in the same cache
sets."""
STATION = np.dtype([("free", np.int32), ("waiting", np.int32), ("head", np.int32), ("tail", np.int32)])
"""A station: free servers, processes waiting, the queue's first and last process."""
_SIZE, _EID, _INFLIGHT, _NEXT_ARRIVAL, _EVENTS, _NEAR = range(6)
"""Slots of State.scalars: the heap's size, the next event id, the API server's requests in
flight, the next arrival, the events processed, the near events."""
_NEAR_ROOM = 64
"""Near events kept sorted beside the heap (`_push`)."""


def walk(x, p, out) -> int:
    """Run one replication (Inputs x, Plans p) until x.stop, writing its Outputs; returns
    the number of events processed."""
    assert x.first.size * PATH_ROLES < 2**31 and x.app.size < 2**31, "ids are int32"
    state = _state(x)
    while not _run(x, p, out, state):  # the heap or the connection ring is short of room
        state = _grown(state, x.arrival.shape[0])
    return int(state.scalars[_EVENTS])


def _state(x) -> State:
    """Every station free, every connection yet to start, the arrivals' start (event id 0)
    in the heap; id 1 is the stop, URGENT at `stop`: nothing at the stop's instant runs."""
    n, nodes = x.arrival.shape[0], x.prefill.size
    room = _FIRST_ROOM
    heap_t, heap_k, heap_p = np.empty(room), np.empty(room, np.int64), np.empty(room, np.int64)
    heap_t[0], heap_k[0], heap_p[0] = 0.0, _URGENT, _ARRIVALS
    scalars = np.zeros(6, np.int64)
    scalars[_SIZE], scalars[_EID] = 1, 2
    return State(
        _station_records(x.servers), _connection_ring(_FIRST_RING),
        # conntrack: live entries per node, each node's entries in order of expiry (a linked
        # list of entries k * n + c: connection c's on the node of its k-th role; a role no
        # connection puts on a distinct node leaves its n entries untouched, not in memory)
        np.zeros(nodes, np.int64), x.prefill.copy(), np.full(nodes, -1, np.int64),
        np.full(nodes, -1, np.int64), np.empty(n * PATH_ROLES, np.int32),
        # the pending events: a heap, and the next few sorted beside it (none yet: _NEAR)
        heap_t, heap_k, heap_p, np.empty(_NEAR_ROOM), np.empty(_NEAR_ROOM, np.int64),
        np.empty(_NEAR_ROOM, np.int64), scalars)


def _connection_ring(n: int) -> np.ndarray:
    """A ring of n free connection records, each on a cache line of its own."""
    conn = _aligned(n, CONNECTION)
    conn["sub"], conn["rsub"] = _DONE, _R_DONE
    return conn


def _station_records(servers: np.ndarray) -> np.ndarray:
    """A record per station: every server free, nobody waiting."""
    station = _aligned(servers.size, STATION)
    station["free"], station["head"], station["tail"] = servers, -1, -1
    return station


def _aligned(n: int, dtype: np.dtype) -> np.ndarray:
    """n zeroed records of `dtype` from a cache-line boundary (numpy's large blocks start
    16 bytes past a page)."""
    line = 64
    raw = np.zeros(n * dtype.itemsize + line, np.uint8)
    skip = -raw.ctypes.data % line
    return raw[skip:skip + n * dtype.itemsize].view(dtype)


def _grown(state: State, n: int) -> State:
    """The heap, or else the connection ring, at twice its size (what stopped the loop);
    a ring that would pass the n connections becomes one record per connection."""
    def twice(a):
        return np.concatenate((a, np.empty_like(a)))
    if state.scalars[_SIZE] + _ROOM >= state.heap_t.size:
        return state._replace(heap_t=twice(state.heap_t), heap_k=twice(state.heap_k),
                              heap_p=twice(state.heap_p))
    ring = _connection_ring(min(2 * state.conn.size, n))
    live = state.conn[state.conn["sub"] != _DONE]
    ring[live["id"] & _slot_mask.py_func(ring.size)] = live
    return state._replace(conn=ring)


_ROOM = 8
"""Free heap slots the loop keeps: an event schedules a few more at most."""
_FIRST_ROOM = 1024
"""The heap's first size (it doubles when short of room)."""
_FIRST_RING = 64
"""The connection ring's first size, a power of two (it doubles when the slot of an
arriving connection is still taken, up to one record per connection)."""


@njit(cache=True, _nrt=False)
def _run(x, p, out, w):  # noqa: C901 - one compiled loop, see the module docstring
    """Walk events until x.stop (returns True) or until the heap is short of room or an
    arriving connection's slot in the ring is taken (returns False: grow and run again).
    Compiled without numba's reference counting (see the module docstring), so it
    allocates nothing."""
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
    backlog, ring = x.backlog, x.ring
    n = arrival.shape[0]
    station, conn = w.station, w.conn
    mask = _slot_mask(conn.shape[0])
    live, prefill_cap, ct_head, ct_tail = w.live, w.prefill_cap, w.ct_head, w.ct_tail
    exp_next, heap_t, heap_k, heap_p = w.exp_next, w.heap_t, w.heap_k, w.heap_p
    scalars = w.scalars
    eid, inflight = scalars[_EID], scalars[_INFLIGHT]
    near_t, near_k, near_p = w.near_t, w.near_k, w.near_p
    next_arrival, events = scalars[_NEXT_ARRIVAL], scalars[_EVENTS]
    done = True
    while True:
        size, near = scalars[_SIZE], scalars[_NEAR]
        if size + _ROOM >= heap_t.size:
            done = False
            break
        # the next event: the least near one or the heap's first
        from_near = near > 0 and (size == 0 or _before(near_t[near - 1], near_k[near - 1],
                                                        heap_t[0], heap_k[0]))
        if from_near:
            now, pid = near_t[near - 1], near_p[near - 1]
        elif size > 0:
            now, pid = heap_t[0], heap_p[0]
        else:
            break
        if now >= stop:
            break
        if pid == _ARRIVALS and next_arrival > 0 and dropped[next_arrival - 1] == 0 and \
                conn[(next_arrival - 1) & mask].sub != _DONE:  # the ring is full
            done = False
            break
        if from_near:
            scalars[_NEAR] = near - 1
        else:
            scalars[_SIZE] = _heap_pop(heap_t, heap_k, heap_p, size)
        events += 1

        # -- the arrivals: the connection whose time came starts, the next is awaited -----
        if pid == _ARRIVALS:
            if next_arrival > 0 and dropped[next_arrival - 1] == 0:  # it takes its slot
                c = next_arrival - 1
                rc = conn[c & mask]
                rc.sub, rc.rsub, rc.id, rc.attempt = _INIT, _R_DONE, c, 0
                rc.rdropped, rc.tracked = False, False
                _push(w, now, _URGENT + eid, c)
                eid += 1
            if next_arrival < n:
                _push(w, now + max(arrival[next_arrival] - now, 0.0), _NORMAL + eid, _ARRIVALS)
                eid += 1
                next_arrival += 1
            else:
                eid += 1  # the arrivals end: an event nobody waits for
            continue

        # -- a message receive: first bits after one packet and the link latency, then the
        # switch port's queue, the whole message, the end --------------------------------
        if pid >= n:
            c = pid - n
            rc = conn[c & mask]  # connection c's record (a reference: writes go to conn)
            s = rc.rstep
            rstate = rc.rsub
            st = rc.rstation
            if rstate == _R_INIT:
                _push(w, now + (s_first[s] + s_delay[s]), _NORMAL + eid, pid)
                eid += 1
                rc.rsub = _R_ARRIVE
                continue
            if rstate == _R_ARRIVE and station[st].free == 0 and station[st].waiting >= ring:  # the ring drops it
                rc.rdropped = True
                _push(w, now, _NORMAL + eid, pid)  # its end
                eid += 1
                rc.rsub = _R_END
                continue
            if rstate == _R_ARRIVE and station[st].free == 0:
                _enqueue(st, pid, station, conn, mask, n)
                rc.rsub = _R_ACQ
                continue
            if rstate == _R_ARRIVE or rstate == _R_ACQ:
                rc.rdropped = False
                if rstate == _R_ARRIVE:
                    station[st].free -= 1
                _push(w, now + s_sec[s], _NORMAL + eid, pid)
                eid += 1
                rc.rsub = _R_SERVE
                continue
            if rstate == _R_SERVE:
                q = _next_in_line(st, station, conn, mask, n)
                if q >= 0:
                    _push(w, now, _NORMAL + eid, q)
                    eid += 1
                else:
                    station[st].free += 1
                _push(w, now, _NORMAL + eid, pid)  # its end
                eid += 1
                rc.rsub = _R_END
                continue
            rc.rsub = _R_DONE  # its end is processed: the sender goes on if it waits
            if rc.sub != _RECV:
                continue
        else:
            c = pid
            rc = conn[c & mask]

        # -- connection c resumes from what it waited for -------------------------------
        state = rc.sub
        retransmit = -1  # a packet dropped at this point (a packet_drops column) is sent again
        if state == _INIT or state == _SYN_RETRY:
            if state == _INIT:
                rc.req = first[c]
                plan = 2 * route[c]
                rc.connecting = p_len[plan] > 0
                if not rc.connecting:
                    plan += 1
                rc.stp = p_start[plan]
                rc.pend = p_start[plan] + p_len[plan]
                rc.cpu = 0.0
                rc.inapi = False
            if rc.connecting:  # the SYN needs an entry in each conntrack table on its path
                full = 0
                for k in range(PATH_ROLES):
                    node = _path_node(node_of, c, k)
                    if node >= 0 and _table_full(node, now, x, live, ct_head, end, exp_next,
                                                 prefill_cap):
                        full += 1
                if full and x.lru:  # an LRU map (BPF conntrack) evicts its oldest entry
                    for k in range(PATH_ROLES):
                        node = _path_node(node_of, c, k)
                        if node >= 0 and _prefilled(node, now, x, prefill_cap) + live[node] >= \
                                x.conntrack_max:
                            _evict(node, now, x, live, ct_head, exp_next, prefill_cap)
                    out.ct_evictions[rc.req] += full
                elif full:
                    drops[rc.req, _CONNTRACK_FULL] += 1
                    if rc.attempt >= x.syn_retries:
                        for k in range(rc.req, first[c] + nreq[c]):
                            start[k] = now if np.isnan(start[k]) else start[k]
                            end[k] = now
                            status[k] = RETRIES_EXHAUSTED
                        rc.sub = _DONE
                        eid += 1  # the connection's process ends
                        continue
                    _push(w, now + _SYN_RTO * 2.0 ** rc.attempt, _NORMAL + eid, c)
                    eid += 1
                    rc.attempt += 1
                    rc.sub = _SYN_RETRY
                    continue
                for k in range(PATH_ROLES):
                    node = _path_node(node_of, c, k)
                    if node >= 0:
                        live[node] += 1
                rc.tracked = True
                rc.attempt = 0
        elif state == _ACQ:  # a server was handed over: serve
            _push(w, now + rc.svc, _NORMAL + eid, c)
            eid += 1
            rc.sub = _SERVE
            continue
        elif state == _TXACQ:  # the NIC is ours
            eid = _send(c, rc, rc.stp, now, n, _node(node_of, c, s_to[rc.stp], cp), s_sec, base, w,
                        eid)
            rc.sub = _TX
            continue
        elif state == _SERVE or state == _TX:
            q = _next_in_line(rc.held, station, conn, mask, n)
            if q >= 0:
                _push(w, now, _NORMAL + eid, q)
                eid += 1
            else:
                station[rc.held].free += 1
            if state == _TX and _node(node_of, c, s_to[rc.stp], cp) != NONE and rc.rsub != _R_DONE:
                rc.sub = _RECV  # the message is still being received
                continue
            if state == _TX and _node(node_of, c, s_to[rc.stp], cp) != NONE and rc.rdropped:
                retransmit = _RING_FULL
            else:
                if state == _TX:
                    rc.attempt = 0
                rc.stp += 1
        elif state == _DELAY:
            rc.stp += 1
        elif state == _RECV:  # the receive ended
            if rc.rdropped:
                retransmit = _RING_FULL
            else:
                rc.attempt = 0
                rc.stp += 1
        # (_RETRY: the step runs again)

        # -- connection c runs until it waits, or ends ------------------------------------
        while True:
            s = rc.stp
            refused = 0
            if retransmit >= 0:  # TCP sends the dropped packet again after its timeout
                drops[rc.req, retransmit] += 1
                retransmit = -1
                if rc.attempt >= (x.syn_retries if rc.connecting else x.retries2):
                    refused = RETRIES_EXHAUSTED
                else:
                    rto = _SYN_RTO if rc.connecting else x.rto_min
                    _push(w, now + rto * 2.0 ** rc.attempt, _NORMAL + eid, c)
                    eid += 1
                    rc.attempt += 1
                    rc.sub = _RETRY
                    break
            elif s < rc.pend:
                kind = s_kind[s]
                if kind == DELAY:
                    _push(w, now + s_sec[s], _NORMAL + eid, c)
                    eid += 1
                    rc.sub = _DELAY
                    break
                if kind == WIRE and _node(node_of, c, s_at[s], cp) != NONE:  # the sender's NIC
                    st = base[TX_BASE] + _node(node_of, c, s_at[s], cp)
                    rc.held = st
                    if station[st].free == 0:
                        _enqueue(st, c, station, conn, mask, n)
                        rc.sub = _TXACQ
                        break
                    station[st].free -= 1
                    eid = _send(c, rc, s, now, n, _node(node_of, c, s_to[s], cp), s_sec, base, w,
                                eid)
                    rc.sub = _TX
                    break
                if kind == WIRE:  # from outside: only the receiving port queues
                    st = base[RX_BASE] + _node(node_of, c, s_to[s], cp)
                    seconds = s_sec[s]
                    if station[st].free == 0 and station[st].waiting >= ring:
                        retransmit = _RING_FULL
                        continue
                elif kind == CPU and _node(node_of, c, s_at[s], cp) == NONE:
                    rc.stp += 1  # an external client's own CPU is not the cluster's
                    continue
                else:  # CPU or work: the fixed part plus the per-connection parts, in order
                    seconds = s_sec[s]
                    for j in range(4):
                        v = s_var[s, j]
                        if v < 0:
                            break
                        if rc.connecting:
                            seconds += lookups[c, v] if v < 3 else 0.0
                        else:
                            seconds += app[rc.req] if v == 3 else 0.0
                    if kind == CPU:
                        st = base[SOFTIRQ_BASE] + _node(node_of, c, s_at[s], cp)
                        if station[st].free == 0 and station[st].waiting >= backlog:
                            retransmit = _BACKLOG_FULL
                            continue
                        rc.cpu += seconds
                    else:
                        code = s_station[s]
                        if code == APP:
                            st = base[POD_BASE] + endpoint[c]
                            if station[st].free == 0 and station[st].waiting >= queue_limit:
                                refused = SERVER_QUEUE_FULL
                        elif code == APISERVER:
                            st = base[APISERVER_BASE]
                            if rc.inapi:  # the response leaves the API server
                                inflight -= 1
                                rc.inapi = False
                            elif inflight >= inflight_limit:
                                refused = APISERVER_THROTTLED
                            else:
                                inflight += 1
                                rc.inapi = True
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
                    rc.attempt = 0
                    rc.held = st
                    rc.svc = seconds
                    if station[st].free == 0:
                        _enqueue(st, c, station, conn, mask, n)
                        rc.sub = _ACQ
                        break
                    station[st].free -= 1
                    _push(w, now + seconds, _NORMAL + eid, c)
                    eid += 1
                    rc.sub = _SERVE
                    break
            # -- the walk ends (refused: a station refused the request) -------------------
            r = rc.req
            r1 = first[c] + nreq[c]
            softirq_cpu[r] += rc.cpu
            rc.attempt = 0  # the next walk's packets start their own count
            if refused != 0 and rc.inapi:  # refused by the Pod behind the API server
                inflight -= 1
            more = True
            if rc.connecting and refused != 0:  # the set-up failed: every request fails
                for k in range(r, r1):
                    if np.isnan(start[k]):
                        start[k] = now
                    end[k] = now
                    status[k] = refused
                more = False
            elif not rc.connecting:
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
                if rc.tracked:  # its entries expire after TIME_WAIT
                    for k in range(PATH_ROLES):
                        node = _path_node(node_of, c, k)
                        if node < 0:
                            continue
                        e = k * n + c
                        exp_next[e] = -1
                        if ct_head[node] >= 0:
                            exp_next[ct_tail[node]] = e
                        else:
                            ct_head[node] = e
                        ct_tail[node] = e
                rc.sub = _DONE
                eid += 1  # the connection's process ends: an event nobody waits for
                break
            if rc.connecting:
                connected[r] = now
            rc.req = r
            rc.connecting = False
            plan = 2 * route[c] + 1
            rc.stp = p_start[plan]
            rc.pend = p_start[plan] + p_len[plan]
            rc.cpu = 0.0
            rc.inapi = False
    scalars[_EID], scalars[_INFLIGHT] = eid, inflight
    scalars[_NEXT_ARRIVAL], scalars[_EVENTS] = next_arrival, events
    return done
