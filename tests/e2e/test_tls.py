"""TLS on the doors: ``--resp-tls-listen`` (Redis' ``tls-port``), ``--http-tls``,
``--tls-cert-file``/``--tls-key-file`` and ``--tls-ca-file``, with CAs and
certificates made by the test with openssl.

What is proven here: redis-cli ``--tls`` and redis-py ``ssl=True`` are served on
the TLS port and check the node's certificate against the test CA (a client
trusting another CA refuses the node); the plain port keeps serving next to it;
a plain-text client on the TLS port gets no reply; with ``--tls-ca-file`` a
client without a certificate, or with one of another CA, is refused in the
handshake and one with a certificate of the CA is served; the HTTP door serves
HTTPS only; SIGHUP makes new connections get the new certificate while an open
connection keeps working, and a broken file at SIGHUP leaves the node serving
with the certificate it had; unusable files stop the node at start with the
file named; protected mode counts a client CA as a credential.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from conftest import (REDIS_CLI, SESSIONGRID_BIN, ProcessPool, free_port, grid_only,
                      make_client, wait_until)

pytestmark = grid_only


def openssl(*args) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


class Pki:
    """A CA and the certificates it issues, as PEM files in ``directory``."""

    def __init__(self, directory: Path, name: str):
        self.directory, self.name = directory, name
        self.key, self.cert = directory / f"{name}-ca.key", directory / f"{name}-ca.pem"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
                "-subj", f"/CN={name} test CA")

    def issue(self, who: str, client: bool = False) -> tuple[Path, Path]:
        """(certificate, key) for ``who``: a server certificate for 127.0.0.1 and
        localhost, or a client certificate."""
        key = self.directory / f"{self.name}-{who}.key"
        csr = self.directory / f"{self.name}-{who}.csr"
        cert = self.directory / f"{self.name}-{who}.pem"
        ext = self.directory / f"{self.name}-{who}.ext"
        usage = "clientAuth" if client else "serverAuth"
        ext.write_text("basicConstraints=CA:FALSE\n"
                       "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                       f"extendedKeyUsage={usage}\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={who}")
        openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                "-set_serial", str(int(time.time() * 1e6)), "-out", cert, "-days", "2",
                "-extfile", ext)
        return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Pki]:
    directory = tmp_path_factory.mktemp("pki")
    return {"main": Pki(directory, "main"), "other": Pki(directory, "other")}


def tls_node(pool: ProcessPool, pki: Pki, *extra: str, cert=None):
    """A node with a TLS Redis port (``node.tls_port``) next to its plain one."""
    cert, key = cert or pki.issue("server")
    tls_port = free_port()
    node = pool.grid(extra_args=("--resp-tls-listen", f"127.0.0.1:{tls_port}",
                                 "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                                 *extra))
    node.tls_port = tls_port
    return node


def tls_client(port: int, ca: Path, cert: tuple[Path, Path] | None = None, **kw) -> redis.Redis:
    options = dict(ssl=True, ssl_ca_certs=str(ca), ssl_check_hostname=True, host="127.0.0.1")
    if cert:
        options.update(ssl_certfile=str(cert[0]), ssl_keyfile=str(cert[1]))
    options.update(kw)
    return make_client(port, **options)


def redis_cli(port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([REDIS_CLI, "-p", str(port), *args], capture_output=True, text=True,
                          timeout=30)


def test_redis_cli_and_redis_py_over_tls(pool, pki):
    main = pki["main"]
    node = tls_node(pool, main)
    cli = redis_cli(node.tls_port, "--tls", "--cacert", str(main.cert), "SET", "tls:k", "v")
    assert cli.stdout.strip() == "OK", cli
    client = tls_client(node.tls_port, main.cert)
    assert client.get("tls:k") == b"v"
    client.hset("tls:h", mapping={"a": "1", "b": "2"})
    assert tls_client(node.tls_port, main.cert, protocol=3).hgetall("tls:h") == {b"a": b"1", b"b": b"2"}
    # A large reply crosses many TLS records.
    big = b"x" * 3_000_000
    client.set("tls:big", big)
    assert client.get("tls:big") == big
    # The plain port serves the same data.
    assert node.client().get("tls:k") == b"v"
    # A client that trusts another CA refuses the node's certificate.
    with pytest.raises(redis.exceptions.ConnectionError):
        tls_client(node.tls_port, pki["other"].cert).ping()
    refused = redis_cli(node.tls_port, "--tls", "--cacert", str(pki["other"].cert), "PING")
    assert "PONG" not in refused.stdout, refused
    # Plain text on the TLS port is not served.
    with socket.create_connection(("127.0.0.1", node.tls_port), timeout=5) as raw:
        raw.sendall(b"PING\r\n")
        try:
            answer = raw.recv(100)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert b"PONG" not in answer, answer


def test_client_certificates_are_required_with_a_client_ca(pool, pki):
    main, other = pki["main"], pki["other"]
    node = tls_node(pool, main, "--tls-ca-file", str(main.cert))
    client_cert = main.issue("app", client=True)
    served = tls_client(node.tls_port, main.cert, cert=client_cert)
    assert served.set("who", "app") and served.get("who") == b"app"
    cli = redis_cli(node.tls_port, "--tls", "--cacert", str(main.cert),
                    "--cert", str(client_cert[0]), "--key", str(client_cert[1]), "GET", "who")
    assert cli.stdout.strip() == "app", cli
    for cert in (None, other.issue("stranger", client=True)):
        with pytest.raises(redis.exceptions.ConnectionError):
            tls_client(node.tls_port, main.cert, cert=cert).ping()
    bare = redis_cli(node.tls_port, "--tls", "--cacert", str(main.cert), "PING")
    assert "PONG" not in bare.stdout, bare


def test_the_http_door_serves_https_only(pool, pki):
    main = pki["main"]
    cert, key = main.issue("server")
    node = pool.grid(extra_args=("--http-tls", "--tls-cert-file", str(cert),
                                 "--tls-key-file", str(key)))
    context = ssl.create_default_context(cafile=str(main.cert))
    url = f"https://127.0.0.1:{node.http_port}"
    with urllib.request.urlopen(f"{url}/health", timeout=5, context=context) as response:
        assert response.status == 200 and response.read() == b"ok\n"
    with urllib.request.urlopen(f"{url}/api/v1/stats", timeout=5, context=context) as response:
        assert response.status == 200
    # The operator commands speak HTTPS when given the CA, and refuse a node it did not sign.
    status = subprocess.run([SESSIONGRID_BIN, "status", "--http", f"127.0.0.1:{node.http_port}",
                             "--https-ca-file", str(main.cert), "--json"],
                            capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and '"members"' in status.stdout, status
    stranger = subprocess.run([SESSIONGRID_BIN, "status", "--http", f"127.0.0.1:{node.http_port}",
                               "--https-ca-file", str(pki["other"].cert)],
                              capture_output=True, text=True, timeout=30)
    assert stranger.returncode != 0 and "TLS" in stranger.stderr, stranger
    # Plain HTTP gets a TLS alert back, not a page.
    with pytest.raises((urllib.error.URLError, OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/health", timeout=5).read()


def test_sighup_reloads_the_certificate_for_new_connections(pool, pki, tmp_path):
    main, other = pki["main"], pki["other"]
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    first = main.issue("server")
    cert.write_bytes(first[0].read_bytes())
    key.write_bytes(first[1].read_bytes())
    node = tls_node(pool, main, cert=(cert, key))
    kept = tls_client(node.tls_port, main.cert)
    assert kept.set("before", "1")

    second = other.issue("server")
    cert.write_bytes(second[0].read_bytes())
    key.write_bytes(second[1].read_bytes())
    node.proc.send_signal(1)  # SIGHUP

    def new_certificate_served() -> bool:
        try:
            return tls_client(node.tls_port, other.cert).ping()
        except redis.exceptions.ConnectionError:
            return False
    assert wait_until(new_certificate_served, timeout=10), node.log_text()
    with pytest.raises(redis.exceptions.ConnectionError):
        tls_client(node.tls_port, main.cert).ping()
    assert kept.get("before") == b"1", "an open connection keeps its session"

    # A broken file: the reload fails, says so, and the node keeps the certificate it had.
    cert.write_text("not a certificate\n")
    node.proc.send_signal(1)
    assert wait_until(lambda: "TLS reload failed" in node.log_text(), timeout=10), node.log_text()
    assert tls_client(node.tls_port, other.cert).ping()


def run_node(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs a node for at most 5 s: returncode None means it was still serving."""
    command = [SESSIONGRID_BIN, "node", "--data-dir", str(tmp_path / "data"),
               "--http-listen", f"127.0.0.1:{free_port()}", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired as started:
        return subprocess.CompletedProcess(command, None, started.stdout, started.stderr)


def test_unusable_tls_files_stop_the_node_with_the_file_named(pki, tmp_path):
    cert, key = pki["main"].issue("server")
    tls = ("--resp-listen", f"127.0.0.1:{free_port()}",
           "--resp-tls-listen", f"127.0.0.1:{free_port()}")
    missing = run_node(tmp_path, *tls, "--tls-cert-file", str(tmp_path / "nope.pem"),
                       "--tls-key-file", str(key))
    assert missing.returncode not in (0, None) and "nope.pem" in missing.stderr, missing
    mismatched = run_node(tmp_path, *tls, "--tls-cert-file", str(cert),
                          "--tls-key-file", str(pki["other"].key))
    assert mismatched.returncode not in (0, None) and "usable pair" in mismatched.stderr, mismatched
    no_key = run_node(tmp_path, *tls, "--tls-cert-file", str(cert))
    assert no_key.returncode not in (0, None) and "tls_key_file" in no_key.stderr, no_key


def test_protected_mode_counts_a_client_ca_as_a_credential(pki, tmp_path):
    main = pki["main"]
    cert, key = main.issue("server")
    exposed = ("--resp-listen", "", "--resp-tls-listen", f"0.0.0.0:{free_port()}",
               "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    refused = run_node(tmp_path, *exposed)
    assert refused.returncode not in (0, None), refused
    assert "protected mode" in refused.stderr and "--tls-ca-file" in refused.stderr
    assert run_node(tmp_path, *exposed, "--tls-ca-file", str(main.cert)).returncode is None
