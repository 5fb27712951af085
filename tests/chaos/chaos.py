#!/usr/bin/env python3
"""A chaos run: real nodes in network namespaces, faults from a seed, load, and a checker.

``run.sh`` builds the binary and calls this. The run:

* starts ``--nodes`` nodes (default 5, two copies of each partition, ``--split deny`` by
  default), each in its own network namespace on one bridge, each with its data directory on a
  tmpfs of its own (so it can fill up);
* injects one fault at a time, chosen and timed from ``--seed`` and logged: kill -9 and restart,
  SIGSTOP/SIGCONT pauses of 0.5-10 s, a link cut between two nodes (both ways or one way), a
  node cut off from everyone, packet loss, a slow link (a token bucket: packets delayed up to a
  second and dropped past that; the kernels this runs on may lack netem, and TCP hides
  reordering from the nodes anyway), a full disk, a node restarted with its data directory
  lost. After each fault it waits until the cluster has settled again (every node serving, all
  members seen, nothing moving), so at most one copy of any partition is ever in doubt;
* meanwhile clients run SET/GET/DEL on registers (each key written by one client, every write a
  unique value), INCR on counters, and session operations: a compare-and-set counter in shared
  sessions (``SESSION.SET IFVERSION``), logins with ``MAX 1``, rotations and logouts. Every
  request is recorded with its answer and its start and end;
* when the time is up it heals everything, waits for the cluster to settle and reads every key
  and session back through every node; then the checker (``checker.py``) goes over the history.

Prints the operations, the faults injected and the violations; exits 1 if there are any, 2 if
the run could not be set up here (no namespaces, not root).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))

import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

from checker import History, check  # noqa: E402
from netns import IP, Net, available, sh  # noqa: E402

RESP, HTTP, P2P = 6379, 8080, 7000
DISK_MB = 256
SETTLE_S = 90
# The faults a run picks from, with their weights.
FAULTS = {"kill": 20, "pause": 20, "cut": 15, "one-way": 10, "isolate": 10, "loss": 10,
          "slow": 8, "disk-full": 8, "data-lost": 7}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


class Node:
    """One `sessiongrid node` process in namespace ``i``, its data on a tmpfs of its own."""

    def __init__(self, run: "Run", i: int):
        self.run, self.i = run, i
        self.ns, self.host = run.net.namespaces[i], run.net.address(i)
        self.dir = run.root / f"node{i}"
        self.data = self.dir / "data"
        self.data.mkdir(parents=True)
        sh("mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(self.data))
        self.filler = self.data / "filler"
        self.proc: subprocess.Popen | None = None

    def start(self, join: list[str]) -> None:
        cmd = [IP, "netns", "exec", self.ns, self.run.binary, "node",
               "--data-dir", str(self.data),
               "--resp-listen", f"{self.host}:{RESP}", "--http-listen", f"{self.host}:{HTTP}",
               "--p2p-listen", f"{self.host}:{P2P}", "--replicas", "2",
               "--cluster-secret-file", str(self.run.secret), "--protected-mode", "no",
               "--when-split", self.run.split]
        if join:
            cmd += ["--join", ",".join(join)]
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        if self.run.plant:
            env["SESSIONGRID_PLANT_DEFECT"] = self.run.plant
        with open(self.dir / "log", "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)

    def restart(self) -> None:
        others = [f"{self.run.net.address(j)}:{P2P}" for j in range(self.run.n) if j != self.i]
        self.start(others)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.proc.pid, sig)

    def wipe(self) -> None:
        for p in self.data.iterdir():
            sh("rm", "-rf", str(p))

    def fill(self) -> None:
        """Takes every free byte of the node's disk."""
        with open(self.filler, "ab", buffering=0) as f:
            for chunk in (1 << 20, 4096, 64):
                try:
                    while f.write(b"\0" * chunk):
                        pass
                except OSError:
                    pass

    def unfill(self) -> None:
        self.filler.unlink(missing_ok=True)

    def info(self) -> dict:
        try:
            return redis.Redis(host=self.host, port=RESP, socket_timeout=2,
                               socket_connect_timeout=1).info()
        except (redis.RedisError, OSError):
            return {}

    def close(self) -> None:
        self.signal(signal.SIGCONT)
        self.kill()
        sh("umount", "-l", str(self.data), check=False)


