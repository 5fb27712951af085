"""Password authentication (``--requirepass-file``) compared with Redis'
``--requirepass``.

What is proven here: an unauthenticated connection can only AUTH, HELLO (with
AUTH) or QUIT; everything else is refused with Redis' NOAUTH error; a wrong
password gets Redis' exact WRONGPASS error and leaves the connection
unauthenticated; the right password works through AUTH, ``HELLO 3 AUTH``,
redis-py's ``password=`` (RESP2 and RESP3) and ``redis-cli -a``.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from conftest import (REDIS_CLI, GridProcess, ProcessPool, RedisProcess, grid_only, wait_until,
                      write_secret)
from respwire import RespConnection

PASSWORD = "e2e-S3cret pw"  # contains a space on purpose: it is one argument
NOAUTH = b"NOAUTH Authentication required."
WRONGPASS = b"WRONGPASS invalid username-password pair or user is disabled."

#: Known commands that must be refused before authentication.
GUARDED_COMMANDS = [
    ("PING",), ("PING", "x"), ("ECHO", "x"), ("GET", "k"), ("SET", "k", "v"), ("DEL", "k"),
    ("EXISTS", "k"), ("MGET", "a", "b"), ("MSET", "a", "1"), ("INCR", "n"), ("APPEND", "k", "x"),
    ("EXPIRE", "k", "10"), ("TTL", "k"), ("PERSIST", "k"), ("TYPE", "k"), ("GETEX", "k"),
    ("GETDEL", "k"), ("HSET", "h", "f", "v"), ("HGET", "h", "f"), ("HGETALL", "h"),
    ("HINCRBY", "h", "f", "1"), ("DBSIZE",), ("KEYS", "*"), ("SCAN", "0"), ("SELECT", "0"),
    ("FLUSHDB",), ("FLUSHALL",), ("CLIENT", "SETNAME", "x"), ("CLIENT", "GETNAME"),
    ("COMMAND", "COUNT"), ("CONFIG", "GET", "databases"), ("INFO",),
]


@pytest.fixture(scope="module")
def servers(module_pool: ProcessPool) -> tuple[RedisProcess, GridProcess]:
    """A password-protected redis-server and grid node."""
    baseline = module_pool.redis(password=PASSWORD)
    node = module_pool.grid(password=PASSWORD)
    return baseline, node


def unauthenticated(server) -> RespConnection:
    return RespConnection(server.resp_port)


def both(servers, *cmd):
    """Send ``cmd`` on a fresh unauthenticated connection to each server."""
    replies = []
    for server in servers:
        with unauthenticated(server) as conn:
            replies.append(conn.call(*cmd))
    return replies


def test_known_commands_need_auth(servers):
    """Before AUTH, every known command gets exactly Redis' NOAUTH error
    (checked on one connection, so refusals do not drop it)."""
    baseline, node = servers
    with unauthenticated(baseline) as base_conn, unauthenticated(node) as grid_conn:
        for cmd in GUARDED_COMMANDS:
            expected, actual = base_conn.call(*cmd), grid_conn.call(*cmd)
            assert expected == ("error", NOAUTH), (cmd, expected)
            assert actual == expected, cmd


def test_unknown_command_before_auth(servers):
    """An unknown command before AUTH is refused: with NOAUTH, or with the same
    "unknown command" error Redis gives (Redis looks the command up first)."""
    expected, actual = both(servers, "NOSUCHCMD", "a")
    assert expected == ("error", b"ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' ")
    assert actual[0] == "error" and (actual[1].startswith(b"NOAUTH") or actual == expected), actual


def test_hello_without_auth_is_refused(servers):
    """HELLO without AUTH option before authentication gets Redis' NOAUTH text."""
    for cmd in (("HELLO",), ("HELLO", "2"), ("HELLO", "3")):
        expected, actual = both(servers, *cmd)
        assert expected[0] == "error" and expected[1].startswith(b"NOAUTH HELLO must be called"), expected
        assert actual == expected, cmd


def test_quit_before_auth(servers):
    """QUIT is allowed before AUTH: +OK, then the server closes the connection."""
    for server in servers:
        with unauthenticated(server) as conn:
            assert conn.call("QUIT") == ("simple", b"OK"), server.name
            data, closed = conn.read_available(2.0)
            assert data == b"" and closed, (server.name, data, closed)


@pytest.mark.parametrize("cmd", [
    ("AUTH", "wrong"),
    ("AUTH", "default", "wrong"),
    ("AUTH", "nosuchuser", PASSWORD),
    ("AUTH", PASSWORD, "extra"),
    ("AUTH",),
    ("AUTH", "a", "b", "c"),
    ("AUTH", ""),
    ("HELLO", "3", "AUTH", "default", "wrong"),
    ("HELLO", "2", "AUTH", "default", "wrong"),
    ("HELLO", "3", "AUTH", "default"),
    ("HELLO", "4", "AUTH", "default", PASSWORD),
])
def test_failed_auth_attempts(servers, cmd):
    """Wrong credentials / malformed AUTH get exactly Redis' error, and the
    connection stays unauthenticated afterwards."""
    replies = []
    for server in servers:
        with unauthenticated(server) as conn:
            replies.append(conn.call(*cmd))
            assert conn.call("GET", "k") == ("error", NOAUTH), (server.name, cmd)
    expected, actual = replies
    assert actual == expected, cmd
    if cmd[:2] in (("AUTH", "wrong"), ("AUTH", "default")):
        assert actual == ("error", WRONGPASS)


