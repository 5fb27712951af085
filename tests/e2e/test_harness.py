"""The process handling that the whole suite relies on.

Proves: a node becomes ready, SIGTERM stops it gracefully with exit code 0,
``restart()`` brings it back on the same data dir and ports, and it starts
again after SIGKILL. Whether data survives a restart is not asserted here
(durability is in test_durability.py).
"""

from __future__ import annotations

from conftest import ProcessPool
from respwire import RespConnection


def ping(node) -> tuple:
    with RespConnection(node.resp_port, timeout=5) as conn:
        return conn.call("PING")


def test_sigterm_exits_zero_and_restart_reuses_ports(pool: ProcessPool):
    """SIGTERM -> exit code 0; restart() serves again on the same RESP port."""
    node = pool.grid()
    port = node.resp_port
    assert ping(node) == ("simple", b"PONG")
    assert node.sigterm() == 0, f"non-zero exit on SIGTERM; log tail:\n{node.log_text()[-3000:]}"
    assert not node.is_alive()
    node.restart()
    assert node.resp_port == port and node.is_alive()
    assert ping(node) == ("simple", b"PONG")
    assert node.sigterm() == 0


def test_restart_after_sigkill(pool: ProcessPool):
    """After a hard kill the node starts again on the same data dir."""
    node = pool.grid()
    client = node.client(protocol=2)
    client.set("k", "v")
    client.close()
    node.sigkill()
    assert not node.is_alive()
    node.restart()
    assert ping(node) == ("simple", b"PONG")
