"""A real network split: three nodes in their own network namespaces on one bridge.

One node is cut off (its link to the bridge goes down) long enough for both sides to declare the
other dead; both sides serve writes and deletes; when the link comes back, the side with fewer
members pushes its data into the other and joins it. Every write acknowledged on either side
(each key written on one side only) must be readable through every node afterwards, and keys
deleted on either side must stay deleted.

Needs CAP_NET_ADMIN (``ip netns``); skipped where namespaces cannot be created.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import redis

from conftest import GridProcess, make_client, metric_sum, wait_until
from gridcluster import SECRET, Cluster, info
from netns import IP, Net, available, sh


class NetnsNode(GridProcess):
    """A node run inside network namespace ``ns``, listening on ``host``."""

    def __init__(self, ns: str, host: str):
        super().__init__()
        self.ns, self.host = ns, host

    def command(self) -> list[str]:
        cmd = super().command()
        cmd = [a.replace("127.0.0.1:", f"{self.host}:") for a in cmd]
        return [IP, "netns", "exec", self.ns] + cmd

    def health_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/health"

    def client(self, **kw) -> redis.Redis:
        kw.setdefault("password", self.password)
        return make_client(self.resp_port, host=self.host, **kw)

    def inside(self, *args: str) -> str:
        """A redis-cli command run from inside the node's namespace (reachable while cut off)."""
        out = sh(IP, "netns", "exec", self.ns, "redis-cli", "-h", self.host, "-p",
                 str(self.resp_port), *args, check=False)
        return (out.stdout + out.stderr).strip()


class NetnsCluster(Cluster):
    def __init__(self, pool, net: Net, size: int):
        self.net = net
        self.index = 0
        super().__init__(pool, size)

    def args(self, p2p_port: int, secret_path) -> list[str]:
        host = self.net.address(self.index)
        # The doors listen on the namespace's own address: not loopback, so protected mode off.
        args = ["--p2p-listen", f"{host}:{p2p_port}", "--replicas", str(self.replicas),
                "--cluster-secret-file", str(secret_path), "--protected-mode", "no"]
        if self.seed_port is not None and self.index > 0:
            args += ["--join", f"{self.net.address(0)}:{self.seed_port}"]
        return args

    def add(self, secret: str | None = None) -> GridProcess:
        i = self.index
        node = NetnsNode(self.net.namespaces[i], self.net.address(i))
        self.pool.processes.append(node)
        p2p_port = 7000 + i
        if self.seed_port is None:
            self.seed_port = p2p_port
        secret_path = node.workdir / "cluster-secret"
        secret_path.write_text(secret or SECRET)
        secret_path.chmod(0o600)
        node.start(extra_args=self.args(p2p_port, secret_path))
        self.nodes.append(node)
        self.index += 1
        return node


@pytest.fixture
def net():
    why_not = available()
    if why_not:
        pytest.skip(why_not)
    try:
        n = Net(3)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot build the test network here: {' '.join(e.cmd)}: {e.stderr.strip()}")
    try:
        yield n
    finally:
        n.close()


def test_both_sides_of_a_split_serve_and_nothing_acknowledged_is_lost_on_heal(pool, net):
    cluster = NetnsCluster(pool, net, 3)
    cluster.wait_settled()
    cut_off, a, b = cluster.nodes
    c = a.client()
    for i in range(40):
        c.set(f"before:{i}", "0")
    # Keys to delete during the split, one set per side.
    c.mset({f"del-major:{i}": "x" for i in range(10)})
    c.mset({f"del-minor:{i}": "x" for i in range(6)})

    net.cut(0)
    # Both sides declare the other dead (1 s), the cut-off node takes over alone (1 s more).
    assert wait_until(lambda: info(a).get("grid_members") == 2, 15, interval=0.2)
    time.sleep(2.5)

    majority = {}
    for i in range(60):
        c.set(f"major:{i}", f"m{i}")
        majority[f"major:{i}"] = f"m{i}"
    for i in range(10):
        assert c.delete(f"del-major:{i}") == 1
    # The cut-off node serves the partitions it holds a copy of (two thirds); the others answer
    # TRYAGAIN once the request deadline (2 s) has passed.
    minority = {}
    for i in range(18):
        if cut_off.inside("SET", f"minor:{i}", f"n{i}") == "OK":
            minority[f"minor:{i}"] = f"n{i}"
    deleted_minor = [k for k in (f"del-minor:{i}" for i in range(6))
                     if cut_off.inside("DEL", k) == "1"]
    assert len(minority) >= 6, "the cut-off node served none of its partitions"
    assert deleted_minor, "the cut-off node deleted none of its keys"
    # The sides really are apart: the majority does not see the minority's writes yet.
    assert c.get(next(iter(minority))) is None

    net.heal(0)
    cluster.wait_settled(timeout=60)
    assert metric_sum(cut_off, "sessiongrid_cluster_merges_total") >= 1, cut_off.log_text()[-6000:]

    for node in cluster.nodes:
        r = node.client()
        keys = list(majority) + list(minority)
        values = dict(zip(keys, r.mget(keys)))
        lost = {k: (v, values[k]) for k, v in {**majority, **minority}.items()
                if values[k] != v.encode()}
        assert not lost, f"acknowledged writes lost through node {node.host}: {lost}"
        assert r.mget([f"before:{i}" for i in range(40)]) == [b"0"] * 40
        assert r.exists(*[f"del-major:{i}" for i in range(10)]) == 0, "a deletion came back"
        assert r.exists(*deleted_minor) == 0, "a deletion on the cut-off side came back"
        assert r.dbsize() == 40 + len(majority) + len(minority) + 6 - len(deleted_minor)
