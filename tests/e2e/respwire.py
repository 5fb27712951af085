"""Minimal wire-level RESP2/RESP3 client used by the end-to-end tests.

redis-py hides some protocol details (a simple string ``+OK`` and a bulk
string ``$2\\r\\nOK`` both come back as ``b"OK"``), so the differential tests
also talk to the servers through this tiny client. It encodes commands as RESP
arrays of bulk strings and decodes each reply into a *typed tree*: a tuple
whose first element names the RESP type, so that two servers only compare
equal if they sent the same types with the same contents.
"""

from __future__ import annotations

import socket
import time
from typing import Iterable, Union

Arg = Union[str, bytes, int, float]


def to_bytes(arg: Arg) -> bytes:
    """Encode one command argument the way redis-py does."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode("utf-8")
    if isinstance(arg, (int, float)):
        return repr(arg).encode("ascii")
    raise TypeError(f"unsupported argument type {type(arg)!r}")


def encode_command(*args: Arg) -> bytes:
    """Encode a command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = to_bytes(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class ProtocolViolation(AssertionError):
    """The server sent bytes that are not valid RESP."""


class ConnectionClosed(ConnectionError):
    """The server closed the connection (EOF while waiting for a reply)."""


class RespConnection:
    """A blocking TCP connection that sends raw bytes and reads typed replies.

    ``read_reply`` returns ``(tree, raw)`` where ``raw`` is the exact bytes of
    the reply frame. Trees look like ``("simple", b"OK")``, ``("int", 3)``,
    ``("bulk", b"v")``, ``("null_bulk",)``, ``("array", [...])``,
    ``("map", [(k, v), ...])`` and so on, one tag per RESP type.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.pos = 0

    # -- context manager -------------------------------------------------
    def __enter__(self) -> "RespConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- sending ---------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_command(self, *args: Arg) -> None:
        self.sock.sendall(encode_command(*args))

    def call(self, *args: Arg):
        """Send one command and return its typed reply tree."""
        self.send_command(*args)
        return self.read_reply()[0]

    # -- receiving -------------------------------------------------------
    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError as exc:
            raise ConnectionClosed("connection reset by server") from exc
        if not chunk:
            raise ConnectionClosed("server closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            idx = self.buf.find(b"\r\n", self.pos)
            if idx >= 0:
                line = self.buf[self.pos:idx]
                self.pos = idx + 2
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = self.buf[self.pos:self.pos + n]
        if self.buf[self.pos + n:self.pos + n + 2] != b"\r\n":
            raise ProtocolViolation(f"blob of length {n} not followed by CRLF")
        self.pos += n + 2
        return data

    def _int(self, text: bytes) -> int:
        try:
            return int(text)
        except ValueError:
            raise ProtocolViolation(f"bad integer in reply header: {text!r}") from None

    def _read(self):
        line = self._line()
        if not line:
            raise ProtocolViolation("empty reply line")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return ("simple", rest)
        if kind == b"-":
            return ("error", rest)
        if kind == b":":
            return ("int", self._int(rest))
        if kind == b"$":
            n = self._int(rest)
            return ("null_bulk",) if n == -1 else ("bulk", self._exact(n))
        if kind == b"*":
            n = self._int(rest)
            if n == -1:
                return ("null_array",)
            return ("array", [self._read() for _ in range(n)])
        if kind == b"_":
            return ("null",)
        if kind == b",":
            return ("double", rest)
        if kind == b"#":
            return ("bool", rest == b"t")
        if kind == b"(":
            return ("bignum", rest)
        if kind == b"!":
            return ("blob_error", self._exact(self._int(rest)))
        if kind == b"=":
            return ("verbatim", self._exact(self._int(rest)))
        if kind == b"%":
            n = self._int(rest)
            return ("map", [(self._read(), self._read()) for _ in range(n)])
        if kind == b"~":
            return ("set", [self._read() for _ in range(self._int(rest))])
        if kind == b">":
            return ("push", [self._read() for _ in range(self._int(rest))])
        if kind == b"|":
            attrs = [(self._read(), self._read()) for _ in range(self._int(rest))]
            return ("attr", attrs, self._read())
        raise ProtocolViolation(f"unknown RESP type byte in line {line[:60]!r}")

    def read_reply(self, timeout: float | None = None):
        """Read one complete reply; return ``(tree, raw_bytes)``."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        self.buf, self.pos = self.buf[self.pos:], 0  # drop consumed bytes
        start = 0
        try:
            tree = self._read()
        except BaseException:
            self.pos = start  # keep partial data for a later attempt
            raise
        return tree, self.buf[start:self.pos]

    def read_available(self, wait: float = 0.5) -> tuple[bytes, bool]:
        """Read whatever the server sends within ``wait`` seconds.

        Returns ``(data, closed)`` where ``closed`` tells whether the server
        closed the connection (EOF or reset) during that time.
        """
        data = self.buf[self.pos:]
        self.buf, self.pos = b"", 0
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return data, False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return data, False
            except (ConnectionResetError, BrokenPipeError):
                return data, True
            if not chunk:
                return data, True
            data += chunk


def encode_commands(commands: Iterable[tuple]) -> bytes:
    """Encode many commands back to back (e.g. for ``redis-cli --pipe``)."""
    return b"".join(encode_command(*cmd) for cmd in commands)
