"""Differential tests with the real ``redis-cli`` binary.

``redis-cli`` is what operators use by hand and in scripts, and it is picky:
it formats each RESP type differently (``(integer)``, ``(nil)``, ``1#`` for
maps...), speaks RESP3 with ``-3`` (after ``HELLO 3``), and ``--pipe`` mode
counts replies and errors itself. The grid must make ``redis-cli`` print
exactly what it prints against ``redis-server``: same stdout, stderr and exit
code, command after command.
"""

from __future__ import annotations

import random
import re
import shlex
import subprocess

import pytest

from conftest import REDIS_CLI, flushall
from respwire import encode_commands

CLI_TIMEOUT = 60

#: Commands passed as command-line arguments, one redis-cli process each.
ARG_COMMANDS = [
    "PING", "PING hello", "ECHO hi", "ECHO ''", "DBSIZE",
    "SET k v", "GET k", "GET nokey", "SET k v NX", "SET k v2 XX GET", "GET k",
    "SET k v NX XX", "SET k v EX 0", "SET k v EX abc", "SET k", "GET",
    "SETNX k x", "SETEX k 0 v", "GETDEL k", "GETDEL k", "GETEX nokey PERSIST",
    "MSET a 1 b 2 c 3", "MGET a b nokey c", "MSET a",
    "INCR n", "INCRBY n 41", "DECR n", "INCRBY n 1.5", "INCR a", "SET big 9223372036854775807",
    "INCR big", "SET s abc", "INCR s",
    "APPEND s def", "APPEND fresh xyz", "STRLEN s", "STRLEN nokey",
    "EXISTS a b nokey", "TYPE a", "TYPE nokey", "DEL a b nokey", "UNLINK c", "DBSIZE",
    "TTL nokey", "PTTL nokey", "TTL s", "PERSIST s", "EXPIRE s 100 NX XX", "EXPIRE s abc",
    "EXPIRE s 100 GT LT", "EXPIRE nokey 10",
    "HSET h a 1 b 2 c 3", "HSET h a", "HGET h a", "HGET h zz", "HMGET h a zz c", "HGETALL h",
    "HKEYS h", "HVALS h", "HLEN h", "HEXISTS h a", "HDEL h a zz", "HINCRBY h b 5",
    "HINCRBY h b x", "HSETNX h b 9", "HMSET h d 4", "HGETALL h", "HGETALL nokey",
    "GET h", "HGET s a", "TYPE h",
    "FOO", "FOO bar baz", "CLIENT GETNAME", "CLIENT SETNAME cli", "HELLO 4",
    "SELECT 0", "FLUSHDB", "DBSIZE", "FLUSHALL", "EXISTS h",
]

FORMATS = {
    "raw": [],                  # not a tty -> raw output
    "no-raw": ["--no-raw"],     # forced human formatting: (integer), (nil), 1) ...
    "resp3": ["-3"],            # HELLO 3 first
    "resp3-no-raw": ["-3", "--no-raw"],
}

#: Lines for redis-cli reading commands from stdin (quotes and escapes allowed).
STDIN_SCRIPT = r'''
SET bin "a\x00b\r\nc"
GET bin
STRLEN bin
HSET hb "f\x00" "v\xff"
HGETALL hb
SET "key with space" 'single quoted'
GET "key with space"
ECHO "tab\there"
SET e ""
GET e
GET nokey
MGET bin e nokey
INCR counter
INCRBY counter -3
HINCRBY hb n 1
DEL bin e counter
FOO "x y"
DBSIZE
'''.strip()


