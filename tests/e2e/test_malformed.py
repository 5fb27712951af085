"""Hostile and malformed input on raw sockets, and the configured limits.

What is proven here:

* every malformed frame (bad or huge lengths, truncated frames, garbage, deep
  nesting, over-long inline lines, frames beyond the configured limits) is
  answered with ``-ERR Protocol error...`` and/or a closed connection -- the
  node never hangs on it, never crashes, and other clients do not notice:
  after each case a separate healthy client still gets PONG and a key written
  at the start is still there;
* odd-but-valid input (``*0``, ``*-1``, inline commands, split writes, bare LF)
  is handled byte-for-byte like Redis;
* ``connections_max`` rejects the extra connection with Redis' exact error
  while existing connections keep working, and the slot is reusable;
* ``value_bytes_max`` refuses larger values without writing them.
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass

import pytest
import redis

from conftest import IS_REDIS_TARGET, GridProcess, ProcessPool, flushall, grid_only
from respwire import RespConnection, encode_command

KIB = 1024
MIB = 1024 * KIB

#: Limits written to the node's TOML config for this module. In
#: SESSIONGRID_TARGET=redis mode bulk_bytes_max and connections_max map to
#: proto-max-bulk-len and maxclients; inline_bytes_max equals Redis' fixed 64 KiB.
LIMITS = {
    "bulk_bytes_max": 1 * MIB,
    "value_bytes_max": 64 * KIB,
    "array_len_max": 64 * KIB,
    "inline_bytes_max": 64 * KIB,
    "connections_max": 64,
}

SENTINEL_KEY, SENTINEL_VALUE = "sentinel", b"still-here"
CLOSE_WAIT = 5.0  # seconds a malformed connection has to be answered/closed


@dataclass(frozen=True)
class Malformed:
    """A malformed input; ``half_close`` shuts our write side after sending."""

    name: str
    payload: bytes
    half_close: bool = False
    grid_only: str = ""  # non-empty: reason Redis behaves differently (skipped in redis mode)


def _garbage(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


def _non_digit_garbage(seed: int, size: int) -> bytes:
    """Random bytes whose first byte is not a digit, sign or CR/LF."""
    data = bytearray(_garbage(seed, size))
    while chr(data[0]) in "0123456789+-\r\n":
        data[0] = (data[0] + 1) % 256
    return bytes(data)


MALFORMED = [
    Malformed("negative-bulk-length", b"*1\r\n$-5\r\n"),
    Malformed("non-numeric-array-length", b"*abc\r\n"),
    Malformed("empty-array-length", b"*\r\n"),
    Malformed("plus-sign-array-length", b"*+1\r\n$4\r\nPING\r\n"),
    Malformed("leading-zero-array-length", b"*01\r\n$4\r\nPING\r\n"),
    Malformed("non-numeric-bulk-length", b"*1\r\n$4x\r\nPING\r\n"),
    Malformed("huge-bulk-length", b"*1\r\n$99999999999\r\n"),
    Malformed("huge-array-length", b"*2147483648\r\n"),
    Malformed("array-length-2^63", b"*9223372036854775808\r\n"),
    Malformed("bulk-over-bulk_bytes_max-header-only",
              b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % (LIMITS["bulk_bytes_max"] + 1)),
    Malformed("bulk-over-bulk_bytes_max-with-body",
              encode_command("SET", "big", b"x" * (LIMITS["bulk_bytes_max"] + 1))),
    Malformed("array-header-1M-elements", b"*1048576\r\n",
              grid_only="redis has no array length limit below 2^31 and waits for the elements"),
    Malformed("array-over-array_len_max-with-elements",
              b"*%d\r\n" % (LIMITS["array_len_max"] + 1) + b"$1\r\nx\r\n" * 1000,
              grid_only="redis has no configurable array length limit"),
    Malformed("deeply-nested-arrays", b"*1\r\n" * 10000),
    Malformed("array-instead-of-bulk", b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\nk\r\n"),
    Malformed("inline-instead-of-bulk", b"*1\r\nPING\r\n"),
    Malformed("inline-over-inline_bytes_max", b"SET k " + b"x" * (4 * LIMITS["inline_bytes_max"])),
    Malformed("inline-over-inline_bytes_max-terminated",
              b"SET k " + b"x" * (4 * LIMITS["inline_bytes_max"]) + b"\r\n"),
    Malformed("inline-unbalanced-quotes", b'SET "a b\r\n'),
    Malformed("garbage-after-array-marker", b"*" + _non_digit_garbage(1, 64) + b"\r\n" + _garbage(2)),
    Malformed("garbage-after-bulk-marker", b"*1\r\n$" + _non_digit_garbage(3, 64) + b"\r\n" + _garbage(4)),
    Malformed("garbage-instead-of-bulk", b"*2\r\n" + _non_digit_garbage(5, 1).replace(b"$", b"#")
              + b"\r\n" + _garbage(6)),
    # Truncated frames: the client gives up half-way; no reply, the server closes.
    Malformed("truncated-bulk", b"*2\r\n$3\r\nGET\r\n$3\r\nke", half_close=True),
    Malformed("truncated-array", b"*3\r\n$3\r\nSET\r\n$9\r\ntruncated\r\n", half_close=True),
    Malformed("truncated-header", b"*2\r\n$3", half_close=True),
    Malformed("unterminated-inline-line", b"PING", half_close=True),
]


@pytest.fixture(scope="module")
def node(module_pool: ProcessPool) -> GridProcess:
    """A node with the LIMITS config; a sentinel key is written first."""
    grid = module_pool.grid(config=LIMITS)
    client = grid.client(protocol=2)
    client.set(SENTINEL_KEY, SENTINEL_VALUE)
    client.close()
    return grid


@pytest.fixture(scope="module")
def healthy(node) -> redis.Redis:
    """One long-lived, well-behaved client of ``node``."""
    client = node.client(protocol=3, single_connection_client=True)
    yield client
    client.close()


def assert_healthy(node: GridProcess, healthy: redis.Redis) -> None:
    """The node is alive, the long-lived client works, and data is intact."""
    assert node.is_alive(), f"node died; log tail:\n{node.log_text()[-3000:]}"
    assert healthy.ping() is True
    assert healthy.get(SENTINEL_KEY) == SENTINEL_VALUE
    with RespConnection(node.resp_port, timeout=5) as fresh:
        assert fresh.call("PING") == ("simple", b"PONG")


def send_and_collect(port: int, payload: bytes, half_close: bool, wait: float) -> tuple[bytes, bool]:
    """Send ``payload`` on a new connection; return (bytes received, closed?)."""
    conn = RespConnection(port, timeout=wait)
    try:
        try:
            conn.send_raw(payload)
            if half_close:
                conn.sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return b"", True  # the server already hung up: fine
        return conn.read_available(wait)
    finally:
        conn.close()


@pytest.mark.parametrize("case", MALFORMED, ids=lambda c: c.name)
def test_malformed_input_is_rejected(node, healthy, case):
    """The grid replies "-ERR Protocol error..." (or nothing) and closes that
    connection; it does not hang, crash, or disturb other clients."""
    if case.grid_only and IS_REDIS_TARGET:
        pytest.skip(f"grid-only: {case.grid_only}")
    data, closed = send_and_collect(node.resp_port, case.payload, case.half_close, CLOSE_WAIT)
    assert closed, f"connection still open {CLOSE_WAIT}s after {case.name}; received {data[:200]!r}"
    if case.half_close:
        assert data in (b"",) or data.startswith(b"-ERR Protocol error"), data[:200]
    else:
        assert data == b"" or (data.startswith(b"-ERR Protocol error") and data.endswith(b"\r\n")
                               and data.count(b"\r\n") == 1), data[:200]
    assert_healthy(node, healthy)


def test_truncated_set_is_not_applied(node, healthy):
    """A SET whose value never fully arrives does not write the key."""
    healthy.delete("partial")
    payload = b"*3\r\n$3\r\nSET\r\n$7\r\npartial\r\n$10\r\nabcde"
    data, closed = send_and_collect(node.resp_port, payload, half_close=True, wait=CLOSE_WAIT)
    assert closed and not data.startswith(b"+"), data
    assert healthy.exists("partial") == 0
    assert_healthy(node, healthy)


@pytest.mark.parametrize("seed", range(8))
def test_random_garbage(node, healthy, seed):
    """Seeded random bytes (parsed however the first byte dictates) only ever
    produce error replies, and the node stays healthy."""
    payload = _garbage(1000 + seed, 16 * KIB)
    data, closed = send_and_collect(node.resp_port, payload, half_close=False, wait=2.0)
    lines = [line for line in data.split(b"\r\n") if line]
    assert all(line.startswith(b"-") for line in lines), data[:300]
    assert_healthy(node, healthy)


@pytest.mark.parametrize("payload", [
    b"$-5\r\n",
    b"$99999999999\r\n",
    b":1\r\n",
    b"+PING\r\n",
], ids=["top-level-$-5", "top-level-$huge", "top-level-int", "top-level-simple"])
def test_top_level_non_array(node, healthy, payload):
    """A top-level frame that is not an array ('$-5', ':1', ...) gets an error
    (Redis reads it as an inline command: "unknown command") or a close;
    either way nothing else is disturbed."""
    data, closed = send_and_collect(node.resp_port, payload, half_close=False, wait=1.0)
    assert data == b"" or data.startswith(b"-ERR"), data
    assert_healthy(node, healthy)


#: Odd but valid input that the grid must treat exactly like Redis.
VALID_ODDITIES = {
    "empty-and-null-arrays-are-ignored": [b"*0\r\n*-1\r\n*-5\r\n*1\r\n$4\r\nPING\r\n"],
    "empty-lines-are-ignored": [b"\r\n\r\n\n", b"PING\r\n"],
    "inline-with-bare-lf": [b"PING\n", b"ECHO  hi  \n"],
    "inline-with-quotes-and-escapes": [b'SET "a b" "c\\x41\\n"\r\nGET "a b"\r\nSTRLEN \'a b\'\r\n'],
    "inline-just-under-limit": [b"SET inl " + b"y" * (LIMITS["inline_bytes_max"] - 1000) + b"\r\nSTRLEN inl\r\n"],
    "empty-bulk-command-name": [b"*1\r\n$0\r\n\r\n"],
    "split-into-single-bytes": [bytes([b]) for b in encode_command("ECHO", "split")],
    "split-inline": [b"PI", b"NG\r\n"],
    "pipelined-mixed-inline-and-resp": [b"PING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\nECHO y\r\n"],
    "bulk-with-crlf-inside": [encode_command("SET", "crlf", b"a\r\nb\r\n"), encode_command("GET", "crlf")],
}


@pytest.mark.parametrize("name", list(VALID_ODDITIES))
def test_valid_oddities_match_redis(baseline, node, healthy, name):
    """Odd-but-valid wire input produces byte-identical replies to Redis, and
    the connection stays open."""
    flushall(baseline)
    healthy.delete("a b", "inl", "crlf")
    results = {}
    for server in (baseline, node):
        with RespConnection(server.resp_port, timeout=5) as conn:
            for chunk in VALID_ODDITIES[name]:
                conn.send_raw(chunk)
                time.sleep(0.01)
            results[server.name] = conn.read_available(0.5)
    assert results["grid"] == results["redis"]
    assert results["grid"][1] is False, "connection was closed"
    assert_healthy(node, healthy)


@grid_only
@pytest.mark.parametrize("command", ["SET", "HSET"])
def test_value_over_value_bytes_max_is_refused(node, healthy, command):
    """A string (SET) or hash field value (HSET) larger than value_bytes_max
    gets an error reply (or a disconnect); nothing is written and the node
    stays healthy."""
    limit = LIMITS["value_bytes_max"]
    healthy.delete("toobig")
    big = b"v" * (limit + 1)
    args = ("SET", "toobig", big) if command == "SET" else ("HSET", "toobig", "field", big)
    with RespConnection(node.resp_port, timeout=10) as conn:
        conn.send_command(*args)
        data, _closed = conn.read_available(3.0)
    assert data == b"" or data.startswith(b"-"), data[:200]
    assert healthy.exists("toobig") == 0
    assert_healthy(node, healthy)


@grid_only
def test_value_at_value_bytes_max_is_accepted(node, healthy):
    """A value of exactly value_bytes_max bytes is still accepted (the limit
    is inclusive), so the boundary is where the config says."""
    limit = LIMITS["value_bytes_max"]
    assert healthy.set("atlimit", b"v" * limit) is True
    assert healthy.strlen("atlimit") == limit


def test_lcs_whose_table_would_pass_bulk_bytes_max_is_refused(node, healthy):
    """LCS fills a table of 4 bytes per pair of positions: past bulk_bytes_max
    (proto-max-bulk-len) it is refused with Redis' error, below it answered."""
    healthy.mset({"lcs-a": "ab" * 300, "lcs-b": "ba" * 300})  # 601 * 601 * 4 bytes: past 1 MiB
    with pytest.raises(redis.ResponseError, match="exceeds proto-max-bulk-len"):
        healthy.execute_command("LCS", "lcs-a", "lcs-b")
    healthy.mset({"lcs-a": "ab" * 250, "lcs-b": "ba" * 250})  # 501 * 501 * 4 bytes: within
    assert healthy.execute_command("LCS", "lcs-a", "lcs-b", "LEN") == 499
    assert_healthy(node, healthy)


