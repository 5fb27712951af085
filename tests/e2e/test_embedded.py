"""Embedded mode: the axum example (examples/axum-shop) run as two processes that
each embed a grid member, forming one grid from one --join. A client
alternating between them keeps its cart; after a kill -9 of one process the
other still serves the session; the restarted process rejoins.
"""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path

from conftest import SESSIONGRID_BIN, ManagedProcess, free_port, grid_only, wait_until
from tomcat import Browser

pytestmark = grid_only

SHOP_BIN = str(Path(SESSIONGRID_BIN).with_name("axum-shop"))


class ShopProcess(ManagedProcess):
    """One process of the example shop, embedding a grid member."""

    name = "axum-shop"

    def __init__(self, join: int | None = None):
        super().__init__()
        self.port = free_port()
        self.p2p_port = free_port()
        self.join = join

    def command(self) -> list[str]:
        cmd = [SHOP_BIN, "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.workdir / "data"),
               "--p2p-listen", f"127.0.0.1:{self.p2p_port}"]
        if self.join is not None:
            cmd += ["--join", f"127.0.0.1:{self.join}"]
        return cmd

    def environment(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGRID_")}

    def is_ready(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/health")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

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
