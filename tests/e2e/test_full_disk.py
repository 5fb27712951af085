"""A full disk: writes are refused with a clear error, reads are still served, nothing
acknowledged is lost, writes are taken again once space is freed, and the data directory opens
after a kill -9.

The node's data directory is on a small tmpfs that a ballast file fills up. Mounting needs
CAP_SYS_ADMIN; the test is skipped where the mount is not allowed.
"""

import subprocess
import urllib.request
from pathlib import Path

import pytest
import redis

from conftest import TARGET, GridProcess, wait_until

pytestmark = pytest.mark.skipif(TARGET == "redis", reason="grid-only disk behaviour")

# RocksDB takes writes again only once the free space reaches its reserve (the memtables' size,
# 4 x 16 MiB) and the DB's own files, a preallocated log among them, take tens of MiB: freeing
# the ballast of a 96 MiB disk could leave less than the reserve free.
DISK = "256m"
VALUE_BYTES = 64 * 1024


def mount_small_disk(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")


def fill(ballast: Path) -> None:
    """Writes `ballast` until the filesystem has no room left."""
    chunk = b"\0" * (1 << 20)
    with open(ballast, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError:
                break
        for size in (1 << 16, 1 << 12, 1):
            while True:
                try:
                    f.write(chunk[:size])
                except OSError:
                    break


def refusing(node: GridProcess) -> float:
    url = f"http://127.0.0.1:{node.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("sessiongrid_store_refusing_writes "):
                return float(line.split()[1])
    raise AssertionError("no sessiongrid_store_refusing_writes metric")


def rocksdb_errors(data_dir: Path) -> str:
    """The lines of RocksDB's own log about errors and recovery, for a failure's message."""
    try:
        lines = (data_dir / "LOG").read_text(errors="replace").splitlines()
    except OSError as e:
        return f"(no LOG: {e})"
    words = ("error", "Error", "recover", "Recover", "Resum", "space")
    return "\n".join(line for line in lines if any(w in line for w in words))[-6000:]


def value_of(i: int) -> bytes:
    return (b"%08d" % i) * (VALUE_BYTES // 8)


def test_a_full_disk_refuses_writes_serves_reads_and_recovers(pool):
    node = GridProcess()
    pool.processes.append(node)
    disk = node.workdir / "disk"
    mount_small_disk(disk)
    try:
        node.data_dir = disk / "data"
        node.data_dir.mkdir()
        node.start()
        c = node.client()
        c.set("before", "x")
        c.hset("profile", mapping={"name": "ada", "visits": 1})
        ballast = disk / "ballast"
        fill(ballast)

        # Write until the disk refuses: the writes that met the full disk first may be
        # indeterminate; once the node knows, every write is refused up front, with MISCONF.
        acked: dict[bytes, bytes] = {}
        errors: list[str] = []
        for i in range(2000):
            key = b"k%d" % i
            try:
                c.set(key, value_of(i))
                acked[key] = value_of(i)
            except redis.ResponseError as e:
                errors.append(str(e))
                if len(errors) >= 20:
                    break
        assert errors, "the disk never filled up"
        assert all(e.startswith(("MISCONF", "INDETERMINATE")) for e in errors), errors
        refused = [e for e in errors if e.startswith("MISCONF")]
        assert len(refused) >= len(errors) - 2, errors
        assert "refuses writes" in refused[0] and "No space left" in refused[0], refused[0]
        assert refusing(node) == 1

        # Reads are served meanwhile, and the other kinds of write are refused alike.
        assert c.get("before") == b"x"
        assert c.hgetall("profile") == {b"name": b"ada", b"visits": b"1"}
        for key in list(acked)[-5:]:
            assert c.get(key) == acked[key]
        for write in (lambda: c.hincrby("profile", "visits", 1), lambda: c.delete("before")):
            with pytest.raises(redis.ResponseError, match="^MISCONF"):
                write()
        assert c.hget("profile", "visits") == b"1" and c.get("before") == b"x"

        # Space freed: writes are taken again, within RocksDB's recovery and the node's probe.
        ballast.unlink()

        def writes_again() -> bool:
            try:
                return c.set("after", "y") is True
            except redis.ResponseError:
                return False

        assert wait_until(writes_again, timeout=60, interval=0.5), \
            "writes never came back; RocksDB's log says:\n" + rocksdb_errors(node.data_dir)
        assert refusing(node) == 0
        c.hincrby("profile", "visits", 1)

        # Nothing acknowledged is lost, and the directory opens after a kill -9.
        node.sigkill()
        node.restart()
        c = node.client()
        assert c.get("before") == b"x" and c.get("after") == b"y"
        assert c.hgetall("profile") == {b"name": b"ada", b"visits": b"2"}
        lost = [k for k, v in acked.items() if c.get(k) != v]
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost: {lost[:5]}"
    finally:
        node.stop()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
