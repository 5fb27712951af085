"""The servlet connector end to end: two real Tomcat 10 instances run the sample
shop (connectors/servlet/sample) with the SessionGridFilter against a 3-node
grid. There is no load balancer: the test client alternates instances with one
cookie, as a non-sticky balancer would.

Applications deployed on both instances:
  /shop, /blog  group "shop", login policy evict-oldest, MAX 1 (they share sessions)
  /bank         group "bank", login policy reject, MAX 1
  /sso          group "shop", cookieDomain shop.test (single log-on across host names)
  /secure       group "secure", container (BASIC) logins
  /cached       group "cached", with the near cache (copies kept up to a minute, so only the
                version cookie and the grid's events keep them fresh)
"""

from __future__ import annotations

import itertools
import re
import socket
import urllib.request
import subprocess
import threading
import time

import pytest
import redis

from conftest import SESSIONGRID_BIN, free_port, grid_only, metric_sum, wait_until
from gridcluster import Cluster
from tomcat import Browser, TomcatProcess, build_connector

pytestmark = grid_only

APPS = {
    "shop": {"group": "shop", "loginPolicy": "evict-oldest", "maxSessionsPerUser": "1", "cookieDomain": ""},
    "blog": {"group": "shop", "loginPolicy": "evict-oldest", "maxSessionsPerUser": "1", "cookieDomain": ""},
    "bank": {"group": "bank", "loginPolicy": "reject", "maxSessionsPerUser": "1", "cookieDomain": ""},
    "sso": {"group": "shop", "loginPolicy": "allow", "maxSessionsPerUser": "0", "cookieDomain": "shop.test"},
    "secure": {"group": "secure", "loginPolicy": "allow", "maxSessionsPerUser": "0", "cookieDomain": "",
               "containerAuth": True},
    "cached": {"group": "cached", "loginPolicy": "evict-oldest", "maxSessionsPerUser": "1", "cookieDomain": "",
               "nearCacheSize": "1000", "nearCacheMillis": "60000"},
}


class Setup:
    def __init__(self, pool):
        build_connector()
        self.cluster = Cluster(pool, 3)
        self.cluster.wait_settled()
        ports = [n.resp_port for n in self.cluster.nodes]
        self.tomcats = []
        for _ in range(2):
            t = TomcatProcess(ports, APPS)
            pool.processes.append(t)
            self.tomcats.append(t.start())

    @property
    def a(self) -> TomcatProcess:
        return self.tomcats[0]

    @property
    def b(self) -> TomcatProcess:
        return self.tomcats[1]

    def grid(self) -> redis.Redis:
        node = self.cluster.live()[0]
        return node.client(protocol=3, decode_responses=True)


@pytest.fixture(scope="module")
def setup(module_pool) -> Setup:
    return Setup(module_pool)


def test_counter_and_cart_follow_the_user_across_instances(setup):
    browser = Browser()
    for i in range(1, 11):
        tomcat = setup.tomcats[i % 2]
        assert browser.text(tomcat, "/shop/counter") == f"counter={i}"
        assert browser.text(tomcat, f"/shop/cart/add?item=i{i}").endswith(f"i{i}")
    expected = ",".join(f"i{i}" for i in range(1, 11))
    assert browser.text(setup.a, "/shop/cart") == f"cart={expected}"
    assert browser.text(setup.b, "/shop/cart") == f"cart={expected}"


def test_kill_nine_of_a_tomcat_mid_session_loses_nothing(setup):
    browser = Browser()
    for i in range(1, 4):
        browser.text(setup.a, "/shop/counter")
        browser.text(setup.a, f"/shop/cart/add?item=k{i}")
    setup.a.sigkill()
    assert browser.text(setup.b, "/shop/counter") == "counter=4"
    assert browser.text(setup.b, "/shop/cart") == "cart=k1,k2,k3"
    setup.a._spawn()
    assert browser.text(setup.a, "/shop/counter") == "counter=5"


def test_sessions_outlive_a_restart_of_every_tomcat(setup):
    browser = Browser()
    browser.text(setup.a, "/shop/login?user=ruth")
    browser.text(setup.b, "/shop/counter")
    for t in setup.tomcats:
        t.sigterm()
    for t in setup.tomcats:
        t._spawn()
    assert browser.text(setup.b, "/shop/whoami") == "user=ruth"
    assert browser.text(setup.a, "/shop/counter") == "counter=2"


