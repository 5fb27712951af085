"""Real Tomcat 10 instances (Debian's `tomcat10`) running the sample shop with the
Sessiongrid servlet filter, and a cookie-keeping HTTP client that plays the browser.

Each instance has its own CATALINA_BASE (conf, webapps, logs) and port, and runs
`catalina.sh run` in the foreground, so it can be killed with SIGKILL like any
other process of the suite.
"""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ManagedProcess, free_port, http_ok

ROOT = Path(__file__).resolve().parents[2]
CONNECTOR = ROOT / "connectors" / "servlet"
CATALINA_HOME = Path("/usr/share/tomcat10")
SAMPLE = CONNECTOR / "build" / "sample"

USERS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<tomcat-users xmlns="http://tomcat.apache.org/xml" version="1.0">
  <role rolename="user"/>
  <user username="gina" password="gina-pw" roles="user"/>
</tomcat-users>
"""

# Turns the sample into an application behind the container's BASIC authentication, whose
# sessions follow the container's user (the filter's default principalFrom).
SECURED = """  <security-constraint>
    <web-resource-collection><web-resource-name>all</web-resource-name><url-pattern>/*</url-pattern></web-resource-collection>
    <auth-constraint><role-name>user</role-name></auth-constraint>
  </security-constraint>
  <login-config><auth-method>BASIC</auth-method><realm-name>sample</realm-name></login-config>
  <security-role><role-name>user</role-name></security-role>
</web-app>"""

SERVER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="{port}" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="20000"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Realm className="org.apache.catalina.realm.MemoryRealm"/>
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
"""


_built = False


def build_connector() -> None:
    """Builds the connector jars and the sample application, once per test run."""
    global _built
    if not (CATALINA_HOME / "bin" / "catalina.sh").exists():
        pytest.fail("tomcat10 is not installed; run tests/setup.sh --tests", pytrace=False)
    if not _built:
        out = subprocess.run([str(CONNECTOR / "build.sh")], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"connectors/servlet/build.sh failed:\n{out.stdout}{out.stderr}"
        _built = True


class TomcatProcess(ManagedProcess):
    """One Tomcat 10 with web applications (context path -> init-param overrides)."""

    name = "tomcat"

    def __init__(self, grid_ports: list[int], apps: dict[str, dict[str, str]]):
        super().__init__()
        self.port = free_port()
        self.grid_ports = grid_ports
        base = self.workdir / "base"
        for d in ("conf", "logs", "temp", "work", "webapps"):
            (base / d).mkdir(parents=True, exist_ok=True)
        for f in ("web.xml", "logging.properties", "catalina.properties", "context.xml"):
            shutil.copy(Path("/etc/tomcat10") / f, base / "conf" / f)
        (base / "conf" / "server.xml").write_text(SERVER_XML.format(port=self.port))
        (base / "conf" / "tomcat-users.xml").write_text(USERS_XML)
        web_xml = (SAMPLE / "WEB-INF" / "web.xml").read_text()
        for context, overrides in apps.items():
            app_dir = base / "webapps" / context
            shutil.copytree(SAMPLE, app_dir)
            text = web_xml
            overrides = dict(overrides)
            if overrides.pop("containerAuth", None):
                text = text.replace(
                    "<init-param><param-name>principalFrom</param-name><param-value>attribute:user</param-value></init-param>", "")
                text = text.replace("</web-app>", SECURED)
            for name, value in overrides.items():
                # Replace the default of ${sessiongrid.NAME:default} with a fixed value.
                start = text.index("${sessiongrid." + name + ":")
                end = text.index("}", start)
                text = text[:start] + value + text[end + 1:]
            (app_dir / "WEB-INF" / "web.xml").write_text(text)
        self.base = base

    def command(self) -> list[str]:
        return [str(CATALINA_HOME / "bin" / "catalina.sh"), "run"]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        grid = ",".join(f"127.0.0.1:{p}" for p in self.grid_ports)
        env.update({
            "CATALINA_HOME": str(CATALINA_HOME),
            "CATALINA_BASE": str(self.base),
            "CATALINA_TMPDIR": str(self.base / "temp"),
            "JAVA_HOME": env.get("JAVA_HOME_17", "/usr/lib/jvm/java-17-openjdk-amd64"),
            "CATALINA_OPTS": f"-Dsessiongrid.grid={grid} -Xmx256m -XX:TieredStopAtLevel=1",
        })
        return env

    def is_ready(self) -> bool:
        return http_ok(self.port, "/shop/id")

    def start(self) -> "TomcatProcess":
        self._spawn()
        return self


class Browser:
    """Keeps cookies like a browser (by name, with their Domain), and talks to any Tomcat."""

    def __init__(self, host: str = "localhost"):
        self.host = host
        self.cookies: dict[str, tuple[str, str | None]] = {}

    def get(self, tomcat: TomcatProcess, path: str, host: str | None = None,
            auth: tuple[str, str] | None = None) -> tuple[int, str]:
        host = host or self.host
        conn = http.client.HTTPConnection("127.0.0.1", tomcat.port, timeout=30)
        headers = {"Host": host}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        sendable = [f"{k}={v}" for k, (v, domain) in self.cookies.items()
                    if domain is None or host == domain or host.endswith("." + domain)]
        if sendable:
            headers["Cookie"] = "; ".join(sendable)
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read().decode()
        for header in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            domain = None
            for attr in rest.split(";")[1:]:
                k, _, v = attr.strip().partition("=")
                if k.lower() == "domain":
                    domain = v.lstrip(".")
            if domain is None:
                domain = host  # a host-only cookie
            self.cookies[name] = (value, domain)
        conn.close()
        return resp.status, body.strip()

    def text(self, tomcat: TomcatProcess, path: str, host: str | None = None,
             auth: tuple[str, str] | None = None) -> str:
        status, body = self.get(tomcat, path, host, auth)
        assert status == 200, (path, status, body)
        return body

    def session_id(self) -> str | None:
        cookie = self.cookies.get("SGSESSIONID")
        return cookie[0] if cookie else None
