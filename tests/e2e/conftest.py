"""Shared harness for the Sessiongrid end-to-end tests.

The suite starts real processes and talks to them over TCP:

* the **grid** under test: ``$SESSIONGRID_BIN node --data-dir DIR
  --resp-listen 127.0.0.1:PORT --http-listen 127.0.0.1:HPORT [--config FILE]
  [--requirepass-file FILE]`` (default binary: ``/work/target/debug/sessiongrid``),
  ready once ``GET /health`` answers 200;
* a **baseline** ``redis-server`` that the differential tests compare against.

Setting ``SESSIONGRID_TARGET=redis`` makes the grid fixtures start a second
``redis-server`` instead of the grid binary. The whole suite then compares
Redis with Redis, which proves the harness and the expectations themselves are
right; tests about grid-only behaviour skip themselves in that mode.

Every process is started in its own temporary directory, its stdout/stderr go
to a log file there, and it is killed at teardown even when a test fails.
Temporary directories are removed afterwards unless ``SESSIONGRID_KEEP_TMP=1``.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------

def _default_binary() -> str:
    """The debug build in cargo's target directory (wherever cargo's config puts it)."""
    root = Path(__file__).resolve().parents[2]
    try:
        meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                              cwd=root, capture_output=True, text=True, timeout=60, check=True)
        target = Path(json.loads(meta.stdout)["target_directory"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        target = root / "target"
    return str(target / "debug" / "sessiongrid")


SESSIONGRID_BIN = os.environ.get("SESSIONGRID_BIN") or _default_binary()
#: "grid" (default) runs the Sessiongrid binary, "redis" runs redis-server instead.
TARGET = os.environ.get("SESSIONGRID_TARGET", "grid").strip().lower()
REDIS_SERVER = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = os.environ.get("REDIS_CLI_BIN") or shutil.which("redis-cli") or "/usr/bin/redis-cli"
KEEP_TMP = os.environ.get("SESSIONGRID_KEEP_TMP", "") not in ("", "0", "false", "no")

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

if TARGET not in ("grid", "redis"):
    raise pytest.UsageError(f"SESSIONGRID_TARGET must be 'grid' or 'redis', not {TARGET!r}")

IS_REDIS_TARGET = TARGET == "redis"

#: Marks a test whose subject only exists in Sessiongrid (e.g. its limits config).
grid_only = pytest.mark.skipif(
    IS_REDIS_TARGET,
    reason="grid-only behaviour: SESSIONGRID_TARGET=redis runs redis-server, which has no equivalent",
)

# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


_handed_out: set[int] = set()


def metric_sum(node, name: str, labels: str = "") -> float:
    """The sum of every series of metric `name` a node exports whose labels contain `labels`."""
    host = getattr(node, "host", "127.0.0.1")
    with urllib.request.urlopen(f"http://{host}:{node.http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}(\{{[^}}]*\}})? (\S+)$", line)
        if m and labels in (m.group(1) or ""):
            total += float(m.group(2))
    return total


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago. It is taken below the
    kernel's ephemeral range (32768-60999 by default), where outgoing connections take theirs,
    so a port handed to a process that binds it a little later is not grabbed meanwhile by a
    connection some other process opened; and never twice in one test run."""
    for _ in range(1000):
        port = random.randrange(20000, 32000)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def toml_value(value) -> str:
    """Render a scalar as TOML (the grid config only uses flat keys)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot render {value!r} as TOML")


def write_toml(path: Path, config: dict) -> None:
    path.write_text("".join(f"{key} = {toml_value(val)}\n" for key, val in config.items()))


def http_ok(port: int, path: str) -> bool:
    """True if GET http://127.0.0.1:port/path answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path`` readable by the owner only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    os.chmod(path, 0o600)


def resp_ping(port: int, password: str | None = None, timeout: float = 1.0) -> bool:
    """True if something on ``port`` answers a RESP PING (after AUTH if given)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            payload = b""
            if password is not None:
                pw = password.encode()
                payload += b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw)
            payload += b"*1\r\n$4\r\nPING\r\n"
            sock.sendall(payload)
            data = b""
            while b"PONG" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Process management
# --------------------------------------------------------------------------

#: Every process started by the harness, so that nothing survives the run.
_LIVE: set[subprocess.Popen] = set()


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL a started process (and its process group, which it leads) and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own session/group
        except (ProcessLookupError, PermissionError):
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    _LIVE.discard(proc)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        _kill(proc)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """preexec_fn: ask Linux to SIGKILL the child if pytest itself dies
    (even by SIGKILL), so no server outlives an interrupted run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def pytest_configure(config) -> None:
    """Turn SIGTERM of the test run into KeyboardInterrupt so fixtures tear down."""
    def _on_sigterm(signum, frame):
        raise KeyboardInterrupt(f"received signal {signum}")

    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