def cli(port: int, *args: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run redis-cli against ``port``; return (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
        input=stdin, capture_output=True, timeout=CLI_TIMEOUT,
    )
    return proc.returncode, proc.stdout, proc.stderr


def describe(result: tuple[int, bytes, bytes]) -> str:
    code, out, err = result
    return f"exit={code} stdout={out!r} stderr={err!r}"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_command_line_commands(baseline, grid, fmt):
    """Each command given as redis-cli arguments prints the same output, on
    stderr too, and exits with the same code, in all output formats."""
    flushall(baseline, grid)
    diffs = []
    for line in ARG_COMMANDS:
        args = [*FORMATS[fmt], *shlex.split(line)]
        expected, actual = cli(baseline.port, *args), cli(grid.port, *args)
        if expected != actual:
            diffs.append(f"redis-cli {' '.join(args)}\n    redis: {describe(expected)}\n    grid:  {describe(actual)}")
    assert not diffs, f"{len(diffs)} redis-cli outputs differ:\n" + "\n".join(diffs[:15])


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_commands_from_stdin(baseline, grid, fmt):
    """redis-cli reading quoted/escaped commands (binary bytes, spaces, empty
    strings) from stdin prints the same transcript for both servers."""
    flushall(baseline, grid)
    stdin = (STDIN_SCRIPT + "\n").encode()
    expected = cli(baseline.port, *FORMATS[fmt], stdin=stdin)
    actual = cli(grid.port, *FORMATS[fmt], stdin=stdin)
    assert actual == expected, f"\nredis: {describe(expected)}\ngrid:  {describe(actual)}"


def test_value_from_stdin_with_x(baseline, grid):
    """``redis-cli -x SET k`` sends a binary file (all 256 byte values) as the
    last argument; GET prints it back unchanged on both servers."""
    flushall(baseline, grid)
    blob = bytes(range(256)) * 3 + b"\r\n\x00end"
    outputs = {}
    for server in (baseline, grid):
        assert cli(server.port, "-x", "SET", "blob", stdin=blob)[:2] == (0, b"OK\n")
        outputs[server.name] = (cli(server.port, "GET", "blob"), cli(server.port, "--no-raw", "GET", "blob"),
                                cli(server.port, "STRLEN", "blob"))
    assert outputs["grid"] == outputs["redis"]
    assert outputs["grid"][0][1] == blob + b"\n"


def test_repeat_and_scan_modes(baseline, grid):
    """``-r N`` repeats a command and ``--scan --pattern`` iterates SCAN to the
    end; the printed key sets (order aside) are the same."""
    flushall(baseline, grid)
    keys = [f"user:{i}" for i in range(300)] + [f"other:{i}" for i in range(50)]
    for server in (baseline, grid):
        client = server.client(protocol=2)
        client.mset({k: "1" for k in keys})
        client.hset("user:hash", "f", "v")
        client.close()
    for args in (["-r", "3", "PING"], ["-r", "2", "INCR", "rep"]):
        assert cli(grid.port, *args) == cli(baseline.port, *args), args
    for args in (["--scan"], ["--scan", "--pattern", "user:1*"], ["--scan", "--pattern", "other:?"],
                 ["--scan", "--pattern", "nomatch*"]):
        expected, actual = cli(baseline.port, *args), cli(grid.port, *args)
        assert actual[0] == expected[0] == 0, (args, actual, expected)
        assert sorted(actual[1].splitlines()) == sorted(expected[1].splitlines()), args


SUMMARY = re.compile(rb"errors: (\d+), replies: (\d+)")


def pipe_commands(n: int, seed: int) -> list[tuple]:
    """Mass-insertion style commands, some of which fail on purpose."""
    rng = random.Random(seed)
    cmds = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.6:
            cmds.append(("SET", f"key:{i % 500}", f"value-{i}"))
        elif roll < 0.8:
            cmds.append(("HSET", f"hash:{i % 50}", f"f{i % 7}", str(i)))
        elif roll < 0.9:
            cmds.append(("INCR", f"counter:{i % 10}"))
        elif roll < 0.95:
            cmds.append(("INCR", f"key:{i % 500}"))      # value-N: not an integer
        else:
            cmds.append(("GET", f"hash:{i % 50}"))       # WRONGTYPE once the hash exists
    return cmds


@pytest.mark.parametrize("n", [1, 1000, 20000])
def test_pipe_mode(baseline, grid, n):
    """``redis-cli --pipe`` with a RESP-encoded file reports the same
    "errors: E, replies: N" summary, the same error lines and exit code, and
    leaves the same data behind."""
    flushall(baseline, grid)
    data = encode_commands(pipe_commands(n, seed=n))
    results = {}
    for server in (baseline, grid):
        code, out, err = cli(server.port, "--pipe", stdin=data)
        match = SUMMARY.search(out)
        assert match, f"{server.name}: no summary in redis-cli --pipe output: {out!r} {err!r}"
        client = server.client(protocol=2)
        state = (client.dbsize(), client.get("key:1"), client.hgetall("hash:1"), client.get("counter:1"))
        client.close()
        results[server.name] = (code, match.groups(), err, state)
    expected, actual = results["redis"], results["grid"]
    assert int(expected[1][1]) == n
    assert actual == expected


def test_pipe_mode_with_inline_commands(baseline, grid):
    """``--pipe`` also accepts the inline protocol ("SET a 1\\r\\n"); the grid
    must count the replies the same way."""
    flushall(baseline, grid)
    data = b"".join(b"SET inline:%d %d\r\n" % (i, i) for i in range(200)) + b"GET inline:7\r\nNOSUCH\r\n"
    outputs = {}
    for server in (baseline, grid):
        code, out, err = cli(server.port, "--pipe", stdin=data)
        match = SUMMARY.search(out)
        assert match, (server.name, out, err)
        outputs[server.name] = (code, match.groups(), err)
    assert outputs["grid"] == outputs["redis"]
    assert outputs["grid"][1] == (b"1", b"202")
