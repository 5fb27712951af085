"""ACL users (``--aclfile``): two applications on one 3-node grid, each limited to its
own keys, channels and session groups.

What is proven here: ``shop`` and ``bank`` each read and write their own keys and
sessions through any node and get ``NOPERM`` on the other's (keys, commands, channels,
session groups, listings and event feeds); redis-py and redis-cli log in with a user
name; ``ACL SETUSER`` takes effect on open connections at once and ``ACL SAVE`` writes
the file with password digests only, which ``ACL LOAD`` reads back; a user's connection
limit holds; refusals are in ``ACL LOG`` and rule changes in the audit log.
"""

from __future__ import annotations

import subprocess

import pytest
import redis

from conftest import REDIS_CLI, grid_only, wait_until
from gridcluster import Cluster
from test_http_api import api

pytestmark = grid_only

USERS = """\
user default on nopass ~* &* +@all allgroups
user shop on >shop-pw ~shop:* &shop:* +@all -@dangerous group:shop maxconns:20
user bank on >bank-pw ~bank:* &bank:* +@all -@dangerous group:bank
"""
NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"


@pytest.fixture(scope="module")
def grid(module_pool, tmp_path_factory):
    acl = tmp_path_factory.mktemp("acl") / "users.acl"
    acl.write_text(USERS)
    cluster = Cluster(module_pool, 3, extra=("--aclfile", str(acl)))
    cluster.wait_settled()
    return cluster, acl


def as_user(node, user: str, protocol: int = 2) -> redis.Redis:
    return node.client(username=user, password=f"{user}-pw", protocol=protocol)


def test_each_application_reaches_its_own_keys_only_through_every_node(grid):
    cluster, _ = grid
    for i, node in enumerate(cluster.nodes):
        shop, bank = as_user(node, "shop"), as_user(node, "bank")
        assert shop.set(f"shop:cart:{i}", "3 items") and bank.set(f"bank:acct:{i}", "100")
        assert shop.get(f"shop:cart:{i}") == b"3 items"
        with pytest.raises(redis.exceptions.NoPermissionError, match="keys used as arguments"):
            shop.get(f"bank:acct:{i}")
        with pytest.raises(redis.exceptions.NoPermissionError):
            bank.set(f"shop:cart:{i}", "stolen")
        with pytest.raises(redis.exceptions.NoPermissionError, match="'flushall' command"):
            shop.flushall()
        # A transaction with a key of the other application is refused whole.
        pipe = shop.pipeline(transaction=True)
        pipe.set(f"shop:x:{i}", "1").get(f"bank:acct:{i}")
        with pytest.raises(redis.exceptions.NoPermissionError, match="GET bank"):
            pipe.execute()
        assert shop.get(f"shop:x:{i}") is None
        assert cluster.nodes[0].client().get(f"shop:cart:{i}") == b"3 items"


def test_sort_reads_and_stores_only_where_the_user_may(grid):
    """SORT's BY and GET patterns could read any key: a user limited to some keys is refused
    them (as in Redis), and its STORE destination is checked like any key it writes."""
    cluster, _ = grid
    node = cluster.nodes[1]
    shop = as_user(node, "shop")
    shop.rpush("shop:ids", 2, 1)
    node.client().set("bank:w_1", 9)
    assert shop.sort("shop:ids") == [b"1", b"2"]
    assert shop.execute_command("SORT", "shop:ids", "BY", "nosort", "GET", "#") == [b"2", b"1"]
    for option in (("BY", "bank:w_*"), ("GET", "bank:w_*")):
        with pytest.raises(redis.ResponseError, match=f"{option[0]} option of SORT denied"):
            shop.execute_command("SORT", "shop:ids", *option)
    with pytest.raises(redis.exceptions.NoPermissionError, match="keys used as arguments"):
        shop.execute_command("SORT", "shop:ids", "STORE", "bank:sorted")
    assert node.client().exists("bank:sorted") == 0
    assert shop.execute_command("SORT", "shop:ids", "STORE", "shop:sorted") == 2
    assert node.client().execute_command("SORT", "shop:ids", "BY", "bank:w_*", "GET", "bank:w_*") == [None, b"9"]


