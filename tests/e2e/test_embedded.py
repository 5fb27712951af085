"""Embedded mode: the axum example (examples/axum-shop) run as two processes that
each embed a grid member, forming one grid from one --join. A client
alternating between them keeps its cart; after a kill -9 of one process the
other still serves the session; the restarted process rejoins. Also the shop as
a lite member, and over remote nodes' Redis doors (`--grid`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
import time
from pathlib import Path

from conftest import SESSIONGRID_BIN, ManagedProcess, free_port, grid_only, http_ok, metric_sum, wait_until
from gridcluster import Cluster
from tomcat import Browser

pytestmark = grid_only

SHOP_BIN = str(Path(SESSIONGRID_BIN).with_name("axum-shop"))


class ShopProcess(ManagedProcess):
    """One process of the example shop, embedding a grid member (a lite one with `lite`), or
    using the Redis doors `grid` (ports) of remote nodes."""

    name = "axum-shop"

    def __init__(self, join: int | None = None, lite: bool = False, secret_file: str | None = None,
                 grid: list[int] | None = None):
        super().__init__()
        self.port = free_port()
        self.p2p_port = free_port()
        self.join = join
        self.lite = lite
        self.secret_file = secret_file
        self.grid = grid

    def command(self) -> list[str]:
        if self.grid:
            doors = ",".join(f"127.0.0.1:{p}" for p in self.grid)
            return [SHOP_BIN, "--listen", f"127.0.0.1:{self.port}", "--grid", doors]
        cmd = [SHOP_BIN, "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.workdir / "data"),
               "--p2p-listen", f"127.0.0.1:{self.p2p_port}"]
        if self.join is not None:
            cmd += ["--join", f"127.0.0.1:{self.join}"]
        if self.lite:
            cmd += ["--lite"]
        if self.secret_file:
            cmd += ["--cluster-secret-file", self.secret_file]
        return cmd

    def environment(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGRID_")}

    def is_ready(self) -> bool:
        return http_ok(self.port, "/health")

    def start(self) -> "ShopProcess":
        self._spawn()
        return self


def eventually(browser: Browser, shop: ShopProcess, path: str, expected: str, timeout: float = 30) -> None:
    """The answer becomes `expected` within `timeout` (while the grid forms or fails over)."""
    seen: list[str] = []

    def check() -> bool:
        try:
            status, body = browser.get(shop, path)
        except OSError as e:
            seen.append(repr(e))
            return False
        seen.append(f"{status} {body}")
        return status == 200 and body == expected

    assert wait_until(check, timeout, interval=0.3), seen[-5:]


def test_two_app_processes_form_a_grid_and_keep_the_cart_through_a_kill(pool):
    a = ShopProcess()
    pool.processes.append(a)
    a.start()
    b = ShopProcess(join=a.p2p_port)
    pool.processes.append(b)
    b.start()
    browser = Browser()
    assert browser.text(a, "/cart/add?item=apple") == "cart=apple"
    # Once B has joined, it reads what A wrote.
    eventually(browser, b, "/cart", "cart=apple")
    for i, shop in enumerate([a, b] * 3):
        assert browser.text(shop, f"/cart/add?item=i{i}").startswith("cart=apple,")
    expected = "cart=apple," + ",".join(f"i{i}" for i in range(6))
    assert browser.text(a, "/cart") == expected
    time.sleep(1)  # both members hold every partition (two copies of each)

    a.sigkill()
    eventually(browser, b, "/cart", expected, timeout=15)
    assert browser.text(b, "/cart/add?item=after") == expected + ",after"

    a._spawn()
    eventually(browser, a, "/cart", expected + ",after", timeout=30)
    assert browser.text(a, "/login?user=zoe") == "logged in as zoe"
    assert browser.text(b, "/whoami") == "user=zoe"


def test_a_lite_member_app_routes_to_the_grid_and_owns_nothing(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    seed = cluster.nodes[0]
    app = ShopProcess(join=cluster.seed_port, lite=True,
                      secret_file=str(seed.workdir / "cluster-secret"))
    pool.processes.append(app)
    app.start()

    def view() -> dict:
        url = f"http://127.0.0.1:{seed.http_port}/api/v1/cluster"
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())

    assert wait_until(lambda: len(view()["members"]) == 4 and view()["moving_partitions"] == 0, 30), view()
    browser = Browser()
    eventually(browser, app, "/cart/add?item=pear", "cart=pear")
    assert browser.text(app, "/cart") == "cart=pear"
    members = view()["members"]
    owners = [m for m in members if m["copies"] > 0]
    assert len(owners) == 3, members
    lite = [m for m in members if m["copies"] == 0]
    assert len(lite) == 1 and lite[0]["primaries"] == 0 and lite[0]["sessions_primary"] == 0
    # Shown as what it is: a lite member, not one on its way out; the owners are plain members.
    assert lite[0]["lite"] and not lite[0]["leaving"], lite
    assert not any(m["lite"] or m["leaving"] for m in owners), owners
    status = subprocess.run([SESSIONGRID_BIN, "status", "--http", f"127.0.0.1:{seed.http_port}"],
                            capture_output=True, text=True, timeout=60)
    assert re.search(rf"^{lite[0]['id']} .* lite$", status.stdout, re.M), status.stdout
    assert wait_until(lambda: sum(m["sessions_primary"] or 0 for m in view()["members"]) >= 1, 10), \
        ("the session lives on the grid nodes", view())


def test_a_remote_store_sends_each_session_to_its_primary(pool):
    """Given one node's door, the tower-sessions store learns every slot's primary from it and
    sends each session's commands there, so no node forwards them."""
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    cluster.wait_doors_known()
    app = ShopProcess(grid=[cluster.nodes[0].resp_port])
    pool.processes.append(app)
    app.start()

    def forwarded() -> float:
        return sum(metric_sum(n, "sessiongrid_requests_forwarded_total") for n in cluster.nodes)

    before = forwarded()
    browsers = [Browser() for _ in range(30)]
    for b in browsers:
        for n in range(1, 4):
            assert b.text(app, "/counter") == f"counter={n}"
    # About 180 session commands; sent through node 0 alone, two in three would be forwarded.
    # (A failover on a slow machine may move a few; the first reads the routes.)
    assert forwarded() - before < 15
    # ... though the sessions live on every node, not on node 0 alone.
    assert wait_until(lambda: all(metric_sum(n, "sessiongrid_sessions_live", 'copy="primary"') > 0
                                  for n in cluster.nodes), 10)
