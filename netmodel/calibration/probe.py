"""The lab's measuring tool: a small TCP server and clients, run inside lab namespaces.

    python -m netmodel.calibration.probe serve ADDR PORT         echo on PORT, sink on PORT+1
    python -m netmodel.calibration.probe crr TARGETS [FIRST] OUT  a new connection per sample
    python -m netmodel.calibration.probe rr ADDR PORT N OUT       N round trips on one connection
    python -m netmodel.calibration.probe stream ADDR PORT S OUT   one stream for S seconds
    python -m netmodel.calibration.probe time OUT K INPUT -- ARGV  run ARGV K times, INPUT on stdin

Like netperf's TCP_CRR, TCP_RR and TCP_STREAM, with 1-byte requests and responses and
TCP_NODELAY, written in Python so that it runs wherever netmodel does and records every
sample (perf_counter_ns) and its own CPU time (getrusage). `crr` times connect() (SYN out,
SYN-ACK back) and the first request/response, then closes normally (FIN; the client's
socket goes to TIME_WAIT, as a real client's does), and records its local port so that the
lab can check that no sample reused a port. `time` runs a command (iptables-restore, nft)
from inside the namespace, so that `ip netns exec` is not part of the timing.
Results are JSON in OUT. Standard library only: this module imports nothing from netmodel.
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import threading
import time

STREAM_CHUNK = 1 << 20
"""Bytes per send() of `stream`."""
FIRST_PORT = 10_000
MAX_CONNECTIONS = 50_000
"""`crr` binds local ports FIRST_PORT .. FIRST_PORT + MAX_CONNECTIONS - 1."""


def _cpu() -> tuple[float, float]:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime, use.ru_stime


def _nodelay(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _echo(conn: socket.socket) -> None:
    try:
        while True:
            data = conn.recv(1)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    conn.close()


def _sink(conn: socket.socket) -> None:
    received = 0
    try:
        while True:
            data = conn.recv(STREAM_CHUNK)
            if not data:
                break
            received += len(data)
        conn.sendall(received.to_bytes(8, "big"))
    except OSError:
        pass
    conn.close()


def _listen(addr: str, port: int, handle) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((addr, port))
    server.listen(4096)
    while True:
        conn, _ = server.accept()
        handle(_nodelay(conn))


def serve(addr: str, port: int) -> None:
    """Echo one byte per byte on `port`, count a stream's bytes on `port` + 1; forever."""
    threading.Thread(target=_listen, args=(addr, port + 1, _sink), daemon=True).start()
    print("ready", flush=True)
    _listen(addr, port, _echo)


def crr(targets: list[tuple[str, int]], first_sample: int = 0) -> dict:
    """A new connection to each target in turn: connect, 1 byte each way, close. Sample i
    of the batch binds local port FIRST_PORT + i, so no two connections of a batch share a
    reply tuple (after DNAT, a reused port would make conntrack remap it: a cost no real
    client sees); `first_sample` continues a batch measured in chunks."""
    connect, first, ports = [], [], []
    cpu0 = _cpu()
    for i, (addr, port) in enumerate(targets, start=first_sample):
        sock = _nodelay(socket.socket())
        sock.bind(("", FIRST_PORT + i))
        t0 = time.perf_counter_ns()
        sock.connect((addr, port))
        t1 = time.perf_counter_ns()
        sock.sendall(b"x")
        sock.recv(1)
        t2 = time.perf_counter_ns()
        ports.append(sock.getsockname()[1])
        sock.close()
        connect.append(t1 - t0)
        first.append(t2 - t0)
    cpu1 = _cpu()
    return {"connect_ns": connect, "crr_ns": first, "local_port": ports,
            "user_s": cpu1[0] - cpu0[0], "sys_s": cpu1[1] - cpu0[1]}


def rr(addr: str, port: int, n: int) -> dict:
    """`n` 1-byte round trips on one connection (after 100 unrecorded ones)."""
    sock = _nodelay(socket.create_connection((addr, port)))
    for _ in range(100):
        sock.sendall(b"x")
        sock.recv(1)
    out = []
    cpu0 = _cpu()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        sock.sendall(b"x")
        sock.recv(1)
        out.append(time.perf_counter_ns() - t0)
    cpu1 = _cpu()
    sock.close()
    return {"rr_ns": out, "user_s": cpu1[0] - cpu0[0], "sys_s": cpu1[1] - cpu0[1]}


def stream(addr: str, port: int, seconds: float) -> dict:
    """Send for `seconds` on one connection; the time runs until the server has counted
    every byte (its reply after our FIN)."""
    sock = socket.create_connection((addr, port + 1))
    chunk = b"\0" * STREAM_CHUNK
    sent = 0
    t0 = time.perf_counter_ns()
    while time.perf_counter_ns() - t0 < seconds * 1e9:
        sock.sendall(chunk)
        sent += len(chunk)
    sock.shutdown(socket.SHUT_WR)
    received = int.from_bytes(sock.recv(8), "big")
    elapsed = time.perf_counter_ns() - t0
    sock.close()
    return {"bytes": received, "sent": sent, "elapsed_ns": elapsed}


def timed(argv: list[str], repeat: int, input_path: str) -> dict:
    """Wall time of `repeat` runs of `argv` with the file at `input_path` on stdin."""
    out = []
    for _ in range(repeat):
        with open(input_path, "rb") as stdin:
            t0 = time.perf_counter_ns()
            done = subprocess.run(argv, stdin=stdin, capture_output=True)
            out.append(time.perf_counter_ns() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{argv[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return {"wall_ns": out}


def main(argv: list[str]) -> None:
    mode, args = argv[0], argv[1:]
    if mode == "serve":
        serve(args[0], int(args[1]))
        return
    if mode == "crr":
        with open(args[0]) as f:
            targets = [(a, int(p)) for a, p in (line.split() for line in f if line.strip())]
        first_sample = int(args[1]) if len(args) == 3 else 0
        if first_sample + len(targets) > MAX_CONNECTIONS:
            raise SystemExit(f"at most {MAX_CONNECTIONS} connections per batch")
        result, out = crr(targets, first_sample), args[-1]
    elif mode == "rr":
        result, out = rr(args[0], int(args[1]), int(args[2])), args[3]
    elif mode == "stream":
        result, out = stream(args[0], int(args[1]), float(args[2])), args[3]
    elif mode == "time":
        sep = args.index("--")
        result, out = timed(args[sep + 1:], int(args[1]), args[2]), args[0]
    else:
        raise SystemExit(f"unknown probe mode {mode!r}")
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1:])
