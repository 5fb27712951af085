"""What operators see and do on a real 3-node cluster: metrics that move by the
expected amounts, the cluster and partition API, and the `sessiongrid` operator
commands (`status`, `sessions`, `kick`, `drain`).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.request

from conftest import SESSIONGRID_BIN, GridProcess, grid_only, metric_sum, wait_until
from gridcluster import Cluster

pytestmark = grid_only


def api(node: GridProcess, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/api/v1{path}", timeout=10) as r:
        return json.loads(r.read())


def cli(node: GridProcess, *args: str) -> str:
    out = subprocess.run([SESSIONGRID_BIN, *args, "--http", f"127.0.0.1:{node.http_port}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_metrics_api_and_operator_commands_on_a_cluster(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    nodes = cluster.nodes
    clients = [n.client(protocol=3, decode_responses=True) for n in nodes]

    created_before = sum(metric_sum(n, "sessiongrid_session_events_total", 'event="created"') for n in nodes)
    ids = [clients[i % 3].execute_command("SESSION.CREATE", "ops") for i in range(100)]
    for sid in ids[:30]:
        clients[1].execute_command("SESSION.INVALIDATE", sid)

    def counted(event: str) -> float:
        return sum(metric_sum(n, "sessiongrid_session_events_total", f'event="{event}"') for n in nodes)

    # Each event is counted once, by the node that published it (the session's primary).
    assert wait_until(lambda: counted("created") - created_before == 100, 10), counted("created")
    assert wait_until(lambda: counted("invalidated") == 30, 10), counted("invalidated")
    assert sum(metric_sum(n, "sessiongrid_commands_total", 'command="session.create"') for n in nodes) == 100

    view = api(nodes[0], "/cluster")
    assert view["clustered"] and len(view["members"]) == 3 and view["serving"]
    # 70 live sessions, each held once as a primary copy and once as a backup copy.
    assert sum(m["sessions_primary"] for m in view["members"]) == 70
    assert sum(m["sessions_backup"] for m in view["members"]) == 70
    for copy in ("primary", "backup"):
        assert wait_until(lambda: sum(metric_sum(n, "sessiongrid_sessions_live", f'copy="{copy}"')
                                      for n in nodes) == 70, 5), copy
    assert sum(m["primaries"] for m in view["members"]) == view["partitions"] == 256
    assert sum(m["copies"] for m in view["members"]) == 512
    table = api(nodes[1], "/partitions")
    assert len(table) == 256 and all(len(p["owners"]) == 2 and p["primary"] == p["owners"][0] for p in table)

    status = json.loads(cli(nodes[0], "status", "--json"))
    assert len(status["cluster"]["members"]) == 3 and status["stats"]["live"] == 70
    text = cli(nodes[0], "status")
    assert "(this node)" in text and text.count("coordinator") >= 2
    assert re.search(r"sessions live: 70", text)

    for sid in ids[30:33]:
        clients[2].execute_command("SESSION.LOGIN", sid, "alice")
    listed = cli(nodes[1], "sessions", "--user", "alice")
    assert all(sid in listed for sid in ids[30:33])
    assert cli(nodes[2], "kick", "--user", "alice").strip() == "ended 3 session(s) of alice"
    assert cli(nodes[0], "sessions", "--user", "alice").strip() == "no live sessions"
    assert all(clients[0].execute_command("SESSION.GET", sid) is None for sid in ids[30:33])

    # Drain the third node through the first one's API: it hands over and exits by itself.
    victim = nodes[2]
    victim_id = next(m["id"] for m in api(victim, "/cluster")["members"] if m["self"])
    out = cli(nodes[0], "drain", victim_id)
    assert victim_id in out
    assert wait_until(lambda: not victim.is_alive(), 60), "the drained node stopped"
    assert victim.proc.returncode == 0
    cluster.wait_settled(timeout=60)
    survivors = cluster.live()
    assert sum(metric_sum(n, "sessiongrid_transfer_bytes_total") for n in survivors) > 0
    assert all(metric_sum(n, "sessiongrid_cluster_topology_changes_total") >= 2 for n in survivors)
    for sid in ids[33:]:
        assert clients[0].execute_command("SESSION.GET", sid, "NOTOUCH") is not None, sid


def test_requests_of_a_single_node_run_on_the_spot(pool):
    """On a node of one engine thread every partition's actor shares the request's thread: a
    write runs in the partition's state machine without a message to the actor, and so do a
    pipeline's writes to one key; a read with nothing in flight is answered there, and so is a
    session read whose touch is not due."""
    node = pool.grid(config={"engine_threads": 1})
    client = node.client(decode_responses=True)
    run = lambda: metric_sum(node, "sessiongrid_requests_run_at_once_total")  # noqa: E731
    read = lambda: metric_sum(node, "sessiongrid_requests_read_at_once_total")  # noqa: E731
    runs_before, reads_before = run(), read()
    for i in range(20):
        assert client.set(f"spot:{i}", i)
    assert run() - runs_before >= 20, run()
    assert [client.get(f"spot:{i}") for i in range(20)] == [str(i) for i in range(20)]
    assert read() - reads_before >= 20, read()
    runs_before = run()
    pipe = client.pipeline(transaction=False)
    pipe.hset("spot:cart", mapping={"a": 1, "b": 2}).hincrby("spot:cart", "a", 5).expire("spot:cart", 60)
    assert pipe.execute() == [2, 6, True]
    assert run() - runs_before >= 3, run()
    assert client.hgetall("spot:cart") == {"a": "6", "b": "2"}
    sid = client.execute_command("SESSION.CREATE", "spot")
    reads_before = read()
    for _ in range(5):
        assert client.execute_command("SESSION.GET", sid) is not None
    assert read() - reads_before >= 4, read()  # the first may be due to touch


def test_operator_commands_explain_failures(pool):
    node = pool.grid()
    out = subprocess.run([SESSIONGRID_BIN, "drain", "0123456789abcdef", "--http", f"127.0.0.1:{node.http_port}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "SIGTERM" in out.stderr
    out = subprocess.run([SESSIONGRID_BIN, "status", "--http", "127.0.0.1:1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "connecting" in out.stderr


def test_bench_reports_what_it_did_to_a_cluster(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    nodes = cluster.nodes

    def commands(name: str) -> float:
        return sum(metric_sum(n, "sessiongrid_commands_total", f'command="{name}"') for n in nodes)

    before = {c: commands(c) for c in ("session.create", "session.get", "session.set", "session.login", "get")}
    grid = ",".join(f"127.0.0.1:{n.resp_port}" for n in nodes)
    out = subprocess.run([SESSIONGRID_BIN, "bench", "--grid", grid, "--clients", "6", "--seconds", "1",
                          "--size", "512", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    tests = {t["test"]: t for t in report["tests"]}
    assert list(tests) == ["create", "get", "set", "login", "kv-set", "kv-get"]
    for name, t in tests.items():
        assert t["ops"] > 0 and t["errors"] == 0, (name, t)
        assert 0 < t["p50_ms"] <= t["p99_ms"] <= t["max_ms"], (name, t)
    # The nodes counted exactly what the report says: each of 6 clients created (and filled) one
    # session to work on for each of get, set and login, and read one key for kv-get.
    moved = {c: commands(c) - before[c] for c in before}
    assert moved["session.create"] == tests["create"]["ops"] + 3 * 6
    assert moved["session.get"] == tests["get"]["ops"]
    assert moved["session.set"] == tests["set"]["ops"] + 3 * 6
    assert moved["session.login"] == tests["login"]["ops"]
    assert moved["get"] == tests["kv-get"]["ops"]

    table = subprocess.run([SESSIONGRID_BIN, "bench", "--grid", grid, "--seconds", "0.3", "--tests", "kv-get"],
                           capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert re.search(r"^TEST +OPS +OPS/S +ERRORS +P50 MS +P99 MS +MAX MS$", table.stdout, re.M)
    assert re.search(r"^kv-get +\d+ +\d+ +0 ", table.stdout, re.M)

    unreachable = subprocess.run([SESSIONGRID_BIN, "bench", "--grid", "127.0.0.1:1", "--seconds", "0.3"],
                                 capture_output=True, text=True, timeout=60)
    assert unreachable.returncode != 0 and "connecting to 127.0.0.1:1" in unreachable.stderr

    # A node that accepts connections but never answers: the bench gives up instead of hanging.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        hung = subprocess.run([SESSIONGRID_BIN, "bench", "--grid", f"127.0.0.1:{port}", "--clients", "1",
                               "--seconds", "0.3", "--tests", "kv-get"], capture_output=True, text=True, timeout=60)
    assert hung.returncode != 0 and "no reply in 10 s" in hung.stderr, hung.stderr
