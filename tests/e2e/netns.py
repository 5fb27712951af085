"""Several hosts on one machine: a bridge and one network namespace per node.

Used by the split test (``test_split.py``) and the chaos run (``tests/chaos/``). Needs
CAP_NET_ADMIN and iproute2; the packet filters (``drop``, ``loss``) need ``nft``.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess

IP = shutil.which("ip") or "/usr/sbin/ip"
NFT = shutil.which("nft") or "/usr/sbin/nft"
TC = shutil.which("tc") or "/usr/sbin/tc"

# The nftables table each namespace's filters live in.
TABLE = "sgfaults"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


class Net:
    """A bridge in this namespace and one namespace per node, each linked to the bridge."""

    def __init__(self, size: int):
        tag = f"{os.getpid() % 1000}{random.randrange(100, 999)}"
        self.subnet = f"10.{random.randrange(64, 250)}.{random.randrange(1, 250)}"
        self.bridge = f"sgbr{tag}"
        self.namespaces = [f"sg{tag}n{i}" for i in range(size)]
        self.links = [f"sg{tag}h{i}" for i in range(size)]
        try:
            self._build()
        except subprocess.CalledProcessError:
            self.close()
            raise

    def _build(self) -> None:
        sh(IP, "link", "add", self.bridge, "type", "bridge")
        sh(IP, "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        sh(IP, "link", "set", self.bridge, "up")
        for i, (ns, host) in enumerate(zip(self.namespaces, self.links)):
            sh(IP, "netns", "add", ns)
            sh(IP, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh(IP, "link", "set", host, "master", self.bridge)
            sh(IP, "link", "set", host, "up")
            sh(IP, "-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            sh(IP, "-n", ns, "link", "set", "eth0", "up")
            sh(IP, "-n", ns, "link", "set", "lo", "up")

    def address(self, i: int) -> str:
        return f"{self.subnet}.{10 + i}"

    def cut(self, i: int) -> None:
        """Node ``i`` loses its link: nobody reaches it, clients included."""
        sh(IP, "link", "set", self.links[i], "down")

    def heal(self, i: int) -> None:
        sh(IP, "link", "set", self.links[i], "up")

    def _nft(self, i: int, *rule: str) -> None:
        sh(IP, "netns", "exec", self.namespaces[i], NFT, *rule)

    def _filters(self, i: int) -> None:
        self._nft(i, "add", "table", "inet", TABLE)
        self._nft(i, "add", "chain", "inet", TABLE, "input",
                  "{ type filter hook input priority 0; policy accept; }")

    def drop(self, frm: int, to: int) -> None:
        """Node ``to`` stops receiving what node ``frm`` sends (one direction only)."""
        self._filters(to)
        self._nft(to, "add", "rule", "inet", TABLE, "input", "ip", "saddr", self.address(frm),
                  "drop")

    def loss(self, i: int, percent: int) -> None:
        """Node ``i`` loses ``percent``% of the packets it receives, from peers and clients."""
        self._filters(i)
        self._nft(i, "add", "rule", "inet", TABLE, "input", "numgen", "random", "mod", "100",
                  "<", str(percent), "drop")

    def slow(self, i: int, kbit: int, latency_ms: int) -> None:
        """Node ``i``'s link, both ways, carries ``kbit`` kbit/s: what exceeds it waits in a queue
        of up to ``latency_ms`` (delayed) and is dropped past that. (A token bucket: the kernels
        these tests run on may lack netem.)"""
        shape = ("root", "tbf", "rate", f"{kbit}kbit", "burst", "16kb",
                 "latency", f"{latency_ms}ms")
        sh(TC, "qdisc", "replace", "dev", self.links[i], *shape)
        sh(IP, "netns", "exec", self.namespaces[i], TC, "qdisc", "replace", "dev", "eth0", *shape)

    def unslow(self, i: int) -> None:
        sh(TC, "qdisc", "del", "dev", self.links[i], "root", check=False)
        sh(IP, "netns", "exec", self.namespaces[i], TC, "qdisc", "del", "dev", "eth0", "root",
           check=False)

    def clear(self, i: int) -> None:
        """Removes node ``i``'s filters."""
        sh(IP, "netns", "exec", self.namespaces[i], NFT, "delete", "table", "inet", TABLE,
           check=False)

    def close(self) -> None:
        for ns in self.namespaces:
            sh(IP, "netns", "del", ns, check=False)
        for host in self.links:
            sh(IP, "link", "del", host, check=False)
        sh(IP, "link", "del", self.bridge, check=False)


def available() -> str | None:
    """Why namespaces cannot be built here, or None if they can."""
    probe = f"sgprobe{os.getpid()}"
    if not os.access(IP, os.X_OK) or sh(IP, "netns", "add", probe, check=False).returncode != 0:
        return "network namespaces cannot be created here (needs iproute2 and CAP_NET_ADMIN)"
    sh(IP, "netns", "del", probe, check=False)
    return None
