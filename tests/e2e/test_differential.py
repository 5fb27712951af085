"""Differential tests: the grid must answer exactly like Redis 7.

Each script below is a list of raw commands. A script runs on a fresh
connection to the baseline ``redis-server`` and one to the grid, command by
command and interleaved (so both see nearly the same clock), after FLUSHALL on
both. Every reply -- or the error class and message -- is recorded and the two
transcripts must be equal.

Each script runs four ways:

* ``redispy-resp2`` / ``redispy-resp3``: through ``redis-py``'s
  ``execute_command`` with ``protocol=2`` / ``protocol=3``, i.e. what an
  application sees (after redis-py's own reply parsing);
* ``wire-resp2`` / ``wire-resp3``: through :mod:`respwire`, which compares the
  RESP *types* as well (``+OK`` vs ``$2 OK``, ``$-1`` vs ``_``, map vs array).

Time-dependent replies (positive TTL/PTTL) are compared with a tolerance.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from conftest import IS_REDIS_TARGET, flushall
from respwire import ConnectionClosed, RespConnection, encode_commands

# --------------------------------------------------------------------------
# Script vocabulary
# --------------------------------------------------------------------------

NOW = int(time.time())
FUTURE_S = str(NOW + 3600)            # one hour ahead, seconds
FUTURE_MS = str((NOW + 7200) * 1000)  # two hours ahead, milliseconds
PAST_S = str(NOW - 3600)
PAST_MS = str((NOW - 3600) * 1000)

I64_MAX = "9223372036854775807"
I64_MIN = "-9223372036854775808"
I64_MAX_PLUS_1 = "9223372036854775808"

BINARY = b"a\x00b\r\nc\xff\xfe\r\n\x00"
BINARY_KEY = b"k\x00\r\n\xff"
WRONGTYPE_SETUP = [("SET", "str", "x"), ("HSET", "hash", "f", "v")]
# Two strings whose LCS table (9 MB) is filled off the connection's thread.
DNA = ["".join(random.Random(seed).choice("ACGT") for _ in range(1500)) for seed in (1, 2)]


@dataclass(frozen=True)
class Pause:
    """Not a command: sleep this long (once, for both servers) mid-script."""

    seconds: float


@dataclass(frozen=True)
class WireOnly:
    """A command that redis-py cannot send as-is (e.g. an empty command name);
    only the wire-level runners execute it."""

    cmd: tuple


@dataclass(frozen=True)
class Unordered:
    """A command whose reply lists members in an order Redis does not promise (a set's
    members, an intersection): its elements are compared sorted. ``at`` leads to a nested
    list (``(1,)`` for the members of a SCAN-style reply)."""

    cmd: tuple
    at: tuple = ()


def unordered(outcome, at: tuple = ()):
    """``outcome`` with the elements of the list at ``at`` (a redis-py list or a RESP array,
    set or map) sorted."""
    if isinstance(outcome, list):
        items, rebuild = outcome, lambda items: items
    elif (isinstance(outcome, tuple) and len(outcome) == 2 and isinstance(outcome[1], list)
          and outcome[0] in ("array", "set", "map", "dict")):
        items, rebuild = outcome[1], lambda items: (outcome[0], items)
    else:
        return outcome
    if at:
        items = list(items)
        items[at[0]] = unordered(items[at[0]], at[1:])
        return rebuild(items)
    return rebuild(sorted(items, key=repr))


SCRIPTS: dict[str, list] = {
    "connection": [
        ("PING",), ("PING", "hello"), ("PING", ""), ("PING", BINARY), ("PING", "a", "b"),
        ("ping",), ("PiNg", "x"),
        ("ECHO", "x"), ("ECHO", ""), ("ECHO", BINARY), ("ECHO",), ("ECHO", "a", "b"),
        ("SELECT", "0"), ("SELECT", "abc"), ("SELECT",), ("SELECT", "0", "1"),
        ("SELECT", "1.5"), ("SELECT", ""),
        ("DBSIZE",), ("SET", "a", "1"), ("HSET", "h", "f", "v"), ("DBSIZE",), ("DBSIZE", "x"),
        # no password configured: Redis' default user is "nopass"
        ("AUTH", "x"), ("AUTH", "default", "anything"), ("AUTH", "bob", "x"), ("AUTH",),
        ("AUTH", "a", "b", "c"), ("PING",),
    ],
    "client-name": [
        ("CLIENT", "GETNAME"), ("CLIENT", "SETNAME", "alice"), ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", "bob-2:x"), ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", "a b"), ("CLIENT", "SETNAME", "a\nb"), ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", ""), ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME"), ("CLIENT", "SETNAME", "a", "b"), ("CLIENT", "GETNAME", "x"),
        ("client", "setname", "lower"), ("client", "getname"),
        ("CLIENT",), ("CLIENT", "NOSUCHSUB"),
    ],
    "get-set-basic": [
        ("GET", "k"), ("SET", "k", "v"), ("GET", "k"), ("SET", "k", "v2"), ("GET", "k"),
        ("SET", "", "empty-key"), ("GET", ""), ("SET", "e", ""), ("GET", "e"), ("STRLEN", "e"),
        ("SET", BINARY_KEY, BINARY), ("GET", BINARY_KEY), ("STRLEN", BINARY_KEY),
        ("SET", "big", "x" * 100_000), ("STRLEN", "big"), ("GET", "big"),
        ("GET",), ("GET", "a", "b"), ("SET", "k"), ("SET",),
        ("SET", "k", "v", "FOO"), ("SET", "k", "v", "EX"), ("SET", "k", "v", "PX"),
        ("get", "k"), ("sEt", "k", "lower"), ("GET", "k"),
        *WRONGTYPE_SETUP, ("GET", "hash"), ("SET", "hash", "now-a-string"), ("TYPE", "hash"),
        ("GET", "hash"),
    ],
    "set-expiry-options": [
        ("SET", "k", "v", "EX", "100"), ("TTL", "k"), ("PTTL", "k"),
        ("SET", "k", "v", "PX", "100000"), ("TTL", "k"), ("PTTL", "k"),
        ("SET", "k", "v", "EXAT", FUTURE_S), ("TTL", "k"),
        ("SET", "k", "v", "PXAT", FUTURE_MS), ("TTL", "k"), ("PTTL", "k"),
        ("SET", "k", "v", "ex", "50"), ("TTL", "k"),
        ("SET", "k", "v", "EX", "10", "EX", "20"), ("TTL", "k"),
        ("SET", "k", "v"), ("TTL", "k"),
        ("SET", "k", "v", "EX", "0"), ("SET", "k", "v", "EX", "-1"), ("SET", "k", "v", "PX", "0"),
        ("SET", "k", "v", "PX", "-1"), ("SET", "k", "v", "EXAT", "0"), ("SET", "k", "v", "PXAT", "-1"),
        ("SET", "k", "v", "EX", "abc"), ("SET", "k", "v", "EX", "1.5"), ("SET", "k", "v", "EX", ""),
        ("SET", "k", "v", "EX", I64_MAX), ("SET", "k", "v", "PX", I64_MAX),
        ("SET", "k", "v", "EX", "9223372036854775"), ("SET", "k", "v", "EX", I64_MAX_PLUS_1),
        ("SET", "k", "v", "EX", "100000000000"), ("TTL", "k"),
        ("SET", "k", "v", "EX", "10", "PX", "10000"), ("SET", "k", "v", "EX", "10", "EXAT", FUTURE_S),
        ("SET", "k", "v", "KEEPTTL", "EX", "10"), ("SET", "k", "v", "PX", "10", "KEEPTTL"),
        ("GET", "k"),
        ("SET", "past", "v", "EXAT", PAST_S), ("GET", "past"), ("EXISTS", "past"),
        ("SET", "past", "v", "PXAT", PAST_MS), ("GET", "past"), ("EXISTS", "past"),
        ("SET", "past", "v", "PXAT", "1"), ("EXISTS", "past"),
        ("SET", "short", "v", "PX", "80"), ("GET", "short"), Pause(0.3),
        ("GET", "short"), ("EXISTS", "short"), ("TTL", "short"),
    ],
    "set-nx-xx-keepttl-get": [
        ("SET", "k", "v", "XX"), ("GET", "k"), ("SET", "k", "v", "NX"), ("SET", "k", "w", "NX"),
        ("GET", "k"), ("SET", "k", "w", "XX"), ("GET", "k"),
        ("SET", "k", "v", "NX", "XX"), ("SET", "k", "v", "XX", "NX"), ("SET", "nk", "v", "NX", "XX"),
        ("SET", "k", "v", "nx"), ("SET", "k", "v2", "xx"),
        ("SET", "t", "v", "EX", "100"), ("SET", "t", "v2", "KEEPTTL"), ("TTL", "t"), ("GET", "t"),
        ("SET", "t", "v3"), ("TTL", "t"),
        ("SET", "t", "v", "PX", "100000"), ("SET", "t", "v4", "keepttl", "XX"), ("PTTL", "t"),
        ("SET", "nokey", "v", "KEEPTTL"), ("TTL", "nokey"),
        ("SET", "g", "new", "GET"), ("SET", "g", "newer", "GET"), ("GET", "g"),
        ("SET", "g", "x", "NX", "GET"), ("SET", "g2", "x", "NX", "GET"), ("GET", "g2"),
        ("SET", "g", "y", "XX", "GET"), ("SET", "g3", "y", "XX", "GET"), ("EXISTS", "g3"),
        ("SET", "g", "z", "GET", "EX", "100"), ("TTL", "g"), ("SET", "g", "z2", "KEEPTTL", "GET"),
        ("TTL", "g"), ("SET", "g", "v", "GET", "GET"),
        ("SET", "g", BINARY, "GET"), ("SET", "g", "", "GET"), ("GET", "g"),
        *WRONGTYPE_SETUP, ("SET", "hash", "x", "GET"), ("TYPE", "hash"), ("SET", "hash", "x", "NX"),
        ("SET", "hash", "x", "XX", "GET"), ("SET", "hash", "x", "XX"), ("TYPE", "hash"),
    ],
    "setex-psetex-setnx": [
        ("SETEX", "k", "100", "v"), ("GET", "k"), ("TTL", "k"),
        ("PSETEX", "k", "100000", "v2"), ("GET", "k"), ("PTTL", "k"),
        ("SETEX", "k", "0", "v"), ("SETEX", "k", "-5", "v"), ("SETEX", "k", "abc", "v"),
        ("SETEX", "k", I64_MAX, "v"), ("SETEX", "k", "1.5", "v"),
        ("PSETEX", "k", "0", "v"), ("PSETEX", "k", "-1", "v"), ("PSETEX", "k", I64_MAX, "v"),
        ("SETEX", "k", "10"), ("SETEX",), ("PSETEX", "k", "10"), ("SETEX", "k", "10", "v", "x"),
        ("SETNX", "n", "1"), ("SETNX", "n", "2"), ("GET", "n"), ("SETNX", "n"), ("SETNX", "n", "1", "2"),
        ("SETNX", "", BINARY), ("GET", ""),
        *WRONGTYPE_SETUP, ("SETNX", "hash", "x"), ("SETEX", "hash", "100", "x"), ("TYPE", "hash"),
        ("TTL", "hash"), ("PSETEX", "short", "80", "v"), Pause(0.3), ("EXISTS", "short"),
    ],
    "getex-getdel": [
        ("GETEX", "nokey"), ("GETEX", "nokey", "EX", "10"), ("GETEX", "nokey", "EX", "0"),
        ("GETEX", "nokey", "PERSIST"), ("GETEX",),
        ("SET", "k", "v"), ("GETEX", "k"), ("TTL", "k"),
        ("GETEX", "k", "EX", "100"), ("TTL", "k"), ("GETEX", "k", "PX", "200000"), ("PTTL", "k"),
        ("GETEX", "k", "EXAT", FUTURE_S), ("TTL", "k"), ("GETEX", "k", "PXAT", FUTURE_MS), ("PTTL", "k"),
        ("GETEX", "k", "PERSIST"), ("TTL", "k"), ("GETEX", "k", "persist"), ("GETEX", "k", "ex", "30"),
        ("TTL", "k"), ("GETEX", "k", "EX", "10", "EX", "20"), ("TTL", "k"),
        ("GETEX", "k", "PERSIST", "PERSIST"), ("TTL", "k"),
        ("GETEX", "k", "EX", "0"), ("GETEX", "k", "EX", "-1"), ("GETEX", "k", "PX", "0"),
        ("GETEX", "k", "EXAT", "0"), ("GETEX", "k", "PXAT", "-5"), ("GETEX", "k", "EX", I64_MAX),
        ("GETEX", "k", "EX", "abc"), ("GETEX", "k", "EX", "1.5"), ("GETEX", "k", "EX"),
        ("GETEX", "k", "PERSIST", "EX", "10"), ("GETEX", "k", "EX", "10", "PX", "10"),
        ("GETEX", "k", "KEEPTTL"), ("GETEX", "k", "FOO"), ("GETEX", "k", "NX"), ("TTL", "k"),
        ("GETEX", "k", "EXAT", PAST_S), ("EXISTS", "k"),
        ("SET", "b", BINARY), ("GETEX", "b", "PX", "100000"), ("GETDEL", "b"), ("EXISTS", "b"),
        ("GETDEL", "b"), ("GETDEL",), ("GETDEL", "a", "b"),
        ("SET", "e", ""), ("GETDEL", "e"), ("EXISTS", "e"),
        *WRONGTYPE_SETUP, ("GETEX", "hash"), ("GETEX", "hash", "PERSIST"), ("GETDEL", "hash"),
        ("EXISTS", "hash"),
    ],
    "mget-mset": [
        ("MSET", "a", "1", "b", "2", "c", BINARY), ("MGET", "a", "b", "c", "nokey"),
        ("MGET", "a"), ("MGET", "nokey"), ("MGET", "a", "a"), ("MGET",),
        ("MSET", "a"), ("MSET", "a", "1", "b"), ("MSET",),
        ("MSET", "a", "x", "a", "y"), ("GET", "a"), ("MSET", "", ""), ("MGET", ""),
        ("SET", "t", "v", "EX", "100"), ("MSET", "t", "w"), ("TTL", "t"),
        *WRONGTYPE_SETUP, ("MGET", "str", "hash", "nokey"), ("MSET", "hash", "s"), ("TYPE", "hash"),
    ],
    "incr-decr": [
        ("INCR", "n"), ("INCR", "n"), ("GET", "n"), ("DECR", "n"), ("DECR", "m"), ("GET", "m"),
        ("INCRBY", "n", "10"), ("INCRBY", "n", "-25"), ("INCRBY", "n", "0"), ("GET", "n"),
        ("INCRBY", "n", "1.5"), ("INCRBY", "n", "abc"), ("INCRBY", "n", ""), ("INCRBY", "n", " 1"),
        ("INCRBY", "n", I64_MAX_PLUS_1), ("INCRBY", "n"), ("INCR",), ("INCR", "a", "b"), ("DECR",),
        ("SET", "max", I64_MAX), ("INCR", "max"), ("GET", "max"), ("INCRBY", "max", "1"),
        ("INCRBY", "max", "-1"), ("GET", "max"),
        ("SET", "min", I64_MIN), ("DECR", "min"), ("INCRBY", "min", "-1"), ("GET", "min"),
        ("INCRBY", "fresh", I64_MIN), ("INCRBY", "fresh", "-1"), ("GET", "fresh"),
        ("SET", "near", "9223372036854775806"), ("INCRBY", "near", "1"), ("INCRBY", "near", "1"),
        ("SET", "s", "abc"), ("INCR", "s"), ("DECR", "s"),
        ("SET", "s", "1.5"), ("INCR", "s"), ("SET", "s", "007"), ("INCR", "s"),
        ("SET", "s", "+1"), ("INCR", "s"), ("SET", "s", "-0"), ("INCR", "s"),
        ("SET", "s", ""), ("INCR", "s"), ("SET", "s", " 1"), ("INCR", "s"), ("SET", "s", "1 "),
        ("INCR", "s"), ("SET", "s", "0"), ("INCR", "s"), ("SET", "s", "-5"), ("INCR", "s"),
        ("SET", "s", "99999999999999999999"), ("INCR", "s"), ("SET", "s", "1\x00"), ("INCR", "s"),
        ("SET", "t", "5", "EX", "100"), ("INCR", "t"), ("TTL", "t"),
        ("incr", "lower"), ("IncrBy", "lower", "2"), ("GET", "lower"),
        *WRONGTYPE_SETUP, ("INCR", "hash"), ("DECR", "hash"), ("INCRBY", "hash", "1"),
    ],
    "append-strlen": [
        ("APPEND", "a", "hello"), ("APPEND", "a", " world"), ("GET", "a"), ("STRLEN", "a"),
        ("APPEND", "a", ""), ("STRLEN", "a"), ("APPEND", "e", ""), ("EXISTS", "e"), ("GET", "e"),
        ("APPEND", "b", BINARY), ("APPEND", "b", BINARY), ("GET", "b"), ("STRLEN", "b"),
        ("STRLEN", "nokey"), ("STRLEN",), ("STRLEN", "a", "b"), ("APPEND", "a"), ("APPEND", "a", "b", "c"),
        ("SET", "n", "10"), ("INCR", "n"), ("STRLEN", "n"), ("APPEND", "n", "5"), ("GET", "n"),
        ("INCR", "n"),
        ("SET", "t", "v", "EX", "100"), ("APPEND", "t", "x"), ("TTL", "t"),
        *WRONGTYPE_SETUP, ("APPEND", "hash", "x"), ("STRLEN", "hash"),
    ],
    "del-unlink-exists-type": [
        ("MSET", "a", "1", "b", "2", "c", "3"), ("HSET", "h", "f", "v"),
        ("EXISTS", "a"), ("EXISTS", "a", "b", "nokey"), ("EXISTS", "a", "a", "a"), ("EXISTS", "nokey"),
        ("EXISTS",), ("TYPE", "a"), ("TYPE", "h"), ("TYPE", "nokey"), ("TYPE",), ("TYPE", "a", "b"),
        ("DEL", "a"), ("DEL", "a"), ("DEL", "b", "b", "nokey"), ("DEL", "h"), ("DEL",),
        ("EXISTS", "a", "b", "h"), ("TYPE", "h"),
        ("SET", "x", "1"), ("SET", "y", "2"), ("UNLINK", "x", "y", "z"), ("UNLINK", "x"), ("UNLINK",),
        ("SET", "", "v"), ("EXISTS", ""), ("DEL", ""), ("EXISTS", ""),
        ("SET", BINARY_KEY, "v"), ("TYPE", BINARY_KEY), ("DEL", BINARY_KEY), ("DBSIZE",),
    ],
    "expire-pexpire": [
        ("EXPIRE", "nokey", "10"), ("PEXPIRE", "nokey", "10000"), ("TTL", "nokey"), ("PTTL", "nokey"),
        ("SET", "k", "v"), ("TTL", "k"), ("PTTL", "k"),
        ("EXPIRE", "k", "100"), ("TTL", "k"), ("PTTL", "k"),
        ("PEXPIRE", "k", "250000"), ("TTL", "k"), ("PTTL", "k"),
        ("PERSIST", "k"), ("TTL", "k"), ("PERSIST", "k"), ("PERSIST", "nokey"),
        # NX / XX / GT / LT
        ("EXPIRE", "k", "100", "XX"), ("EXPIRE", "k", "100", "GT"), ("EXPIRE", "k", "100", "LT"),
        ("TTL", "k"), ("EXPIRE", "k", "50", "NX"), ("EXPIRE", "k", "200", "XX"), ("TTL", "k"),
        ("EXPIRE", "k", "100", "GT"), ("EXPIRE", "k", "300", "GT"), ("TTL", "k"),
        ("EXPIRE", "k", "400", "LT"), ("EXPIRE", "k", "150", "LT"), ("TTL", "k"),
        ("EXPIRE", "k", "10", "nx"), ("EXPIRE", "k", "120", "xx"), ("EXPIRE", "k", "130", "gt"),
        ("TTL", "k"), ("EXPIRE", "k", "10", "XX", "XX"), ("EXPIRE", "k", "10", "NX", "NX"),
        ("EXPIRE", "k", "5", "XX", "GT"), ("EXPIRE", "k", "500", "XX", "GT"), ("TTL", "k"),
        ("EXPIRE", "k", "10", "NX", "XX"), ("EXPIRE", "k", "10", "GT", "LT"),
        ("EXPIRE", "k", "10", "NX", "GT"), ("EXPIRE", "k", "10", "LT", "NX"),
        ("EXPIRE", "k", "10", "FOO"), ("EXPIRE", "k", "10", "XX", "FOO"),
        ("PEXPIRE", "k", "10", "NX", "XX"), ("PEXPIRE", "k", "10", "GT", "LT"),
        ("PEXPIRE", "k", "10", "BAR"), ("PEXPIRE", "k", "600000", "GT"), ("PTTL", "k"),
        ("EXPIRE", "nokey", "10", "NX"), ("EXPIRE", "nokey", "10", "XX"),
        # bad numbers
        ("EXPIRE", "k", "abc"), ("EXPIRE", "k", "1.5"), ("EXPIRE", "k", ""), ("PEXPIRE", "k", "x"),
        ("EXPIRE", "k", I64_MAX), ("PEXPIRE", "k", I64_MAX), ("EXPIRE", "k", I64_MAX_PLUS_1),
        ("EXPIRE", "k", "9223372036854775"), ("EXPIRE", "k", "-9223372036854775"),
        ("EXPIRE", "k", "100000000000"), ("TTL", "k"),
        ("EXPIRE", "k"), ("EXPIRE",), ("PEXPIRE", "k"), ("TTL",), ("PTTL", "a", "b"), ("PERSIST",),
        # zero / negative delete the key
        ("SET", "z", "v"), ("EXPIRE", "z", "0"), ("EXISTS", "z"),
        ("SET", "z", "v"), ("EXPIRE", "z", "-1"), ("EXISTS", "z"),
        ("SET", "z", "v"), ("PEXPIRE", "z", "-100"), ("EXISTS", "z"),
        ("SET", "z", "v"), ("EXPIRE", "z", "-1", "GT"), ("EXISTS", "z"), ("EXPIRE", "z", "-1", "XX"),
        ("EXISTS", "z"), ("EXPIRE", "z", "-1", "LT"), ("EXISTS", "z"),
        ("SET", "z", "v", "EX", "100"), ("EXPIRE", "z", "-1", "NX"), ("EXISTS", "z"),
        ("EXPIRE", "z", "0", "XX"), ("EXISTS", "z"),
        # expiry really happens
        ("SET", "soon", "v"), ("PEXPIRE", "soon", "80"), ("EXISTS", "soon"), Pause(0.3),
        ("EXISTS", "soon"), ("TTL", "soon"), ("PTTL", "soon"), ("GET", "soon"),
        # hashes expire too
        ("HSET", "h", "f", "v"), ("EXPIRE", "h", "100"), ("TTL", "h"), ("PERSIST", "h"), ("TTL", "h"),
    ],
    "expireat-pexpireat": [
        ("EXPIREAT", "nokey", FUTURE_S), ("PEXPIREAT", "nokey", FUTURE_MS),
        ("SET", "k", "v"), ("EXPIREAT", "k", FUTURE_S), ("TTL", "k"),
        ("PEXPIREAT", "k", FUTURE_MS), ("PTTL", "k"), ("TTL", "k"),
        ("EXPIREAT", "k", FUTURE_S, "NX"), ("EXPIREAT", "k", FUTURE_S, "XX"),
        ("EXPIREAT", "k", str(NOW + 100), "GT"), ("EXPIREAT", "k", str(NOW + 100), "LT"), ("TTL", "k"),
        ("PEXPIREAT", "k", FUTURE_MS, "LT"), ("PEXPIREAT", "k", FUTURE_MS, "GT"), ("TTL", "k"),
        ("EXPIREAT", "k", FUTURE_S, "NX", "XX"), ("PEXPIREAT", "k", FUTURE_MS, "GT", "LT"),
        ("EXPIREAT", "k", FUTURE_S, "ZZ"),
        ("EXPIREAT", "k", "abc"), ("PEXPIREAT", "k", "1.0"), ("EXPIREAT", "k", I64_MAX),
        ("EXPIREAT", "k", "9223372036854775"), ("PEXPIREAT", "k", I64_MAX_PLUS_1),
        ("EXPIREAT", "k"), ("PEXPIREAT",),
        ("EXPIREAT", "k", PAST_S), ("EXISTS", "k"), ("GET", "k"),
        ("SET", "k", "v"), ("PEXPIREAT", "k", PAST_MS), ("EXISTS", "k"),
        ("SET", "k", "v"), ("EXPIREAT", "k", "-1"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("EXPIREAT", "k", "0"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("PEXPIREAT", "k", "1"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("EXPIREAT", "k", PAST_S, "GT"), ("EXISTS", "k"),
    ],
    "hash-basic": [
        ("HSET", "h", "a", "1"), ("HSET", "h", "b", "2", "c", "3"), ("HSET", "h", "a", "10", "d", "4"),
        ("HGET", "h", "a"), ("HGET", "h", "zz"), ("HGET", "nokey", "a"),
        ("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h"), ("HLEN", "h"),
        ("HMGET", "h", "a", "zz", "c", "a"), ("HMGET", "nokey", "a", "b"),
        ("HEXISTS", "h", "a"), ("HEXISTS", "h", "zz"), ("HEXISTS", "nokey", "a"),
        ("HSET", "h", "", ""), ("HGET", "h", ""), ("HSET", "h", BINARY, BINARY), ("HGET", "h", BINARY),
        ("HGETALL", "h"), ("HLEN", "h"),
        ("HMSET", "m", "x", "1", "y", "2"), ("HMSET", "m", "x", "3"), ("HGETALL", "m"),
        ("HSETNX", "m", "x", "9"), ("HSETNX", "m", "z", "9"), ("HSETNX", "new", "f", "v"),
        ("HGETALL", "m"), ("HGETALL", "new"),
        ("HDEL", "m", "x", "x", "nope"), ("HDEL", "m", "nope"), ("HDEL", "nokey", "a"),
        ("HKEYS", "m"), ("HDEL", "m", "y", "z"), ("EXISTS", "m"), ("TYPE", "m"), ("HLEN", "m"),
        ("HGETALL", "nokey"), ("HKEYS", "nokey"), ("HVALS", "nokey"), ("HLEN", "nokey"),
        ("hset", "lower", "F", "V"), ("HGET", "lower", "F"), ("HGET", "lower", "f"),
    ],
    "hash-arity-and-types": [
        ("HSET", "h"), ("HSET", "h", "a"), ("HSET", "h", "a", "1", "b"), ("HSET",), ("EXISTS", "h"),
        ("HMSET", "h", "a"), ("HMSET", "h", "a", "1", "b"), ("HMSET", "h"),
        ("HGET", "h"), ("HGET", "h", "a", "b"), ("HMGET", "h"), ("HGETALL",), ("HGETALL", "a", "b"),
        ("HDEL", "h"), ("HLEN",), ("HLEN", "a", "b"), ("HEXISTS", "h"), ("HKEYS",), ("HVALS", "a", "b"),
        ("HINCRBY", "h", "f"), ("HINCRBY", "h", "f", "1", "2"), ("HSETNX", "h", "f"),
        *WRONGTYPE_SETUP,
        ("HSET", "str", "a", "1"), ("HMSET", "str", "a", "1"), ("HGET", "str", "a"),
        ("HMGET", "str", "a"), ("HGETALL", "str"), ("HDEL", "str", "a"), ("HLEN", "str"),
        ("HEXISTS", "str", "a"), ("HKEYS", "str"), ("HVALS", "str"), ("HINCRBY", "str", "a", "1"),
        ("HSETNX", "str", "a", "1"), ("HSET", "str", "a"), ("HINCRBY", "str", "a", "x"),
        ("GET", "str"), ("HGET", "hash", "f"),
    ],
    "hincrby": [
        ("HINCRBY", "h", "n", "5"), ("HINCRBY", "h", "n", "-7"), ("HINCRBY", "h", "n", "0"),
        ("HGET", "h", "n"), ("HINCRBY", "h", "n", "1.5"), ("HINCRBY", "h", "n", "abc"),
        ("HINCRBY", "h", "n", ""), ("HINCRBY", "h", "n", I64_MAX_PLUS_1),
        ("HSET", "h", "max", I64_MAX), ("HINCRBY", "h", "max", "1"), ("HINCRBY", "h", "max", "-1"),
        ("HSET", "h", "min", I64_MIN), ("HINCRBY", "h", "min", "-1"), ("HINCRBY", "h", "min", "1"),
        ("HINCRBY", "h", "fresh", I64_MIN), ("HINCRBY", "h", "fresh", "-1"),
        ("HSET", "h", "s", "abc"), ("HINCRBY", "h", "s", "1"), ("HSET", "h", "s", "1.5"),
        ("HINCRBY", "h", "s", "1"), ("HSET", "h", "s", "007"), ("HINCRBY", "h", "s", "1"),
        ("HSET", "h", "s", ""), ("HINCRBY", "h", "s", "1"), ("HSET", "h", "s", " 1"),
        ("HINCRBY", "h", "s", "1"), ("HGETALL", "h"),
    ],
    "floats": [
        ("INCRBYFLOAT", "f", "10.5"), ("INCRBYFLOAT", "f", "0.1"), ("INCRBYFLOAT", "f", "-10.6"),
        ("SET", "f", "1"), ("INCRBYFLOAT", "f", "-1.1"), ("SET", "f", "1"),
        ("INCRBYFLOAT", "f", "-0.5"), ("INCRBYFLOAT", "f", "5.0e3"),
        ("SET", "f", "17179869184"), ("INCRBYFLOAT", "f", "1.5"), ("GET", "f"),
        ("INCRBYFLOAT", "f", "abc"), ("INCRBYFLOAT", "f", " 1"), ("INCRBYFLOAT", "f", "inf"),
        ("INCRBYFLOAT", "f", "nan"), ("INCRBYFLOAT", "f", ""), ("INCRBYFLOAT", "f", "0x10"),
        ("INCRBYFLOAT", "f", "1 "),
        ("HINCRBYFLOAT", "hf", "x", "0x1p3"), ("SET", "s", " 11"),
        ("INCRBYFLOAT", "s", "1"), ("SET", "s", "1.5x"), ("INCRBYFLOAT", "s", "1"),
        ("HINCRBYFLOAT", "h", "x", "10.5"), ("HINCRBYFLOAT", "h", "x", "0.1"),
        ("HINCRBYFLOAT", "h", "x", "abc"), ("HSET", "h", "s", "x"), ("HINCRBYFLOAT", "h", "s", "1"),
        ("HINCRBYFLOAT", "h", "y", "inf"), ("HINCRBYFLOAT", "h", "y", "-2.25"),
        ("HINCRBYFLOAT", "fresh", "f", "x"), ("EXISTS", "fresh"), ("HGETALL", "h"),
        ("HSTRLEN", "h", "x"), ("HSTRLEN", "h", "nope"), ("HSTRLEN", "nope", "x"),
        *WRONGTYPE_SETUP,
        ("INCRBYFLOAT", "hash", "1"), ("HINCRBYFLOAT", "str", "f", "1"), ("HSTRLEN", "str", "f"),
    ],
    "ranges": [
        ("SET", "s", "Hello World"), ("GETRANGE", "s", "0", "4"), ("GETRANGE", "s", "-5", "-1"),
        ("GETRANGE", "s", "-1", "-5"), ("GETRANGE", "s", "5", "3"), ("GETRANGE", "s", "0", "100"),
        ("GETRANGE", "s", "-100", "-50"), ("GETRANGE", "s", "-100", "2"), ("GETRANGE", "nope", "0", "1"),
        ("SUBSTR", "s", "0", "-1"), ("GETRANGE", "s", "a", "1"), ("SET", "e", ""),
        ("GETRANGE", "e", "0", "-1"), ("SETRANGE", "s", "6", "Redis"), ("GET", "s"),
        ("SETRANGE", "n", "3", "ab"), ("GET", "n"), ("SETRANGE", "n2", "5", ""), ("EXISTS", "n2"),
        ("SETRANGE", "s", "0", ""), ("SETRANGE", "s", "-1", "x"), ("SETRANGE", "s", "x", "y"),
        ("SET", "t", "v", "EX", "100"), ("SETRANGE", "t", "0", "w"), ("TTL", "t"),
        ("GETSET", "t", "new"), ("TTL", "t"), ("GETSET", "absent", "v"), ("GET", "absent"),
        ("EXPIRETIME", "t"), ("EXPIRETIME", "nope"), ("SET", "x", "1", "EXAT", FUTURE_S),
        ("EXPIRETIME", "x"), ("PEXPIRETIME", "x"), ("SET", "y", "1", "PXAT", FUTURE_MS),
        ("PEXPIRETIME", "y"), ("EXPIRETIME", "y"), ("TOUCH", "x", "y", "nope", "x"),
        *WRONGTYPE_SETUP,
        ("GETRANGE", "hash", "0", "1"), ("SETRANGE", "hash", "0", "x"), ("GETSET", "hash", "x"),
        ("EXPIRETIME", "hash"),
    ],
    "lcs": [
        ("SET", "a", "ohmytext"), ("SET", "b", "mynewtext"), ("LCS", "a", "b"), ("LCS", "a", "b", "LEN"),
        ("LCS", "a", "b", "IDX"), ("LCS", "a", "b", "IDX", "WITHMATCHLEN"),
        ("LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"), ("LCS", "a", "b", "idx", "minmatchlen", "-3"),
        ("LCS", "a", "nope"), ("LCS", "nope", "nada", "LEN"), ("LCS", "nope", "a", "IDX"), ("LCS", "a", "a"),
        ("SET", "c", BINARY), ("SET", "d", b"\x00\xffb\r\n"), ("LCS", "c", "d"), ("LCS", "c", "d", "IDX"),
        ("LCS", "a", "b", "LEN", "IDX"), ("LCS", "a", "b", "FOO"), ("LCS", "a", "b", "MINMATCHLEN"),
        ("LCS", "a", "b", "MINMATCHLEN", "x"), ("LCS", "a"),
        ("SET", "dna1", DNA[0]), ("SET", "dna2", DNA[1]), ("LCS", "dna1", "dna2", "LEN"),
        ("LCS", "dna1", "dna2"), ("LCS", "dna1", "dna2", "IDX", "MINMATCHLEN", "7", "WITHMATCHLEN"),
        *WRONGTYPE_SETUP,
        ("LCS", "str", "hash"), ("LCS", "hash", "a", "LEN"), ("LCS", "hash", "a", "FOO"),
    ],
    "sort": [
        ("RPUSH", "l", "3", "1", "10", "2"), ("SORT", "l"), ("SORT", "l", "DESC"), ("SORT", "l", "ALPHA"),
        ("SORT", "l", "LIMIT", "1", "2"), ("SORT", "l", "LIMIT", "-5", "2"), ("SORT", "l", "LIMIT", "2", "-1"),
        ("SORT", "l", "LIMIT", "9", "1"), ("SORT", "l", "LIMIT", "1", "0"), ("SORT", "l", "BY", "nosort"),
        ("SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "2"),
        ("MSET", "w_1", "40", "w_2", "30", "w_3", "20"), ("SORT", "l", "BY", "w_*"),
        ("SORT", "l", "BY", "w_*", "DESC", "GET", "#", "GET", "w_*"), ("SORT", "l", "BY", "w_*", "ALPHA"),
        ("HSET", "o_1", "name", "one"), ("HSET", "o_2", "name", "two"), ("HSET", "o_3", "name", "three"),
        ("SORT", "l", "BY", "o_*->name", "ALPHA", "GET", "o_*->name", "GET", "#"),
        ("SORT", "l", "GET", "o_*->", "GET", "nostar", "GET", "w_*->name"),
        ("SORT", "l", "STORE", "dst"), ("LRANGE", "dst", "0", "-1"), ("TYPE", "dst"),
        ("SORT", "l", "BY", "w_*", "GET", "o_*->name", "STORE", "dst"), ("LRANGE", "dst", "0", "-1"),
        ("SORT", "nope", "STORE", "dst"), ("EXISTS", "dst"), ("SORT", "nope"),
        ("RPUSH", "one", "abc"), ("SORT", "one", "BY", "nosort"), ("SORT", "one", "ALPHA"),
        ("SORT", "one", "BY", "nosort", "GET", "#", "GET", "x:*"), ("SORT_RO", "one", "ALPHA"),
        ("RPUSH", "words", "b", "a", "c"), ("SORT", "words"), ("SORT", "words", "ALPHA", "DESC"),
        ("ZADD", "z", "3", "c", "1", "a", "2", "b"), ("SORT", "z", "BY", "nosort"),
        ("SORT", "z", "BY", "nosort", "DESC"), ("SORT", "z", "ALPHA", "LIMIT", "0", "2"),
        ("SADD", "s", "5", "-1", "2.5"), ("SORT", "s"), ("SORT", "s", "DESC", "LIMIT", "0", "2"),
        ("SORT", "s", "BY", "nosort", "STORE", "dst2"), ("LRANGE", "dst2", "0", "-1"),
        ("RPUSH", "ties", "b", "a"), ("MSET", "t_a", "1", "t_b", "1"), ("SORT", "ties", "BY", "t_*"),
        ("SORT", "l", "FOO"), ("SORT", "l", "LIMIT", "1"), ("SORT", "l", "LIMIT", "x", "1"),
        ("SORT_RO", "l", "STORE", "dst"), ("SORT", "l", "GET"),
        ("COMMAND", "GETKEYS", "SORT", "abc", "STORE", "x", "store", "def"), ("COMMAND", "GETKEYS", "sort_ro", "a"),
        ("COMMAND", "GETKEYS", "mset", "a", "1", "b", "2"), ("COMMAND", "GETKEYS", "lcs", "a", "b", "LEN"),
        ("COMMAND", "GETKEYS", "ping"), ("COMMAND", "GETKEYS", "nosuch", "x"), ("COMMAND", "GETKEYS", "get"),
        ("COMMAND", "GETKEYS"),
        *WRONGTYPE_SETUP,
        ("SORT", "str"), ("SORT", "hash", "ALPHA"), ("SORT", "l", "BY", "hash"), ("SORT", "l", "BY", "hash*"),
    ],
    "hscan-hrandfield": [
        ("HSET", "h", "b", "1", "a", "2", "c", "3", "ab", "4"), ("HDEL", "h", "a"),
        ("HSCAN", "h", "0"), ("HSCAN", "h", "0", "MATCH", "a*"), ("HSCAN", "h", "0", "COUNT", "1"),
        ("HSCAN", "h", "0", "MATCH", "*", "COUNT", "100"), ("HSCAN", "nope", "0"),
        ("HSCAN", "h", "x"), ("HSCAN", "h", "0", "COUNT", "0"), ("HSCAN", "h", "0", "MATCH"),
        ("HSCAN", "h", "0", "FOO", "1"),
        ("HSET", "one", "f", "v"), ("HRANDFIELD", "one"), ("HRANDFIELD", "one", "3"),
        ("HRANDFIELD", "one", "-3"), ("HRANDFIELD", "one", "2", "WITHVALUES"),
        ("HRANDFIELD", "one", "-2", "WITHVALUES"), ("HRANDFIELD", "one", "0"),
        ("HRANDFIELD", "nope"), ("HRANDFIELD", "nope", "5"), ("HRANDFIELD", "nope", "5", "WITHVALUES"),
        ("HRANDFIELD", "one", "x"), ("HRANDFIELD", "one", "1", "FOO"),
        *WRONGTYPE_SETUP,
        ("HSCAN", "str", "0"), ("HRANDFIELD", "str"), ("HRANDFIELD", "str", "2"),
    ],
    "msetnx-config": [
        ("MSETNX", "a", "1", "b", "2"), ("MGET", "a", "b"), ("MSETNX", "b", "3", "c", "4"),
        ("EXISTS", "c"), ("MSETNX", "x", "1", "y", "2", "x", "3"), ("GET", "x"),
        ("MSETNX", "x"), ("MSETNX",), ("MSETNX", "p", "1", "q"),
        # Values as packaged: the baseline server keeps what a script sets for the scripts after.
        ("CONFIG", "SET", "hash-max-ziplist-entries", "512"), ("CONFIG", "SET", "hash-max-listpack-value", "64"),
        ("CONFIG", "SET", "no-such-option", "1"), ("CONFIG", "SET", "hash-max-ziplist-entries"),
        ("FUNCTION", "FLUSH"), ("FUNCTION", "FLUSH", "ASYNC"), ("FUNCTION", "LIST"),
    ],
    "bits": [
        ("SETBIT", "b", "1", "1"), ("GET", "b"), ("SETBIT", "b", "7", "1"), ("GET", "b"),
        ("SETBIT", "b", "1", "0"), ("GETBIT", "b", "1"), ("GETBIT", "b", "7"), ("GETBIT", "b", "100"),
        ("SETBIT", "b", "20", "1"), ("GET", "b"), ("STRLEN", "b"), ("GETBIT", "nope", "3"),
        ("SET", "s", "A"), ("GETBIT", "s", "1"), ("SETBIT", "s", "6", "1"), ("GET", "s"),
        ("SETBIT", "s", "6", "1"), ("SETBIT", "b", "-1", "1"), ("SETBIT", "b", "4294967296", "1"),
        ("SETBIT", "b", "1", "2"), ("SETBIT", "b", "1", "-1"), ("SETBIT", "b", "x", "1"),
        ("GETBIT", "b", "-1"), ("GETBIT", "b", "x"),
        *WRONGTYPE_SETUP,
        ("SETBIT", "hash", "1", "1"), ("GETBIT", "hash", "1"),
    ],
    "randomkey": [
        ("RANDOMKEY",), ("SET", "only", "1"), ("RANDOMKEY",), ("DEL", "only"), ("RANDOMKEY",),
        ("HSET", "h", "f", "v"), ("RANDOMKEY",), ("RANDOMKEY", "x"),
    ],
    "rename-copy": [
        ("SET", "a", "1", "EX", "100"), ("RENAME", "a", "b"), ("GET", "a"), ("GET", "b"), ("TTL", "b"),
        ("RENAME", "a", "b"), ("RENAME", "b", "b"), ("RENAMENX", "b", "b"), ("GET", "b"),
        ("HSET", "h", "f", "v", "g", "w"), ("RENAME", "h", "b"), ("TYPE", "b"), ("HGETALL", "b"),
        ("EXISTS", "h"), ("SET", "s", "x"), ("RENAMENX", "s", "b"), ("RENAMENX", "s", "t"),
        ("GET", "t"), ("EXISTS", "s"), ("RENAMENX", "nope", "t"),
        ("COPY", "t", "u"), ("GET", "u"), ("COPY", "t", "u"), ("SET", "t", "y"),
        ("COPY", "t", "u", "REPLACE"), ("GET", "u"), ("COPY", "nope", "u"), ("COPY", "t", "t"),
        ("COPY", "b", "hc"), ("HGETALL", "hc"), ("HSET", "b", "f", "changed"), ("HGET", "hc", "f"),
        ("COPY", "t", "v", "DB", "0"), ("COPY", "t", "v", "FOO"), ("COPY", "t", "w", "DB"),
        ("SET", "e", "1", "PX", "100000"), ("COPY", "e", "e2"), ("PTTL", "e2"),
        ("RENAME", "e", "x"), ("PTTL", "x"), ("RENAME", "a"), ("COPY", "a"),
    ],
    "object": [
        ("SET", "i", "12345"), ("SET", "neg", "-7"), ("SET", "e", "short"), ("SET", "r", "x" * 45),
        ("SET", "z", "0123"), ("OBJECT", "ENCODING", "i"), ("OBJECT", "ENCODING", "neg"),
        ("OBJECT", "ENCODING", "e"), ("OBJECT", "ENCODING", "r"), ("OBJECT", "ENCODING", "z"),
        ("HSET", "small", "f", "v"), ("OBJECT", "ENCODING", "small"),
        ("HSET", "wide", "f", "v" * 65), ("OBJECT", "ENCODING", "wide"),
        ("HSET", "many", *(x for k in range(513) for x in (f"f{k}", "v"))), ("OBJECT", "ENCODING", "many"),
        ("OBJECT", "ENCODING", "nope"), ("OBJECT", "IDLETIME", "nope"), ("OBJECT", "FREQ", "nope"),
        # GET first: Redis' idle time counts from the last access (the grid keeps none: 0).
        ("OBJECT", "FREQ", "e"), ("GET", "e"), ("OBJECT", "IDLETIME", "e"), ("OBJECT", "ENCODING"),
        ("OBJECT", "FOO", "e"), ("OBJECT", "ENCODING", "e", "extra"),
    ],
    "flush": [
        ("MSET", "a", "1", "b", "2"), ("HSET", "h", "f", "v"), ("DBSIZE",),
        ("FLUSHDB",), ("DBSIZE",), ("EXISTS", "a", "b", "h"),
        ("SET", "a", "1"), ("FLUSHALL",), ("DBSIZE",), ("GET", "a"),
        ("SET", "a", "1"), ("FLUSHDB", "SYNC"), ("DBSIZE",),
        ("SET", "a", "1"), ("FLUSHDB", "ASYNC"), ("DBSIZE",),
        ("SET", "a", "1"), ("FLUSHALL", "SYNC"), ("DBSIZE",),
        ("SET", "a", "1"), ("FLUSHALL", "async"), ("DBSIZE",),
        ("SET", "a", "1"), ("FLUSHALL", "FOO"), ("FLUSHDB", "FOO"), ("FLUSHALL", "SYNC", "ASYNC"),
        ("FLUSHDB", "a", "b", "c"), ("DBSIZE",),
    ],
    "sets": WRONGTYPE_SETUP + [
        ("SADD", "s", "3", "1", "2", "1"), ("SMEMBERS", "s"), ("SCARD", "s"),
        ("SADD", "s", "-5", "10"), ("SMEMBERS", "s"), ("SISMEMBER", "s", "2"),
        ("SISMEMBER", "s", "9"), ("SMISMEMBER", "s", "1", "9", "10"), ("SMISMEMBER", "nokey", "1"),
        ("SREM", "s", "1", "99"), ("SMEMBERS", "s"), ("SREM", "nokey", "a"),
        ("SADD", "w", "b", "a", "c", BINARY), Unordered(("SMEMBERS", "w")), ("SCARD", "w"),
        ("SISMEMBER", "w", BINARY), ("SREM", "w", "a", "b", "c", BINARY), ("EXISTS", "w"),
        ("SMEMBERS", "nokey"), ("SCARD", "nokey"), ("SISMEMBER", "nokey", "a"),
        ("SADD", "str", "a"), ("SMEMBERS", "str"), ("SCARD", "hash"), ("SREM", "str", "a"),
        ("SISMEMBER", "str", "a"), ("SMISMEMBER", "str", "a"), ("SADD", "s"), ("SREM", "s"),
        ("SISMEMBER", "s"), ("SMISMEMBER", "s"), ("SMEMBERS", "s", "x"), ("SCARD", "s", "x"),
        ("TYPE", "s"), ("OBJECT", "ENCODING", "s"), ("SADD", "s", "x"), ("OBJECT", "ENCODING", "s"),
        ("GET", "s"), ("HGET", "s", "f"), ("INCR", "s"),
    ],
    "set-pop-rand": WRONGTYPE_SETUP + [
        ("SADD", "s", "1", "2", "3", "4", "5"), ("SRANDMEMBER", "s", "0"),
        ("SRANDMEMBER", "s", "5"), ("SRANDMEMBER", "s", "9"), ("SRANDMEMBER", "nokey"),
        ("SRANDMEMBER", "nokey", "3"), ("SRANDMEMBER", "nokey", "-3"), ("SRANDMEMBER", "s", "x"),
        ("SRANDMEMBER", "s", I64_MIN), ("SRANDMEMBER", "s", "1", "2"), ("SRANDMEMBER", "str"),
        ("SPOP", "s", "0"), ("SPOP", "s", "-1"), ("SPOP", "s", "x"), ("SPOP", "s", "1", "2"),
        ("SPOP", "nokey"), ("SPOP", "nokey", "2"), ("SPOP", "str"), ("SPOP", "str", "2"),
        ("SPOP", "s", "5"), ("EXISTS", "s"), ("SADD", "one", "x"), ("SPOP", "one"),
        ("EXISTS", "one"), ("SADD", "one", "x"), ("SRANDMEMBER", "one"), ("SRANDMEMBER", "one", "-3"),
        ("SRANDMEMBER", "one", "3"), ("SPOP", "one", "1"), ("EXISTS", "one"),
    ],
    "set-algebra": WRONGTYPE_SETUP + [
        ("SADD", "a", "1", "2", "3", "4"), ("SADD", "b", "3", "4", "5"), ("SADD", "c", "4", "9"),
        ("SADD", "w", "x", "y", "4"), ("SINTER", "a", "b"), ("SINTER", "a", "b", "c"),
        ("SINTER", "a", "nokey"), ("SINTER", "a", "str"), ("SINTER", "nokey", "str"),
        ("SUNION", "a", "b", "c"), ("SUNION", "nokey"), ("SUNION", "a", "hash"),
        ("SDIFF", "a", "b"), ("SDIFF", "a", "b", "c"), ("SDIFF", "nokey", "a"), ("SDIFF", "a", "str"),
        Unordered(("SUNION", "a", "w")), ("SINTER", "w", "a"), Unordered(("SDIFF", "w", "a")),
        ("SINTERSTORE", "d", "a", "b"), ("SMEMBERS", "d"), ("SUNIONSTORE", "d", "a", "c"),
        ("SMEMBERS", "d"), ("SDIFFSTORE", "d", "a", "a"), ("EXISTS", "d"),
        ("SET", "d", "str"), ("SINTERSTORE", "d", "a", "b"), ("TYPE", "d"), ("SMEMBERS", "d"),
        ("EXPIRE", "d", "100"), ("SUNIONSTORE", "d", "a"), ("TTL", "d"),
        ("SINTERSTORE", "d", "a", "str"), ("SINTERSTORE", "d", "a", "nokey"), ("EXISTS", "d"),
        ("SINTERCARD", "2", "a", "b"), ("SINTERCARD", "3", "a", "b", "c"),
        ("SINTERCARD", "2", "a", "b", "LIMIT", "1"), ("SINTERCARD", "2", "a", "b", "LIMIT", "0"),
        ("SINTERCARD", "0", "a"), ("SINTERCARD", "-1", "a"), ("SINTERCARD", "3", "a", "b"),
        ("SINTERCARD", "1", "a", "LIMIT", "-1"), ("SINTERCARD", "1", "a", "LIMIT"),
        ("SINTERCARD", "1", "a", "FOO", "1"), ("SINTERCARD", "x", "a"), ("SINTERCARD", "1", "str"),
        ("SINTERCARD", "2", "a", "nokey"), ("SINTER",), ("SINTERSTORE", "d"),
        ("SMOVE", "a", "b", "1"), ("SMEMBERS", "a"), ("SMEMBERS", "b"), ("SMOVE", "a", "b", "99"),
        ("SMOVE", "nokey", "str", "1"), ("SMOVE", "a", "str", "2"), ("SMOVE", "str", "a", "2"),
        ("SMOVE", "a", "a", "2"), ("SMOVE", "a", "a", "99"), ("SMOVE", "c", "new", "9"),
        ("SMOVE", "c", "new", "4"), ("EXISTS", "c"), ("SMEMBERS", "new"),
    ],
    "sscan": WRONGTYPE_SETUP + [
        ("SADD", "s", "a1", "a2", "b1"), Unordered(("SSCAN", "s", "0"), (1,)),
        Unordered(("SSCAN", "s", "0", "MATCH", "a*"), (1,)), ("SSCAN", "s", "0", "COUNT", "0"),
        ("SSCAN", "s", "x"), ("SSCAN", "nokey", "0"), ("SSCAN", "str", "0"),
        ("SSCAN", "s", "0", "MATCH"), ("SADD", "n", "1", "2"), ("SSCAN", "n", "0"),
    ],
    "zset-add": WRONGTYPE_SETUP + [
        ("ZADD", "z", "1", "a", "2", "b", "1.5", "c"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZADD", "z", "3", "a"), ("ZADD", "z", "CH", "3", "a", "4", "b", "9", "new"),
        ("ZADD", "z", "NX", "100", "a", "5", "d"), ("ZADD", "z", "XX", "100", "a", "5", "e"),
        ("ZADD", "z", "XX", "CH", "100", "a", "5", "e"), ("ZSCORE", "z", "a"), ("ZSCORE", "z", "e"),
        ("ZADD", "z", "GT", "CH", "50", "a", "200", "b", "1", "f"), ("ZSCORE", "z", "a"),
        ("ZADD", "z", "LT", "CH", "50", "a", "300", "b"), ("ZADD", "z", "XX", "GT", "60", "a"),
        ("ZADD", "z", "XX", "LT", "CH", "40", "a"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZADD", "z", "INCR", "2.5", "a"), ("ZADD", "z", "INCR", "1", "newer"),
        ("ZADD", "z", "NX", "INCR", "1", "a"), ("ZADD", "z", "XX", "INCR", "1", "missing"),
        ("ZADD", "z", "GT", "INCR", "-1", "a"), ("ZADD", "z", "LT", "INCR", "-1", "a"),
        ("ZADD", "z", "INCR", "0", "a"), ("ZADD", "z", "incr", "ch", "nx", "5", "zz"),
        ("ZADD", "nokey", "XX", "1", "a"), ("EXISTS", "nokey"), ("ZADD", "nokey", "XX", "INCR", "1", "a"),
        ("ZADD", "z", "NX", "XX", "1", "a"), ("ZADD", "z", "GT", "LT", "1", "a"),
        ("ZADD", "z", "NX", "GT", "1", "a"), ("ZADD", "z", "NX", "LT", "1", "a"),
        ("ZADD", "z", "INCR", "1", "a", "2", "b"), ("ZADD", "z", "1"), ("ZADD", "z", "1", "a", "2"),
        ("ZADD", "z", "NX"), ("ZADD", "z", "x", "a"), ("ZADD", "z", "1", "a", "nan", "b"),
        ("ZADD", "z", " 1", "a"), ("ZADD", "z", "1 ", "a"), ("ZADD", "z", "", "a"),
        ("ZADD", "z", "1e999", "a"), ("ZADD", "z", "FOO", "1", "a"), ("ZADD", "z"), ("ZADD", "z", "1"),
        ("ZADD", "z", "NX", "XX", "x", "a"), ("ZADD", "z", "INCR", "x", "a"),
        ("ZADD", "inf", "inf", "x", "-inf", "y", "+inf", "z"), ("ZADD", "inf", "INCR", "-inf", "x"),
        ("ZADD", "inf", "INCR", "inf", "y"), ("ZADD", "inf", "INCR", "+inf", "x"),
        ("ZRANGE", "inf", "0", "-1", "WITHSCORES"),
        ("ZADD", "f", "0.1", "a", "1e20", "b", "-0", "c", "0x10", "d", "1e-320", "e", "-1.5e-7", "f",
         "123456789012345678", "g", "3.0", "h", "1E3", "i"),
        ("ZRANGE", "f", "0", "-1", "WITHSCORES"), ("ZSCORE", "f", "c"), ("ZSCORE", "f", "e"),
        ("ZADD", "f", "0", "c"), ("ZSCORE", "f", "c"), ("ZINCRBY", "f", "0.2", "a"),
        ("ZADD", BINARY_KEY, "1", BINARY, "2", ""), ("ZRANGE", BINARY_KEY, "0", "-1", "WITHSCORES"),
        ("ZADD", "str", "1", "a"), ("ZADD", "hash", "XX", "1", "a"), ("ZADD", "str", "x", "a"),
        ("TYPE", "z"), ("OBJECT", "ENCODING", "z"), ("ZADD", "big", "1", "x" * 100),
        ("OBJECT", "ENCODING", "big"), ("GET", "z"), ("SADD", "z", "x"),
    ],
    "zset-score-rank": WRONGTYPE_SETUP + [
        ("ZADD", "z", "1", "a", "2", "b", "2", "c", "3", "d"), ("ZCARD", "z"), ("ZCARD", "nokey"),
        ("ZSCORE", "z", "b"), ("ZSCORE", "z", "x"), ("ZSCORE", "nokey", "x"),
        ("ZMSCORE", "z", "a", "x", "d"), ("ZMSCORE", "nokey", "a", "b"), ("ZMSCORE", "z"),
        ("ZRANK", "z", "a"), ("ZRANK", "z", "c"), ("ZRANK", "z", "x"), ("ZRANK", "nokey", "a"),
        ("ZREVRANK", "z", "a"), ("ZREVRANK", "z", "d"), ("ZREVRANK", "z", "x"),
        ("ZRANK", "z", "a", "WITHSCORE"), ("ZRANK", "z"),
        ("ZINCRBY", "z", "5", "a"), ("ZINCRBY", "z", "-0.5", "new"), ("ZINCRBY", "z", "x", "a"),
        ("ZINCRBY", "z", "nx", "a"), ("ZINCRBY", "z", "1"), ("ZINCRBY", "nokey2", "1.5", "m"),
        ("ZADD", "z", "inf", "i"), ("ZINCRBY", "z", "-inf", "i"), ("ZINCRBY", "z", "inf", "i"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZCARD", "str"), ("ZSCORE", "str", "a"), ("ZMSCORE", "hash", "a"), ("ZRANK", "str", "a"),
        ("ZREVRANK", "hash", "a"), ("ZINCRBY", "str", "1", "a"), ("ZCARD", "z", "x"),
    ],
    "zset-range": WRONGTYPE_SETUP + [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
        ("ZRANGE", "z", "0", "-1"), ("ZRANGE", "z", "1", "2"), ("ZRANGE", "z", "-2", "-1"),
        ("ZRANGE", "z", "-100", "100"), ("ZRANGE", "z", "3", "1"), ("ZRANGE", "z", "5", "10"),
        ("ZRANGE", "z", "0", "-1", "REV"), ("ZRANGE", "z", "0", "1", "REV", "WITHSCORES"),
        ("ZRANGE", "z", "0", "-1", "withscores", "rev"), ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"),
        ("ZRANGE", "z", "0", "-1", "LIMIT", "1", "2"), ("ZRANGE", "z", "x", "1"),
        ("ZRANGE", "z", "0", "1", "FOO"), ("ZRANGE", "z", "0", "1", "LIMIT", "1"),
        ("ZRANGE", "z", "0", "1", "LIMIT", "x", "1"),
        ("ZRANGE", "z", "2", "4", "BYSCORE"), ("ZRANGE", "z", "(2", "4", "BYSCORE", "WITHSCORES"),
        ("ZRANGE", "z", "4", "(2", "BYSCORE", "REV"), ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"),
        ("ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2", "WITHSCORES"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "2", "-5"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "10", "1"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "0", "0"),
        ("ZRANGE", "z", "x", "1", "BYSCORE"), ("ZRANGE", "z", "(", "", "BYSCORE"),
        ("ZRANGE", "z", "1", "nan", "BYSCORE"), ("ZRANGE", "z", "[a", "[c", "BYSCORE"),
        ("ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"), ("ZRANGE", "z", "0", "-1", "REV", "REV"),
        ("ZRANGE", "nokey", "0", "-1"), ("ZRANGE", "nokey", "x", "y", "BYSCORE"),
        ("ZRANGE", "str", "0", "-1"), ("ZRANGE", "hash", "0", "1", "BYSCORE"),
        ("ZREVRANGE", "z", "0", "1"), ("ZREVRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZREVRANGE", "z", "0", "1", "REV"), ("ZREVRANGE", "z", "0", "1", "BYSCORE"),
        ("ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1"),
        ("ZRANGEBYSCORE", "z", "2", "4"), ("ZRANGEBYSCORE", "z", "-inf", "(3", "WITHSCORES"),
        ("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "1", "2", "WITHSCORES"),
        ("ZRANGEBYSCORE", "z", "4", "2"), ("ZRANGEBYSCORE", "z", "2", "4", "REV"),
        ("ZRANGEBYSCORE", "z", "2", "4", "BYSCORE"), ("ZRANGEBYSCORE", "z", "a", "4"),
        ("ZREVRANGEBYSCORE", "z", "4", "2"), ("ZREVRANGEBYSCORE", "z", "+inf", "(3", "WITHSCORES"),
        ("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", "1", "1"), ("ZREVRANGEBYSCORE", "z", "2", "4"),
        ("ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "", "0", "aa"),
        ("ZRANGEBYLEX", "lex", "-", "+"), ("ZRANGEBYLEX", "lex", "[b", "(d"), ("ZRANGEBYLEX", "lex", "(a", "[c"),
        ("ZRANGEBYLEX", "lex", "-", "+", "LIMIT", "1", "3"), ("ZRANGEBYLEX", "lex", "+", "-"),
        ("ZRANGEBYLEX", "lex", "[", "[a"), ("ZRANGEBYLEX", "lex", "(", "+"),
        ("ZRANGEBYLEX", "lex", "a", "+"), ("ZRANGEBYLEX", "lex", "-", "+x"), ("ZRANGEBYLEX", "lex", "", "+"),
        ("ZRANGEBYLEX", "lex", "-", "+", "WITHSCORES"), ("ZREVRANGEBYLEX", "lex", "+", "-"),
        ("ZREVRANGEBYLEX", "lex", "[d", "(a"), ("ZREVRANGEBYLEX", "lex", "+", "-", "LIMIT", "2", "2"),
        ("ZRANGE", "lex", "[b", "[d", "BYLEX"), ("ZRANGE", "lex", "[d", "[b", "BYLEX", "REV"),
        ("ZRANGE", "lex", "-", "+", "BYLEX", "LIMIT", "1", "1"), ("ZRANGE", "lex", "-", "+", "BYLEX", "WITHSCORES"),
        ("ZRANGE", "lex", "a", "b", "BYLEX"), ("ZRANGEBYLEX", "z", "-", "+"), ("ZRANGEBYLEX", "z", "[b", "[d"),
        ("ZRANGEBYLEX", "str", "-", "+"), ("ZRANGEBYLEX", "nokey", "-", "+"), ("ZRANGE", "z"),
        ("ZRANGEBYSCORE", "z", "1"), ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"),
    ],
    "zset-count-remrange": WRONGTYPE_SETUP + [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
        ("ZCOUNT", "z", "2", "4"), ("ZCOUNT", "z", "(2", "(4"), ("ZCOUNT", "z", "-inf", "+inf"),
        ("ZCOUNT", "z", "5", "1"), ("ZCOUNT", "z", "x", "1"), ("ZCOUNT", "nokey", "0", "1"),
        ("ZCOUNT", "z", " 2", "4\x00"), ("ZCOUNT", "str", "0", "1"), ("ZCOUNT", "nokey", "x", "1"),
        ("ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d"),
        ("ZLEXCOUNT", "lex", "-", "+"), ("ZLEXCOUNT", "lex", "[b", "+"), ("ZLEXCOUNT", "lex", "(b", "(d"),
        ("ZLEXCOUNT", "lex", "b", "+"), ("ZLEXCOUNT", "nokey", "-", "+"), ("ZLEXCOUNT", "hash", "-", "+"),
        ("ZREMRANGEBYRANK", "z", "0", "0"), ("ZRANGE", "z", "0", "-1"),
        ("ZREMRANGEBYRANK", "z", "-1", "-1"), ("ZREMRANGEBYRANK", "z", "5", "10"),
        ("ZREMRANGEBYRANK", "z", "x", "1"), ("ZRANGE", "z", "0", "-1"),
        ("ZREMRANGEBYSCORE", "z", "(2", "3"), ("ZREMRANGEBYSCORE", "z", "x", "3"),
        ("ZREMRANGEBYSCORE", "z", "10", "20"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZREMRANGEBYSCORE", "z", "-inf", "+inf"), ("EXISTS", "z"),
        ("ZREMRANGEBYLEX", "lex", "[b", "[c"), ("ZREMRANGEBYLEX", "lex", "x", "[c"),
        ("ZRANGE", "lex", "0", "-1"), ("ZREMRANGEBYLEX", "lex", "-", "+"), ("EXISTS", "lex"),
        ("ZREMRANGEBYRANK", "nokey", "0", "-1"), ("ZREMRANGEBYSCORE", "nokey", "0", "1"),
        ("ZREMRANGEBYLEX", "nokey", "-", "+"), ("ZREMRANGEBYRANK", "str", "0", "1"),
        ("ZREMRANGEBYSCORE", "hash", "0", "1"), ("ZREMRANGEBYLEX", "str", "-", "+"),
        ("ZADD", "r", "1", "a", "2", "b"), ("ZREMRANGEBYRANK", "r", "0", "-1"), ("EXISTS", "r"),
        ("ZADD", "m", "1", "a", "2", "b", "3", "c"), ("ZREM", "m", "a", "x", "a"), ("ZREM", "m", "x"),
        ("ZREM", "m", "b", "c", "d"), ("EXISTS", "m"), ("ZREM", "nokey", "a"), ("ZREM", "str", "a"),
        ("ZREM", "m"), ("ZREMRANGEBYRANK", "z", "0"),
    ],
    "zset-pop": WRONGTYPE_SETUP + [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
        ("ZPOPMIN", "z"), ("ZPOPMAX", "z"), ("ZPOPMIN", "z", "2"), ("ZPOPMAX", "z", "0"),
        ("ZPOPMIN", "z", "-1"), ("ZPOPMIN", "z", "x"), ("ZPOPMIN", "z", "1", "2"),
        ("ZPOPMAX", "z", "10"), ("EXISTS", "z"), ("ZPOPMIN", "nokey"), ("ZPOPMIN", "nokey", "2"),
        ("ZPOPMAX", "nokey", "0"), ("ZPOPMIN", "str"), ("ZPOPMAX", "hash", "1"),
        ("ZADD", "y", "1", "a", "2", "b", "3", "c"),
        ("ZMPOP", "2", "nokey", "y", "MIN"), ("ZMPOP", "1", "y", "MAX", "COUNT", "10"), ("EXISTS", "y"),
        ("ZMPOP", "1", "y", "MIN"), ("ZMPOP", "2", "nokey", "str", "MIN"), ("ZMPOP", "2", "str", "nokey", "MAX"),
        ("ZMPOP", "0", "y", "MIN"), ("ZMPOP", "x", "y", "MIN"), ("ZMPOP", "-1", "y", "MIN"),
        ("ZMPOP", "2", "y", "MIN"), ("ZMPOP", "1", "y", "FOO"), ("ZMPOP", "1", "y", "MIN", "COUNT"),
        ("ZMPOP", "1", "y", "MIN", "COUNT", "0"), ("ZMPOP", "1", "y", "MIN", "COUNT", "x"),
        ("ZMPOP", "1", "y", "MIN", "COUNT", "1", "COUNT", "1"), ("ZMPOP", "1", "y", "MIN", "FOO"),
        ("ZMPOP", "5", "y", "MIN"), ("ZMPOP", "1", "y"),
        ("ZADD", "w", "1", "a", "2", "b", "3", "c"),
        ("BZPOPMIN", "nokey", "w", "0"), ("BZPOPMAX", "w", "1"), ("BZPOPMIN", "nokey", "0.01"),
        ("BZPOPMAX", "nokey", "nokey2", "0.02"), ("BZPOPMIN", "str", "w", "0"), ("BZPOPMIN", "nokey", "hash", "1"),
        ("BZPOPMIN", "w", "x"), ("BZPOPMIN", "w", "-1"), ("BZPOPMIN", "w", "-0.0001"),
        ("BZPOPMIN", "w", ""), ("BZPOPMIN", "w", " 1"), ("BZPOPMIN", "w", "nan"), ("BZPOPMIN", "w", "inf"),
        ("BZPOPMIN", "w", "1e300"), ("BZPOPMIN", "w"),
        ("ZADD", "w", "1", "a", "2", "b", "3", "c"),
        ("BZMPOP", "0", "2", "nokey", "w", "MAX", "COUNT", "2"), ("BZMPOP", "1", "1", "w", "MIN"),
        ("BZMPOP", "0.01", "1", "w", "MIN"), ("BZMPOP", "0.01", "2", "nokey", "str", "MIN"),
        ("BZMPOP", "x", "1", "w", "MIN"), ("BZMPOP", "-1", "1", "w", "MIN"), ("BZMPOP", "0", "0", "w", "MIN"),
        ("BZMPOP", "0", "1", "w", "FOO"), ("BZMPOP", "x", "1", "w", "FOO"),
        ("BZMPOP", "0", "1", "w", "MIN", "COUNT", "0"), ("BZMPOP", "0", "1", "w"),
    ],
    "zset-randmember-scan": WRONGTYPE_SETUP + [
        ("ZADD", "z", "1", "a", "2", "b", "3.5", "c"), ("ZRANDMEMBER", "z", "3"),
        ("ZRANDMEMBER", "z", "10", "WITHSCORES"), ("ZRANDMEMBER", "z", "0"), ("ZRANDMEMBER", "z", "0", "WITHSCORES"),
        ("ZRANDMEMBER", "nokey"), ("ZRANDMEMBER", "nokey", "5"), ("ZRANDMEMBER", "nokey", "-5", "WITHSCORES"),
        ("ZRANDMEMBER", "z", "x"), ("ZRANDMEMBER", "z", "1", "FOO"), ("ZRANDMEMBER", "z", "1", "WITHSCORES", "x"),
        ("ZRANDMEMBER", "z", I64_MIN), ("ZRANDMEMBER", "z", I64_MAX, "WITHSCORES"),
        ("ZRANDMEMBER", "z", "-4611686018427387904", "WITHSCORES"), ("ZRANDMEMBER", "str"),
        ("ZRANDMEMBER", "hash", "1"), ("ZRANDMEMBER", "str", "x"),
        ("ZADD", "one", "7", "only"), ("ZRANDMEMBER", "one"), ("ZRANDMEMBER", "one", "-3", "WITHSCORES"),
        ("ZRANDMEMBER", "one", "1", "WITHSCORES"), ("ZRANDMEMBER", "one", "-2"),
        ("ZADD", "s", "1", "a1", "2.5", "a2", "3", "b1", "1e20", "big", "0.1", "tenth"),
        ("ZSCAN", "s", "0"), ("ZSCAN", "s", "0", "MATCH", "a*"), ("ZSCAN", "s", "0", "COUNT", "100"),
        ("ZSCAN", "s", "x"), ("ZSCAN", "nokey", "0"), ("ZSCAN", "str", "0"), ("ZSCAN", "s", "0", "MATCH"),
    ],
    "zset-algebra": WRONGTYPE_SETUP + [
        ("ZADD", "a", "1", "x", "2", "y", "3", "z"), ("ZADD", "b", "10", "y", "20", "z", "30", "w"),
        ("SADD", "set", "x", "w", "q"), ("ZADD", "inf", "inf", "x", "-inf", "y"),
        ("ZUNION", "2", "a", "b"), ("ZUNION", "2", "a", "b", "WITHSCORES"),
        ("ZUNION", "2", "a", "b", "WEIGHTS", "2", "0.5", "WITHSCORES"),
        ("ZUNION", "2", "a", "b", "AGGREGATE", "MIN", "WITHSCORES"),
        ("ZUNION", "2", "a", "b", "AGGREGATE", "max", "WEIGHTS", "1", "-1", "WITHSCORES"),
        ("ZUNION", "3", "a", "b", "set", "WITHSCORES"), ("ZUNION", "2", "a", "nokey", "WITHSCORES"),
        ("ZUNION", "2", "a", "inf", "WITHSCORES"), ("ZUNION", "2", "inf", "inf", "WITHSCORES"),
        ("ZUNION", "2", "inf", "a", "WEIGHTS", "0", "1", "WITHSCORES"),
        ("ZINTER", "2", "a", "b"), ("ZINTER", "2", "a", "b", "WITHSCORES"),
        ("ZINTER", "2", "a", "b", "AGGREGATE", "MAX", "WITHSCORES"),
        ("ZINTER", "2", "a", "set", "WEIGHTS", "1", "5", "WITHSCORES"), ("ZINTER", "2", "a", "nokey"),
        ("ZINTER", "3", "a", "b", "a", "WITHSCORES"), ("ZINTER", "2", "inf", "inf", "WITHSCORES"),
        ("ZDIFF", "2", "a", "b"), ("ZDIFF", "2", "a", "b", "WITHSCORES"), ("ZDIFF", "2", "set", "a", "WITHSCORES"),
        ("ZDIFF", "1", "nokey"), ("ZDIFF", "2", "a", "b", "WEIGHTS", "1", "2"),
        ("ZDIFF", "2", "a", "b", "AGGREGATE", "SUM"),
        ("ZUNIONSTORE", "d", "2", "a", "b"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZINTERSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZDIFFSTORE", "d", "2", "a", "b"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZUNIONSTORE", "d", "2", "a", "set"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("SET", "d", "x"), ("EXPIRE", "d", "100"), ("ZINTERSTORE", "d", "1", "a"), ("TTL", "d"), ("TYPE", "d"),
        ("ZINTERSTORE", "d", "2", "a", "nokey"), ("EXISTS", "d"), ("ZDIFFSTORE", "d", "1", "nokey"),
        ("ZUNIONSTORE", "d", "1", "a", "WITHSCORES"), ("ZUNIONSTORE", "d", "2", "a", "str"),
        ("ZINTERCARD", "2", "a", "b"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "1"),
        ("ZINTERCARD", "2", "a", "b", "LIMIT", "0"), ("ZINTERCARD", "2", "a", "set"),
        ("ZINTERCARD", "1", "a", "LIMIT", "-1"), ("ZINTERCARD", "1", "a", "LIMIT", "x"),
        ("ZINTERCARD", "1", "a", "WITHSCORES"), ("ZINTERCARD", "1", "a", "WEIGHTS", "1"),
        ("ZINTERCARD", "0", "a"), ("ZINTERCARD", "3", "a", "b"), ("ZINTERCARD", "1", "str"),
        ("ZUNION", "0", "a"), ("ZUNION", "-1", "a"), ("ZUNION", "x", "a"), ("ZUNION", "3", "a", "b"),
        ("ZUNION", "2", "a", "str"), ("ZUNION", "2", "a", "hash", "FOO"), ("ZUNION", "1", "a", "FOO"),
        ("ZUNION", "2", "a", "b", "WEIGHTS", "1"), ("ZUNION", "2", "a", "b", "WEIGHTS", "1", "x"),
        ("ZUNION", "2", "a", "b", "AGGREGATE", "FOO"), ("ZUNION", "2", "a", "b", "AGGREGATE"),
        ("ZINTERSTORE", "d", "0", "a"), ("ZDIFFSTORE", "d", "-1", "a"), ("ZINTER", "1", "str"),
        ("ZDIFF", "2", "a", "hash"), ("ZUNIONSTORE", "d"), ("ZUNION", "1"),
    ],
    "zset-rangestore": WRONGTYPE_SETUP + [
        ("ZADD", "src", "1", "a", "2", "b", "3", "c", "4", "d"),
        ("ZRANGESTORE", "dst", "src", "0", "1"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "dst", "src", "(1", "+inf", "BYSCORE", "LIMIT", "1", "1"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "dst", "src", "0", "-1", "REV"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "dst", "src", "[c", "-", "BYLEX", "REV"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "dst", "src", "5", "10"), ("EXISTS", "dst"),
        ("SET", "dst", "x"), ("ZRANGESTORE", "dst", "src", "0", "0"), ("TYPE", "dst"),
        ("ZRANGESTORE", "dst", "nokey", "0", "-1"), ("EXISTS", "dst"),
        ("ZRANGESTORE", "dst", "src", "0", "-1", "WITHSCORES"), ("ZRANGESTORE", "dst", "str", "0", "-1"),
        ("ZRANGESTORE", "dst", "src", "x", "1"), ("ZRANGESTORE", "dst", "src", "0", "1", "LIMIT", "0", "1"),
        ("ZRANGESTORE", "src", "src", "1", "2"), ("ZRANGE", "src", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "dst", "src", "0"),
    ],
    "list-push-pop": WRONGTYPE_SETUP + [
        ("RPUSH", "l", "a", "b", "c"), ("LPUSH", "l", "x", "y"), ("LRANGE", "l", "0", "-1"),
        ("LLEN", "l"), ("RPUSH", "l", BINARY, ""), ("LRANGE", "l", "0", "-1"),
        ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "l", "2"), ("RPOP", "l", "2"), ("LRANGE", "l", "0", "-1"),
        ("LPOP", "l", "0"), ("RPOP", "l", "0"), ("LPOP", "l", "-1"), ("RPOP", "l", "x"),
        ("LPOP", "l", "1.5"), ("LPOP", "l", "1", "2"), ("RPOP", "l", "1", "2", "3"),
        ("LPOP", "nokey"), ("RPOP", "nokey"), ("LPOP", "nokey", "0"), ("RPOP", "nokey", "3"),
        ("LPOP", "nokey", "-1"), ("LPOP", "l", "99"), ("EXISTS", "l"), ("LPOP", "l"),
        ("LPUSHX", "l", "a"), ("RPUSHX", "l", "a", "b"), ("EXISTS", "l"),
        ("RPUSH", "l", "1"), ("LPUSHX", "l", "0", "-1"), ("RPUSHX", "l", "2", "3"),
        ("LRANGE", "l", "0", "-1"), ("LLEN", "nokey"), ("TYPE", "l"), ("OBJECT", "ENCODING", "l"),
        ("LPUSH", "str", "a"), ("RPUSH", "hash", "a"), ("LPUSHX", "str", "a"), ("RPUSHX", "hash", "a"),
        ("LPOP", "str"), ("RPOP", "hash", "2"), ("LPOP", "str", "0"), ("LPOP", "str", "-1"),
        ("LLEN", "str"), ("LPUSH", "l"), ("RPUSH",), ("LPOP",), ("LLEN", "l", "x"),
        ("GET", "l"), ("HGET", "l", "f"), ("SADD", "l", "x"), ("INCR", "l"),
        ("RPUSH", "big", "x" * 100_000), ("LINDEX", "big", "0"), ("EXPIRE", "l", "100"),
        ("RPUSH", "l", "z"), ("TTL", "l"),
    ],
    "list-index-set-range": WRONGTYPE_SETUP + [
        ("RPUSH", "l", "a", "b", "c", "d", "e"), ("LINDEX", "l", "0"), ("LINDEX", "l", "-1"),
        ("LINDEX", "l", "-5"), ("LINDEX", "l", "-6"), ("LINDEX", "l", "5"), ("LINDEX", "l", "x"),
        ("LINDEX", "l", I64_MIN), ("LINDEX", "l", I64_MAX), ("LINDEX", "l", I64_MAX_PLUS_1),
        ("LINDEX", "nokey", "x"), ("LINDEX", "nokey", "0"), ("LINDEX", "str", "x"), ("LINDEX", "hash", "0"),
        ("LSET", "l", "0", "A"), ("LSET", "l", "-1", BINARY), ("LSET", "l", "5", "x"),
        ("LSET", "l", "-6", "x"), ("LSET", "l", "x", "x"), ("LSET", "nokey", "0", "x"),
        ("LSET", "nokey", "x", "x"), ("LSET", "str", "0", "x"), ("LSET", "hash", "x", "x"),
        ("LRANGE", "l", "0", "-1"), ("LRANGE", "l", "1", "2"), ("LRANGE", "l", "-2", "-1"),
        ("LRANGE", "l", "-100", "100"), ("LRANGE", "l", "3", "1"), ("LRANGE", "l", "5", "10"),
        ("LRANGE", "l", "0", "-6"), ("LRANGE", "l", I64_MIN, I64_MAX), ("LRANGE", "l", "x", "1"),
        ("LRANGE", "l", "0", "y"), ("LRANGE", "nokey", "0", "-1"), ("LRANGE", "nokey", "x", "1"),
        ("LRANGE", "str", "0", "-1"), ("LRANGE", "str", "x", "1"), ("LRANGE", "l", "0"),
        ("LSET", "l", "0"), ("LINDEX", "l"),
    ],
    "multi-exec": WRONGTYPE_SETUP + [
        ("MULTI",), ("SET", "a", "1"), ("INCR", "a"), ("RPUSH", "l", "x", "y"), ("GET", "a"),
        ("INCR", "str"), ("HGET", "str", "f"), ("LRANGE", "l", "0", "-1"), ("PING",), ("EXEC",),
        ("MULTI",), ("EXEC",), ("EXEC",), ("DISCARD",), ("MULTI",), ("MULTI",), ("DISCARD",),
        ("MULTI",), ("SET", "b", "1"), ("NOSUCHCOMMAND",), ("GET",), ("EXEC",), ("EXISTS", "b"),
        ("MULTI",), ("DEL", "a"), ("DISCARD",), ("GET", "a"),
        ("MULTI",), ("WATCH", "a"), ("EXEC",),
        ("MULTI",), ("SET", "c", "x"), ("INCR", "c"), ("APPEND", "c", "y"), ("EXEC",),
        ("MULTI",), ("MSET", "m1", "1", "m2", "2"), ("MGET", "m1", "m2", "nokey"), ("DEL", "m1", "m2"),
        ("KEYS", "m*"), ("DBSIZE",), ("EXEC",),
        ("MULTI",), ("BLPOP", "nolist", "0"), ("BRPOPLPUSH", "nolist", "other", "0"),
        ("BZPOPMIN", "nozset", "0"), ("EXEC",),
        ("SET", "w", "1"), ("WATCH", "w"), ("SET", "w", "2"), ("MULTI",), ("INCR", "w"), ("EXEC",),
        ("GET", "w"), ("WATCH", "w"), ("MULTI",), ("INCR", "w"), ("EXEC",), ("GET", "w"),
        ("WATCH", "w", "nokey", "w"), ("EXPIRE", "w", "100"), ("MULTI",), ("PING",), ("EXEC",),
        ("WATCH", "nokey"), ("SET", "nokey", "1"), ("MULTI",), ("PING",), ("EXEC",),
        ("WATCH", "w"), ("UNWATCH",), ("SET", "w", "5"), ("MULTI",), ("GET", "w"), ("EXEC",),
        ("WATCH", "w"), ("SET", "w", "6"), ("MULTI",), ("DISCARD",), ("MULTI",), ("GET", "w"), ("EXEC",),
        ("WATCH", "w"), ("FLUSHALL",), ("MULTI",), ("PING",), ("EXEC",),
        ("WATCH",), ("UNWATCH", "x"), ("MULTI", "x"), ("EXEC", "x"),
        ("MULTI",), ("SET", "foo", "bar"), ("SAVE",), ("EXEC",), ("GET", "foo"),
        ("MULTI",), ("SET", "foo", "bar"), ("SHUTDOWN",), ("EXEC",), ("GET", "foo"),
    ],
    "scripts": WRONGTYPE_SETUP + [
        ("EVAL", "return 1", "0"), ("EVAL", "return {1, 2, {3, 'x'}, nil, 5}", "0"),
        ("EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v"),
        ("EVAL", "return redis.call('get', KEYS[1])", "1", "k"),
        ("EVAL", "return redis.pcall('incr', KEYS[1])", "1", "k"),
        ("EVAL", "local r = redis.pcall('incr', KEYS[1]); return {type(r), r['err']}", "1", "k"),
        ("EVAL", "return {err='MY_ERR custom'}", "0"), ("EVAL", "return {ok='fine'}", "0"),
        ("EVAL", "return redis.error_reply('ERR mine')", "0"), ("EVAL", "return redis.status_reply('YES')", "0"),
        ("EVAL", "return 3.99", "0"), ("EVAL", "return -2.5", "0"), ("EVAL", "return true", "0"),
        ("EVAL", "return false", "0"), ("EVAL", "return nil", "0"), ("EVAL", "return ARGV", "0", "a", BINARY),
        ("EVAL", "return KEYS", "2", "k1", "k2", "a"), ("EVAL", "return 1", "-1"), ("EVAL", "return 1", "2", "k"),
        ("EVAL", "return 1", "x"), ("EVAL", "return 1"),
        ("EVAL", "return redis.call('incrbyfloat', KEYS[1], 1.5)", "1", "f"),
        ("EVAL", "return redis.call('set', KEYS[1], 9007199254740991)", "1", "n"), ("GET", "n"),
        ("EVAL", "return redis.call('set', KEYS[1], 0.1)", "1", "n"), ("GET", "n"),
        ("EVAL", "return redis.call('lpush', KEYS[1], unpack(ARGV))", "1", "l", "a", "b", "c"),
        ("EVAL", "return redis.call('lrange', KEYS[1], 0, -1)", "1", "l"),
        ("EVAL", "return redis.call('hgetall', KEYS[1])", "1", "hash"),
        ("EVAL", "redis.setresp(3); return redis.call('hgetall', KEYS[1])", "1", "hash"),
        ("EVAL", "redis.setresp(3); return redis.call('get', 'nokey')", "0"),
        ("EVAL", "return redis.call('get', 'nokey')", "0"),
        ("EVAL", "return cjson.encode({1, 2, 3})", "0"), ("EVAL", "return cjson.decode('[1,2,3]')", "0"),
        ("EVAL", "return redis.sha1hex('abc')", "0"), ("EVAL", "return bit.band(7, 3)", "0"),
        ("EVAL", "return cmsgpack.unpack(cmsgpack.pack({1, 2, 3}))", "0"),
        ("EVAL", "return struct.unpack('>I2', struct.pack('>I2', 513))", "0"),
        ("EVAL", "return pcall(function() return undefined_thing end)", "0"),
        ("SCRIPT", "LOAD", "return 'hi'"), ("EVALSHA", "8b4a8cba9ad1a6bb2ea3a6fe20eb0b02b7b1a3d2", "0"),
        ("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"), ("EVALSHA", "bad", "0"),
        ("SCRIPT", "EXISTS", "8b4a8cba9ad1a6bb2ea3a6fe20eb0b02b7b1a3d2", "abc"),
        ("SCRIPT", "FLUSH"), ("SCRIPT", "EXISTS", "8b4a8cba9ad1a6bb2ea3a6fe20eb0b02b7b1a3d2"),
        ("SCRIPT", "KILL"), ("SCRIPT", "FOO"),
        ("EVAL_RO", "return redis.call('get', KEYS[1])", "1", "k"),
        ("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", "1", "k"),
        ("MULTI",), ("EVAL", "return redis.call('incr', KEYS[1])", "1", "c"), ("INCR", "c"), ("EXEC",),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('incr_it', function(keys, args) return redis.call('incr', keys[1]) end)\nredis.register_function{function_name='peek', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}}"),
        ("FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('incr_it', function(keys, args) return redis.call('incr', keys[1]) end)\nredis.register_function{function_name='peek', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}}"),
        ("FUNCTION", "LOAD", "REPLACE", "#!lua name=lib\nredis.register_function('incr_it', function(keys, args) return redis.call('incr', keys[1]) end)\nredis.register_function{function_name='peek', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}}"),
        ("FCALL", "incr_it", "1", "c"), ("FCALL", "peek", "1", "c"), ("FCALL_RO", "peek", "1", "c"),
        ("FCALL_RO", "incr_it", "1", "c"), ("FCALL", "nosuch", "0"), ("FCALL", "peek", "5", "c"),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function{function_name='peek', callback=function(keys, args) return 1 end, flags={'no-writes'}}"),
        ("FUNCTION", "LIST"), ("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "l*"),
        ("FUNCTION", "LIST", "LIBRARYNAME", "x*"),
        ("FUNCTION", "LOAD", "return 1"), ("FUNCTION", "LOAD", "#!lua name=empty\nlocal x = 1"),
        ("FUNCTION", "LOAD", "#!lua\nlocal x = 1"), ("FUNCTION", "LOAD", "#!nolua name=x\nlocal x = 1"),
        ("FUNCTION", "DELETE", "lib"), ("FUNCTION", "DELETE", "lib"), ("FCALL", "incr_it", "1", "c"),
        ("FUNCTION", "STATS"), ("FUNCTION", "FLUSH"),
    ],
    "databases": [
        ("SET", "k", "zero"), ("SELECT", "1"), ("GET", "k"), ("SET", "k", "one"), ("GET", "k"),
        ("HSET", "h", "f", "v"), ("RPUSH", "{t}l", "a"), Unordered(("KEYS", "*")), ("DBSIZE",),
        ("EXISTS", "k", "h"), Unordered(("SCAN", "0", "COUNT", "1000"), (1,)), ("SELECT", "0"),
        ("GET", "k"), ("KEYS", "*"),
        ("SELECT", "16"), ("SELECT", "-1"), ("SELECT", "x"), ("SELECT", "15"), ("GET", "k"),
        ("SELECT", "0"), ("MOVE", "k", "2"), ("GET", "k"), ("SELECT", "2"), ("GET", "k"),
        ("MOVE", "k", "1"), ("MOVE", "nokey", "1"), ("MOVE", "k", "2"), ("MOVE", "k", "16"),
        ("COPY", "k", "k2", "DB", "3"), ("COPY", "k", "k", "DB", "2"), ("COPY", "k", "k", "DB", "3"),
        ("SELECT", "3"), ("GET", "k2"), ("GET", "k"),
        ("MULTI",), ("SET", "m", "1"), ("INCR", "m"), ("SELECT", "4"), ("SET", "m", "x"), ("EXEC",),
        ("GET", "m"), ("SELECT", "3"), ("GET", "m"),
        ("EVAL", "redis.call('set', KEYS[1], 'lua'); return redis.call('get', KEYS[1])", "1", "s"),
        ("EVAL", "redis.call('select', '5'); return redis.call('get', KEYS[1])", "1", "s"),
        ("GET", "s"), ("SET", "w", "1"), ("WATCH", "w"), ("SELECT", "0"), ("SET", "w", "2"),
        ("MULTI",), ("GET", "w"), ("EXEC",), ("SELECT", "3"), ("WATCH", "w"), ("SELECT", "0"),
        ("SET", "w", "3"), ("SELECT", "3"), ("MULTI",), ("GET", "w"), ("EXEC",),
        ("FLUSHDB",), ("KEYS", "*"), ("SELECT", "1"), Unordered(("KEYS", "*")), ("FLUSHALL",),
        ("KEYS", "*"),
        ("SELECT", "0"), ("KEYS", "*"), ("SET", "k", "v"), ("WAIT", "0", "0"), ("WAIT", "0", "-1"),
        ("WAIT", "x", "0"),
    ],
    "swapdb": [
        ("SET", "k", "zero"), ("SET", "only0", "a", "PX", FUTURE_MS), ("HSET", "h", "f", "0"),
        ("SELECT", "1"), ("SET", "k", "one"), ("RPUSH", "{t}l", "x", "y"), ("DBSIZE",), ("SELECT", "0"),
        ("DBSIZE",), ("SELECT", "1"), ("SWAPDB", "0", "1"), ("DBSIZE",),
        ("GET", "k"), ("EXISTS", "only0", "h"), Unordered(("KEYS", "*")), ("SELECT", "0"),
        ("GET", "k"), ("LRANGE", "{t}l", "0", "-1"), ("GET", "only0"), Unordered(("KEYS", "*")),
        ("SELECT", "1"), ("PEXPIRETIME", "only0"), ("HGETALL", "h"), ("SWAPDB", "1", "1"),
        ("GET", "k"), ("SWAPDB", "1", "5"), ("GET", "k"), ("SELECT", "5"), ("GET", "k"),
        ("SWAPDB", "0", "16"), ("SWAPDB", "-1", "0"), ("SWAPDB", "x", "0"), ("SWAPDB", "0", "y"),
        ("SWAPDB", "0"), ("SWAPDB", "0", "1", "2"),
        ("MULTI",), ("SET", "m", "1"), ("SWAPDB", "5", "6"), ("GET", "m"), ("EXEC",),
        ("GET", "m"), ("SELECT", "6"), ("GET", "m"), Unordered(("KEYS", "*")),
        ("EVAL", "return redis.call('swapdb', '6', '7')", "0"), ("GET", "m"), ("SELECT", "7"),
        ("GET", "m"), ("FLUSHALL",),
    ],
    "list-rem-trim-insert": WRONGTYPE_SETUP + [
        ("RPUSH", "l", "a", "x", "b", "x", "c", "x", "x"), ("LREM", "l", "1", "x"),
        ("LRANGE", "l", "0", "-1"), ("LREM", "l", "-2", "x"), ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "0", "x"), ("LRANGE", "l", "0", "-1"), ("LREM", "l", "0", "zz"),
        ("LREM", "l", "x", "a"), ("LREM", "nokey", "0", "a"), ("LREM", "nokey", "x", "a"),
        ("LREM", "str", "0", "a"), ("LREM", "l", "0", "a"), ("LREM", "l", "0", "b"),
        ("LREM", "l", "5", "c"), ("EXISTS", "l"),
        ("RPUSH", "l", "a", "b", "c"), ("LINSERT", "l", "BEFORE", "b", "X"),
        ("LINSERT", "l", "after", "c", "Y"), ("LINSERT", "l", "After", "a", BINARY),
        ("LINSERT", "l", "before", "zz", "Z"), ("LINSERT", "l", "middle", "a", "Z"),
        ("LINSERT", "nokey", "before", "a", "Z"), ("LINSERT", "nokey", "middle", "a", "Z"),
        ("LINSERT", "str", "before", "a", "Z"), ("LINSERT", "hash", "foo", "a", "Z"),
        ("LRANGE", "l", "0", "-1"), ("LINSERT", "l", "before", "a"),
        ("LTRIM", "l", "1", "-2"), ("LRANGE", "l", "0", "-1"), ("LTRIM", "l", "-2", "100"),
        ("LRANGE", "l", "0", "-1"), ("LTRIM", "l", "x", "1"), ("LTRIM", "l", "0", "y"),
        ("LTRIM", "nokey", "0", "1"), ("LTRIM", "nokey", "x", "1"), ("LTRIM", "str", "0", "1"),
        ("LTRIM", "l", "0", "0"), ("LRANGE", "l", "0", "-1"), ("LTRIM", "l", "1", "0"),
        ("EXISTS", "l"), ("RPUSH", "l", "a", "b"), ("LTRIM", "l", "5", "10"), ("EXISTS", "l"),
        ("RPUSH", "l", "a", "b"), ("LTRIM", "l", I64_MIN, I64_MAX), ("LRANGE", "l", "0", "-1"),
        ("LTRIM", "l", "0"),
    ],
    "list-lpos": WRONGTYPE_SETUP + [
        ("RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"), ("LPOS", "l", "c"),
        ("LPOS", "l", "c", "RANK", "2"), ("LPOS", "l", "c", "RANK", "-1"), ("LPOS", "l", "c", "RANK", "-3"),
        ("LPOS", "l", "c", "RANK", "4"), ("LPOS", "l", "c", "COUNT", "0"), ("LPOS", "l", "c", "COUNT", "2"),
        ("LPOS", "l", "c", "COUNT", "0", "RANK", "-2"), ("LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7"),
        ("LPOS", "l", "c", "RANK", "-1", "MAXLEN", "1"), ("LPOS", "l", "c", "MAXLEN", "2"),
        ("LPOS", "l", "zz"), ("LPOS", "l", "zz", "COUNT", "1"), ("LPOS", "l", "c", "rank", "2", "rank", "1"),
        ("LPOS", "l", "c", "RANK", "0"), ("LPOS", "l", "c", "RANK", "x"), ("LPOS", "l", "c", "COUNT", "-1"),
        ("LPOS", "l", "c", "COUNT", "x"), ("LPOS", "l", "c", "MAXLEN", "-1"), ("LPOS", "l", "c", "MAXLEN", "x"),
        ("LPOS", "l", "c", "RANK"), ("LPOS", "l", "c", "FOO", "1"), ("LPOS", "l", "c", "COUNT"),
        ("LPOS", "l", "c", "RANK", I64_MIN), ("LPOS", "l", "c", "RANK", I64_MIN, "COUNT", "2"),
        ("LPOS", "l", "c", "RANK", I64_MAX), ("LPOS", "nokey", "c"), ("LPOS", "nokey", "c", "COUNT", "0"),
        ("LPOS", "nokey", "c", "RANK", "0"), ("LPOS", "str", "c"), ("LPOS", "hash", "c", "COUNT", "1"),
        ("LPOS", "l"), ("RPUSH", "b", BINARY), ("LPOS", "b", BINARY),
    ],
    "list-move": WRONGTYPE_SETUP + [
        ("RPUSH", "src", "a", "b", "c"), ("LMOVE", "src", "dst", "LEFT", "RIGHT"),
        ("LMOVE", "src", "dst", "right", "left"), ("LRANGE", "src", "0", "-1"), ("LRANGE", "dst", "0", "-1"),
        ("LMOVE", "dst", "dst", "LEFT", "RIGHT"), ("LRANGE", "dst", "0", "-1"),
        ("LMOVE", "dst", "dst", "LEFT", "LEFT"), ("LMOVE", "dst", "dst", "RIGHT", "LEFT"),
        ("LRANGE", "dst", "0", "-1"), ("RPOPLPUSH", "src", "dst"), ("EXISTS", "src"),
        ("RPOPLPUSH", "src", "dst"), ("LMOVE", "src", "dst", "LEFT", "LEFT"), ("LRANGE", "dst", "0", "-1"),
        ("RPOPLPUSH", "dst", "dst"), ("LRANGE", "dst", "0", "-1"),
        ("LMOVE", "dst", "str", "LEFT", "LEFT"), ("RPOPLPUSH", "dst", "hash"), ("LLEN", "dst"),
        ("LMOVE", "str", "dst", "LEFT", "LEFT"), ("RPOPLPUSH", "str", "str"), ("LMOVE", "nokey", "str", "LEFT", "LEFT"),
        ("RPOPLPUSH", "nokey", "hash"), ("LMOVE", "dst", "x", "UP", "LEFT"), ("LMOVE", "dst", "x", "LEFT", "DOWN"),
        ("LMOVE", "nokey", "x", "UP", "LEFT"), ("LMOVE", "dst", "x", "LEFT"), ("RPOPLPUSH", "dst"),
        ("RPUSH", "one", BINARY), ("LMOVE", "one", "two", "RIGHT", "RIGHT"), ("EXISTS", "one"),
        ("LRANGE", "two", "0", "-1"), ("RPUSH", "s1", "x"), ("RPOPLPUSH", "s1", "s1"), ("LRANGE", "s1", "0", "-1"),
    ],
    "list-mpop": WRONGTYPE_SETUP + [
        ("RPUSH", "a", "1", "2", "3"), ("RPUSH", "b", "x", "y"),
        ("LMPOP", "2", "nokey", "a", "LEFT"), ("LMPOP", "2", "a", "b", "RIGHT", "COUNT", "5"),
        ("LMPOP", "2", "a", "b", "left", "count", "1"), ("LMPOP", "3", "nokey", "a", "b", "RIGHT", "COUNT", "9"),
        ("EXISTS", "a", "b"), ("LMPOP", "1", "nokey", "LEFT"), ("LMPOP", "2", "nokey", "str", "LEFT"),
        ("RPUSH", "a", "1"), ("LMPOP", "2", "a", "str", "LEFT"), ("RPUSH", "a", "1"),
        ("LMPOP", "2", "str", "a", "LEFT"), ("LMPOP", "0", "a", "LEFT"), ("LMPOP", "-1", "a", "LEFT"),
        ("LMPOP", "x", "a", "LEFT"), ("LMPOP", "2", "a", "LEFT"), ("LMPOP", "1", "a", "MIDDLE"),
        ("LMPOP", "1", "a", "LEFT", "COUNT", "0"), ("LMPOP", "1", "a", "LEFT", "COUNT", "-1"),
        ("LMPOP", "1", "a", "LEFT", "COUNT", "x"), ("LMPOP", "1", "a", "LEFT", "COUNT"),
        ("LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "1"), ("LMPOP", "1", "a", "LEFT", "FOO"),
        ("LMPOP", I64_MAX, "a", "LEFT"), ("LMPOP", "1", "a"), ("LMPOP", "1"),
        ("LMPOP", "1", "a", "RIGHT"), ("EXISTS", "a"),
    ],
    "list-blocking": WRONGTYPE_SETUP + [
        ("BLPOP", "nokey", "0.05"), ("BRPOP", "nokey", "other", "0.05"),
        ("RPUSH", "l", "a", "b", "c"), ("BLPOP", "nokey", "l", "0.05"), ("BRPOP", "l", "nokey", "0"),
        ("BLPOP", "l", "1"), ("EXISTS", "l"), ("RPUSH", "l", "a", "b", "c", BINARY),
        ("BLMPOP", "0.05", "2", "nokey", "l", "LEFT"), ("BLMPOP", "0", "1", "l", "RIGHT", "COUNT", "2"),
        ("BLMPOP", "0.05", "1", "nokey", "LEFT", "COUNT", "2"), ("BLMOVE", "l", "d", "LEFT", "RIGHT", "0"),
        ("BLMOVE", "nokey", "d", "LEFT", "RIGHT", "0.05"), ("BRPOPLPUSH", "d", "d", "0.05"),
        ("BRPOPLPUSH", "nokey", "d", "0.05"), ("LRANGE", "d", "0", "-1"), ("EXISTS", "l"),
        ("BLPOP", "str", "0.05"), ("BRPOP", "nokey", "hash", "0.05"), ("BLMPOP", "0.05", "1", "str", "LEFT"),
        ("BLMOVE", "str", "d", "LEFT", "LEFT", "0.05"), ("BLMOVE", "d", "str", "LEFT", "LEFT", "0.05"),
        ("BLMOVE", "nokey", "str", "LEFT", "LEFT", "0.05"), ("BRPOPLPUSH", "d", "hash", "0.05"),
        ("BLPOP", "nokey", "abc"), ("BLPOP", "nokey", "-1"), ("BLPOP", "nokey", "-0.5"),
        ("BLPOP", "nokey", "inf"), ("BLPOP", "nokey", "nan"), ("BLPOP", "nokey", " 1"),
        ("BLPOP", "nokey", "1e30"), ("BLPOP", "nokey", ""), ("BRPOP", "str", "x"),
        ("BLMOVE", "d", "e", "LEFT", "LEFT", "x"), ("BLMOVE", "d", "e", "UP", "LEFT", "x"),
        ("BRPOPLPUSH", "d", "e", "-1"), ("BLMPOP", "x", "1", "d", "LEFT"), ("BLMPOP", "x", "0", "d", "LEFT"),
        ("BLMPOP", "0", "1", "d", "LEFT", "COUNT", "0"), ("BLMPOP", "-1", "1", "d", "UP"),
        ("BLPOP", "nokey"), ("BLMPOP", "0", "1", "d"), ("BLMOVE", "d", "e", "LEFT", "LEFT"),
        ("BRPOPLPUSH", "d", "e"), ("BLPOP", "nokey", "0.001"),
    ],
    # Subscribing changes what a connection may send: wire runners only, where every frame
    # of a multi-frame reply is read by the next command in turn (on both servers alike).
    "pubsub": [
        ("PUBLISH", "ch", "nobody"), ("PUBSUB", "NUMPAT"), ("PUBSUB", "CHANNELS"),
        ("PUBSUB", "NUMSUB", "ch", "other"), ("PUBSUB", "NUMSUB"), ("PUBSUB", "FOO"),
        ("PUBSUB", "CHANNELS", "a", "b"), ("PUBSUB", "NUMPAT", "x"), ("PUBLISH", "ch"),
        ("CONFIG", "SET", "notify-keyspace-events", "Kq"),
        ("CONFIG", "SET", "notify-keyspace-events", "KEA"),
        ("CONFIG", "GET", "notify-keyspace-events"),
        ("CONFIG", "SET", "notify-keyspace-events", "Eg$xn"),
        ("CONFIG", "GET", "notify-keyspace-events"),
        ("CONFIG", "SET", "notify-keyspace-events", ""),
        ("CONFIG", "GET", "notify-keyspace-events"),
        WireOnly(("UNSUBSCRIBE",)), WireOnly(("PUNSUBSCRIBE", "a", "b")),
        WireOnly(("UNSUBSCRIBE", "x")), WireOnly(("PSUBSCRIBE",)),
        WireOnly(("SUBSCRIBE", "ch", "ch2")), WireOnly(("PING",)), WireOnly(("PING", "x")),
        WireOnly(("PSUBSCRIBE", "c*", "d?")), WireOnly(("PUBLISH", "ch", "hello")),
        WireOnly(("PING", "y")), WireOnly(("PUBSUB", "NUMSUB", "ch", "ch2")),
        WireOnly(("PUBSUB", "NUMPAT")), WireOnly(("PUBSUB", "CHANNELS", "ch2*")),
        WireOnly(("SET", "a", "1")), WireOnly(("GET", "a")), WireOnly(("PUNSUBSCRIBE", "c*")),
        WireOnly(("UNSUBSCRIBE", "ch2")), WireOnly(("UNSUBSCRIBE",)), WireOnly(("PUNSUBSCRIBE",)), WireOnly(("PING",)),
        WireOnly(("GET", "a")),
    ],
    "unknown-commands": [
        ("FOO",), ("FOO", "a", "b"), ("foo", "x"), ("FOO", ""), ("FOO", "a\r\nb", "c\nd"),
        ("FOO", "x" * 200), ("FOO", "a" * 60, "b" * 60, "c" * 60, "d"), ("X" * 200,),
        ("NOSUCH", BINARY), ("GETX", "k"), ("SE T", "k", "v"), WireOnly(("",)), WireOnly(("", "a")),
        ("PING",),
    ],
    "hello-errors": [
        ("HELLO", "4"), ("HELLO", "1"), ("HELLO", "0"), ("HELLO", "abc"), ("HELLO", "-1"),
        ("HELLO", "3", "FOO"), ("HELLO", "3", "AUTH", "a"), ("HELLO", "3", "SETNAME"),
        ("HELLO", "2", "SETNAME", "bad name"), ("PING",),
    ],
    "scan-keys-errors": [
        ("SET", "a", "1"), ("KEYS",), ("KEYS", "a", "b"), ("SCAN",), ("SCAN", "abc"), ("SCAN", "1.5"),
        ("SCAN", "18446744073709551616"), ("SCAN", "0", "COUNT"), ("SCAN", "0", "COUNT", "0"),
        ("SCAN", "0", "COUNT", "-1"), ("SCAN", "0", "COUNT", "abc"), ("SCAN", "0", "MATCH"),
        ("SCAN", "0", "TYPE"), ("SCAN", "0", "FOO", "bar"), ("SCAN", "0", "FOO"),
        ("KEYS", "a"), ("KEYS", "nomatch*"),
    ],
}

# --------------------------------------------------------------------------
# Running a script on both servers
# --------------------------------------------------------------------------

#: Commands whose positive integer replies are durations that depend on the clock.
TTL_TOLERANCE = {"TTL": 2, "PTTL": 2000, "EXPIRETIME": 2, "PEXPIRETIME": 2000}


class Near:
    """A positive duration that compares equal to another within a tolerance."""

    def __init__(self, value: int, tolerance: int):
        self.value, self.tolerance = value, tolerance

    def __eq__(self, other):
        return isinstance(other, Near) and abs(self.value - other.value) <= self.tolerance

    def __repr__(self):
        return f"~{self.value}"


def command_name(cmd: tuple) -> str:
    name = cmd[0]
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return name.upper()


def normalise_pyvalue(value):
    """Turn a redis-py reply into something comparable that keeps order."""
    if isinstance(value, dict):
        return ("dict", [(normalise_pyvalue(k), normalise_pyvalue(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return [normalise_pyvalue(v) for v in value]
    if isinstance(value, set):
        return ("set", sorted(map(repr, value)))
    if isinstance(value, BaseException):
        return ("error", type(value).__name__, str(value))
    return value


def normalise_time(cmd: tuple, outcome):
    """Replace positive TTL/PTTL replies with tolerant values."""
    tolerance = TTL_TOLERANCE.get(command_name(cmd))
    if tolerance is None:
        return outcome
    if isinstance(outcome, int) and not isinstance(outcome, bool) and outcome > 0:
        return Near(outcome, tolerance)
    if isinstance(outcome, tuple) and outcome[:1] == ("int",) and outcome[1] > 0:
        return ("int", Near(outcome[1], tolerance))
    return outcome


class RedisPyRunner:
    """Runs commands through redis-py ``execute_command``."""

    def __init__(self, server, protocol: int):
        self.client = server.client(protocol=protocol, single_connection_client=True)

    def run(self, cmd: tuple):
        try:
            outcome = normalise_pyvalue(self.client.execute_command(*cmd))
        except Exception as exc:  # noqa: BLE001 - record any failure as the outcome
            return ("error", type(exc).__name__, str(exc))
        return normalise_time(cmd, outcome)

    def close(self):
        self.client.close()


class WireRunner:
    """Runs commands over a raw socket and records typed RESP reply trees."""

    def __init__(self, server, protocol: int):
        self.port, self.protocol = server.resp_port, protocol
        self.password = getattr(server, "password", None)
        self.conn = self._connect()

    def _connect(self) -> RespConnection:
        conn = RespConnection(self.port)
        if self.password is not None:
            conn.call("AUTH", self.password)
        if self.protocol == 3:
            reply = conn.call("HELLO", "3")
            assert reply[0] == "map", f"HELLO 3 did not return a map: {reply!r}"
        return conn

    def run(self, cmd: tuple):
        try:
            self.conn.send_command(*cmd)
            tree, _raw = self.conn.read_reply()
        except (ConnectionClosed, OSError) as exc:
            self.conn.close()
            self.conn = self._connect()
            return ("connection-lost", type(exc).__name__)
        return normalise_time(cmd, tree)

    def close(self):
        self.conn.close()


RUNNERS: dict[str, tuple[Callable[[Any, int], Any], int]] = {
    "redispy-resp2": (RedisPyRunner, 2),
    "redispy-resp3": (RedisPyRunner, 3),
    "wire-resp2": (WireRunner, 2),
    "wire-resp3": (WireRunner, 3),
}


def short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def run_differential(baseline, grid, script: list, mode: str) -> None:
    """Run ``script`` on both servers and assert identical transcripts."""
    factory, protocol = RUNNERS[mode]
    flushall(baseline, grid)
    base_runner, grid_runner = factory(baseline, protocol), factory(grid, protocol)
    mismatches = []
    try:
        for index, step in enumerate(script):
            if isinstance(step, Pause):
                time.sleep(step.seconds)
                continue
            if isinstance(step, WireOnly):
                if factory is not WireRunner:
                    continue
                step = step.cmd
            if isinstance(step, Unordered):
                expected, actual = base_runner.run(step.cmd), grid_runner.run(step.cmd)
                expected, actual = unordered(expected, step.at), unordered(actual, step.at)
            else:
                expected, actual = base_runner.run(step), grid_runner.run(step)
            if expected != actual:
                mismatches.append((index, step, expected, actual))
    finally:
        base_runner.close()
        grid_runner.close()
    if mismatches:
        lines = [f"{len(mismatches)} command(s) differ from redis-server ({mode}):"]
        for index, step, expected, actual in mismatches[:15]:
            lines.append(f"  #{index} {short(step, 120)}\n"
                         f"      redis: {short(expected)}\n"
                         f"      grid:  {short(actual)}")
        pytest.fail("\n".join(lines), pytrace=False)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(RUNNERS))
@pytest.mark.parametrize("script_name", list(SCRIPTS))
def test_script_matches_redis(baseline, grid, script_name, mode):
    """Every command of the script gets the same reply (or error) from the grid as from Redis."""
    run_differential(baseline, grid, SCRIPTS[script_name], mode)


def test_client_reply_off_and_skip_silence_replies_as_in_redis(baseline, grid):
    """CLIENT REPLY OFF silences every reply (its own too) until ON; SKIP silences its own and
    the next command's; messages of a subscription still arrive (RESP3)."""
    flushall(baseline, grid)
    script = [("CLIENT", "REPLY", "OFF"), ("SET", "a", "1"), ("GET", "a"),
              ("CLIENT", "REPLY", "ON"), ("GET", "a"), ("CLIENT", "REPLY", "SKIP"),
              ("INCR", "a"), ("GET", "a"), ("CLIENT", "REPLY", "FOO"), ("CLIENT", "REPLY")]
    transcripts = []
    for server in (baseline, grid):
        conn = RespConnection(server.port)
        try:
            for cmd in script:
                conn.send_command(*cmd)
            replies = [conn.read_reply(timeout=5) for _ in range(5)]
            transcripts.append([tree for tree, _raw in replies])
        finally:
            conn.close()
    assert transcripts[0] == transcripts[1]