@pytest.mark.parametrize("auth", [("AUTH", PASSWORD), ("AUTH", "default", PASSWORD)])
def test_auth_with_right_password(servers, auth):
    """AUTH pw and AUTH default pw answer +OK and unlock the connection; a later
    wrong AUTH fails but does not lock it again (as in Redis)."""
    for server in servers:
        with unauthenticated(server) as conn:
            assert conn.call(*auth) == ("simple", b"OK"), server.name
            assert conn.call("PING") == ("simple", b"PONG")
            assert conn.call("SET", "auth:k", "v") == ("simple", b"OK")
            assert conn.call("GET", "auth:k") == ("bulk", b"v")
            assert conn.call("AUTH", "wrong") == ("error", WRONGPASS)
            assert conn.call("GET", "auth:k") == ("bulk", b"v"), server.name


@pytest.mark.parametrize("protocol", [2, 3])
def test_hello_auth(servers, protocol):
    """HELLO <proto> AUTH default pw authenticates and switches protocol in one
    step; the reply has the usual HELLO fields."""
    for server in servers:
        with unauthenticated(server) as conn:
            reply = conn.call("HELLO", str(protocol), "AUTH", "default", PASSWORD)
            if protocol == 3:
                assert reply[0] == "map", (server.name, reply)
                fields = {k[1]: v for k, v in reply[1]}
            else:
                assert reply[0] == "array", (server.name, reply)
                items = reply[1]
                fields = {k[1]: v for k, v in zip(items[0::2], items[1::2])}
            assert fields[b"proto"] == ("int", protocol), server.name
            assert conn.call("PING") == ("simple", b"PONG")
            null = conn.call("GET", "no-such-key")
            assert null == (("null",) if protocol == 3 else ("null_bulk",)), server.name


def test_auth_pipelined_with_commands(servers):
    """Commands pipelined in one write behind AUTH are judged in order: the
    one before AUTH is refused, the ones after it run."""
    payload = (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
               + b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode())
               + b"*1\r\n$4\r\nPING\r\n")
    for server in servers:
        with unauthenticated(server) as conn:
            conn.send_raw(payload)
            replies = [conn.read_reply()[0] for _ in range(3)]
        assert replies == [("error", NOAUTH), ("simple", b"OK"), ("simple", b"PONG")], server.name


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_password(servers, protocol):
    """redis-py with password= connects (AUTH for RESP2, HELLO 3 AUTH for
    RESP3); a wrong or missing password raises the same exception class."""
    for server in servers:
        client = server.client(protocol=protocol, password=PASSWORD)
        try:
            assert client.ping() is True
            assert client.set("py:k", "v") is True
            assert client.get("py:k") == b"v"
        finally:
            client.close()
    for password in ("wrong", None):
        errors = []
        for server in servers:
            client = server.client(protocol=protocol, password=password)
            try:
                with pytest.raises(redis.exceptions.RedisError) as info:
                    client.ping()
                errors.append((type(info.value).__name__, str(info.value)))
            finally:
                client.close()
        assert errors[0] == errors[1], (password, errors)


@pytest.mark.parametrize("password", [PASSWORD, "wrong"])
@pytest.mark.parametrize("extra", [[], ["-3"]])
def test_redis_cli_password(servers, password, extra):
    """``redis-cli -a`` prints the same as with redis-server for the right and
    a wrong password (a wrong one: "AUTH failed: WRONGPASS ..." then NOAUTH)."""
    outputs = []
    for server in servers:
        proc = subprocess.run(
            [REDIS_CLI, "-h", "127.0.0.1", "-p", str(server.resp_port), "--no-auth-warning",
             "-a", password, *extra, "PING"],
            capture_output=True, timeout=30,
        )
        outputs.append((proc.returncode, proc.stdout, proc.stderr))
    assert outputs[1] == outputs[0]
    if password == PASSWORD:
        assert outputs[1][1] == b"PONG\n"


@grid_only
def test_health_endpoint_needs_no_password(servers):
    """The HTTP /health endpoint stays reachable without the RESP password."""
    _, node = servers
    with urllib.request.urlopen(node.health_url(), timeout=5) as resp:
        assert resp.status == 200


def test_password_survives_restart(pool: ProcessPool):
    """After a restart (same password file), the password is still required."""
    node = pool.grid(password=PASSWORD)
    node.restart()
    with RespConnection(node.resp_port) as conn:
        assert conn.call("PING") == ("error", NOAUTH)
        assert conn.call("AUTH", PASSWORD) == ("simple", b"OK")
        assert conn.call("PING") == ("simple", b"PONG")