class Run:
    def __init__(self, args, net: Net, root: Path):
        self.args = args
        self.n = args.nodes
        self.binary = args.bin
        self.split = args.split
        self.plant = args.plant
        self.net = net
        self.root = root
        self.secret = root / "cluster-secret"
        self.secret.write_text("chaos run cluster secret")
        self.secret.chmod(0o600)
        self.rng = random.Random(args.seed)
        self.nodes = [Node(self, i) for i in range(self.n)]
        self.history = History(args.split)
        # The node the calling thread's last request went through.
        self.local = threading.local()
        self.stop = threading.Event()
        self.faults: list[tuple[float, str]] = []
        # The nodes the fault being injected touches.
        self.touched: set[int] = set()
        self.unsubscribe = threading.Event()

    # -- the cluster ------------------------------------------------------------------------

    def settled(self) -> bool:
        views = [n.info() for n in self.nodes]
        return all(
            v.get("grid_members") == self.n
            and v.get("grid_moving_partitions") == 0
            and v.get("grid_serving") == 1
            and v.get("grid_epoch") == views[0].get("grid_epoch")
            for v in views
        )

    def wait_settled(self, timeout: float = SETTLE_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.settled():
                return True
            time.sleep(0.3)
        return False

    def form(self) -> None:
        first = self.nodes[0]
        first.start([])
        for node in self.nodes[1:]:
            node.start([f"{first.host}:{P2P}"])
        if not self.wait_settled(120):
            raise SystemExit(f"the {self.n} nodes did not form a cluster; logs in {self.root}")

    # -- faults -----------------------------------------------------------------------------

    def fault(self, kind: str, what: str) -> None:
        at = time.monotonic() - self.history.t0
        self.faults.append((at, kind))
        # A node killed, restarted empty or refusing writes serves no side of its own.
        splits = kind not in ("kill", "data-lost", "disk-full", "exited")
        self.history.fault(at, what, self.touched, splits)
        log(f"fault at t={at:.1f}s: {what}")

    def inject(self) -> None:
        """One fault, held for a while, then healed; returns once the cluster has settled."""
        rng, n = self.rng, self.n
        kinds = {k: w for k, w in FAULTS.items() if k in self.args.faults}
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        a = rng.randrange(n)
        b = (a + rng.randrange(1, n)) % n
        hold = rng.uniform(2, 8)
        node = self.nodes[a]
        net = self.net
        self.touched = {a, b} if kind in ("cut", "one-way") else {a}
        if kind == "kill":
            self.fault(kind, f"kill -9 node {a}, restart after {hold:.1f}s")
            node.kill()
            time.sleep(hold)
            node.restart()
        elif kind == "pause":
            hold = rng.uniform(0.5, 10)
            self.hold(kind, f"pause node {a} for {hold:.1f}s", hold,
                      lambda: node.signal(signal.SIGSTOP), lambda: node.signal(signal.SIGCONT))
        elif kind == "cut":
            self.hold(kind, f"cut nodes {a} and {b} apart for {hold:.1f}s", hold,
                      lambda: (net.drop(a, b), net.drop(b, a)),
                      lambda: (net.clear(a), net.clear(b)))
        elif kind == "one-way":
            self.hold(kind, f"node {b} stops hearing node {a} for {hold:.1f}s", hold,
                      lambda: net.drop(a, b), lambda: net.clear(b))
        elif kind == "isolate":
            self.hold(kind, f"node {a} cut off from everyone for {hold:.1f}s", hold,
                      lambda: net.cut(a), lambda: net.heal(a))
        elif kind == "loss":
            percent = rng.choice([10, 20, 30, 50])
            self.hold(kind, f"node {a} loses {percent}% of packets for {hold:.1f}s", hold,
                      lambda: net.loss(a, percent), lambda: net.clear(a))
        elif kind == "slow":
            kbit, latency = rng.choice([256, 1024, 4096]), rng.choice([200, 500, 1000])
            self.hold(kind, f"node {a}'s link slowed to {kbit} kbit/s, queueing up to "
                            f"{latency} ms, for {hold:.1f}s", hold,
                      lambda: net.slow(a, kbit, latency), lambda: net.unslow(a))
        elif kind == "disk-full":
            self.hold(kind, f"node {a}'s disk full for {hold:.1f}s", hold, node.fill, node.unfill)
            self.probe_writes(f"node {a}'s disk had space again")
        else:
            self.fault(kind, f"node {a} restarted with its data directory lost")
            node.kill()
            node.wipe()
            node.restart()
        log(f"healed at t={time.monotonic() - self.history.t0:.1f}s")
        if not node.running():
            self.fault("exited", f"node {a} exited (code {node.proc.returncode}); restarted")
            node.restart()
        if not self.wait_settled():
            self.history.violation(f"the cluster did not settle within {SETTLE_S}s after: "
                                   f"{self.history.fault_log[-1][1]}")
            self.heal_all()
            self.wait_settled(SETTLE_S)
        self.history.fault_over()

    def hold(self, kind: str, what: str, seconds: float, start, end) -> None:
        """A fault started, held for ``seconds``, then ended."""
        self.fault(kind, what)
        start()
        time.sleep(seconds)
        end()

    def probe_writes(self, since: str, within: float = 30) -> None:
        """Writes to every partition's primary work again (else a violation)."""
        rng = random.Random(0)
        pending = {f"probe:{k}" for k in range(128)}
        deadline = time.monotonic() + within
        while pending and time.monotonic() < deadline:
            for key in sorted(pending):
                ok, _ = self.call(rng, "SET", key, "1")
                if ok:
                    pending.discard(key)
            if pending:
                time.sleep(0.5)
        if pending:
            self.history.violation(f"{len(pending)} of 128 probe writes still refused "
                                   f"{within:.0f}s after {since}")

    def heal_all(self) -> None:
        for i, node in enumerate(self.nodes):
            self.net.clear(i)
            self.net.heal(i)
            node.unfill()
            node.signal(signal.SIGCONT)
            if not node.running():
                node.restart()

    def faults_loop(self, until: float) -> None:
        while time.monotonic() < until and not self.stop.is_set():
            time.sleep(self.rng.uniform(1, 4))
            if time.monotonic() >= until:
                break
            self.inject()

    # -- load -------------------------------------------------------------------------------

    def call(self, rng: random.Random, *cmd, protocol: int = 2):
        """One request through a random node: (True, reply) or (False, error text)."""
        node = rng.randrange(self.n)
        self.local.node = node
        try:
            c = redis.Redis(host=self.nodes[node].host, port=RESP, socket_timeout=3,
                            socket_connect_timeout=1, retry=Retry(NoBackoff(), 0),
                            protocol=protocol, decode_responses=True)
            try:
                return True, c.execute_command(*cmd)
            finally:
                c.close()
        except (redis.RedisError, OSError) as e:
            return False, f"{type(e).__name__}: {e}"

    def registers(self, w: int) -> None:
        rng = random.Random(self.args.seed * 1000 + w)
        keys = [f"r{w}:{k}" for k in range(8)]
        written = {k: 0 for k in keys}
        counter, incrs = f"c{w}", 0
        while not self.stop.is_set():
            key = rng.choice(keys)
            roll = rng.random()
            start = time.monotonic()
            if roll < 0.45:
                written[key] += 1
                n = written[key]
                ok, reply = self.call(rng, "SET", key, f"{key}={n}")
                self.history.write(key, n, f"{key}={n}", start, time.monotonic(), ok and reply)
            elif roll < 0.55:
                written[key] += 1
                n = written[key]
                ok, reply = self.call(rng, "DEL", key)
                self.history.write(key, n, None, start, time.monotonic(), ok)
            elif roll < 0.85:
                ok, reply = self.call(rng, "GET", key)
                if ok:
                    self.history.read(key, reply, start, time.monotonic(), node=self.local.node)
            else:
                incrs += 1
                ok, reply = self.call(rng, "INCR", counter)
                self.history.incr(counter, incrs, reply if ok else None, start, time.monotonic())

    def sessions(self, w: int, shared: list[str]) -> None:
        rng = random.Random(self.args.seed * 1000 + 500 + w)
        users = [f"user{u}" for u in range(4)]
        while not self.stop.is_set():
            roll = rng.random()
            if roll < 0.5:
                self.cas(rng, rng.choice(shared))
            elif roll < 0.8:
                self.login(rng, rng.choice(users))
            else:
                self.rotate(rng)

    def cas(self, rng: random.Random, sid: str) -> None:
        start = time.monotonic()
        ok, s = self.call(rng, "SESSION.GET", sid, "NOTOUCH", protocol=3)
        if not ok:
            return
        end = time.monotonic()
        if s is None:
            self.history.session_read(sid, None, start, end)
            return
        n = int(s["attributes"]["n"][1])
        self.history.session_read(sid, n, start, end)
        start = time.monotonic()
        ok, reply = self.call(rng, "SESSION.SET", sid, "IFVERSION", s["version"], "n", "utf8",
                              n + 1)
        if not ok and str(reply).startswith("ResponseError: CONFLICT"):
            return
        self.history.cas(sid, n + 1, start, time.monotonic(), ok and reply is not None)

    def create(self, rng: random.Random) -> str | None:
        """A new session; its creation event must reach the subscribers."""
        start = time.monotonic()
        ok, sid = self.call(rng, "SESSION.CREATE", "chaos")
        self.history.op("create", ok)
        if not ok:
            return None
        self.history.session_created(sid, start, self.local.node)
        return sid

    def subscriber(self, i: int) -> None:
        """Node ``i``'s subscriber to session events, subscribed again whenever its
        connection ends; each subscription records what it was told."""
        node = self.nodes[i]
        while not self.unsubscribe.is_set():
            try:
                # No reconnecting behind the subscriber's back: a new connection is a new
                # subscription, which misses what was published in between.
                c = redis.Redis(host=node.host, port=RESP, socket_timeout=5,
                                socket_connect_timeout=1, decode_responses=True,
                                retry=Retry(NoBackoff(), 0))
                ps = c.pubsub()
                ps.subscribe("sessiongrid:events")
                deadline = time.monotonic() + 5
                while True:
                    m = ps.get_message(timeout=0.5)
                    if m and m["type"] == "subscribe":
                        break
                    if time.monotonic() > deadline:
                        raise OSError("the subscription was not confirmed")
                sub = self.history.subscribed(i)
                try:
                    while not self.unsubscribe.is_set():
                        m = ps.get_message(timeout=0.5)
                        if m and m.get("type") == "message":
                            e = json.loads(m["data"])
                            if e.get("event") == "created":
                                sub.created.add(e["id"])
                            elif e.get("event") == "lagged":
                                break  # it missed some: a subscription that ends here
                finally:
                    if not self.unsubscribe.is_set():
                        sub.end = time.monotonic()
                    ps.close()
                    c.close()
            except (redis.RedisError, OSError, ValueError):
                time.sleep(0.5)

    def login(self, rng: random.Random, user: str) -> None:
        sid = self.create(rng)
        if sid is None:
            return
        start = time.monotonic()
        ok, reply = self.call(rng, "SESSION.LOGIN", sid, user, "POLICY", "evict-oldest", "MAX",
                              1)
        self.history.login(user, start, time.monotonic(), ok)
        if ok and rng.random() < 0.3:
            ok, _ = self.call(rng, "SESSION.LOGOUT", sid)
            self.history.op("logout", ok)

    def rotate(self, rng: random.Random) -> None:
        sid = self.create(rng)
        if sid is None:
            return
        token = f"cart-{rng.randrange(1 << 30)}"
        set_at = time.monotonic()
        ok, _ = self.call(rng, "SESSION.SET", sid, "cart", "utf8", token)
        if not ok:
            return
        ok, new = self.call(rng, "SESSION.ROTATE", sid)
        if ok and new is not None:
            self.history.rotated(sid, new, token, time.monotonic(), set_at)
            # Read back at once: the old id must be gone for good.
            start = time.monotonic()
            ok, old = self.call(rng, "SESSION.GET", sid, "NOTOUCH", protocol=3)
            if ok:
                self.history.old_id_read(sid, old is not None, start)
        else:
            self.history.op("rotate", False)

    # -- the end ----------------------------------------------------------------------------

    def read_back(self, shared: list[str]) -> None:
        """Every key and session through every node, once the cluster has settled."""
        for i, node in enumerate(self.nodes):
            try:
                self.read_back_through(i, node, shared)
            except (redis.RedisError, OSError) as e:
                self.history.violation(f"node {i} failed the final reads: {e}")

    def read_back_through(self, i: int, node: Node, shared: list[str]) -> None:
        c = redis.Redis(host=node.host, port=RESP, socket_timeout=5, decode_responses=True)
        c3 = redis.Redis(host=node.host, port=RESP, socket_timeout=5, decode_responses=True,
                         protocol=3)
        for key in self.history.register_keys():
            start = time.monotonic()
            self.history.read(key, c.get(key), start, time.monotonic(), final=True, node=i)
        for counter in self.history.counter_keys():
            self.history.final_counter(counter, int(c.get(counter) or 0))
        for sid in shared:
            start = time.monotonic()
            s = c3.execute_command("SESSION.GET", sid, "NOTOUCH")
            n = None if s is None else int(s["attributes"]["n"][1])
            self.history.session_read(sid, n, start, time.monotonic(), final=True)
        for user in (f"user{u}" for u in range(4)):
            live = c3.execute_command("SESSION.BYUSER", user)
            self.history.logged_in(user, len(live), node=i)
        for old, new, token in self.history.rotations():
            gone = c3.execute_command("SESSION.GET", old, "NOTOUCH") is None
            s = c3.execute_command("SESSION.GET", new, "NOTOUCH")
            cart = None if s is None else s["attributes"].get("cart", [None, None])[1]
            self.history.rotation_final(old, new, token, gone, cart)

    def go(self) -> int:
        log(f"forming a cluster of {self.n} in {self.root}")
        self.form()
        c3 = redis.Redis(host=self.nodes[0].host, port=RESP, decode_responses=True, protocol=3)
        shared = []
        for _ in range(3):
            sid = c3.execute_command("SESSION.CREATE", "chaos", "IDLE", 86400)
            c3.execute_command("SESSION.SET", sid, "n", "utf8", 0)
            shared.append(sid)
        self.history.shared_sessions(shared)
        listeners = [threading.Thread(target=self.subscriber, args=(i,)) for i in range(self.n)]
        for t in listeners:
            t.start()
        workers = [threading.Thread(target=self.registers, args=(w,)) for w in range(4)]
        workers += [threading.Thread(target=self.sessions, args=(w, shared)) for w in range(3)]
        for t in workers:
            t.start()
        until = time.monotonic() + self.args.minutes * 60
        log(f"load running; faults for {self.args.minutes} min from seed {self.args.seed}")
        try:
            self.faults_loop(until)
        finally:
            self.stop.set()
            for t in workers:
                t.join()
        log("healing everything and waiting for the cluster to settle")
        self.heal_all()
        if not self.wait_settled(SETTLE_S * 2):
            self.history.violation("the cluster did not settle after every fault was healed")
        self.read_back(shared)
        time.sleep(2)  # Events still on their way after the heal.
        self.unsubscribe.set()
        for t in listeners:
            t.join()
        self.history.declared_dead([read_log(n.dir / "log") for n in self.nodes])
        report = check(self.history)
        kinds: dict[str, int] = {}
        for _, kind in self.faults:
            kinds[kind] = kinds.get(kind, 0) + 1
        print(json.dumps({"seed": self.args.seed, "minutes": self.args.minutes,
                          "nodes": self.n, "split": self.split, "planted": self.plant,
                          "operations": report.operations, "faults": len(self.faults),
                          "fault_kinds": kinds, "violations": len(report.violations)}))
        for v in report.violations[:30]:
            print(f"VIOLATION: {v}")
        for line in report.late[:10]:
            print(f"LATE: {line}")
        print(f"{report.operations['total']} operations ({report.operations['ok']} ok, "
              f"{report.operations['failed']} failed), {len(self.faults)} faults, "
              f"{len(report.violations)} violations")
        return 1 if report.violations else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--split", choices=["deny", "serve"], default="deny")
    p.add_argument("--plant", default="", help="a defect to plant in the nodes "
                   "(ack-before-backups), to see the checker find it")
    p.add_argument("--faults", type=lambda a: a.split(","), default=list(FAULTS),
                   help=f"the kinds of fault to inject, comma-separated (default: all of "
                   f"{','.join(FAULTS)})")
    p.add_argument("--bin", required=True)
    p.add_argument("--keep", action="store_true", help="keep the nodes' directories and logs")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("the chaos run needs root (network namespaces, tmpfs mounts)", file=sys.stderr)
        return 2
    why_not = available()
    if why_not:
        print(why_not, file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="sg-chaos-"))
    net = Net(args.nodes)
    run = None
    result = 2
    try:
        run = Run(args, net, root)
        result = run.go()
        return result
    finally:
        if run is not None:
            for node in run.nodes:
                node.close()
        net.close()
        if args.keep:
            log(f"kept {root}")
        elif result == 1:
            # Violations: the nodes' logs are what explains them (their data was on tmpfs).
            log(f"violations: the nodes' logs are kept in {root}")
        else:
            sh("rm", "-rf", str(root), check=False)


if __name__ == "__main__":
    sys.exit(main())