def test_sessions_are_kept_to_their_group(grid):
    cluster, _ = grid
    a, b = cluster.nodes[0], cluster.nodes[1]
    shop, bank = as_user(a, "shop", protocol=3), as_user(b, "bank", protocol=3)
    sid = shop.execute_command("SESSION.CREATE", "shop")
    shop.execute_command("SESSION.SET", sid, "cart", "utf8", "socks")
    shop.execute_command("SESSION.LOGIN", sid, "erin")
    with pytest.raises(redis.exceptions.NoPermissionError):
        bank.execute_command("SESSION.CREATE", "shop")
    for command in (("SESSION.GET", sid), ("SESSION.SET", sid, "cart", "utf8", "x"),
                    ("SESSION.INVALIDATE", sid), ("SESSION.ROTATE", sid),
                    ("SESSION.TOUCH", sid), ("SESSION.LOGOUT", sid)):
        with pytest.raises(redis.exceptions.NoPermissionError, match="sessions of this group"):
            bank.execute_command(*command)
    with pytest.raises(redis.exceptions.NoPermissionError, match="name one with GROUP"):
        bank.execute_command("SESSION.LIST")
    with pytest.raises(redis.exceptions.NoPermissionError):
        bank.execute_command("SESSION.STATS", "GROUP", "shop")
    assert bank.execute_command("SESSION.BYUSER", "erin") == []
    assert bank.execute_command("SESSION.KICKUSER", "erin") == 0
    # The shop's session is untouched by all of that, and the shop sees it.
    got = as_user(cluster.nodes[2], "shop", protocol=3).execute_command("SESSION.GET", sid)
    assert got[b"attributes"][b"cart"][1] == b"socks", got
    assert len(shop.execute_command("SESSION.BYUSER", "erin")) == 1
    cursor, ids = shop.execute_command("SESSION.LIST", "GROUP", "shop")
    assert sid in ids
    # A forced logout by the shop ends the shop's session of that user, as a kick.
    kicked = lambda: shop.execute_command("SESSION.STATS", "GROUP", "shop")[b"cluster"][b"kicked"]
    before = kicked()
    assert shop.execute_command("SESSION.KICKUSER", "erin") == 1
    assert shop.execute_command("SESSION.GET", sid) is None
    assert wait_until(lambda: kicked() == before + 1, 10, interval=0.1)


def test_event_feeds_and_channels_are_kept_to_their_owner(grid):
    cluster, _ = grid
    node = cluster.nodes[1]
    bank = as_user(node, "bank")
    with pytest.raises(redis.exceptions.NoPermissionError, match="sessions of this group"):
        bank.execute_command("SESSION.SUBSCRIBE", "GROUP", "shop")
    with pytest.raises(redis.exceptions.NoPermissionError, match="name one with GROUP"):
        bank.execute_command("SESSION.SUBSCRIBE")
    with pytest.raises(redis.exceptions.NoPermissionError, match="channels"):
        bank.execute_command("SUBSCRIBE", "shop:orders")
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_user(node, "bank").publish("shop:orders", "fake")
    assert as_user(node, "shop").publish("shop:orders", "real") >= 0