def test_node_alive_at_end(node, healthy):
    """After all the abuse above, the node process is still running and serving."""
    assert_healthy(node, healthy)


# -- connections_max ----------------------------------------------------------

MAX_CLIENTS = 20
MAX_CLIENTS_ERROR = b"-ERR max number of clients reached\r\n"


def test_connections_max(pool: ProcessPool):
    """With connections_max = 20, twenty connections work; the 21st gets
    "-ERR max number of clients reached" and is closed; the twenty still
    work; once one closes, a new connection is accepted again."""
    node = pool.grid(config={**LIMITS, "connections_max": MAX_CLIENTS})
    conns: list[RespConnection] = []
    try:
        for i in range(MAX_CLIENTS):
            conn = RespConnection(node.resp_port, timeout=5)
            conns.append(conn)
            assert conn.call("PING") == ("simple", b"PONG"), f"connection {i + 1} refused"
        with RespConnection(node.resp_port, timeout=5) as extra:
            data, closed = extra.read_available(CLOSE_WAIT)
        assert data == MAX_CLIENTS_ERROR and closed, (data, closed)
        for i, conn in enumerate(conns):
            assert conn.call("ECHO", str(i)) == ("bulk", str(i).encode())
        conns.pop().close()

        def new_connection_works() -> bool:
            with RespConnection(node.resp_port, timeout=5) as again:
                try:
                    return again.call("PING") == ("simple", b"PONG")
                except (ConnectionError, OSError):
                    return False

        deadline = time.monotonic() + 10
        while not new_connection_works():
            assert time.monotonic() < deadline, "freed connection slot never became available"
            time.sleep(0.1)
    finally:
        for conn in conns:
            conn.close()
    assert node.is_alive()


@grid_only
@pytest.mark.parametrize("seconds", ["nan", "inf", "-1", "x", "1e400"])
def test_debug_sleep_takes_any_argument_without_harm(node, healthy, seconds):
    """DEBUG SLEEP with an argument that is no usable duration answers at once (Redis would
    sleep 0), and the node lives on."""
    assert healthy.execute_command("DEBUG", "SLEEP", seconds) in (b"OK", "OK", True)
    assert_healthy(node, healthy)
