"""Session commands against real grid processes: one node for the rules, a
3-node cluster for atomic logins, concurrency, failover and whole-grid restart.

Sessions are read with RESP3 clients (replies are maps) unless a test checks
the RESP2 shape.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from conftest import REDIS_CLI, GridProcess, grid_only, metric_sum, wait_until
from gridcluster import Cluster
from respwire import RespConnection

pytestmark = grid_only

SESSION_CONFIG = """
[sessions]
attrs_max = 8
attr_bytes_max = 1024
session_bytes_max = 4096
principal_bytes_max = 32

[sessions.groups.strict]
login_policy = "reject"
login_max = 1
"""


def start_node(pool, extra=()) -> GridProcess:
    node = GridProcess()
    pool.processes.append(node)
    path = node.workdir / "sessions.toml"
    path.write_text(SESSION_CONFIG)
    return node.start(extra_args=["--config", str(path), *extra])


@pytest.fixture(scope="module", params=["single", "cluster"])
def node(request, module_pool, tmp_path_factory) -> GridProcess:
    """The node the rule tests talk to: a single node, or the first of a 3-node cluster (so
    every command also runs forwarded to other nodes' primaries)."""
    if request.param == "single":
        return start_node(module_pool)
    config = tmp_path_factory.mktemp("sessions") / "sessions.toml"
    config.write_text(SESSION_CONFIG)
    cluster = Cluster(module_pool, 3, extra=("--config", str(config)))
    cluster.wait_settled()
    return cluster.nodes[0]


def r3(node: GridProcess) -> redis.Redis:
    return node.client(protocol=3, decode_responses=True)


def attrs(session: dict) -> dict:
    return {name: value for name, (tag, value, _version) in session["attributes"].items()}


# --------------------------------------------------------------------------
# One node: the rules
# --------------------------------------------------------------------------


def test_create_get_set_del_touch(node):
    c = r3(node)
    sid = c.execute_command("SESSION.CREATE", "shop", "IDLE", 60)
    assert len(sid) == 27 and sid.replace("-", "").replace("_", "").isalnum()
    s = c.execute_command("SESSION.GET", sid)
    assert s["id"] == sid and s["group"] == "shop" and s["idle-timeout"] == 60
    assert s["principal"] is None and s["absolute-deadline"] is None and s["version"] == 1
    assert s["attributes"] == {}
    assert c.execute_command("SESSION.SET", sid, "cart", "json", "[1,2]", "name", "utf8", "Zoë") == 2
    s = c.execute_command("SESSION.GET", sid)
    assert s["attributes"]["cart"] == ["json", "[1,2]", 2]
    assert attrs(s) == {"cart": "[1,2]", "name": "Zoë"}
    assert c.execute_command("SESSION.DEL", sid, "cart", "nothing") == 1
    assert attrs(c.execute_command("SESSION.GET", sid)) == {"name": "Zoë"}
    left = c.execute_command("SESSION.TOUCH", sid)
    assert 59_000 < left <= 60_000
    only = c.execute_command("SESSION.GET", sid, "ATTRS", "name", "NOTOUCH")
    assert attrs(only) == {"name": "Zoë"}
    c.execute_command("SESSION.SET", sid, "big", "bytes", "x" * 1000)
    names = c.execute_command("SESSION.GET", sid, "NAMES", "NOTOUCH")
    assert names["attributes"] == {"name": ["utf8", None, 2], "big": ["bytes", None, 4]}
    some = c.execute_command("SESSION.GET", sid, "ATTRS", "big", "missing", "NAMES")
    assert some["attributes"] == {"big": ["bytes", None, 4]}
    assert c.execute_command("SESSION.DEL", sid, "big") == 1
    assert 4_000 < c.execute_command("SESSION.TOUCH", sid, "IDLE", 5) <= 5_000
    assert c.execute_command("SESSION.GET", sid)["idle-timeout"] == 5


def test_a_chosen_id_and_replacing_writes(node):
    c = r3(node)
    sid = "chosen-id-0123456789_ab"
    assert c.execute_command("SESSION.CREATE", "g", "ID", sid) == sid
    assert c.execute_command("SESSION.CREATE", "g", "ID", sid) is None, "taken"
    with pytest.raises(redis.ResponseError, match="id has"):
        c.execute_command("SESSION.CREATE", "g", "ID", "short")
    assert c.execute_command("SESSION.SET", sid, "a", "utf8", "1", "b", "utf8", "2") == 2
    assert c.execute_command("SESSION.SET", sid, "REPLACE", "IDLE", 7, "c", "utf8", "3") == 3
    s = c.execute_command("SESSION.GET", sid)
    assert attrs(s) == {"c": "3"} and s["idle-timeout"] == 7
    assert c.execute_command("SESSION.SET", sid, "REPLACE") == 4
    assert attrs(c.execute_command("SESSION.GET", sid)) == {}
    assert c.execute_command("SESSION.INVALIDATE", sid) == 1
    assert c.execute_command("SESSION.CREATE", "g", "ID", sid) is None, "an ended id stays taken"


def test_binary_and_java_values_round_trip_untouched(node):
    c = node.client(protocol=3)
    sid = c.execute_command("SESSION.CREATE", "g")
    blob = bytes(range(256)) * 3
    c.execute_command("SESSION.SET", sid, "obj", "java", blob)
    s = c.execute_command("SESSION.GET", sid)
    assert s[b"attributes"][b"obj"] == [b"java", blob, 2]


def test_resp2_replies_are_flat_arrays(node):
    c = node.client(protocol=2, decode_responses=True)
    sid = c.execute_command("SESSION.CREATE", "g")
    c.execute_command("SESSION.SET", sid, "a", "utf8", "1")
    flat = c.execute_command("SESSION.GET", sid)
    as_map = dict(zip(flat[::2], flat[1::2]))
    assert as_map["id"] == sid and as_map["version"] == 2
    assert as_map["attributes"] == ["a", ["utf8", "1", 2]]


def test_app_scoped_attributes_are_seen_only_by_their_app(node):
    c = r3(node)
    sid = c.execute_command("SESSION.CREATE", "portal")
    c.execute_command("SESSION.SET", sid, "user", "utf8", "ann", "app:shop/cart", "json", "[]",
                      "app:blog/draft", "utf8", "hello")
    assert attrs(c.execute_command("SESSION.GET", sid)) == {"user": "ann"}
    assert attrs(c.execute_command("SESSION.GET", sid, "APP", "shop")) == {"user": "ann", "app:shop/cart": "[]"}
    assert attrs(c.execute_command("SESSION.GET", sid, "APP", "blog")) == {"user": "ann", "app:blog/draft": "hello"}


def test_ifversion_is_a_compare_and_set(node):
    c = r3(node)
    sid = c.execute_command("SESSION.CREATE", "g")
    assert c.execute_command("SESSION.SET", sid, "IFVERSION", 1, "n", "utf8", "1") == 2
    with pytest.raises(redis.ResponseError, match="^CONFLICT"):
        c.execute_command("SESSION.SET", sid, "IFVERSION", 1, "n", "utf8", "lost")
    assert attrs(c.execute_command("SESSION.GET", sid)) == {"n": "1"}


def test_idle_timeout_ends_a_session_and_a_touch_keeps_it(node):
    c = r3(node)
    idle = c.execute_command("SESSION.CREATE", "g", "IDLE", 1)
    kept = c.execute_command("SESSION.CREATE", "g", "IDLE", 1)
    for _ in range(4):
        time.sleep(0.4)
        assert c.execute_command("SESSION.TOUCH", kept) is not None
    assert c.execute_command("SESSION.GET", idle) is None
    assert c.execute_command("SESSION.SET", idle, "a", "utf8", "x") is None
    assert c.execute_command("SESSION.GET", kept) is not None


def test_touching_never_moves_the_absolute_deadline(node):
    c = r3(node)
    sid = c.execute_command("SESSION.CREATE", "g", "IDLE", 60, "ABSOLUTE", 2)
    deadline = c.execute_command("SESSION.GET", sid)["absolute-deadline"]
    for _ in range(5):
        time.sleep(0.3)
        assert c.execute_command("SESSION.TOUCH", sid) <= 2000
    assert c.execute_command("SESSION.GET", sid)["absolute-deadline"] == deadline
    assert wait_until(lambda: c.execute_command("SESSION.GET", sid) is None, 3)


def test_an_invalidated_id_never_reads_back(node):
    c = r3(node)
    sid = c.execute_command("SESSION.CREATE", "g")
    c.execute_command("SESSION.SET", sid, "a", "utf8", "1")
    assert c.execute_command("SESSION.INVALIDATE", sid) == 1
    assert c.execute_command("SESSION.INVALIDATE", sid) == 0
    assert c.execute_command("SESSION.GET", sid) is None
    assert c.execute_command("SESSION.SET", sid, "a", "utf8", "2") is None
    assert c.execute_command("SESSION.TOUCH", sid) is None
    assert c.execute_command("SESSION.GET", sid) is None
    # The tombstone is invisible to Redis commands and to listings.
    key = f"sg:session:{sid}"
    assert c.exists(key) == 0 and c.type(key) == "none"
    assert key not in c.keys("sg:session:*")


def test_rotate_moves_the_attributes_and_ends_the_old_id(node):
    c = r3(node)
    old = c.execute_command("SESSION.CREATE", "g")
    c.execute_command("SESSION.SET", old, "cart", "json", "[7]")
    c.execute_command("SESSION.LOGIN", old, "rotor")
    new = c.execute_command("SESSION.ROTATE", old)
    assert new != old and len(new) == 27
    assert c.execute_command("SESSION.GET", old) is None
    s = c.execute_command("SESSION.GET", new)
    assert attrs(s) == {"cart": "[7]"} and s["principal"] == "rotor"
    assert [x["id"] for x in c.execute_command("SESSION.BYUSER", "rotor")] == [new]
    assert c.execute_command("SESSION.ROTATE", old) is None


def test_login_policies(node):
    c = r3(node)
    a, b, d = (c.execute_command("SESSION.CREATE", "g") for _ in range(3))
    assert c.execute_command("SESSION.LOGIN", a, "bob", "POLICY", "reject", "MAX", 1) == []
    with pytest.raises(redis.ResponseError, match="^LOGINREJECTED"):
        c.execute_command("SESSION.LOGIN", b, "bob", "POLICY", "reject", "MAX", 1)
    assert c.execute_command("SESSION.GET", b)["principal"] is None
    assert c.execute_command("SESSION.LOGIN", b, "bob", "POLICY", "evict-oldest", "MAX", 1) == [a]
    assert c.execute_command("SESSION.GET", a) is None, "the evicted session ended"
    assert c.execute_command("SESSION.LOGIN", d, "bob", "POLICY", "allow", "MAX", 1) == []
    assert sorted(x["id"] for x in c.execute_command("SESSION.BYUSER", "bob")) == sorted([b, d])
    assert c.execute_command("SESSION.LOGOUT", d) == 1
    assert c.execute_command("SESSION.GET", d)["principal"] is None
    assert [x["id"] for x in c.execute_command("SESSION.BYUSER", "bob")] == [b]
    assert c.execute_command("SESSION.KICKUSER", "bob") == 1
    assert c.execute_command("SESSION.GET", b) is None
    assert c.execute_command("SESSION.BYUSER", "bob") == []


def test_group_config_sets_the_login_policy(node):
    c = r3(node)
    a, b = (c.execute_command("SESSION.CREATE", "strict") for _ in range(2))
    c.execute_command("SESSION.LOGIN", a, "carol")
    with pytest.raises(redis.ResponseError, match="^LOGINREJECTED"):
        c.execute_command("SESSION.LOGIN", b, "carol")


def test_a_groups_login_limit_counts_that_groups_sessions_only(node):
    c = r3(node)
    elsewhere = c.execute_command("SESSION.CREATE", "g")
    c.execute_command("SESSION.LOGIN", elsewhere, "frank")
    a, b = (c.execute_command("SESSION.CREATE", "strict") for _ in range(2))
    assert c.execute_command("SESSION.LOGIN", a, "frank") == [], "a session of another group"
    with pytest.raises(redis.ResponseError, match="^LOGINREJECTED"):
        c.execute_command("SESSION.LOGIN", b, "frank")
    third = c.execute_command("SESSION.CREATE", "g")
    evicted = c.execute_command("SESSION.LOGIN", third, "frank", "POLICY", "evict-oldest", "MAX", 1)
    assert evicted == [elsewhere]
    assert c.execute_command("SESSION.GET", a)["principal"] == "frank"
    assert sorted(x["id"] for x in c.execute_command("SESSION.BYUSER", "frank")) == sorted([a, third])


def test_byuser_never_lists_an_expired_or_invalidated_session(node):
    c = r3(node)
    short = c.execute_command("SESSION.CREATE", "g", "IDLE", 1)
    gone = c.execute_command("SESSION.CREATE", "g")
    live = c.execute_command("SESSION.CREATE", "g")
    for sid in (short, gone, live):
        c.execute_command("SESSION.LOGIN", sid, "dave")
    c.execute_command("SESSION.INVALIDATE", gone)
    time.sleep(1.3)
    assert [x["id"] for x in c.execute_command("SESSION.BYUSER", "dave")] == [live]
    # A dead session no longer counts against the user's limit.
    other = c.execute_command("SESSION.CREATE", "g")
    assert c.execute_command("SESSION.LOGIN", other, "dave", "POLICY", "reject", "MAX", 2) == []


def test_limits_are_refused_and_change_nothing(node):
    c = r3(node)
    sid = c.execute_command("SESSION.CREATE", "g")
    c.execute_command("SESSION.SET", sid, "a", "utf8", "1")
    with pytest.raises(redis.ResponseError, match="attr_bytes_max"):
        c.execute_command("SESSION.SET", sid, "big", "bytes", "x" * 1025)
    with pytest.raises(redis.ResponseError, match="attrs_max"):
        c.execute_command("SESSION.SET", sid, *sum(([f"n{i}", "utf8", "v"] for i in range(8)), []))
    with pytest.raises(redis.ResponseError, match="session_bytes_max"):
        c.execute_command("SESSION.SET", sid, *sum(([f"m{i}", "utf8", "v" * 900] for i in range(5)), []))
    with pytest.raises(redis.ResponseError, match="principal"):
        c.execute_command("SESSION.LOGIN", sid, "u" * 33)
    s = c.execute_command("SESSION.GET", sid)
    assert attrs(s) == {"a": "1"} and s["version"] == 2 and s["principal"] is None


def test_bad_arguments_get_clear_errors(node):
    c = r3(node)
    sid = c.execute_command("SESSION.CREATE", "g")
    for bad, pattern in [
        (("SESSION.SET", sid, "a", "yaml", "x"), "tag"),
        (("SESSION.SET", sid, "a", "utf8"), "wrong number"),
        (("SESSION.CREATE", "g", "IDLE", "soon"), "integer"),
        (("SESSION.CREATE", "g", "IDLE", 0), "IDLE"),
        (("SESSION.CREATE", "g", "FOREVER", 1), "syntax"),
        (("SESSION.LOGIN", sid, "x", "POLICY", "maybe"), "POLICY"),
        (("SESSION.CREATE", ""), "group"),
    ]:
        with pytest.raises(redis.ResponseError, match=pattern):
            c.execute_command(*bad)
    for garbage in ("", "x", "../../etc/passwd", "a" * 500, "\x00\xff"):
        assert c.execute_command("SESSION.GET", garbage) is None
        assert c.execute_command("SESSION.INVALIDATE", garbage) == 0
    c.set("plain", "v")
    assert c.execute_command("SESSION.GET", sid) is not None
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.get(f"sg:session:{sid}")
    # RENAME and COPY cannot move a session, nor overwrite one; the source stays.
    for command in ("RENAME", "COPY"):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            c.execute_command(command, f"sg:session:{sid}", "stolen")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            c.execute_command(command, "plain", f"sg:session:{sid}", *(("REPLACE",) if command == "COPY" else ()))
    assert c.get("plain") == "v" and c.exists("stolen") == 0
    assert c.execute_command("SESSION.GET", sid) is not None


def test_list_and_stats_cover_every_session(node):
    c = r3(node)
    c.flushall()
    made = {c.execute_command("SESSION.CREATE", "listing") for _ in range(40)}
    c.execute_command("SESSION.CREATE", "other")
    seen, cursor = [], 0
    while True:
        cursor, ids = c.execute_command("SESSION.LIST", "GROUP", "listing", "CURSOR", cursor, "COUNT", 7)
        seen += ids
        cursor = int(cursor)
        if cursor == 0:
            break
    assert sorted(seen) == sorted(made)
    stats = c.execute_command("SESSION.STATS", "GROUP", "listing")
    assert stats["live"] == 40
    # `node` counts what this node published as the sessions' primary: all of them on a single
    # node, its share in a cluster; `cluster` counts every event it saw.
    assert stats["cluster"]["created"] == 40 and 0 < stats["node"]["created"] <= 40
    everything = c.execute_command("SESSION.STATS")
    assert everything["live"] == 41 and everything["cluster"]["created"] >= 41


def test_redis_cli_drives_sessions(node):
    def cli(*args):
        out = subprocess.run([REDIS_CLI, "-p", str(node.port), *map(str, args)],
                             capture_output=True, text=True, timeout=30, check=True)
        return out.stdout.strip()

    sid = cli("SESSION.CREATE", "cli")
    assert cli("SESSION.SET", sid, "k", "utf8", "v") == "2"
    assert "k" in cli("SESSION.GET", sid).splitlines()
    assert cli("SESSION.INVALIDATE", sid) == "1"
    assert cli("SESSION.GET", sid) == ""


def test_concurrent_ifversion_writers_lose_no_update(node):
    sid = r3(node).execute_command("SESSION.CREATE", "g")
    r3(node).execute_command("SESSION.SET", sid, "n", "utf8", "0")
    conflicts = []

    def increment(times: int) -> None:
        c = r3(node)
        for _ in range(times):
            while True:
                s = c.execute_command("SESSION.GET", sid, "NOTOUCH")
                n = int(attrs(s)["n"])
                try:
                    c.execute_command("SESSION.SET", sid, "IFVERSION", s["version"], "n", "utf8", n + 1)
                    break
                except redis.ResponseError as e:
                    assert str(e).startswith("CONFLICT")
                    conflicts.append(1)

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(increment, [25] * 8))
    assert attrs(r3(node).execute_command("SESSION.GET", sid))["n"] == "200"
    print(f"\n200 increments by 8 writers: {len(conflicts)} conflicts retried")