def test_redis_cli_logs_in_with_a_user_name(grid):
    cluster, _ = grid
    node = cluster.nodes[2]
    base = [REDIS_CLI, "-p", str(node.resp_port), "--user", "shop", "--pass", "shop-pw",
            "--no-auth-warning"]
    out = subprocess.run(base + ["ACL", "WHOAMI"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "shop"
    out = subprocess.run(base + ["GET", "bank:acct:0"], capture_output=True, text=True, timeout=10)
    assert NOPERM_KEY in out.stdout + out.stderr


def test_rule_changes_reach_open_connections_and_are_saved_hashed(grid):
    cluster, acl_path = grid
    node = cluster.nodes[0]
    admin, shop = node.client(), as_user(node, "shop")
    assert shop.set("shop:live", "1")
    admin.execute_command("ACL", "SETUSER", "shop", "resetkeys", "~shop:*", "%R~catalog:*")
    assert shop.get("catalog:price") is None
    with pytest.raises(redis.exceptions.NoPermissionError):
        shop.set("catalog:price", "1")
    admin.execute_command("ACL", "SETUSER", "ops", "on", ">ops-pw", "+@read", "~*", "allgroups")
    assert admin.execute_command("ACL", "SAVE") == b"OK"
    saved = acl_path.read_text()
    assert "ops-pw" not in saved and "shop-pw" not in saved and "user ops on #" in saved, saved
    assert admin.execute_command("ACL", "LOAD") == b"OK"
    ops = node.client(username="ops", password="ops-pw")
    assert ops.get("shop:live") == b"1"
    with pytest.raises(redis.exceptions.NoPermissionError):
        ops.set("shop:live", "2")
    assert admin.execute_command("ACL", "DELUSER", "ops") == 1
    with pytest.raises(redis.exceptions.ResponseError, match="user was deleted"):
        ops.get("shop:live")  # and the connection is closed
    with pytest.raises(redis.exceptions.AuthenticationError):
        node.client(username="ops", password="ops-pw").ping()
    acl_path.write_text(USERS)
    assert admin.execute_command("ACL", "LOAD") == b"OK"
    assert "acl setuser" in node.log_text() and "sessiongrid::audit" in node.log_text()


def test_refusals_are_logged_and_dryrun_explains(grid):
    cluster, _ = grid
    node = cluster.nodes[1]
    admin = node.client()
    admin.execute_command("ACL", "LOG", "RESET")
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_user(node, "shop").get("bank:acct:1")
    with pytest.raises(redis.exceptions.AuthenticationError):
        node.client(username="shop", password="wrong").ping()
    entries = admin.acl_log()
    reasons = {(e["reason"], e["username"]) for e in entries}
    assert {("key", "shop"), ("auth", "shop")} <= reasons, entries
    assert admin.execute_command("ACL", "DRYRUN", "shop", "GET", "bank:1") == \
        b"User shop has no permissions to access the 'bank:1' key"
    assert admin.execute_command("ACL", "DRYRUN", "shop", "GET", "shop:1") == b"OK"
    assert b"session" in admin.execute_command("ACL", "CAT")


def test_a_users_connection_limit_holds(grid):
    cluster, _ = grid
    node = cluster.nodes[0]
    admin = node.client()
    admin.execute_command("ACL", "SETUSER", "tiny", "on", ">tiny-pw", "+@all", "~*", "maxconns:2")
    try:
        held = [node.client(username="tiny", password="tiny-pw", single_connection_client=True)
                for _ in range(2)]
        for c in held:
            assert c.ping()
        with pytest.raises(redis.exceptions.ResponseError, match="maxconns:2"):
            node.client(username="tiny", password="tiny-pw").ping()
        held[0].close()
        assert wait_ping(node)
    finally:
        admin.execute_command("ACL", "DELUSER", "tiny")


def wait_ping(node) -> bool:
    def ok() -> bool:
        try:
            return node.client(username="tiny", password="tiny-pw").ping()
        except redis.exceptions.ResponseError:
            return False
    return wait_until(ok, 10, interval=0.1)


def http(node, method: str, path: str, user: str, password: str | None = None, body=None):
    """An API call as ACL user ``user`` (password ``<user>-pw`` unless given)."""
    return api(node, method, path, body, basic=(user, password or f"{user}-pw"))


def test_the_http_api_holds_users_to_the_same_rules(grid):
    cluster, _ = grid
    node = cluster.nodes[1]
    status, created = http(node, "POST", "/sessions", "shop", body={"group": "shop"})
    assert status == 201, created
    sid = created["id"]
    assert http(node, "GET", f"/sessions/{sid}", "shop")[0] == 200
    assert http(node, "GET", f"/sessions/{sid}", "bank")[0] == 403
    assert http(node, "DELETE", f"/sessions/{sid}", "bank")[0] == 403
    assert http(node, "POST", "/sessions", "bank", body={"group": "shop"})[0] == 403
    assert http(node, "GET", "/sessions", "bank")[0] == 403, "listing every group"
    assert http(node, "GET", "/sessions?group=bank", "bank")[0] == 200
    assert http(node, "GET", "/events", "bank")[0] == 403
    assert http(node, "POST", f"/nodes/{'0' * 16}/drain", "shop")[0] == 403
    assert http(node, "GET", f"/sessions/{sid}", "shop", password="wrong")[0] == 401
    # The session is still there for its owner.
    assert http(node, "GET", f"/sessions/{sid}", "shop")[0] == 200


def test_client_list_names_each_connections_user(grid):
    cluster, _ = grid
    node = cluster.nodes[2]
    shop = as_user(node, "shop")
    shop.client_setname("cart-service")
    lines = [c for c in node.client().client_list() if c["name"] == "cart-service"]
    assert [c["user"] for c in lines] == ["shop"], lines
    assert node.client().client_kill_filter(user="shop") >= 1
