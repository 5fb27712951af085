"""Durability and memory: what a node promises about acknowledged writes, expiry and RSS.

- kill -9 in the middle of a write load loses no acknowledged write;
- an expired key never comes back after a restart;
- with more entry bytes than memory_max_bytes, RSS stays bounded and every key is readable.
"""

import random
import threading
import time

import pytest
import redis

from conftest import TARGET, metric_sum

pytestmark = pytest.mark.skipif(TARGET == "redis", reason="grid-only durability properties")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("durability", ["process", "power"])
def test_kill_9_during_writes_loses_no_acknowledged_write(pool, durability):
    """Writers record each write only after its reply; after SIGKILL and restart every recorded
    write is there, and every acknowledged INCR is counted. In both durability modes (`power`
    also fsyncs, with group commit)."""
    node = pool.grid(config={"durability": durability})
    acked: dict[bytes, bytes] = {}
    incr_acked = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        c = node.client()
        i = 0
        while not stop.is_set():
            key, value = f"w{w}:{i}".encode(), f"value-{w}-{i}".encode() * 4
            try:
                c.set(key, value)
                c.hset(f"h{w}", f"f{i}", i)
                c.incr("counter")
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                return
            with lock:
                acked[key] = value
                incr_acked[0] += 1
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            if len(acked) >= 2000:
                break
        time.sleep(0.05)
    node.sigkill()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acked) >= 100, f"the load barely ran: {len(acked)} writes"

    node.restart()
    c = node.client()
    keys = list(acked)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        got = c.mget(chunk)
        missing = [k for k, v in zip(chunk, got) if v != acked[k]]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    assert int(c.get("counter")) >= incr_acked[0]


def test_expired_keys_never_come_back_after_restart(pool):
    """Keys whose TTL passed before a kill -9 stay gone after restart, even if the sweeper never
    ran (its interval is set to an hour)."""
    node = pool.grid(config={"expiry_sweep_interval_ms": 3_600_000})
    c = node.client()
    for i in range(200):
        c.set(f"short:{i}", "x", px=300)
        c.set(f"long:{i}", "y")
    c.set("renewed", "z", px=300)
    c.persist("renewed")
    time.sleep(0.6)
    node.sigkill()
    node.restart()
    c = node.client()
    assert all(v is None for v in c.mget([f"short:{i}" for i in range(200)]))
    assert c.exists(*[f"short:{i}" for i in range(200)]) == 0
    assert sorted(c.keys("short:*")) == []
    assert len(c.keys("long:*")) == 200
    assert c.get("renewed") == b"z"
    assert c.ttl("renewed") == -1


def test_sweeper_deletes_expired_keys_without_reads(pool):
    """The active sweeper removes expired keys nobody reads: DBSIZE drops to the live keys."""
    node = pool.grid(config={"expiry_sweep_interval_ms": 50})
    c = node.client()
    pipe = c.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"ttl:{i}", "x", px=200)
    pipe.set("keeper", "1")
    pipe.execute()
    deadline = time.time() + 20
    while time.time() < deadline and c.dbsize() != 1:
        time.sleep(0.1)
    assert c.dbsize() == 1
    assert metric_sum(node, "sessiongrid_expired_keys_total") >= 3000


def test_a_sweeper_turned_back_on_sweeps_partitions_that_got_no_message_since(pool):
    """DEBUG SET-ACTIVE-EXPIRE 0 stops the sweep; turned back on, it reaches partitions that
    nothing wrote to or read from meanwhile (an idle partition still looks once a second)."""
    node = pool.grid()
    c = node.client()
    assert c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    c.set("brief", "x", px=100)
    time.sleep(1.5)
    assert c.dbsize() == 1, "not swept while the sweep is off"
    assert c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    deadline = time.time() + 10
    while time.time() < deadline and c.dbsize() != 0:
        time.sleep(0.1)
    assert c.dbsize() == 0


