#!/usr/bin/env python3
"""Benchmark (not a test): session operations on one grid node and on a 3-node cluster
(replicas 2), against the same workload done as plain Redis hash commands on one redis-server
(AOF, fsync every second), all on this machine in one run.

Workloads, each with sessions of 1 KB and of 50 KB (ten attributes):

  op        grid                          redis-server (what a Redis session store sends)
  create    SESSION.CREATE                HSET created/lastAccess/maxInactive + EXPIRE (pipelined)
  get       SESSION.GET (touches)         HGETALL + HSET lastAccess + EXPIRE (pipelined)
  set       SESSION.SET one attribute     HSET one field
  login     SESSION.LOGIN                 SADD user set + HSET principal (pipelined)

Every target gets the same load generator: WORKERS processes with one connection each (for the
cluster, spread over the nodes), no pipelining between operations, for SECONDS per workload.
The cluster runs twice: `grid-3` with plain clients, each sending everything to its one node,
and `grid-3r` with clients that send each session's commands to the node that holds it (the
primary of `sg:session:<id>`'s hash slot, from `CLUSTER SLOTS`), as the servlet filter and the
tower-sessions store do.
Reported: ops/s, p50 and p99 latency, and the grid/redis ratio of ops/s.

Usage: tests/bench/sessions-bench.py [path/to/sessiongrid]   (default: release build)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
WORKERS = int(os.environ.get("WORKERS", "8"))
SECONDS = float(os.environ.get("SECONDS", "5"))
SESSIONS = int(os.environ.get("SESSIONS", "2000"))
SIZES = {"1KB": 1024, "50KB": 50 * 1024}
OPS = ("create", "get", "set", "login")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ping(port: int) -> None:
    for _ in range(600):
        try:
            if redis.Redis(port=port, socket_timeout=1).ping():
                return
        except redis.RedisError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on {port}")


def binary() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1]
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    path = Path(target) / "release" / "sessiongrid"
    if not path.exists():
        meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                              cwd=ROOT, capture_output=True, text=True, check=True).stdout
        import json
        path = Path(json.loads(meta)["target_directory"]) / "release" / "sessiongrid"
    if not path.exists():
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    return str(path)


class Targets:
    """redis-server, one grid node and a 3-node cluster, killed on exit."""

    def __init__(self, work: Path, bin_path: str):
        self.procs: list[subprocess.Popen] = []
        self.work = work
        self.redis = free_port()
        self.spawn(["redis-server", "--port", str(self.redis), "--save", "", "--appendonly", "yes",
                    "--appendfsync", "everysec", "--dir", str(work)], "redis")
        self.single = free_port()
        self.spawn([bin_path, "node", "--data-dir", str(work / "single"), "--resp-listen",
                    f"127.0.0.1:{self.single}", "--http-listen", f"127.0.0.1:{free_port()}"], "single")
        secret = work / "secret"
        secret.write_text(secrets.token_hex(16))
        secret.chmod(0o600)
        self.cluster = [free_port() for _ in range(3)]
        p2p = [free_port() for _ in range(3)]
        for i in range(3):
            join = ["--join", f"127.0.0.1:{p2p[0]}"] if i else []
            self.spawn([bin_path, "node", "--data-dir", str(work / f"node{i}"), "--resp-listen",
                        f"127.0.0.1:{self.cluster[i]}", "--http-listen", f"127.0.0.1:{free_port()}",
                        "--p2p-listen", f"127.0.0.1:{p2p[i]}", "--cluster-secret-file", str(secret),
                        *join], f"node{i}")
        for port in [self.redis, self.single, *self.cluster]:
            wait_ping(port)
        self.wait_settled()

    def spawn(self, cmd: list[str], name: str) -> None:
        log = open(self.work / f"{name}.log", "w")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))

    def wait_settled(self) -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            views = [redis.Redis(port=p).info() for p in self.cluster]
            if all(v.get("grid_members") == 3 and v.get("grid_moving_partitions") == 0
                   and v.get("grid_serving") == 1 for v in views):
                return
            time.sleep(0.2)
        raise RuntimeError("cluster did not settle")

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def attributes(size: int) -> list[tuple[str, bytes]]:
    return [(f"attr{i}", os.urandom(size // 20).hex().encode()) for i in range(10)]


def populate(kind: str, ports: list[int], size: int) -> list[str]:
    """SESSIONS sessions of about `size` bytes each: their ids (grid) or keys (redis)."""
    ids = []
    clients = [redis.Redis(port=p) for p in ports]
    attrs = attributes(size)
    for i in range(SESSIONS):
        c = clients[i % len(clients)]
        if kind == "grid":
            sid = c.execute_command("SESSION.CREATE", "bench").decode()
            args = [x for name, value in attrs for x in (name, "bytes", value)]
            c.execute_command("SESSION.SET", sid, *args)
        else:
            sid = f"sess:{secrets.token_urlsafe(20)}"
            now = int(time.time() * 1000)
            pipe = c.pipeline(transaction=False)
            pipe.hset(sid, mapping={"creationTime": now, "lastAccessedTime": now,
                                    "maxInactiveInterval": 1800,
                                    **{f"attr:{n}": v for n, v in attrs}})
            pipe.expire(sid, 1800)
            pipe.execute()
        ids.append(sid)
    return ids


def router(port: int):
    """For a session id, a connection to the node holding it (as `CLUSTER SLOTS` says)."""
    from redis.crc import key_slot
    conns: dict[int, redis.Redis] = {}
    primary = [port] * 16384
    for first, last, (_, node_port, *_), *_ in redis.Redis(port=port).execute_command("CLUSTER SLOTS"):
        primary[first:last + 1] = [node_port] * (last - first + 1)

    def to(sid: str) -> redis.Redis:
        p = primary[key_slot(b"sg:session:" + sid.encode())]
        return conns.setdefault(p, redis.Redis(port=p, socket_timeout=30))
    return to


def worker(kind: str, port: int, op: str, ids: list[str], seconds: float, seed: int, out) -> None:
    c = redis.Redis(port=port, socket_timeout=30)
    to = router(port) if kind == "grid-routed" else (lambda _sid: c)
    value = b"v" * 100
    latencies = []
    i = seed
    stop = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        if start >= stop:
            break
        sid = ids[i % len(ids)]
        i += 7
        if kind != "redis":
            if op == "create":
                c.execute_command("SESSION.CREATE", "bench")
            elif op == "get":
                to(sid).execute_command("SESSION.GET", sid)
            elif op == "set":
                to(sid).execute_command("SESSION.SET", sid, "cart", "utf8", value)
            else:
                to(sid).execute_command("SESSION.LOGIN", sid, f"user{i % 5000}")
        else:
            now = int(time.time() * 1000)
            if op == "create":
                key = f"sess:{secrets.token_urlsafe(20)}"
                pipe = c.pipeline(transaction=False)
                pipe.hset(key, mapping={"creationTime": now, "lastAccessedTime": now,
                                        "maxInactiveInterval": 1800})
                pipe.expire(key, 1800)
                pipe.execute()
            elif op == "get":
                pipe = c.pipeline(transaction=False)
                pipe.hgetall(sid)
                pipe.hset(sid, "lastAccessedTime", now)
                pipe.expire(sid, 1800)
                pipe.execute()
            elif op == "set":
                c.hset(sid, "attr:cart", value)
            else:
                user = f"user{i % 5000}"
                pipe = c.pipeline(transaction=False)
                pipe.sadd(f"user:{user}", sid)
                pipe.hset(sid, "principal", user)
                pipe.execute()
        latencies.append(time.perf_counter() - start)
    out.put(latencies)


def run(kind: str, ports: list[int], op: str, ids: list[str]) -> tuple[float, float, float]:
    out = mp.Queue()
    procs = [mp.Process(target=worker, args=(kind, ports[w % len(ports)], op, ids, SECONDS, w, out))
             for w in range(WORKERS)]
    for p in procs:
        p.start()
    latencies = []
    for _ in procs:
        latencies += out.get()
    for p in procs:
        p.join()
    latencies.sort()
    n = len(latencies)
    return n / SECONDS, latencies[n // 2] * 1000, latencies[int(n * 0.99)] * 1000


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="sessions-bench-"))
    targets = Targets(work, binary())
    try:
        print(f"{WORKERS} workers x 1 connection, {SECONDS:.0f} s per row, {SESSIONS} sessions per size")
        print(f"{'size':<5} {'op':<7} {'target':<9} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'/redis':>7}")
        for size_name, size in SIZES.items():
            populated = {
                "redis": populate("redis", [targets.redis], size),
                "grid-1": populate("grid", [targets.single], size),
                "grid-3": populate("grid", targets.cluster, size),
            }
            populated["grid-3r"] = populated["grid-3"]
            ports = {"redis": [targets.redis], "grid-1": [targets.single], "grid-3": targets.cluster,
                     "grid-3r": targets.cluster}
            kinds = {"redis": "redis", "grid-1": "grid", "grid-3": "grid", "grid-3r": "grid-routed"}
            for op in OPS:
                baseline = None
                for target in ("redis", "grid-1", "grid-3", "grid-3r"):
                    rate, p50, p99 = run(kinds[target], ports[target], op, populated[target])
                    baseline = baseline or rate
                    print(f"{size_name:<5} {op:<7} {target:<9} {rate:>9.0f} {p50:>8.2f} {p99:>8.2f} "
                          f"{rate / baseline:>7.2f}", flush=True)
    finally:
        targets.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
