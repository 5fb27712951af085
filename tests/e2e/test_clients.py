"""Real clients' session handling on a 3-node grid, with a node killed -9 midway.

phpredis' session handler with locking on (``redis.session.locking_enabled=1``): two
``php -S`` servers share sessions through the grid; every request takes the session's lock
(``SET ... NX PX``), writes, and unlocks with ``EVALSHA`` (falling back to ``EVAL``). Before
scripts existed the lock stayed until its expiry and the next request failed.

Skipped when Debian's ``php-cli`` and ``php-redis`` are not installed (``tests/setup.sh
--tests`` installs them).
"""

from __future__ import annotations

import http.cookiejar
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, wait_until
from gridcluster import Cluster

COUNTER_PHP = """<?php
session_start();
$_SESSION['count'] = ($_SESSION['count'] ?? 0) + 1;
$_SESSION['served_by'] = getenv('SERVER_NAME_TAG');
echo $_SESSION['count'];
"""


def php_has_redis() -> bool:
    if shutil.which("php") is None:
        return False
    modules = subprocess.run(["php", "-m"], capture_output=True, text=True).stdout
    return "redis" in modules.split()


pytestmark = pytest.mark.skipif(not php_has_redis(), reason="php-cli with php-redis not installed")


class PhpServer:
    """``php -S`` serving the counter page, its sessions in the grid through ``save_path``."""

    def __init__(self, root: Path, save_path: str, tag: str):
        self.port = free_port()
        ini = [
            "-d", "session.save_handler=redis",
            "-d", f'session.save_path="{save_path}"',
            "-d", "redis.session.locking_enabled=1",
            "-d", "redis.session.lock_retries=200",
            "-d", "redis.session.lock_wait_time=20000",
            "-d", "redis.session.lock_expire=30",
        ]
        env = {"SERVER_NAME_TAG": tag, "PATH": "/usr/bin:/bin"}
        self.log = root / f"php-{tag}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["php", *ini, "-S", f"127.0.0.1:{self.port}", "-t", str(root)],
                stdout=subprocess.DEVNULL, stderr=log, env=env)
        assert wait_until(self.ready, 10), "php -S did not start"

    def ready(self) -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/missing", timeout=1)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def test_phpredis_sessions_with_locking_survive_a_node_killed_midway(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    first, second, third = cluster.nodes
    root = Path(tempfile.mkdtemp(prefix="sessiongrid-php-"))
    (root / "counter.php").write_text(COUNTER_PHP)
    # Each PHP server talks to its own node; the third node is the one killed.
    servers = [
        PhpServer(root, f"tcp://127.0.0.1:{first.resp_port}?timeout=5", "a"),
        PhpServer(root, f"tcp://127.0.0.1:{second.resp_port}?timeout=5", "b"),
    ]
    try:
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        seen, failed = [], 0
        for i in range(40):
            if i == 20:
                third.sigkill()
            server = servers[i % 2]
            # While the dead node's partitions fail over (a second or two) a request may fail;
            # the user reloads.
            for _attempt in range(10):
                started = time.monotonic()
                try:
                    url = f"http://127.0.0.1:{server.port}/counter.php"
                    body = browser.open(url, timeout=30).read()
                    break
                except urllib.error.HTTPError:
                    failed += 1
                    time.sleep(0.5)
            else:
                pytest.fail(f"request {i} kept failing: {server.log.read_text()[-2000:]}")
            seen.append((int(body), time.monotonic() - started))
        counts = [c for c, _ in seen]
        assert counts == list(range(1, 41)), f"an update was lost or applied twice: {counts}"
        assert failed <= 5, f"{failed} requests failed"
        # No request waited for a lock left behind (phpredis waits lock_wait_time per retry).
        slow = [round(t, 2) for _, t in seen if t > 5]
        assert slow == [], f"requests waited for a stale lock: {slow}"
        keys = first.client().keys("PHPREDIS_SESSION:*")
        assert len(keys) == 1 and not any(k.endswith(b"_LOCK") for k in keys), keys
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


CLIENTS = Path(__file__).parent / "clients"


def node_clients_ready() -> bool:
    return shutil.which("node") is not None and (CLIENTS / "node_modules" / "ioredis").is_dir() \
        and (CLIENTS / "node_modules" / "redis").is_dir()


@pytest.mark.skipif(not node_clients_ready(),
                    reason="node with ioredis and node-redis not installed (tests/setup.sh --tests)")
def test_ioredis_and_node_redis_run_multi_eval_and_pubsub_across_a_cluster_losing_a_node(pool):
    """ioredis 5 and node-redis 5 (RESP2 and RESP3): MULTI/EXEC, WATCH, EVAL/EVALSHA and
    pub/sub, writes through one node and subscribers on another; again after a third node is
    killed -9."""
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    first, second, third = cluster.nodes

    def run_clients():
        done = subprocess.run(
            ["node", str(CLIENTS / "node-clients.mjs"), str(first.resp_port), str(second.resp_port)],
            capture_output=True, text=True, timeout=120, cwd=CLIENTS)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        assert '"name":"done"' in done.stdout

    run_clients()
    third.sigkill()
    run_clients()