def test_memory_budget_bounds_rss_and_keeps_every_key(pool):
    """256 MiB of values into a node with a 16 MiB entry budget: RSS stays far below the data
    size, the in-memory entry bytes stay within budget, and every key reads back intact."""
    budget = 16 * 1024 * 1024
    node = pool.grid(config={"memory_max_bytes": budget})
    c = node.client()
    value = lambda i: (f"{i:08d}" * 128).encode()  # 1 KiB, distinct per key
    n = 256 * 1024
    peak = 0
    for start in range(0, n, 2048):
        pipe = c.pipeline(transaction=False)
        for i in range(start, start + 2048):
            pipe.set(f"big:{i}", value(i))
        pipe.execute()
        peak = max(peak, rss_bytes(node.pid))
    assert metric_sum(node, "sessiongrid_memory_entries_bytes") <= budget
    for start in range(0, n, 4096):
        keys = [f"big:{i}" for i in range(start, start + 4096)]
        got = c.mget(keys)
        for i, v in zip(range(start, start + 4096), got):
            assert v == value(i), f"big:{i} differs"
        peak = max(peak, rss_bytes(node.pid))
    # Reads move entries through the cache; the reported bytes must still be within budget.
    assert metric_sum(node, "sessiongrid_memory_entries_bytes") <= budget
    # RocksDB's own memory, refreshed every 2 s: a 32 MiB block cache, and memtables of up to
    # 2 x 16 MiB per column family.
    time.sleep(2.5)
    rocks = {part: int(metric_sum(node, "sessiongrid_store_memory_bytes", f'part="{part}"'))
             for part in ("memtables", "block_cache", "table_readers")}
    mib = {part: round(v / 2**20, 1) for part, v in rocks.items()}
    assert 0 < rocks["block_cache"] <= 32 << 20, mib
    assert 0 < rocks["memtables"] <= 4 * 2 * 16 << 20, mib
    data = n * 1024
    assert peak < 160 * 1024 * 1024, \
        f"peak RSS {peak >> 20} MiB for {data >> 20} MiB of data; RocksDB's (MiB): {mib}"


def test_keys_evicted_while_hashes_grow_in_place_still_read_back(pool):
    """A fresh node (its tiers hold every key, so a key they lack is taken for absent until
    one is evicted) with a 1 MiB budget: a few strings, then hashes grown one field at a time,
    in place, past the budget. The tiers evict strings and hashes for that growth, and every
    string still reads back, and every hash has all its fields (a hash taken for absent would
    start again from its next field)."""
    node = pool.grid(config={"memory_max_bytes": 1 << 20})
    c = node.client()
    value = lambda i: (f"{i:06d}" * 170).encode()  # about 1 KiB
    pipe = c.pipeline(transaction=False)
    for i in range(100):
        pipe.set(f"s:{i}", value(i))
    for i in range(200):
        pipe.hset(f"h:{i}", "f0", "x")
    pipe.execute()
    evicted_before = metric_sum(node, "sessiongrid_memory_evictions_total")
    for round in range(1, 16):
        pipe = c.pipeline(transaction=False)
        for i in range(200):
            pipe.hset(f"h:{i}", f"f{round}", b"y" * 400)
        pipe.execute()
    assert metric_sum(node, "sessiongrid_memory_evictions_total") > evicted_before
    got = c.mget([f"s:{i}" for i in range(100)])
    missing = [i for i, v in enumerate(got) if v != value(i)]
    assert not missing, f"{len(missing)} strings read back wrong, e.g. s:{missing[:5]}"
    for i in range(200):
        assert c.hlen(f"h:{i}") == 16
        assert sorted(c.hgetall(f"h:{i}")) == sorted(f"f{r}".encode() for r in range(16))


