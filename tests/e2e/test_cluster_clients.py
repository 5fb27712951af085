"""Redis Cluster clients against a grid: they learn each hash slot's primary from any node
(`CLUSTER SLOTS`, `SHARDS`, `NODES`) and send every key straight to its node, so no node has
to forward; a single node answers for every slot."""

import redis
from redis.cluster import RedisCluster

from conftest import grid_only, metric_sum, wait_until
from gridcluster import Cluster

pytestmark = grid_only


def forwarded(nodes) -> float:
    return sum(metric_sum(n, "sessiongrid_requests_forwarded_total") for n in nodes)


def test_a_cluster_client_sends_every_key_to_its_primary(pool):
    cluster = Cluster(pool, 3)
    cluster.wait_settled()
    cluster.wait_doors_known()
    nodes = cluster.nodes
    before = forwarded(nodes)
    rc = RedisCluster(host="127.0.0.1", port=nodes[0].resp_port)
    assert len(rc.get_nodes()) == 3
    for i in range(600):
        assert rc.set(f"cc:{i}", i)
    assert [rc.get(f"cc:{i}") for i in range(600)] == [str(i).encode() for i in range(600)]
    # Each key went to its primary's node (a failover on a slow machine may move a few).
    assert forwarded(nodes) - before < 10
    # A plain client through one node is forwarded about two keys in three.
    plain = nodes[0].client()
    before = forwarded(nodes)
    for i in range(300):
        plain.get(f"cc:{i}")
    assert forwarded(nodes) - before > 100
    # Every node draws the same map, and covers every slot with one of the three.
    ids = {n.client().execute_command("CLUSTER", "MYID") for n in nodes}
    assert len(ids) == 3
    for node in nodes:
        c = node.client()
        slots = c.execute_command("CLUSTER", "SLOTS")
        assert sum(end - start + 1 for start, end, *_ in slots) == 16384
        assert {owners[0][2] for _, _, *owners in slots} == ids
        assert c.execute_command("CLUSTER", "KEYSLOT", "cc:7") == rc.keyslot("cc:7")
        info = c.execute_command("CLUSTER", "INFO")
        assert "cluster_state:ok" in (info.decode() if isinstance(info, bytes) else info)


def test_a_single_node_answers_for_every_slot(grid):
    c = grid.client()
    rc = RedisCluster(host="127.0.0.1", port=grid.resp_port)
    rc.set("one:{a}", "1")
    rc.set("two", "2")
    assert rc.mget_nonatomic(["one:{a}", "two"]) == [b"1", b"2"]
    slots = c.execute_command("CLUSTER", "SLOTS")
    assert [(s[0], s[1]) for s in slots] == [(0, 16383)]
    assert slots[0][2][1] == grid.resp_port
    slot = c.execute_command("CLUSTER", "KEYSLOT", "one:{a}")
    assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 1
    assert c.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10) == [b"one:{a}"]
    assert c.execute_command("READONLY") and c.execute_command("READWRITE")
    try:
        c.execute_command("CLUSTER", "ADDSLOTS", 1)
        raise AssertionError("ADDSLOTS accepted")
    except redis.ResponseError as e:
        assert "places hash slots itself" in str(e)
    c.delete("one:{a}", "two")