@pytest.mark.parametrize("protocol", [2, 3])
def test_client_setinfo(baseline, grid, protocol):
    """CLIENT SETINFO (sent by redis-py >= 5 on connect) is accepted with OK, or
    answered exactly like the baseline Redis (Redis 7.0 does not know it yet)."""
    for args in (("LIB-NAME", "x"), ("LIB-VER", "1.2.3")):
        base = WireRunner(baseline, protocol)
        node = WireRunner(grid, protocol)
        try:
            expected = base.run(("CLIENT", "SETINFO", *args))
            actual = node.run(("CLIENT", "SETINFO", *args))
        finally:
            base.close()
            node.close()
        assert actual == expected or actual == ("simple", b"OK"), (args, expected, actual)


@pytest.mark.parametrize("protocol", [2, 3])
def test_hello_reply_shape(baseline, grid, protocol):
    """HELLO 2 / HELLO 3 return the same field names as Redis and switch the
    protocol: a flat name/value array for 2, a map for 3, with proto = N."""
    expected_keys = {b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"}
    for server in (baseline, grid):
        with RespConnection(server.port) as conn:
            reply = conn.call("HELLO", str(protocol))
            if protocol == 3:
                assert reply[0] == "map", reply
                pairs = reply[1]
            else:
                assert reply[0] == "array" and len(reply[1]) % 2 == 0, reply
                pairs = list(zip(reply[1][0::2], reply[1][1::2]))
            fields = {key[1]: value for key, value in pairs}
            assert set(fields) == expected_keys, (server.name, sorted(fields))
            assert fields[b"proto"] == ("int", protocol), (server.name, fields[b"proto"])
            assert fields[b"id"][0] == "int", fields[b"id"]
            # after HELLO the connection uses the new protocol (null differs)
            null = conn.call("GET", "no-such-key-for-hello")
            assert null == (("null",) if protocol == 3 else ("null_bulk",)), (server.name, null)
            # HELLO without a version just reports; HELLO 3 SETNAME names the client
            again = conn.call("HELLO", str(protocol), "SETNAME", "hello-client")
            assert again[0] == reply[0], again
            assert conn.call("CLIENT", "GETNAME") == ("bulk", b"hello-client")


@pytest.mark.parametrize("protocol", [2, 3])
def test_command_count(baseline, grid, protocol):
    """COMMAND COUNT returns a positive integer (the numbers differ on purpose)."""
    for server in (baseline, grid):
        client = server.client(protocol=protocol)
        try:
            count = client.command_count()
        finally:
            client.close()
        assert isinstance(count, int) and count > 0, (server.name, count)


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("pattern", ["databases", "maxmemory*", "no-such-parameter"])
def test_config_get_shape(baseline, grid, protocol, pattern):
    """CONFIG GET (probed by client libraries) returns name/value pairs: a map
    in RESP3, a flat even-length array in RESP2; ``databases`` is numeric."""
    for server in (baseline, grid):
        with RespConnection(server.port) as conn:
            if protocol == 3:
                conn.call("HELLO", "3")
            reply = conn.call("CONFIG", "GET", pattern)
        if protocol == 3:
            assert reply[0] == "map", (server.name, reply)
            pairs = reply[1]
        else:
            assert reply[0] == "array" and len(reply[1]) % 2 == 0, (server.name, reply)
            pairs = list(zip(reply[1][0::2], reply[1][1::2]))
        for name, value in pairs:
            assert name[0] == "bulk" and value[0] == "bulk", (server.name, name, value)
        names = {name[1] for name, _ in pairs}
        if pattern == "databases":
            assert names == {b"databases"}, (server.name, names)
            assert int(pairs[0][1][1]) >= 1
        elif pattern == "maxmemory*":
            assert b"maxmemory" in names, (server.name, names)
            assert all(n.startswith(b"maxmemory") for n in names), (server.name, names)
        else:
            assert names == set(), (server.name, names)


def test_info_keyspace_lists_each_database(baseline, grid):
    """INFO keyspace: a line per non-empty database with its keys and keys with a TTL."""
    sections = []
    for server in (baseline, grid):
        with RespConnection(server.port) as conn:
            conn.call("FLUSHALL")
            conn.call("SET", "a", "1")
            conn.call("SET", "b", "2", "EX", "1000")
            conn.call("SELECT", "3")
            conn.call("HSET", "h", "f", "v")
            conn.call("SELECT", "15")
            conn.call("SET", "t", "v", "PX", "100000")
            lines = conn.call("INFO", "keyspace")[1].decode().split("\r\n")
            conn.call("FLUSHALL")
        keyspace = [line.rsplit(",avg_ttl=", 1)[0] for line in lines if line.startswith("db")]
        sections.append(keyspace)
    assert sections[0] == sections[1] == [
        "db0:keys=2,expires=1", "db3:keys=1,expires=0", "db15:keys=1,expires=1",
    ]


@pytest.mark.parametrize("protocol", [2, 3])
def test_info(baseline, grid, protocol):
    """INFO returns text with a "# Server" section and "redis_version:", of the
    same RESP type as Redis (bulk in RESP2, verbatim string in RESP3)."""
    types = {}
    for server in (baseline, grid):
        with RespConnection(server.port) as conn:
            if protocol == 3:
                conn.call("HELLO", "3")
            for args in (("INFO",), ("INFO", "server")):
                kind, text = conn.call(*args)
                types.setdefault(args, []).append(kind)
                assert b"# Server" in text and b"redis_version:" in text, (server.name, args, text[:200])
    for args, kinds in types.items():
        assert kinds[0] == kinds[1], (args, kinds)


# -- SCAN and KEYS ----------------------------------------------------------

KEYSPACE_STRINGS = [
    "a", "b", "c", "d", "ab", "abc", "ba", "user:1", "user:2", "user:10", "user:100",
    "hello", "hallo", "hxllo", "hllo", "heeello", "h*llo", "h?llo", "h[a]llo", "back\\slash",
    "^caret", "-dash", "", "x y", "\u00e9t\u00e9",
]
KEYSPACE_HASHES = ["hash:1", "hash:2", "hash:10", "a-hash", "h"]

PATTERNS = [
    "*", "a*", "*a", "*a*", "?", "??", "???", "user:?", "user:*", "user:??", "user:1*",
    "[a-c]", "[^a]", "[^a-c]", "[abc]", "[c-a]", "h[ae]llo", "h[^e]llo", "h*llo", "h?llo",
    "h\\*llo", "h\\?llo", "h\\[a\\]llo", "*\\\\*", "back\\\\slash", "\\a", "hash:*", "*:1*",
    "", "nomatch*", "[a", "h[", "*[", "[^]", "x y", "\u00e9*", "-*", "^*",
]


def scan_all(client, **options) -> tuple[set, int]:
    """Iterate SCAN until cursor 0; return (keys seen, number of calls)."""
    args = []
    for name in ("match", "count", "type"):
        if options.get(name) is not None:
            args += [name.upper(), options[name]]
    cursor, seen, calls = "0", set(), 0
    while True:
        reply = client.execute_command("SCAN", cursor, *args)
        calls += 1
        cursor, keys = reply[0], reply[1]
        seen.update(keys)
        if int(cursor) == 0:
            return seen, calls
        assert calls < 100_000, "SCAN did not terminate"


@pytest.fixture(scope="module")
def scan_keyspace(baseline, grid):
    """The same mixed keyspace (strings and hashes) on both servers."""
    flushall(baseline, grid)
    for server in (baseline, grid):
        client = server.client(protocol=2)
        for key in KEYSPACE_STRINGS:
            client.set(key, "v")
        for key in KEYSPACE_HASHES:
            client.hset(key, "f", "v")
        client.close()
    return baseline, grid


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_keys_and_scan_match_sets(scan_keyspace, protocol, pattern):
    """KEYS and a full SCAN MATCH iteration return the same *set* of keys as
    Redis for glob patterns (*, ?, [a-c], [^a], backslash escapes, oddities)."""
    baseline, grid = scan_keyspace
    results = {}
    for server in (baseline, grid):
        client = server.client(protocol=protocol)
        try:
            keys = set(client.execute_command("KEYS", pattern))
            scanned, _ = scan_all(client, match=pattern)
            scanned_small, _ = scan_all(client, match=pattern, count=2)
        finally:
            client.close()
        assert scanned == keys == scanned_small, (server.name, pattern, keys, scanned, scanned_small)
        results[server.name] = keys
    assert results["grid"] == results["redis"], (pattern, results)


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("count", [None, 1, 3, 1000])
@pytest.mark.parametrize("type_", [None, "string", "hash", "list", "nosuchtype"])
@pytest.mark.parametrize("match", [None, "h*", "*:1*"])
def test_scan_count_and_type(scan_keyspace, protocol, count, type_, match):
    """A full SCAN iteration with COUNT/TYPE/MATCH yields the same key set as
    Redis, whatever the cursor values are (those differ on purpose)."""
    baseline, grid = scan_keyspace
    results = {}
    for server in (baseline, grid):
        client = server.client(protocol=protocol)
        try:
            results[server.name], _ = scan_all(client, match=match, count=count, type=type_)
        finally:
            client.close()
    assert results["grid"] == results["redis"], results


# -- pipelines ----------------------------------------------------------------


def mixed_commands(n: int, seed: int) -> list[tuple]:
    """``n`` deterministic pseudo-random commands over a small keyspace,
    including ones that fail (wrong type, not an integer, unknown command)."""
    rng = random.Random(seed)
    skeys = [f"s{i}" for i in range(8)]
    hkeys = [f"h{i}" for i in range(4)]
    fields = ["f1", "f2", "f3"]
    makers = [
        lambda: ("SET", rng.choice(skeys), str(rng.randint(-5, 50))),
        lambda: ("SET", rng.choice(skeys), rng.choice(["x", "", "12", BINARY]), "GET"),
        lambda: ("SET", rng.choice(skeys), "v", rng.choice(["NX", "XX"])),
        lambda: ("SET", rng.choice(skeys), "v", "EX", str(rng.randint(100, 1000))),
        lambda: ("GET", rng.choice(skeys + hkeys)),
        lambda: ("INCR", rng.choice(skeys)),
        lambda: ("INCRBY", rng.choice(skeys), str(rng.randint(-10, 10))),
        lambda: ("DECR", rng.choice(skeys)),
        lambda: ("APPEND", rng.choice(skeys), rng.choice(["a", "1", ""])),
        lambda: ("STRLEN", rng.choice(skeys + hkeys)),
        lambda: ("MGET", *rng.sample(skeys + hkeys, 3)),
        lambda: ("MSET", rng.choice(skeys), "m", rng.choice(skeys), "7"),
        lambda: ("DEL", rng.choice(skeys + hkeys)),
        lambda: ("EXISTS", *rng.sample(skeys + hkeys, 2)),
        lambda: ("EXPIRE", rng.choice(skeys + hkeys), str(rng.randint(100, 1000)),
                 *rng.choice([(), ("NX",), ("XX",), ("GT",), ("LT",)])),
        lambda: ("TTL", rng.choice(skeys + hkeys)),
        lambda: ("PTTL", rng.choice(skeys + hkeys)),
        lambda: ("PERSIST", rng.choice(skeys + hkeys)),
        lambda: ("TYPE", rng.choice(skeys + hkeys)),
        lambda: ("HSET", rng.choice(hkeys + skeys[:1]), rng.choice(fields), str(rng.randint(0, 9))),
        lambda: ("HGET", rng.choice(hkeys), rng.choice(fields)),
        lambda: ("HMGET", rng.choice(hkeys), *fields),
        lambda: ("HGETALL", rng.choice(hkeys)),
        lambda: ("HDEL", rng.choice(hkeys), rng.choice(fields)),
        lambda: ("HINCRBY", rng.choice(hkeys), rng.choice(fields), str(rng.randint(-3, 3))),
        lambda: ("HLEN", rng.choice(hkeys)),
        lambda: ("HKEYS", rng.choice(hkeys)),
        lambda: ("HEXISTS", rng.choice(hkeys), rng.choice(fields)),
        lambda: ("HSETNX", rng.choice(hkeys), rng.choice(fields), "n"),
        lambda: ("GETDEL", rng.choice(skeys)),
        lambda: ("GETEX", rng.choice(skeys), *rng.choice([(), ("PERSIST",), ("EX", "500")])),
        lambda: ("ECHO", rng.choice(["hi", "", BINARY])),
        lambda: ("RENAME", rng.choice(skeys + hkeys), rng.choice(skeys + hkeys)),
        lambda: ("RENAMENX", rng.choice(skeys), rng.choice(skeys)),
        lambda: ("COPY", rng.choice(skeys + hkeys), rng.choice(skeys + hkeys), *rng.choice([(), ("REPLACE",)])),
        lambda: ("GETSET", rng.choice(skeys + hkeys[:1]), rng.choice(["g", "3"])),
        # Increments exact in binary: a sum needing more digits prints otherwise than Redis' long double.
        lambda: ("INCRBYFLOAT", rng.choice(skeys), rng.choice(["1.5", "-0.25", "0.5", "5.0e3", "x"])),
        lambda: ("GETRANGE", rng.choice(skeys + hkeys[:1]), str(rng.randint(-4, 3)), str(rng.randint(-4, 6))),
        lambda: ("SUBSTR", rng.choice(skeys), "0", "-1"),
        lambda: ("SETRANGE", rng.choice(skeys + hkeys[:1]), str(rng.randint(0, 6)), rng.choice(["ab", "", "\x00z"])),
        lambda: ("EXPIRETIME", rng.choice(skeys + hkeys)),
        lambda: ("PEXPIRETIME", rng.choice(skeys + hkeys)),
        lambda: ("TOUCH", rng.choice(skeys), rng.choice(hkeys), "missing"),
        lambda: ("HSTRLEN", rng.choice(hkeys + skeys[:1]), rng.choice(fields)),
        lambda: ("HINCRBYFLOAT", rng.choice(hkeys), rng.choice(fields), rng.choice(["2.5", "-0.5", "x"])),
        lambda: ("PING",),
        lambda: ("DBSIZE",),
        lambda: ("NOSUCHCOMMAND", "x"),
        lambda: ("SET", "k"),
    ]
    return [rng.choice(makers)() for _ in range(n)]


@pytest.mark.parametrize("protocol", [2, 3])
def test_pipeline_of_1000_mixed_commands(baseline, grid, protocol):
    """A non-transactional redis-py pipeline of 1000 mixed commands (including
    failing ones) yields the same 1000 replies, in order, as on Redis."""
    commands = mixed_commands(1000, seed=1234 + protocol)
    flushall(baseline, grid)
    results = {}
    for server in (baseline, grid):
        client = server.client(protocol=protocol)
        try:
            pipe = client.pipeline(transaction=False)
            for cmd in commands:
                pipe.execute_command(*cmd)
            replies = pipe.execute(raise_on_error=False)
        finally:
            client.close()
        assert len(replies) == len(commands)
        results[server.name] = [normalise_time(cmd, normalise_pyvalue(r)) for cmd, r in zip(commands, replies)]
    diffs = [(i, commands[i], a, b) for i, (a, b) in enumerate(zip(results["redis"], results["grid"])) if a != b]
    assert not diffs, "\n".join(
        f"#{i} {short(cmd, 100)}: redis={short(a)} grid={short(b)}" for i, cmd, a, b in diffs[:15]
    )


@pytest.mark.parametrize("protocol", [2, 3])
def test_raw_pipeline_bytes_identical(baseline, grid, protocol):
    """Sending 1000 commands in one write returns byte-identical reply streams
    (apart from TTL values), proving pipelined parsing and reply ordering."""
    commands = [c for c in mixed_commands(1000, seed=99) if command_name(c) not in TTL_TOLERANCE]
    flushall(baseline, grid)
    streams = {}
    for server in (baseline, grid):
        with RespConnection(server.port) as conn:
            if protocol == 3:
                conn.call("HELLO", "3")
            payload = encode_commands(commands)
            conn.send_raw(payload)
            streams[server.name] = [conn.read_reply()[1] for _ in commands]
    diffs = [(i, commands[i], a, b) for i, (a, b) in enumerate(zip(streams["redis"], streams["grid"])) if a != b]
    assert not diffs, "\n".join(
        f"#{i} {short(cmd, 100)}: redis={a!r} grid={b!r}" for i, cmd, a, b in diffs[:15]
    )


def test_binary_key_and_value_roundtrip(grid):
    """Every byte value 0..255 survives a SET/GET and an HSET/HGET round trip."""
    flushall(grid)
    client = grid.client(protocol=2)
    try:
        blob = bytes(range(256)) * 4
        assert client.set(b"bin\x00\r\n", blob) is True
        assert client.get(b"bin\x00\r\n") == blob
        assert client.hset(b"hbin\r\n", blob, blob) == 1
        assert client.hget(b"hbin\r\n", blob) == blob
    finally:
        client.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_hrandfield_picks_as_redis_does(baseline, grid, protocol):
    """Random picks cannot be compared reply by reply: both servers must keep the same rules.
    A positive count gives distinct fields (all of them when it exceeds the hash), a negative
    one exactly that many (repeats allowed), WITHVALUES each field's own value."""
    fields = {f"f{i}": f"v{i}" for i in range(10)}
    flushall(baseline, grid)
    for server in (baseline, grid):
        c = server.client(protocol=protocol)
        try:
            c.hset("h", mapping=fields)
            some = c.hrandfield("h", 5)
            assert len(some) == 5 and len(set(some)) == 5 and {f.decode() for f in some} <= fields.keys()
            assert sorted(f.decode() for f in c.hrandfield("h", 20)) == sorted(fields)
            many = c.hrandfield("h", -20)
            assert len(many) == 20 and {f.decode() for f in many} <= fields.keys()
            pairs = c.execute_command("HRANDFIELD", "h", "-7", "WITHVALUES")
            if protocol == 3:
                assert len(pairs) == 7 and all(len(p) == 2 for p in pairs), (server.name, pairs)
                flat = [x for p in pairs for x in p]
            else:
                flat = pairs
            assert len(flat) == 14
            for f, v in zip(flat[::2], flat[1::2]):
                assert fields[f.decode()] == v.decode(), server.name
            seen = {c.hrandfield("h").decode() for _ in range(200)}
            assert len(seen) >= 8, f"{server.name}: one field at a time is random ({seen})"
        finally:
            c.close()


def test_randomkey_picks_among_all_keys(baseline, grid):
    flushall(baseline, grid)
    for server in (baseline, grid):
        c = server.client()
        try:
            c.mset({f"k{i}": i for i in range(20)})
            seen = {c.randomkey() for _ in range(300)}
            assert seen <= {f"k{i}".encode() for i in range(20)} and len(seen) >= 10, (server.name, seen)
        finally:
            c.close()
