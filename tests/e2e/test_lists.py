"""Blocking list commands between real clients: a client blocked in BLPOP (or BLMOVE) gets
what another client pushes, counts in INFO's ``blocked_clients`` while it waits, and a
client that hangs up while blocked stops waiting without taking a later push.

Everything here holds for redis-server too (``SESSIONGRID_TARGET=redis``).
"""

from __future__ import annotations

import socket
import threading
import time

from conftest import flushall, wait_until


def blocked_clients(server) -> int:
    client = server.client(protocol=2)
    try:
        return int(client.info("clients")["blocked_clients"])
    finally:
        client.close()


def in_thread(call) -> tuple[threading.Thread, dict]:
    """Runs ``call`` in a thread; its result (or exception) lands in the returned dict."""
    out: dict = {}

    def run():
        try:
            out["result"] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_blpop_gets_what_another_client_pushes(grid):
    flushall(grid)
    waiter, pusher = grid.client(protocol=2), grid.client(protocol=3)
    try:
        thread, out = in_thread(lambda: waiter.execute_command("BLPOP", "empty", "jobs", "0"))
        assert wait_until(lambda: blocked_clients(grid) == 1, 5), "BLPOP did not block"
        assert pusher.rpush("jobs", "job-1", "job-2") == 2
        thread.join(5)
        assert not thread.is_alive() and "error" not in out, out
        assert list(out["result"]) == [b"jobs", b"job-1"]
        assert pusher.lrange("jobs", 0, -1) == [b"job-2"]
        assert wait_until(lambda: blocked_clients(grid) == 0, 5)
    finally:
        waiter.close()
        pusher.close()


def test_blmove_moves_what_arrives_and_a_timeout_answers_nil(grid):
    flushall(grid)
    waiter, pusher = grid.client(protocol=3), grid.client(protocol=2)
    try:
        started = time.monotonic()
        assert waiter.execute_command("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0.2") is None
        assert time.monotonic() - started >= 0.19
        thread, out = in_thread(
            lambda: waiter.execute_command("BLMOVE", "src", "dst", "RIGHT", "LEFT", "5"))
        assert wait_until(lambda: blocked_clients(grid) == 1, 5)
        pusher.rpush("src", "a", "b")
        thread.join(5)
        assert out.get("result") == b"b", out
        assert pusher.lrange("src", 0, -1) == [b"a"]
        assert pusher.lrange("dst", 0, -1) == [b"b"]
    finally:
        waiter.close()
        pusher.close()


def test_a_client_that_hangs_up_while_blocked_takes_nothing(grid):
    flushall(grid)
    sock = socket.create_connection(("127.0.0.1", grid.resp_port), timeout=5)
    if getattr(grid, "password", None):
        sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(grid.password), grid.password.encode()))
        sock.recv(100)
    sock.sendall(b"*3\r\n$5\r\nBLPOP\r\n$4\r\ngone\r\n$1\r\n0\r\n")
    assert wait_until(lambda: blocked_clients(grid) == 1, 5), "BLPOP did not block"
    sock.close()
    assert wait_until(lambda: blocked_clients(grid) == 0, 5), "the blocked pop outlived its client"
    client = grid.client(protocol=2)
    try:
        client.rpush("gone", "kept")
        time.sleep(0.2)
        assert client.lrange("gone", 0, -1) == [b"kept"]
    finally:
        client.close()