def test_client_list_shows_connections_and_client_kill_closes_a_blocked_one(grid):
    """CLIENT LIST/INFO show each connection's name, database and last command; CLIENT KILL
    closes a connection, a blocked one included. Holds for redis-server too."""
    import threading

    import redis as redis_py

    admin = grid.client()
    admin.client_setname("admin")
    admin.execute_command("SELECT", "2")
    blocked = grid.client()
    blocked_id = blocked.client_id()
    out: dict = {}

    def wait():
        try:
            out["reply"] = blocked.blpop(["nothing-here"], 0)
        except redis_py.ConnectionError as exc:
            out["closed"] = exc

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    assert wait_until(lambda: any(c.get("cmd") == "blpop" for c in admin.client_list()), 5)
    me = admin.client_info()
    assert me["name"] == "admin" and str(me["db"]) == "2"
    listed = {int(c["id"]): c for c in admin.client_list()}
    assert blocked_id in listed and listed[blocked_id]["cmd"] == "blpop"
    assert admin.client_kill_filter(_id=blocked_id) == 1
    thread.join(5)
    assert not thread.is_alive() and "closed" in out, out
    assert blocked_id not in {int(c["id"]) for c in admin.client_list()}


def test_shutdown_stops_the_node_and_keeps_what_it_acknowledged(pool):
    """SHUTDOWN closes the connection without an answer (redis-py's shutdown() expects
    that), the process exits cleanly, and a restart finds every acknowledged write."""
    from conftest import GridProcess

    node = GridProcess()
    pool.processes.append(node)
    node.start()
    c = node.client()
    c.set("kept", "yes")
    with pytest.raises(Exception):
        c.execute_command("SHUTDOWN", "ABORT")
    c.shutdown()
    assert wait_until(lambda: not node.is_alive(), 30), "the node did not stop"
    assert node.proc.returncode == 0, node.log_text()[-2000:]
    node.restart()
    assert node.client().get("kept") == b"yes"


def test_a_spring_session_like_sequence_works_across_a_cluster_losing_a_node(pool):
    """What Spring Session's indexed Redis repository does: keyspace events on, a session
    saved as a hash with its expiry keys and a set per minute, its id changed with RENAME on
    login, and the `expired` event of its expiry key reaching a subscriber on another node,
    also after a third node was killed -9."""
    import time as clock

    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    first, second, third = cluster.nodes
    app, listener = first.client(), second.client()
    app.config_set("notify-keyspace-events", "Egx")
    events = listener.pubsub()
    events.psubscribe("__keyevent@*__:expired", "__keyevent@*__:del")
    assert wait_until(lambda: events.get_message(timeout=0.1) is not None, 5)

    def save(session_id: str, ttl_s: int) -> None:
        key = f"spring:session:sessions:{session_id}"
        now_ms = int(clock.time() * 1000)
        app.hset(key, mapping={
            "creationTime": now_ms, "lastAccessedTime": now_ms, "maxInactiveInterval": ttl_s,
            "sessionAttr:cart": "[42]",
        })
        app.expire(key, ttl_s + 300)
        app.append(f"spring:session:sessions:expires:{session_id}", "")
        app.pexpire(f"spring:session:sessions:expires:{session_id}", ttl_s * 1000)
        minute = (now_ms // 60000 + 1) * 60000
        app.sadd(f"spring:session:expirations:{minute}", f"expires:{session_id}")
        app.expire(f"spring:session:expirations:{minute}", ttl_s + 300)

    save("old-id", ttl_s=2)
    # Login: the session id changes.
    app.rename("spring:session:sessions:old-id", "spring:session:sessions:new-id")
    app.rename("spring:session:sessions:expires:old-id", "spring:session:sessions:expires:new-id")
    third.sigkill()
    reader = second.client()
    assert reader.hget("spring:session:sessions:new-id", "sessionAttr:cart") == b"[42]"
    assert reader.exists("spring:session:sessions:old-id") == 0
    expired = None
    deadline = clock.time() + 30
    while clock.time() < deadline and expired is None:
        message = events.get_message(timeout=0.5)
        if message and message["type"] == "pmessage" and message["channel"].endswith(b":expired") \
                and message["data"] == b"spring:session:sessions:expires:new-id":
            expired = message
    assert expired is not None, "the expiry key's expired event never arrived"
    assert expired["channel"] == b"__keyevent@0__:expired"
    # The session hash itself outlives its expiry key (Spring deletes it on the event).
    assert reader.exists("spring:session:sessions:new-id") == 1
    events.close()


def test_redis_py_resp3_push_messages_reach_a_subscriber_across_a_node_kill(pool):
    """redis-py with protocol=3 gets pub/sub messages as RESP3 pushes: published on one node,
    received on another, before and after a third node is killed -9."""
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    first, second, third = cluster.nodes
    subscriber = second.client(protocol=3).pubsub()
    subscriber.subscribe("orders")
    assert wait_until(lambda: subscriber.get_message(timeout=0.1) is not None, 5)
    publisher = first.client(protocol=3)

    def receive() -> bytes | None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = subscriber.get_message(timeout=0.2)
            if message and message["type"] == "message":
                return message["data"]
        return None

    assert publisher.publish("orders", "first") == 0  # no subscriber on the publishing node
    assert receive() == b"first"
    third.sigkill()
    publisher.publish("orders", "second")
    assert receive() == b"second"
    subscriber.close()