def test_two_applications_share_a_group_but_not_private_attributes(setup):
    browser = Browser()
    browser.text(setup.a, "/shop/set?name=color&value=blue")
    assert browser.text(setup.b, "/blog/get?name=color") == "color=blue"
    browser.text(setup.a, "/shop/set?name=secret&value=s3")
    browser.text(setup.b, "/blog/set?name=draft1&value=d1")
    assert browser.text(setup.b, "/blog/get?name=secret") == "secret="
    assert browser.text(setup.a, "/shop/get?name=secret") == "secret=s3"
    assert browser.text(setup.a, "/shop/get?name=draft1") == "draft1="
    assert browser.text(setup.b, "/blog/get?name=draft1") == "draft1=d1"
    # Other languages see the private ones under their app scope.
    s = setup.grid().execute_command("SESSION.GET", browser.session_id(), "APP", "shop", "NOTOUCH")
    assert "app:shop/secret" in s["attributes"] and "app:blog/draft1" not in s["attributes"]


def test_a_session_of_another_group_is_not_this_applications(setup):
    browser = Browser()
    assert browser.text(setup.a, "/bank/counter") == "counter=1"
    bank_session = browser.session_id()
    # Same cookie name and path: /shop (group shop) is handed the bank's session id.
    assert browser.text(setup.b, "/shop/counter") == "counter=1", "it starts its own session"
    assert browser.session_id() != bank_session


def test_single_log_on_across_host_names_with_a_cookie_domain(setup):
    browser = Browser(host="www.shop.test")
    assert browser.text(setup.a, "/sso/login?user=carol") == "logged in as carol"
    assert browser.cookies["SGSESSIONID"][1] == "shop.test"
    assert browser.text(setup.b, "/sso/whoami", host="account.shop.test") == "user=carol"
    assert browser.text(setup.a, "/sso/whoami", host="other.example") == "user="


def test_a_second_login_evicts_the_first_or_is_refused(setup):
    first, second = Browser(), Browser()
    first.text(setup.a, "/shop/login?user=alice")
    assert first.text(setup.b, "/shop/whoami") == "user=alice"
    second.text(setup.b, "/shop/login?user=alice")
    assert second.text(setup.a, "/shop/whoami") == "user=alice"
    assert first.text(setup.a, "/shop/whoami") == "user=", "evict-oldest ended the first session"
    assert first.text(setup.b, "/shop/whoami") == "user="

    first, second = Browser(), Browser()
    assert first.text(setup.a, "/bank/login?user=dave") == "logged in as dave"
    status, body = second.get(setup.b, "/bank/login?user=dave")
    assert status == 409 and "Login refused" in body
    assert second.text(setup.b, "/bank/whoami") == "user="
    assert first.text(setup.b, "/bank/whoami") == "user=dave"


