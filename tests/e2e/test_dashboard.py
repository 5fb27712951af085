"""The web dashboard, driven in headless Chromium over the DevTools protocol,
against a real 3-node cluster: the page loads with no console error, shows the
three members and the partition map, its charts move under load, and a user
search followed by "log out everywhere" ends that user's sessions. A screenshot
is saved to tests/artifacts/dashboard.png.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, grid_only, wait_until
from gridcluster import Cluster

pytestmark = grid_only

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


class Browser:
    """A headless Chromium and one page, spoken to over the DevTools protocol."""

    def __init__(self):
        import websocket  # websocket-client, installed by tests/setup.sh --tests

        self.profile = tempfile.mkdtemp(prefix="sessiongrid-chromium-")
        port = free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", f"--remote-debugging-port={port}",
             f"--user-data-dir={self.profile}", "--window-size=1400,1000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        targets = None

        def page_targets():
            nonlocal targets
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    targets = [t for t in json.loads(r.read()) if t["type"] == "page"]
                return bool(targets)
            except OSError:
                return False

        assert wait_until(page_targets, 30), "chromium did not open its DevTools port"
        self.ws = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=30)
        self.ids = itertools.count(1)
        self.problems: list[str] = []
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params):
        my_id = next(self.ids)
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == my_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.note(message)

    def note(self, message: dict) -> None:
        """Keeps every console error, uncaught exception and failed load the page reports."""
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.problems.append(json.dumps(params["exceptionDetails"])[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.problems.append(json.dumps(params.get("args"))[:500])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.problems.append(f"{entry.get('text', '')[:400]} {entry.get('url', '')}")

    def eval(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> bool:
        return wait_until(lambda: bool(self.eval(expression)), timeout, interval=0.2)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.kill()
            self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed; run tests/setup.sh --tests")
    b = Browser()
    try:
        yield b
    finally:
        b.close()


def test_the_dashboard_shows_the_cluster_moves_under_load_and_logs_a_user_out(pool, browser):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    nodes = cluster.nodes
    clients = [n.client(protocol=3, decode_responses=True) for n in nodes]
    alice = [clients[i % 3].execute_command("SESSION.CREATE", "web") for i in range(3)]
    for sid in alice:
        clients[0].execute_command("SESSION.LOGIN", sid, "alice")
    bob = clients[1].execute_command("SESSION.CREATE", "web")
    clients[1].execute_command("SESSION.LOGIN", bob, "bob")

    browser.call("Page.navigate", url=f"http://127.0.0.1:{nodes[0].http_port}/")
    assert browser.wait_for("document.querySelectorAll('#members tr').length === 3"), \
        browser.eval("document.body.innerText")
    assert browser.eval("document.querySelectorAll('#map div').length") == 256
    assert browser.eval("document.getElementById('node').textContent").strip() != "-"
    assert browser.wait_for("document.querySelectorAll('#top-users tr').length === 2")
    assert browser.eval("document.querySelector('#top-users tr td').textContent") == "alice"

    stop = threading.Event()

    def load() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            clients[i % 3].execute_command("SESSION.CREATE", "load")

    writer = threading.Thread(target=load, daemon=True)
    writer.start()
    try:
        assert browser.wait_for("Math.max(...sessionChart.series[0].points) > 0", 20), \
            "the created-sessions chart moved"
        assert browser.wait_for("Math.max(...requestChart.series[0].points) > 0", 10)
    finally:
        stop.set()
        writer.join(timeout=10)

    browser.eval("document.getElementById('user').value = 'alice'")
    browser.eval("document.querySelector('#search button[type=submit]').click()")
    assert browser.wait_for("document.querySelectorAll('#user-sessions tr').length === 3")
    listed = browser.eval("[...document.querySelectorAll('#user-sessions tr td:first-child')].map(td => td.textContent)")
    assert sorted(listed) == sorted(alice)
    browser.eval("window.confirm = () => true")
    browser.eval("document.getElementById('kick').click()")
    assert browser.wait_for("document.getElementById('user-result').textContent.includes('ended 3')")
    assert clients[2].execute_command("SESSION.BYUSER", "alice") == []
    assert all(clients[1].execute_command("SESSION.GET", sid) is None for sid in alice)
    assert len(clients[1].execute_command("SESSION.BYUSER", "bob")) == 1

    time.sleep(2)  # one more refresh, so the screenshot shows live figures
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = browser.call("Page.captureScreenshot", format="png")["data"]
    import base64
    (ARTIFACTS / "dashboard.png").write_bytes(base64.b64decode(shot))
    browser.eval("1")  # collect events that arrived meanwhile
    assert browser.problems == [], browser.problems

    # Two of three nodes die at once: the partitions only they held wait for them, the page
    # lists them as lost, and "Forget" gives them up.
    for node in nodes[1:]:
        node.sigkill()
    assert browser.wait_for("document.querySelectorAll('#members tr[data-lost]').length >= 1", 30), \
        browser.eval("document.getElementById('members').innerText")
    assert browser.eval("document.querySelector('#members tr[data-lost] .badge').textContent") == "lost"
    for _ in range(3):  # one click per lost node, each once the page shows it gone
        lost = browser.eval("document.querySelector('#members tr[data-lost]')?.dataset.lost ?? ''")
        if not lost:
            break
        browser.eval(f"document.querySelector('#members tr[data-lost=\"{lost}\"] button').click()")
        assert browser.wait_for(f"!document.querySelector('#members tr[data-lost=\"{lost}\"]')", 30)
    assert browser.wait_for("document.querySelectorAll('#members tr[data-lost]').length === 0"
                            " && document.querySelectorAll('#members tr').length === 1", 30), \
        browser.eval("document.getElementById('members').innerText")
    with urllib.request.urlopen(f"http://127.0.0.1:{nodes[0].http_port}/api/v1/cluster", timeout=5) as r:
        assert json.loads(r.read())["unowned_partitions"] == 0
