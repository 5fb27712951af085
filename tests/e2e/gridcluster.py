"""A cluster of grid processes on loopback, for the end-to-end tests.

``Cluster(pool, n)`` starts n nodes that join through the first one's p2p
address, with a shared cluster secret; ``wait_settled`` waits until every live
node serves, sees exactly the live nodes, and nothing is moving.
"""

from __future__ import annotations

import pytest
import redis

from conftest import GridProcess, free_port, wait_until, write_secret

SECRET = "correct horse battery staple"


def info(node: GridProcess) -> dict:
    try:
        return node.client(socket_timeout=2).info()
    except (redis.RedisError, OSError):
        return {}


class Cluster:
    """Nodes that know each other through the first one's p2p address."""

    def __init__(self, pool, size: int, replicas: int = 2, secret: str = SECRET,
                 extra: tuple[str, ...] = (), config: dict | None = None):
        self.pool = pool
        self.replicas = replicas
        self.secret = secret
        self.extra = list(extra)
        self.config = config
        self.nodes: list[GridProcess] = []
        self.seed_port: int | None = None
        for _ in range(size):
            self.add()

    def args(self, p2p_port: int, secret_path) -> list[str]:
        args = ["--p2p-listen", f"127.0.0.1:{p2p_port}", "--replicas", str(self.replicas),
                "--cluster-secret-file", str(secret_path)]
        if self.seed_port is not None and self.seed_port != p2p_port:
            args += ["--join", f"127.0.0.1:{self.seed_port}"]
        return args + self.extra

    def add(self, secret: str | None = None) -> GridProcess:
        node = GridProcess()
        self.pool.processes.append(node)
        p2p_port = free_port()
        if self.seed_port is None:
            self.seed_port = p2p_port
        secret_path = node.workdir / "cluster-secret"
        write_secret(secret_path, secret or self.secret)
        node.start(extra_args=self.args(p2p_port, secret_path), config=self.config)
        self.nodes.append(node)
        return node

    def live(self) -> list[GridProcess]:
        return [n for n in self.nodes if n.is_alive()]

    def settled(self) -> bool:
        """Every live node is serving, sees exactly the live nodes, and nothing is moving."""
        live = self.live()
        views = [info(n) for n in live]
        return all(
            v.get("grid_members") == len(live)
            and v.get("grid_moving_partitions") == 0
            and v.get("grid_serving") == 1
            and v.get("grid_epoch") == views[0].get("grid_epoch")
            for v in views
        )

    def wait_doors_known(self, timeout: float = 30) -> None:
        """Every live node knows every other's Redis door (what `CLUSTER SLOTS` and the
        connectors' routes give)."""
        size = len(self.live())

        def known(node) -> bool:
            try:
                return len(node.client().execute_command("CLUSTER", "NODES").splitlines()) == size
            except redis.RedisError:
                return False

        if not wait_until(lambda: all(known(n) for n in self.live()), timeout):
            pytest.fail(self.live()[0].client().execute_command("CLUSTER", "NODES"))

    def wait_settled(self, timeout: float = 60) -> None:
        if not wait_until(self.settled, timeout, interval=0.2):
            views = {n.resp_port: info(n) for n in self.live()}
            summary = {p: {k: v for k, v in i.items() if str(k).startswith("grid_")} for p, i in views.items()}
            pytest.fail(f"cluster did not settle in {timeout}s: {summary}")