@grid_only
def test_protected_mode_refuses_an_open_door_on_a_non_loopback_address(tmp_path):
    """A door on 0.0.0.0 without its credentials does not start and says which flag to set;
    with the credentials, or --protected-mode no, it starts."""
    from conftest import SESSIONGRID_BIN, free_port, write_secret

    def node(*extra: str) -> subprocess.CompletedProcess:
        args = [SESSIONGRID_BIN, "node", "--data-dir", str(tmp_path / "data"),
                "--resp-listen", f"0.0.0.0:{free_port()}", "--http-listen", f"0.0.0.0:{free_port()}",
                *extra]
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired as started:
            return subprocess.CompletedProcess(args, None, started.stdout, started.stderr)

    refused = node()
    assert refused.returncode not in (0, None), refused
    assert "protected mode" in refused.stderr and "--requirepass-file" in refused.stderr
    password, token = tmp_path / "password", tmp_path / "token"
    write_secret(password, "s3cret")
    only_redis = node("--requirepass-file", str(password))
    assert only_redis.returncode not in (0, None) and "--admin-token-file" in only_redis.stderr
    # Both credentials, or protected mode off: the node serves until the timeout stops it.
    write_secret(token, "t0ken")
    assert node("--requirepass-file", str(password), "--admin-token-file", str(token)).returncode is None
    assert node("--protected-mode", "no").returncode is None


def wrong_auths(port: int, seconds: float, source: str = "127.0.0.1") -> int:
    """Wrong AUTHs sent one after the other for ``seconds`` from ``source``: how many
    were checked (answered WRONGPASS, not refused unchecked)."""
    answered = 0
    deadline = time.monotonic() + seconds
    with socket.create_connection(("127.0.0.1", port), timeout=seconds + 5,
                                  source_address=(source, 0)) as raw:
        while (remaining := deadline - time.monotonic()) > 0:
            raw.settimeout(remaining)
            raw.sendall(b"AUTH not-the-password\r\n")
            try:
                reply = raw.recv(200)
            except socket.timeout:
                break  # still waiting for its slot
            assert reply.startswith((b"-WRONGPASS", b"-ERR too many failed")), reply
            answered += reply.startswith(b"-WRONGPASS")
    return answered


@grid_only
def test_wrong_passwords_are_slowed_per_address_and_audited(pool):
    """After a few wrong passwords an address gets one attempt per second at most, on any
    number of connections, while other addresses are not slowed and the right password
    still works; each refusal is in the audit log."""
    node = pool.grid(password=PASSWORD)
    with ThreadPoolExecutor(max_workers=20) as workers:
        counts = list(workers.map(lambda _: wrong_auths(node.resp_port, 4.0), range(20)))
    # Unslowed, 20 connections have thousands of passwords checked in 4 s; slowed, the
    # free failures, a doubling delay from 10 ms, then one a second; attempts beyond 10 s
    # of waiting are refused unchecked.
    assert sum(counts) <= 20, counts
    # Another address is not slowed by that.
    assert wrong_auths(node.resp_port, 1.0, source="127.0.0.2") >= 4
    started = time.monotonic()
    assert node.client(password=PASSWORD).ping()  # waits for its slot, then is let in
    assert time.monotonic() - started < 10
    log = node.log_text()
    assert "sessiongrid::audit" in log and 'action="auth"' in log and 'outcome="refused"' in log, log[-2000:]
    client = node.client()
    client.execute_command("SESSION.KICKUSER", "bob")
    assert wait_until(lambda: 'action="session.kickuser"' in node.log_text(), timeout=5)
    assert 'target="bob"' in node.log_text()
    with pytest.raises(redis.exceptions.ResponseError):
        client.config_set("requirepass", "guessed-secret")
    assert wait_until(lambda: 'action="config set"' in node.log_text(), timeout=5)
    assert "guessed-secret" not in node.log_text(), "values are not logged"


@grid_only
def test_http_token_failures_and_drains_are_audited(pool, tmp_path):
    token = tmp_path / "token"
    write_secret(token, "t0ken")
    node = pool.grid(extra_args=("--admin-token-file", str(token)))
    base = f"http://127.0.0.1:{node.http_port}/api/v1"
    wrong = urllib.request.Request(f"{base}/stats", headers={"Authorization": "Bearer nope"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong, timeout=5)
    assert refused.value.code == 401
    kick = urllib.request.Request(f"{base}/users/alice/sessions", method="DELETE",
                                  headers={"Authorization": "Bearer t0ken"})
    with urllib.request.urlopen(kick, timeout=5) as response:
        assert response.status == 200
    assert wait_until(lambda: 'action="session.kickuser"' in node.log_text(), timeout=5)
    log = node.log_text()
    assert 'action="http auth"' in log and 'from="127.0.0.1:' in log, log[-2000:]
    assert 'who="admin token"' in log and 'target="alice"' in log, log[-2000:]