class Subscriber(threading.Thread):
    """Collects the events of one channel (or of SESSION.SUBSCRIBE) through redis-py's pub/sub."""

    def __init__(self, node: GridProcess, channel: str = "sessiongrid:events"):
        super().__init__(daemon=True)
        self.client = node.client(decode_responses=True, socket_timeout=None)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(channel)
        assert self.pubsub.get_message(timeout=5)["type"] == "subscribe"
        self.events: list[dict] = []
        self.stop_flag = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message and message["type"] == "message":
                self.events.append(json.loads(message["data"]))

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(timeout=10)
        self.pubsub.close()

    def seen(self, kind: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.events:
            if e["event"] == kind:
                counts[e["id"]] = counts.get(e["id"], 0) + 1
        return counts

    def wait_for(self, kind: str, ids, timeout: float = 10) -> bool:
        return wait_until(lambda: set(ids) <= set(self.seen(kind)), timeout)


def test_session_subscribe_pushes_events_in_resp3_and_resp2(node):
    for proto in (3, 2):
        with RespConnection(node.port) as conn:
            if proto == 3:
                assert conn.call("HELLO", 3)[0] == "map"
            conn.send_command("SESSION.SUBSCRIBE", "GROUP", f"push{proto}")
            kind = "push" if proto == 3 else "array"
            confirm, _ = conn.read_reply()
            assert confirm == (kind, [("bulk", b"subscribe"), ("bulk", f"sessiongrid:events:push{proto}".encode()), ("int", 1)])
            sid = r3(node).execute_command("SESSION.CREATE", f"push{proto}")
            r3(node).execute_command("SESSION.CREATE", "elsewhere")
            message, _ = conn.read_reply()
            assert message[0] == kind and message[1][0] == ("bulk", b"message")
            event = json.loads(message[1][2][1])
            assert (event["event"], event["id"], event["group"]) == ("created", sid, f"push{proto}")
            conn.send_command("UNSUBSCRIBE")
            assert conn.read_reply()[0] == (kind, [("bulk", b"unsubscribe"), ("bulk", f"sessiongrid:events:push{proto}".encode()), ("int", 0)])
            assert conn.call("PING") == ("simple", b"PONG")


def test_subscribers_see_every_event_of_a_scripted_run(node):
    everything = Subscriber(node)
    only_b = Subscriber(node, "sessiongrid:events:events-b")
    c = r3(node)
    try:
        created = [c.execute_command("SESSION.CREATE", "events-a") for _ in range(10)]
        short = [c.execute_command("SESSION.CREATE", "events-b", "IDLE", 1) for _ in range(3)]
        c.execute_command("SESSION.SET", created[0], "a", "utf8", "1")
        c.execute_command("SESSION.LOGIN", created[1], "erin")
        c.execute_command("SESSION.LOGOUT", created[1])
        new = c.execute_command("SESSION.ROTATE", created[2])
        for sid in created[3:6]:
            c.execute_command("SESSION.INVALIDATE", sid)
        assert everything.wait_for("created", created + short)
        assert everything.wait_for("expired", short, timeout=10), everything.events
        assert everything.wait_for("invalidated", created[3:6])
        assert everything.wait_for("attribute-changed", created[:1])
        assert everything.wait_for("login", created[1:2]) and everything.wait_for("logout", created[1:2])
        rotated = [e for e in everything.events if e["event"] == "rotated"]
        assert rotated[0]["id"] == created[2] and rotated[0]["moved_to"] == new
        assert new not in everything.seen("created"), "a rotation is not a new session"
        login = [e for e in everything.events if e["event"] == "login"][0]
        assert login["principal"] == "erin" and login["group"] == "events-a" and login["at"] > 0
        assert only_b.wait_for("expired", short)
        assert {e["group"] for e in only_b.events} == {"events-b"}
    finally:
        everything.stop()
        only_b.stop()


# --------------------------------------------------------------------------
# A 3-node cluster
# --------------------------------------------------------------------------


def test_parallel_logins_of_one_user_through_every_node_leave_one_session(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    nodes = cluster.nodes
    for policy in ("reject", "evict-oldest"):
        user = f"racer-{policy}"
        ids = [r3(nodes[i % 3]).execute_command("SESSION.CREATE", "g") for i in range(100)]
        outcomes = {"ok": 0, "rejected": 0, "gone": 0}
        lock = threading.Lock()

        def login(i: int) -> None:
            c = r3(nodes[i % 3])
            try:
                reply = c.execute_command("SESSION.LOGIN", ids[i], user, "POLICY", policy, "MAX", 1)
                kind = "gone" if reply is None else "ok"
            except redis.ResponseError as e:
                assert str(e).startswith("LOGINREJECTED"), e
                kind = "rejected"
            with lock:
                outcomes[kind] += 1

        with ThreadPoolExecutor(20) as ex:
            list(ex.map(login, range(100)))
        for node in nodes:
            listed = r3(node).execute_command("SESSION.BYUSER", user)
            assert len(listed) == 1, (policy, outcomes, listed)
        logged_in = [sid for sid in ids
                     if (s := r3(nodes[0]).execute_command("SESSION.GET", sid, "NOTOUCH"))
                     and s["principal"] == user]
        assert len(logged_in) == 1, (policy, outcomes)
        print(f"\n100 parallel logins, MAX 1, {policy}: {outcomes}")


def test_sessions_registry_and_tombstones_survive_failover_and_whole_grid_restart(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    nodes = cluster.nodes
    c = r3(nodes[0])
    live, ended, users = {}, [], {}
    for i in range(60):
        sid = r3(nodes[i % 3]).execute_command("SESSION.CREATE", "g", "IDLE", 600, "ABSOLUTE", 3600)
        r3(nodes[(i + 1) % 3]).execute_command("SESSION.SET", sid, "n", "utf8", str(i))
        live[sid] = str(i)
    for i, sid in enumerate(list(live)[:20]):
        user = f"user{i % 5}"
        r3(nodes[i % 3]).execute_command("SESSION.LOGIN", sid, user)
        users.setdefault(user, set()).add(sid)
    for sid in list(live)[40:50]:
        assert c.execute_command("SESSION.INVALIDATE", sid) == 1
        ended.append(sid)
        del live[sid]
    for sid in list(live)[:5]:
        new = c.execute_command("SESSION.ROTATE", sid)
        live[new] = live.pop(sid)
        ended.append(sid)
        for ids in users.values():
            if sid in ids:
                ids.discard(sid)
                ids.add(new)
    deadlines = {sid: c.execute_command("SESSION.GET", sid, "NOTOUCH")["absolute-deadline"] for sid in live}

    def check(via: list[GridProcess]) -> None:
        for node in via:
            r = r3(node)
            for sid, n in live.items():
                s = r.execute_command("SESSION.GET", sid, "NOTOUCH")
                assert s is not None and attrs(s) == {"n": n}, sid
                assert s["absolute-deadline"] == deadlines[sid]
            for sid in ended:
                assert r.execute_command("SESSION.GET", sid) is None, sid
            for user, ids in users.items():
                assert {x["id"] for x in r.execute_command("SESSION.BYUSER", user)} == ids, user

    check(nodes)
    nodes[1].sigkill()
    cluster.wait_settled(timeout=30)
    check(cluster.live())

    for node in cluster.nodes:
        node.sigkill()
    for node in cluster.nodes:
        node._spawn()
    cluster.wait_settled()
    check(cluster.nodes)


def test_events_are_delivered_at_least_once_across_a_failover(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    nodes = cluster.nodes
    subscriber = Subscriber(nodes[0])
    try:
        created = [r3(nodes[i % 3]).execute_command("SESSION.CREATE", "g") for i in range(60)]
        short = [r3(nodes[i % 3]).execute_command("SESSION.CREATE", "g", "IDLE", 2) for i in range(15)]
        invalidated = created[:20]
        for sid in invalidated[:10]:
            assert r3(nodes[1]).execute_command("SESSION.INVALIDATE", sid) == 1
        nodes[2].sigkill()
        for sid in invalidated[10:]:
            while True:
                try:
                    assert r3(nodes[1]).execute_command("SESSION.INVALIDATE", sid) in (0, 1)
                    break
                except redis.exceptions.ResponseError as e:
                    # Sent to the killed primary: refused (TRYAGAIN), or unconfirmed
                    # (INDETERMINATE); invalidating again is harmless either way.
                    assert str(e).startswith(("TRYAGAIN", "INDETERMINATE")), e
                    time.sleep(0.1)
        cluster.wait_settled(timeout=30)
        assert subscriber.wait_for("created", created + short, timeout=15)
        assert subscriber.wait_for("invalidated", invalidated, timeout=15)
        assert subscriber.wait_for("expired", short, timeout=15)
    finally:
        subscriber.stop()
    duplicates = sum(n - 1 for kind in ("created", "invalidated", "expired")
                     for n in subscriber.seen(kind).values())
    print(f"\nevents across a kill -9: {len(subscriber.events)} received, {duplicates} duplicates")


def test_attribute_changes_travel_only_while_some_node_watches(pool):
    """Attribute changes nobody subscribes to are counted where they are made and sent
    nowhere; once a subscription is confirmed, every change reaches it, whichever node is the
    session's primary, and no node that does not watch; after it ends they stay where they
    are made again."""
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    nodes = cluster.nodes
    group = "watched"
    sids = [r3(nodes[i % 3]).execute_command("SESSION.CREATE", group) for i in range(30)]

    def changed(node, scope):
        stats = r3(node).execute_command("SESSION.STATS", "GROUP", group)
        return stats[scope]["attribute-changed"]

    def write_all(round_no):
        for i, sid in enumerate(sids):
            r3(nodes[(i + 1) % 3]).execute_command("SESSION.SET", sid, "round", "utf8", round_no)

    # Nobody watches (once every node has told the others): each change counted once, at its
    # primary, and seen by no other node.
    def unwatched_round(round_no):
        before = [(changed(n, "node"), changed(n, "cluster")) for n in nodes]
        write_all(round_no)
        after = [(changed(n, "node"), changed(n, "cluster")) for n in nodes]
        made = sum(a[0] - b[0] for a, b in zip(after, before))
        seen = sum(a[1] - b[1] for a, b in zip(after, before))
        return made == len(sids) and seen == len(sids)

    assert wait_until(lambda: unwatched_round(1), timeout=10), "changes still travel unwatched"

    subscriber = Subscriber(nodes[0], f"sessiongrid:events:{group}")
    try:
        # Every node sends attribute changes to the watching node alone.
        assert wait_until(lambda: all(
            metric_sum(n, "sessiongrid_session_events_watching_members") == 1 for n in nodes),
            timeout=10)
        before = [(changed(n, "node"), changed(n, "cluster")) for n in nodes]
        write_all(2)
        assert subscriber.wait_for("attribute-changed", sids, timeout=10), subscriber.events
        after = [(changed(n, "node"), changed(n, "cluster")) for n in nodes]
        made, seen = ([a[k] - b[k] for a, b in zip(after, before)] for k in (0, 1))
        assert sum(made) == len(sids) and seen[0] == len(sids), (made, seen)
        assert seen[1:] == made[1:], f"the others see only their own changes: {made} {seen}"
    finally:
        subscriber.stop()
    assert wait_until(lambda: unwatched_round(3), timeout=10), "changes still travel after"
