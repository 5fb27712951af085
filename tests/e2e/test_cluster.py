"""A real cluster on loopback: several grid processes joined over libp2p.

Each test starts its own nodes (fresh ports and data directories), drives them
with redis-py, kills some with SIGKILL and checks that no acknowledged write is
lost. Measured unavailability is printed (run pytest with -s to see it).
"""

from __future__ import annotations

import binascii
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
import redis

from conftest import SESSIONGRID_BIN, GridProcess, grid_only, metric_sum, wait_until
from gridcluster import Cluster, info

pytestmark = grid_only

class Writer(threading.Thread):
    """Writes unique values continuously, round-robin through every live node, and
    remembers which writes were acknowledged.

    ``retry_for`` > 0 is the documented client behaviour: a write refused with
    ``TRYAGAIN`` or cut by a closed connection is sent again (through the next
    node) until it succeeds or ``retry_for`` seconds passed; ``gave_up`` counts the
    writes that never succeeded. With 0, every error is counted and skipped."""

    def __init__(self, cluster: Cluster, prefix: str, retry_for: float = 0.0):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.prefix = prefix
        self.retry_for = retry_for
        self.gave_up = 0
        self.error_log: list[tuple[float, int, str]] = []
        self.acked: dict[str, str] = {}
        self.errors = 0
        self.stop_flag = threading.Event()
        self.last_ok = time.monotonic()
        self.longest_gap = 0.0
        self.count = 0

    def run(self) -> None:
        clients: dict[int, redis.Redis] = {}
        i = 0
        while not self.stop_flag.is_set():
            key, value = f"{self.prefix}:{i % 500}", f"v{i}"
            started = time.monotonic()
            attempt = 0
            while True:
                live = self.cluster.live()
                if not live:
                    time.sleep(0.01)
                    continue
                node = live[(i + attempt) % len(live)]
                try:
                    client = clients.setdefault(node.resp_port, node.client(socket_timeout=5))
                    client.set(key, value)
                    self.acked[key] = value
                    self.count += 1
                    now = time.monotonic()
                    self.longest_gap = max(self.longest_gap, now - self.last_ok)
                    self.last_ok = now
                    break
                except (redis.RedisError, OSError) as e:
                    self.errors += 1
                    self.error_log.append((time.monotonic(), node.resp_port, str(e)[:80]))
                    clients.pop(node.resp_port, None)
                    # The write may or may not have happened: the key's value is uncertain
                    # until the next acknowledged write of it.
                    self.acked.pop(key, None)
                    time.sleep(0.01)
                    attempt += 1
                    if time.monotonic() - started >= self.retry_for:
                        if self.retry_for > 0:
                            self.gave_up += 1  # the retry budget ran out
                        break
                    if self.stop_flag.is_set():
                        break  # the test is over; this write was still within its budget
            i += 1

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(timeout=30)


def read_all(node: GridProcess, expected: dict[str, str]) -> list[str]:
    """Keys whose value on `node` is not the acknowledged one."""
    client = node.client()
    keys = list(expected)
    wrong = []
    for start in range(0, len(keys), 100):
        batch = keys[start:start + 100]
        for key, value in zip(batch, client.mget(batch)):
            if value is None or value.decode() != expected[key]:
                wrong.append(key)
    return wrong