@pytest.mark.parametrize("budget", [1 << 20, 512 << 20])
def test_a_hash_is_written_field_by_field_and_survives_kill_9_whole(pool, budget):
    """A hash of 4000 fields (1.2 MB), written, incremented and deleted one field at a time, on
    a node whose memory budget holds it (512 MiB; patched in place) or does not (1 MiB: an
    entry may cost a quarter of it at most, so every operation reads its fields from disk). HLEN, HGETALL and HSTRLEN agree with a model before and after a
    kill -9; deleting the last field deletes the key."""
    node = pool.grid(config={"memory_max_bytes": budget})
    c = node.client()
    model: dict[bytes, bytes] = {}
    rng = random.Random(budget)
    for start in range(0, 4000, 500):
        pipe = c.pipeline(transaction=False)
        for i in range(start, start + 500):
            field, value = f"f{i}".encode(), (f"v{i:05d}" * 40).encode()
            pipe.hset("big", field, value)
            model[field] = value
        pipe.execute()
    for _ in range(2000):
        field = f"f{rng.randrange(4200)}".encode()
        roll = rng.random()
        if roll < 0.4:
            assert c.hdel("big", field) == int(field in model)
            model.pop(field, None)
        elif roll < 0.7:
            if field in model and not model[field].isdigit():
                assert c.hset("big", field, "10") == 0
                model[field] = b"10"
            elif field in model:
                model[field] = str(int(model[field]) + 5).encode()
                assert c.hincrby("big", field, 5) == int(model[field])
        else:
            assert c.hget("big", field) == model.get(field)
            assert c.hstrlen("big", field) == len(model.get(field, b""))
    held = metric_sum(node, "sessiongrid_memory_entries_bytes") > 500_000
    assert held == (budget > 1 << 20), "the big budget holds the hash in memory, the small not"
    for check in range(2):
        assert c.hlen("big") == len(model)
        assert c.hgetall("big") == model
        if check == 0:
            node.sigkill()
            node.restart()
            c = node.client()
    assert c.hdel("big", *model.keys()) == len(model)
    assert c.exists("big") == 0
    assert c.hgetall("big") == {}


def test_pipelined_field_writes_of_hashes_larger_than_memory_read_back_in_order(pool):
    """Hashes far larger than an entry may be in memory (a quarter of a 1 MiB budget), written
    and read in pipelines of 200 mixed commands: each reads the writes before it in the
    pipeline, most of them not on disk yet (field writes, deletions of fields and of whole
    hashes), and every reply matches a model."""
    node = pool.grid(config={"memory_max_bytes": 1 << 20})
    c = node.client()
    keys = ["{h}a", "{h}b"]  # one partition: their writes share groups
    model: dict[str, dict[bytes, bytes]] = {k: {} for k in keys}
    filler = b"x" * 600
    for k in keys:
        for start in range(0, 3000, 500):
            c.hset(k, mapping={f"f{i}".encode(): filler for i in range(start, start + 500)})
            model[k].update({f"f{i}".encode(): filler for i in range(start, start + 500)})
    rng = random.Random(7)
    for _ in range(40):
        pipe = c.pipeline(transaction=False)
        expected = []
        for _ in range(200):
            k = rng.choice(keys)
            h = model[k]
            field = f"f{rng.randrange(3300)}".encode()
            roll = rng.random()
            if roll < 0.3:
                value = f"v{rng.randrange(1000)}".encode()
                pipe.hset(k, field, value)
                expected.append(int(field not in h))
                h[field] = value
            elif roll < 0.5:
                pipe.hdel(k, field)
                expected.append(int(field in h))
                h.pop(field, None)
            elif roll < 0.8:
                pipe.hget(k, field)
                expected.append(h.get(field))
            elif roll < 0.9:
                pipe.hexists(k, field)
                expected.append(field in h)
            elif roll < 0.995:
                pipe.hlen(k)
                expected.append(len(h))
            else:
                pipe.delete(k)
                expected.append(int(bool(h)))
                h.clear()
        assert pipe.execute() == expected
    for k in keys:
        assert c.hgetall(k) == model[k]