def test_forced_logout_from_the_operator_command(setup):
    browser = Browser()
    browser.text(setup.a, "/shop/login?user=erin")
    node = setup.cluster.live()[0]
    out = subprocess.run([SESSIONGRID_BIN, "kick", "--user", "erin", "--http", f"127.0.0.1:{node.http_port}"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert "ended 1 session" in out.stdout
    assert browser.text(setup.b, "/shop/whoami") == "user="
    assert browser.text(setup.a, "/shop/whoami") == "user="


def test_the_session_id_changes_at_login_and_the_old_one_is_dead(setup):
    browser = Browser()
    browser.text(setup.a, "/shop/counter")
    old = browser.session_id()
    browser.text(setup.b, "/shop/login?user=frank")
    new = browser.session_id()
    assert new != old
    assert browser.text(setup.a, "/shop/counter") == "counter=2", "attributes moved with the id"
    attacker = Browser()
    attacker.cookies["SGSESSIONID"] = (old, "localhost")
    for t in setup.tomcats:
        assert attacker.text(t, "/shop/whoami") == "user="
    assert setup.grid().execute_command("SESSION.GET", old) is None


def test_json_attributes_are_shared_with_other_languages(setup):
    browser = Browser()
    browser.text(setup.a, "/shop/cart/add?item=apple")
    browser.text(setup.a, "/shop/counter")
    grid = setup.grid()
    s = grid.execute_command("SESSION.GET", browser.session_id(), "NOTOUCH")
    assert s["attributes"]["cart"][:2] == ["json", '["apple"]']
    assert s["attributes"]["counter"][:2] == ["json", "1"]
    grid.execute_command("SESSION.SET", browser.session_id(), "greeting", "json", '"hello from python"')
    assert browser.text(setup.b, "/shop/get?name=greeting") == "greeting=hello from python"
    assert browser.text(setup.b, "/shop/counter") == "counter=2"


def test_container_logins_follow_the_grid(setup):
    """principalFrom=userPrincipal (the default): the container's BASIC login is registered in the
    grid, and a forced logout ends it on the next request, on any instance."""
    gina = ("gina", "gina-pw")
    browser = Browser()
    assert browser.get(setup.a, "/secure/principal")[0] == 401
    assert browser.text(setup.a, "/secure/principal", auth=gina) == "principal=gina"
    grid = setup.grid()
    listed = grid.execute_command("SESSION.BYUSER", "gina")
    assert [s["id"] for s in listed] == [browser.session_id()]
    kicked = browser.session_id()
    assert grid.execute_command("SESSION.KICKUSER", "gina") == 1
    # The next request's session has ended: the filter logs the container user out (the page
    # is anonymous) and the dead cookie is replaced.
    assert browser.text(setup.b, "/secure/principal", auth=gina) == "principal="
    assert browser.session_id() != kicked
    # BASIC sends the credentials again: a fresh login, registered again.
    assert browser.text(setup.b, "/secure/principal", auth=gina) == "principal=gina"
    assert len(grid.execute_command("SESSION.BYUSER", "gina")) == 1


def test_a_flushed_response_has_written_the_session_first(setup):
    browser = Browser()
    browser.text(setup.a, "/shop/counter")
    cookie = f"SGSESSIONID={browser.session_id()}"
    with socket.create_connection(("127.0.0.1", setup.a.port), timeout=10) as sock:
        sock.sendall(f"GET /shop/slow?value=v1 HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n".encode())
        first = b""
        while b"started" not in first:
            chunk = sock.recv(4096)
            assert chunk, first
            first += chunk
        # The response is still open on A; B already sees what A's request set.
        assert browser.text(setup.b, "/shop/get?name=slow") == "slow=v1"


def test_an_attribute_that_cannot_be_read_is_dropped_and_the_request_goes_on(setup):
    browser = Browser()
    browser.text(setup.a, "/shop/counter")
    # A serialized object of a class the application no longer has (here: not even a stream).
    setup.grid().execute_command("SESSION.SET", browser.session_id(), "stale", "java", b"\xac\xed\x00\x05garbage")
    assert browser.text(setup.b, "/shop/get?name=stale") == "stale="
    assert browser.text(setup.a, "/shop/counter") == "counter=2"
    raw = setup.cluster.live()[0].client(protocol=3)  # the value is not text
    s = raw.execute_command("SESSION.GET", browser.session_id(), "NOTOUCH")
    assert b"stale" in s[b"attributes"], "left in the grid for applications that can read it"
    assert "could not be read and was dropped" in setup.b.log_text()


def grid_reads(setup) -> float:
    """SESSION.GET commands the grid's nodes have served, in total."""
    total = 0.0
    for node in setup.cluster.live():
        with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        total += sum(float(m.group(1)) for m in
                     re.finditer(r'^sessiongrid_commands_total\{[^}]*command="session.get"[^}]*\} (\S+)$', text, re.M))
    return total


def eventually(check, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_the_near_cache_serves_reads_and_every_request_sees_the_users_own_writes(setup):
    browser = Browser()
    for n in range(1, 13):
        assert browser.text(setup.tomcats[n % 2], "/cached/counter") == f"counter={n}"
    browser.text(setup.a, "/cached/cart/add?item=fig")
    assert browser.text(setup.b, "/cached/cart") == "cart=fig"
    # Each instance reads the session from the grid at most once more; the rest are cache hits.
    before = grid_reads(setup)
    for n in range(20):
        assert browser.text(setup.tomcats[n % 2], "/cached/cart") == "cart=fig"
    assert grid_reads(setup) - before <= 2
    # The browser carries the version its last write made; an instance whose copy is older
    # (its event not in yet) reads the grid instead of serving the copy.
    version = setup.grid().execute_command("SESSION.GET", browser.session_id(), "NOTOUCH")["version"]
    assert browser.cookies["SGSESSIONID_V"][0] == str(version)
    browser.cookies["SGSESSIONID_V"] = (str(version + 1), "localhost")
    before = grid_reads(setup)
    assert browser.text(setup.a, "/cached/cart") == "cart=fig"
    assert grid_reads(setup) - before == 1
    browser.cookies["SGSESSIONID_V"] = (str(version), "localhost")
    # A login and a logout on one instance are seen at once on the other.
    browser.text(setup.a, "/cached/login?user=uma")
    assert browser.text(setup.b, "/cached/whoami") == "user=uma"
    assert browser.text(setup.a, "/cached/counter") == "counter=13", "attributes moved with the new id"
    browser.text(setup.b, "/cached/logout")
    assert browser.text(setup.a, "/cached/whoami") == "user="


def test_the_near_cache_keeps_the_sessions_this_instance_writes(setup):
    """A write's event carries the session version it made: the instance that made it holds
    that version already and keeps its copy, so a user who reads and writes on one instance
    reads the grid no more."""
    browser = Browser()
    for n in range(1, 4):
        assert browser.text(setup.a, "/cached/counter") == f"counter={n}"
    before = grid_reads(setup)
    for n in range(4, 14):
        assert browser.text(setup.a, "/cached/counter") == f"counter={n}"
    # A write's own event may come before its reply: the copy being written over stays then too.
    assert grid_reads(setup) - before == 0
    # The other instance's copy is older than the writes: it reads them from the grid.
    assert browser.text(setup.b, "/cached/counter") == "counter=14"
    assert browser.text(setup.a, "/cached/counter") == "counter=15"


def test_the_near_cache_drops_what_changed_elsewhere(setup):
    browser = Browser()
    browser.text(setup.a, "/cached/login?user=vera")
    assert browser.text(setup.b, "/cached/whoami") == "user=vera"
    assert browser.text(setup.a, "/cached/whoami") == "user=vera"  # both instances hold a copy
    # Another language writes an attribute: the event drops the copies (they would otherwise
    # be good for a minute).
    grid = setup.grid()
    grid.execute_command("SESSION.SET", browser.session_id(), "greeting", "json", '"hi from python"')
    for t in setup.tomcats:
        assert eventually(lambda: browser.text(t, "/cached/get?name=greeting") == "greeting=hi from python")
    # A forced logout ends the session for both instances.
    assert grid.execute_command("SESSION.KICKUSER", "vera") == 1
    for t in setup.tomcats:
        assert eventually(lambda: browser.text(t, "/cached/whoami") == "user=")


def test_each_sessions_commands_go_to_the_node_that_holds_it(setup):
    """The filter reads each slot's primary from the grid (`CLUSTER SHARDS`) and sends a
    session's commands there, so no node forwards them (routes are read again every 10 s, so a
    batch sent while they were older may still be forwarded)."""
    setup.cluster.wait_doors_known()
    nodes = setup.cluster.nodes

    def forwarded() -> float:
        return sum(metric_sum(n, "sessiongrid_requests_forwarded_total") for n in nodes)

    batches = []

    def a_batch_goes_straight() -> bool:
        before = forwarded()
        for b in [Browser() for _ in range(20)]:
            for n in range(1, 4):
                assert b.text(setup.tomcats[n % 2], "/shop/counter") == f"counter={n}"
        batches.append(forwarded() - before)
        # About 130 session commands, two in three of which a node would forward unrouted. The
        # 20 creations go to any node, so about 13 of them are forwarded all the same.
        return batches[-1] < 25

    assert wait_until(a_batch_goes_straight, 30, interval=0.5), batches


def test_a_grid_node_killed_mid_run_loses_no_session_or_attribute(setup):
    browsers = [Browser() for _ in range(4)]
    apps = ["/shop", "/cached", "/shop", "/cached"]
    counts = [0] * len(browsers)
    errors: list[str] = []
    stop = threading.Event()

    def shop(i: int) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            status, body = browsers[i].get(setup.tomcats[n % 2], apps[i] + "/counter")
            if status != 200:
                errors.append(f"{status} {body[:200]}")
                continue
            counts[i] += 1
            if body != f"counter={counts[i]}":
                errors.append(f"browser {i}: {body}, expected counter={counts[i]}")
                return

    threads = [threading.Thread(target=shop, args=(i,), daemon=True) for i in range(len(browsers))]
    for t in threads:
        t.start()
    time.sleep(2)
    victim = setup.cluster.nodes[2]
    victim.sigkill()
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert all(c > 5 for c in counts), counts
    for i, b in enumerate(browsers):
        assert b.text(setup.a, apps[i] + "/counter") == f"counter={counts[i] + 1}"
    victim._spawn()
    setup.cluster.wait_settled(timeout=60)


def test_the_filter_speaks_tls_to_the_grid_with_a_client_certificate(pool, tmp_path):
    """grid=rediss://...: the filter reaches the grid's TLS port, checks the node's certificate
    against tlsCaFile and shows the application's certificate from a PKCS#12 key store."""
    from test_tls import Pki, openssl
    build_connector()
    ca = Pki(tmp_path, "servlet")
    cert, key = ca.issue("server")
    app_cert, app_key = ca.issue("shop", client=True)
    store, store_password = tmp_path / "shop.p12", tmp_path / "shop.p12.password"
    store_password.write_text("changeit\n")
    openssl("pkcs12", "-export", "-in", app_cert, "-inkey", app_key, "-out", store,
            "-passout", "pass:changeit")
    tls_port = free_port()
    node = pool.grid(extra_args=("--resp-tls-listen", f"127.0.0.1:{tls_port}",
                                 "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                                 "--tls-ca-file", str(ca.cert)))
    app = {"group": "shop", "loginPolicy": "allow", "maxSessionsPerUser": "0", "cookieDomain": "",
           "grid": f"rediss://127.0.0.1:{tls_port}", "tlsCaFile": str(ca.cert),
           "tlsKeyStore": str(store), "tlsKeyStorePasswordFile": str(store_password)}
    tomcat = TomcatProcess([tls_port], {"shop": app})
    pool.processes.append(tomcat)
    tomcat.start()
    browser = Browser()
    for i in range(1, 4):
        assert browser.text(tomcat, "/shop/counter") == f"counter={i}"
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/metrics", timeout=5).read()
    assert b'sessiongrid_tls_handshakes_total{result="ok"}' in metrics
    _, ids = node.client().execute_command("SESSION.LIST", "GROUP", "shop", "COUNT", "100")
    assert ids, "the session is in the grid"


def test_the_filter_logs_in_as_an_acl_user_kept_to_its_group(pool, tmp_path):
    """user=... with passwordFile: the filter authenticates as an ACL user; a filter whose user
    is limited to another group gets no session (its requests fail, nothing is written)."""
    build_connector()
    acl = tmp_path / "users.acl"
    acl.write_text("user default on nopass ~* &* +@all allgroups\n"
                   "user shop on >shop-pw +@all ~* group:shop\n"
                   "user bank on >bank-pw +@all ~* group:bank\n")
    node = pool.grid(extra_args=("--aclfile", str(acl)))
    passwords = {}
    for user in ("shop", "bank"):
        passwords[user] = tmp_path / f"{user}.password"
        passwords[user].write_text(f"{user}-pw\n")
    common = {"loginPolicy": "allow", "maxSessionsPerUser": "0", "cookieDomain": "",
              "grid": f"127.0.0.1:{node.resp_port}"}
    apps = {"shop": {**common, "group": "shop", "user": "shop", "passwordFile": str(passwords["shop"])},
            "bank": {**common, "group": "shop", "user": "bank", "passwordFile": str(passwords["bank"])}}
    tomcat = TomcatProcess([node.resp_port], apps)
    pool.processes.append(tomcat)
    tomcat.start()
    browser = Browser()
    for i in range(1, 3):
        assert browser.text(tomcat, "/shop/counter") == f"counter={i}"
    status, _ = Browser().get(tomcat, "/bank/counter")
    assert status >= 500, "the bank's user may not create shop sessions"
    _, ids = node.client().execute_command("SESSION.LIST", "GROUP", "shop", "COUNT", "100")
    assert len(ids) == 1, ids