def test_three_nodes_form_a_cluster_and_any_node_serves_every_key(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    nodes = cluster.nodes
    for i in range(300):
        nodes[i % 3].client().set(f"k{i}", f"v{i}")
    expected = {f"k{i}": f"v{i}" for i in range(300)}
    for node in nodes:
        assert read_all(node, expected) == []
        client = node.client()
        assert client.dbsize() == 300
        assert len(client.keys("k*")) == 300
        assert len(set(client.scan_iter(match="k1*", count=50))) == 111
    primaries = [info(n)["grid_primaries"] for n in nodes]
    assert sum(primaries) == 256 and max(primaries) <= 1.05 * 256 / 3, primaries
    # Overwrites and deletes keep the per-partition counts behind DBSIZE right.
    for i in range(50):
        nodes[i % 3].client().set(f"k{i}", "again")
    assert nodes[1].client().delete(*[f"k{i}" for i in range(250, 300)]) == 50
    assert [n.client().dbsize() for n in nodes] == [250, 250, 250]

    def gauge(node: GridProcess, name: str) -> float | None:
        url = f"http://127.0.0.1:{node.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    assert wait_until(lambda: gauge(nodes[0], "sessiongrid_cluster_members") == 3, 10)
    assert gauge(nodes[0], "sessiongrid_cluster_serving") == 1


def test_kill_nine_one_node_then_another_then_all_loses_no_acknowledged_write(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    writer = Writer(cluster, "w")
    writer.start()
    time.sleep(2)
    for victim in cluster.nodes[:2]:
        before = writer.count
        victim.sigkill()
        cluster.wait_settled(timeout=30)
        time.sleep(1)
        assert writer.count > before, "writes resumed after the failover"
    writer.stop()
    print(f"\nkill -9 x2: {writer.count} acknowledged writes, {writer.errors} errors, "
          f"longest gap between acknowledged writes {writer.longest_gap * 1000:.0f} ms")
    for at, port, error in writer.error_log:
        print(f"  {at:.3f} via {port}: {error}")
    survivor = cluster.live()[0]
    assert read_all(survivor, writer.acked) == []

    for node in cluster.nodes:
        node.sigkill()
    for node in cluster.nodes:
        node._spawn()
    cluster.wait_settled()
    for node in cluster.nodes:
        assert read_all(node, writer.acked) == []


def test_a_node_joining_a_loaded_cluster_takes_its_share_and_nothing_is_lost(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    client = cluster.nodes[0].client()
    expected = {f"j{i}": f"x{i}" * 10 for i in range(2000)}
    pipe = client.pipeline(transaction=False)
    for k, v in expected.items():
        pipe.set(k, v)
    pipe.execute()
    joiner = cluster.add()
    cluster.wait_settled()
    share = info(joiner)
    assert 0.8 * 256 / 4 <= share["grid_primaries"] <= 1.05 * 256 / 4, share
    assert 0.95 * 2 * 256 / 4 <= share["grid_copies"] <= 1.05 * 2 * 256 / 4, share
    for node in cluster.nodes:
        assert read_all(node, expected) == []


def test_a_stranger_without_the_secret_cannot_join_or_read(pool):
    cluster = Cluster(pool, 2)
    cluster.wait_settled()
    cluster.nodes[0].client().set("secret-key", "secret-value")
    stranger = cluster.add(secret="not the secret")
    cluster.nodes.remove(stranger)
    # The stranger has tried (on a loaded machine that can take longer than the 3 s given).
    time.sleep(3)
    assert wait_until(lambda: "refused a peer" in cluster.nodes[0].log_text(), 30)
    assert info(cluster.nodes[0])["grid_members"] == 2
    assert info(stranger).get("grid_serving") == 0
    with pytest.raises(redis.RedisError):
        stranger.client(socket_timeout=10).get("secret-key")


def test_rolling_restart_under_load_loses_nothing_and_fails_no_client(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    writer = Writer(cluster, "r", retry_for=10.0)
    writer.start()
    time.sleep(1)
    for node in cluster.nodes:
        started = time.monotonic()
        assert node.sigterm(timeout=90) == 0, "a node stops cleanly after handing over"
        drained_in = time.monotonic() - started
        node._spawn()
        cluster.wait_settled(timeout=60)
        print(f"\nnode on {node.resp_port}: handed over and stopped in {drained_in:.1f} s")
    writer.stop()
    print(f"rolling restart: {writer.count} acknowledged writes, {writer.errors} retried errors, "
          f"longest gap {writer.longest_gap * 1000:.0f} ms")
    for at, port, error in writer.error_log:
        print(f"  {at:.3f} via {port}: {error}")
    assert writer.gave_up == 0
    for node in cluster.nodes:
        assert read_all(node, writer.acked) == []


def http_json(node: GridProcess, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}{path}", timeout=5) as r:
        return json.loads(r.read())


def test_with_when_split_deny_a_minority_refuses_and_nothing_diverges(pool):
    """The lonely node refuses with TRYAGAIN what it would have served itself: such a write
    never lands. A write it had forwarded to a paused primary gets no answer in time: that one
    is INDETERMINATE (the primary may carry it out once it runs again), never TRYAGAIN."""
    cluster = Cluster(pool, 3, extra=("--when-split", "deny"))
    cluster.wait_settled()
    lonely, *others = cluster.nodes
    me = http_json(lonely, "/api/v1/cluster")["node"]
    table = http_json(lonely, "/api/v1/partitions")
    primary = {p["partition"]: p["primary"] for p in table}

    def key_where(mine: bool) -> str:
        return next(
            k
            for k in (f"during:{i}" for i in range(10_000))
            if (primary[binascii.crc_hqx(k.encode(), 0) % len(table)] == me) == mine
        )

    here, there = key_where(True), key_where(False)
    lonely.client().set("before", "split")
    for node in others:
        os.kill(node.pid, signal.SIGSTOP)
    try:
        time.sleep(2.5)  # past the lease and the failure timeout
        client = lonely.client(socket_timeout=10)
        with pytest.raises(redis.exceptions.TryAgainError):
            client.set(here, "split")
        with pytest.raises(redis.exceptions.ResponseError) as forwarded:
            client.set(there, "split")
        refused = isinstance(forwarded.value, redis.exceptions.TryAgainError)
        assert refused or str(forwarded.value).startswith("INDETERMINATE"), forwarded.value
        with pytest.raises(redis.exceptions.TryAgainError):
            client.get("before")
    finally:
        for node in others:
            os.kill(node.pid, signal.SIGCONT)
    cluster.wait_settled(timeout=60)
    for node in cluster.nodes:
        client = node.client()
        assert client.get("before") == b"split"
        assert client.get(here) is None
        if refused:
            assert client.get(there) is None


def test_a_node_that_founds_a_cluster_serves_before_anyone_joins(pool):
    cluster = Cluster(pool, 1)
    cluster.wait_settled()
    client = cluster.nodes[0].client()
    assert client.set("alone", "yes") is True
    assert client.get("alone") == b"yes"


def test_partitions_whose_every_owner_is_lost_wait_until_an_operator_forgets_the_owners(pool):
    """replicas 2 and two of three nodes killed at once: partitions held only by those two have
    no copy left. They answer TRYAGAIN (they are not served empty) until `sessiongrid forget`
    gives the lost nodes up; then they start empty, and every other key kept its value."""
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    survivor, *victims = cluster.nodes
    client = survivor.client(socket_timeout=10)
    keys = {f"f:{i}": f"v{i}" for i in range(300)}
    for k, v in keys.items():
        client.set(k, v)

    def view() -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{survivor.http_port}/api/v1/cluster", timeout=5) as r:
            return json.loads(r.read())

    ids = {v["id"] for v in view()["members"] if not v["self"]}
    for v in victims:
        v.sigkill()
    # The two deaths may be noticed one publication apart: partitions that were on both then
    # wait for whichever owner was listed last. Either way no live node holds them.
    assert wait_until(lambda: len(view()["members"]) == 1 and view()["lost"], 30), view()
    lost = set(view()["lost"])
    assert lost <= ids
    with urllib.request.urlopen(f"http://127.0.0.1:{survivor.http_port}/api/v1/partitions", timeout=5) as r:
        table = json.loads(r.read())
    gone = {p["partition"] for p in table if set(p["owners"]) <= lost}
    assert view()["unowned_partitions"] == len(gone) > 0
    lost_keys = {k for k in keys if binascii.crc_hqx(k.encode(), 0) % len(table) in gone}
    assert lost_keys and len(lost_keys) < len(keys)
    probe = sorted(lost_keys)[0]
    with pytest.raises(redis.exceptions.TryAgainError, match="nodes that are gone"):
        client.get(probe)
    status = subprocess.run([SESSIONGRID_BIN, "status", "--http", f"127.0.0.1:{survivor.http_port}"],
                            capture_output=True, text=True, timeout=60)
    assert "partition(s) wait for them" in status.stdout and all(i in status.stdout for i in lost), status.stdout

    refused = subprocess.run([SESSIONGRID_BIN, "forget", next(m["id"] for m in view()["members"]),
                              "--http", f"127.0.0.1:{survivor.http_port}"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "drained, not forgotten" in refused.stderr
    for node_id in sorted(lost):
        out = subprocess.run([SESSIONGRID_BIN, "forget", node_id, "--http", f"127.0.0.1:{survivor.http_port}"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "forgotten" in out.stdout, out.stderr
    assert wait_until(lambda: view()["unowned_partitions"] == 0 and view()["lost"] == [], 30), view()
    cluster.wait_settled(timeout=30)
    for k, v in keys.items():
        got = client.get(k)
        if k in lost_keys:
            assert got is None, k
        else:
            assert got == v.encode(), k
    client.set(probe, "again")
    assert client.get(probe) == b"again"


def test_rename_and_copy_move_keys_between_partitions_on_other_nodes(pool):
    """RENAME, RENAMENX and COPY of keys whose partitions have their primaries on different
    nodes, sent through every node: values, types and deadlines arrive, sources go."""
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    clients = [node.client() for node in cluster.nodes]
    for i in range(60):
        clients[0].set(f"old:{i}", f"v{i}", ex=1000)
        clients[0].hset(f"oldh:{i}", mapping={"a": str(i), "b": "x"})
    for i in range(60):
        c = clients[i % 3]
        assert c.rename(f"old:{i}", f"new:{i}") is True
        assert c.renamenx(f"oldh:{i}", f"newh:{i}") is True
        assert c.copy(f"new:{i}", f"copy:{i}") is True
    for i in range(60):
        c = clients[(i + 1) % 3]
        assert c.get(f"new:{i}") == b"v" + str(i).encode() == c.get(f"copy:{i}")
        assert 900 < c.ttl(f"new:{i}") <= 1000
        assert c.hgetall(f"newh:{i}") == {b"a": str(i).encode(), b"b": b"x"}
        assert c.exists(f"old:{i}", f"oldh:{i}") == 0


def test_a_message_published_on_one_node_reaches_subscribers_on_every_node(pool):
    """PUBLISH through any node reaches channel and pattern subscribers connected to every
    node; PUBLISH counts the subscriptions of the node it was sent to."""
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    subscribers = []
    for node in cluster.nodes:
        ps = node.client().pubsub()
        ps.subscribe("news")
        ps.psubscribe("n*")
        assert ps.get_message(timeout=5)["type"] == "subscribe"
        assert ps.get_message(timeout=5)["type"] == "psubscribe"
        subscribers.append(ps)
    publishers = [node.client() for node in cluster.nodes]
    for i, publisher in enumerate(publishers):
        assert publisher.publish("news", f"m{i}") == 2  # its own node's channel + pattern
    for ps in subscribers:
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 6 and time.monotonic() < deadline:
            m = ps.get_message(timeout=1)
            if m is not None:
                got.append((m["type"], m["data"]))
        assert sorted(got) == sorted(
            [(t, f"m{i}".encode()) for i in range(3) for t in ("message", "pmessage")])
        ps.close()
    assert wait_until(lambda: publishers[0].pubsub_numpat() == 0, timeout=5), "unsubscribed"


def test_peer_messages_run_in_their_partition_on_the_spot(pool):
    """On nodes of one engine thread, the stream reader that receives a peer's forwarded write,
    append or acknowledgement runs it in the partition's state machine, without a message to
    the partition's actor; every write is still on both owners and read back."""
    cluster = Cluster(pool, 3, config={"engine_threads": 1})
    cluster.wait_settled()
    nodes = cluster.nodes
    at_once = lambda: [metric_sum(n, "sessiongrid_p2p_messages_run_at_once_total")  # noqa: E731
                       for n in nodes]
    before = at_once()
    client = nodes[0].client(decode_responses=True)
    for i in range(60):
        assert client.set(f"peer-spot:{i}", i)
    ran = [a - b for a, b in zip(at_once(), before)]
    # Each write reached its backup as an append and came back as an acknowledgement; two in
    # three were forwarded by node 0 to their primary.
    assert sum(ran) >= 60 * 2, ran
    assert all(r > 0 for r in ran), ran
    for n in nodes:
        c = n.client(decode_responses=True)
        assert [c.get(f"peer-spot:{i}") for i in range(60)] == [str(i) for i in range(60)]


def test_keyspace_events_of_writes_through_any_node_reach_a_subscriber_on_another(pool):
    """CONFIG SET notify-keyspace-events on one node applies to the grid: writes through every
    node publish their events from the key's primary, an expired key publishes `expired` when
    swept, and a RENAME publishes rename_from/rename_to (as a Spring-Session-like store needs)."""
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    clients = [node.client() for node in cluster.nodes]
    assert clients[0].config_set("notify-keyspace-events", "KEA")
    assert wait_until(lambda: all(
        c.config_get("notify-keyspace-events")["notify-keyspace-events"] == "AKE"
        for c in clients), timeout=5)
    ps = clients[1].pubsub()
    ps.psubscribe("__keyevent@0__:*")
    assert ps.get_message(timeout=5)["type"] == "psubscribe"
    for i in range(30):
        c = clients[i % 3]
        c.set(f"s:{i}", "v", px=300)
        c.hset(f"h:{i}", "f", "v")
        c.rename(f"h:{i}", f"h2:{i}")
    wanted = {(event, key) for i in range(30) for event, key in [
        ("set", f"s:{i}"), ("expire", f"s:{i}"), ("expired", f"s:{i}"), ("hset", f"h:{i}"),
        ("rename_from", f"h:{i}"), ("rename_to", f"h2:{i}")]}
    seen = set()
    deadline = time.monotonic() + 20
    while not wanted <= seen and time.monotonic() < deadline:
        m = ps.get_message(timeout=1)
        if m and m["type"] == "pmessage":
            seen.add((m["channel"].decode().split(":", 1)[1], m["data"].decode()))
    assert wanted <= seen, sorted(wanted - seen)[:10]
    ps.close()