class ManagedProcess:
    """A server process with its own temp dir, log file and teardown."""

    name = "process"

    def __init__(self, workdir: Path | None = None):
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix=f"sessiongrid-e2e-{self.name}-"))
            self._own_workdir = True
        else:
            workdir.mkdir(parents=True, exist_ok=True)
            self._own_workdir = False
        self.workdir = workdir
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    # -- subclass hooks --------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def is_ready(self) -> bool:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------
    def _spawn(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "process already running"
        cmd = self.command()
        if not (os.path.isfile(cmd[0]) and os.access(cmd[0], os.X_OK)):
            pytest.fail(
                f"cannot start {self.name}: {cmd[0]} is not an executable file. Build it or set "
                "SESSIONGRID_BIN; SESSIONGRID_TARGET=redis runs the suite against redis-server instead.",
                pytrace=False,
            )
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== starting: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.environment(),
                start_new_session=True,  # Ctrl-C of pytest does not hit it first
                preexec_fn=_die_with_parent,
            )
        _LIVE.add(self.proc)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                _LIVE.discard(self.proc)
                raise AssertionError(
                    f"{self.name} exited with code {code} during startup; log tail:\n{tail(self.log_text())}"
                )
            if self.is_ready():
                return
            time.sleep(0.05)
        self.sigkill()
        raise AssertionError(
            f"{self.name} not ready after {STARTUP_TIMEOUT:.0f}s; log tail:\n{tail(self.log_text())}"
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sigterm(self, timeout: float = STOP_TIMEOUT) -> int:
        """Send SIGTERM, wait for the exit and return the exit code."""
        assert self.proc is not None, "not started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(self.proc)
                raise AssertionError(
                    f"{self.name} ignored SIGTERM for {timeout:.0f}s; log tail:\n{tail(self.log_text())}"
                )
        _LIVE.discard(self.proc)
        return self.proc.returncode

    def sigkill(self) -> None:
        """Kill the process hard (SIGKILL) and reap it."""
        if self.proc is not None:
            _kill(self.proc)

    def restart(self) -> None:
        """Stop (gracefully if running) and start again with the same dirs and ports."""
        if self.is_alive():
            self.sigterm()
        self._spawn()

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL if needed; never raises."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        _kill(self.proc)

    def cleanup(self) -> None:
        """Stop the process and remove its temp dir (unless SESSIONGRID_KEEP_TMP)."""
        self.stop()
        if self._own_workdir and not KEEP_TMP:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class RedisProcess(ManagedProcess):
    """A throw-away ``redis-server`` with persistence disabled."""

    name = "redis"

    def __init__(self, workdir: Path | None = None, password: str | None = None,
                 extra_args: tuple[str, ...] = ()):
        super().__init__(workdir)
        self.port = free_port()
        self.password = password
        self.extra_args = tuple(extra_args)

    @property
    def resp_port(self) -> int:
        return self.port

    def command(self) -> list[str]:
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        if self.password is not None:
            cmd += ["--requirepass", self.password]
        return cmd + list(self.extra_args)

    def is_ready(self) -> bool:
        return resp_ping(self.port, self.password)

    def start(self) -> "RedisProcess":
        self._spawn()
        return self

    def client(self, **kw) -> redis.Redis:
        kw.setdefault("password", self.password)
        return make_client(self.port, **kw)


#: How grid config keys translate to redis-server options in SESSIONGRID_TARGET=redis mode.
#: Keys without a Redis counterpart are simply not passed on.
REDIS_EQUIVALENT = {
    "connections_max": "maxclients",
    "bulk_bytes_max": "proto-max-bulk-len",
    "memory_max_bytes": "maxmemory",
}


class GridProcess(ManagedProcess):
    """One Sessiongrid node (or a stand-in redis-server when TARGET=redis)."""

    name = "grid"

    def __init__(self, workdir: Path | None = None, binary: str = SESSIONGRID_BIN,
                 target: str = TARGET):
        super().__init__(workdir)
        self.binary = binary
        self.target = target
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.resp_port = free_port()
        self.http_port = free_port()
        self.config: dict | None = None
        self.password: str | None = None
        self.extra_args: tuple[str, ...] = ()
        self.extra_env: dict[str, str] = {}
        self.config_path = self.workdir / "sessiongrid.toml"
        self.password_path = self.workdir / "requirepass"

    @property
    def is_redis(self) -> bool:
        return self.target == "redis"

    @property
    def port(self) -> int:
        return self.resp_port

    def start(self, extra_args=(), config: dict | None = None,
              password: str | None = None, env: dict[str, str] | None = None) -> "GridProcess":
        """Write the config/password files and start the node; wait for readiness.

        ``env`` adds environment variables for the node (e.g. SESSIONGRID_<KEY>
        config overrides)."""
        self.extra_args = tuple(extra_args)
        self.extra_env = dict(env or {})
        self.config = dict(config) if config else None
        self.password = password
        if self.config:
            write_toml(self.config_path, self.config)
        if password is not None:
            write_secret(self.password_path, password)
        self._spawn()
        return self

    def command(self) -> list[str]:
        if self.is_redis:
            cmd = [REDIS_SERVER, "--port", str(self.resp_port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", str(self.data_dir)]
            for key, value in (self.config or {}).items():
                if key in REDIS_EQUIVALENT:
                    cmd += [f"--{REDIS_EQUIVALENT[key]}", str(value)]
            if self.password is not None:
                cmd += ["--requirepass", self.password]
            return cmd
        cmd = [self.binary, "node",
               "--data-dir", str(self.data_dir),
               "--resp-listen", f"127.0.0.1:{self.resp_port}",
               "--http-listen", f"127.0.0.1:{self.http_port}"]
        if self.config:
            cmd += ["--config", str(self.config_path)]
        if self.password is not None:
            cmd += ["--requirepass-file", str(self.password_path)]
        return cmd + list(self.extra_args)

    def environment(self) -> dict[str, str]:
        """The node reads SESSIONGRID_<KEY> variables as config overrides, so
        the harness's own SESSIONGRID_* settings (BIN, TARGET...) are removed."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGRID_")}
        # A startup error is one line; a backtrace would push it out of the log tail we print.
        env["RUST_BACKTRACE"] = "0"
        env.update(self.extra_env)
        return env

    @property
    def https(self) -> bool:
        return "--http-tls" in self.extra_args

    def health_url(self) -> str:
        scheme = "https" if self.https else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}/health"

    def is_ready(self) -> bool:
        if self.is_redis:
            return resp_ping(self.resp_port, self.password)
        # Readiness only: the certificate is checked by the tests that use HTTPS.
        context = ssl._create_unverified_context() if self.https else None
        try:
            with urllib.request.urlopen(self.health_url(), timeout=1, context=context) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def client(self, **kw) -> redis.Redis:
        """A redis-py client for this node (authenticated if a password is set)."""
        kw.setdefault("password", self.password)
        return make_client(self.resp_port, **kw)


def make_client(port: int, **kw) -> redis.Redis:
    """A redis-py client for 127.0.0.1:port; no silent retries, so a dropped
    connection or an auth failure surfaces at once."""
    kw.setdefault("host", "127.0.0.1")
    kw.setdefault("retry", Retry(NoBackoff(), 0))
    kw.setdefault("socket_timeout", 15)
    kw.setdefault("socket_connect_timeout", 5)
    return redis.Redis(port=port, **kw)


class ProcessPool:
    """Starts processes on demand and cleans all of them up at teardown."""

    def __init__(self):
        self.processes: list[ManagedProcess] = []

    def grid(self, extra_args=(), config: dict | None = None,
             password: str | None = None, env: dict[str, str] | None = None) -> GridProcess:
        node = GridProcess()
        self.processes.append(node)
        return node.start(extra_args=extra_args, config=config, password=password, env=env)

    def redis(self, password: str | None = None, extra_args=()) -> RedisProcess:
        server = RedisProcess(password=password, extra_args=tuple(extra_args))
        self.processes.append(server)
        return server.start()

    def cleanup(self) -> None:
        for proc in reversed(self.processes):
            proc.cleanup()
        self.processes.clear()


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _no_process_left_behind() -> Iterator[None]:
    """Last line of defence: kill anything the harness started."""
    yield
    _kill_leftovers()


@pytest.fixture(scope="module")
def module_pool() -> Iterator[ProcessPool]:
    """A pool whose processes live for the whole test module."""
    pool = ProcessPool()
    try:
        yield pool
    finally:
        pool.cleanup()


@pytest.fixture
def pool() -> Iterator[ProcessPool]:
    """A pool whose processes live for one test only."""
    p = ProcessPool()
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture(scope="module")
def grid(module_pool: ProcessPool) -> GridProcess:
    """A node with default settings shared by a module; FLUSHALL before use."""
    return module_pool.grid()


@pytest.fixture(scope="module")
def baseline(module_pool: ProcessPool) -> RedisProcess:
    """The reference redis-server shared by a module; FLUSHALL before use."""
    return module_pool.redis()


def flushall(*servers) -> None:
    """FLUSHALL on every given server so a test starts from an empty keyspace."""
    for server in servers:
        client = server.client(protocol=2)
        try:
            client.flushall()
        finally:
            client.close()


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def _processes_in(value, seen: set[int]) -> Iterator[ManagedProcess]:
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, ManagedProcess):
        yield value
    elif isinstance(value, ProcessPool):
        for proc in value.processes:
            yield from _processes_in(proc, seen)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _processes_in(item, seen)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the log tail (and liveness) of every grid node the
    test used, so a crash or panic is visible right in the report."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        seen: set[int] = set()
        for value in getattr(item, "funcargs", {}).values():
            for proc in _processes_in(value, seen):
                if isinstance(proc, GridProcess):
                    state = "running" if proc.is_alive() else f"exited ({proc.proc.returncode if proc.proc else 'never started'})"
                    report.sections.append(
                        (f"{proc.name} on port {proc.resp_port}: {state}; log tail", tail(proc.log_text(), 60))
                    )
    return report
