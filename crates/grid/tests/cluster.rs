//! Three grids in one process, joined by an in-memory transport: the real actors, RocksDB and
//! protocol, without sockets. A partition actor killed on a primary or a backup is restarted
//! from disk and loses no acknowledged write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sessiongrid_cluster::{ClusterConfig, Msg, NodeId};
use sessiongrid_grid::transport::{Inbox, Transport};
use sessiongrid_grid::{Grid, Peers};
use sessiongrid_model::config::NodeConfig;
use sessiongrid_model::op::ExpiryChange;
use sessiongrid_model::{Op, Reply, SetCond};

/// Every node's inbox, by id.
#[derive(Default)]
struct LocalNet {
    inboxes: Mutex<HashMap<NodeId, Inbox>>,
}

/// One node's end of the [`LocalNet`].
struct Port {
    me: NodeId,
    net: Arc<LocalNet>,
}

impl Transport for Port {
    fn send(&self, to: NodeId, msg: Msg) {
        let inbox = self.net.inboxes.lock().expect("net lock").get(&to).cloned();
        if let Some(inbox) = inbox {
            inbox.message(self.me, msg);
        }
    }
}

fn set(value: String) -> Op {
    Op::Set { value: value.into(), cond: SetCond::Always, expiry: ExpiryChange::Clear, get: false }
}

async fn start(
    net: &Arc<LocalNet>,
    dir: &std::path::Path,
    id: NodeId,
    seed: Option<NodeId>,
) -> Grid {
    let config =
        NodeConfig { data_dir: dir.to_path_buf(), partitions: 16, ..NodeConfig::default() };
    let inbox = Inbox::new();
    net.inboxes.lock().expect("net lock").insert(id, inbox.clone());
    let transport = Arc::new(Port { me: id, net: net.clone() });
    let peers = Peers { id, transport, inbox: inbox.clone(), joining: seed.is_some() };
    let grid = Grid::start_node(&config, ClusterConfig::default(), peers, true)
        .await
        .expect("grid starts");
    if let Some(seed) = seed {
        inbox.seed(seed);
    }
    grid
}

/// Waits until every grid follows one topology with `members` members and no partition moving.
async fn settled(grids: &[Grid], members: usize) {
    let started = Instant::now();
    loop {
        let mut epochs = Vec::new();
        for g in grids {
            let s = g.cluster_status().await.expect("a member has a status");
            if s.members.len() == members && s.moving == 0 && s.lease {
                epochs.push(s.epoch);
            }
        }
        if epochs.len() == grids.len() && epochs.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the cluster never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn read_all(grid: &Grid, written: &HashMap<Bytes, String>) {
    for (key, value) in written {
        let got = grid.exec(key.clone(), Op::Get).await.expect("a read succeeds");
        assert_eq!(got, Reply::Bulk(Bytes::from(value.clone())), "key {key:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_partition_actor_in_a_cluster_loses_no_acknowledged_write() {
    let net = Arc::new(LocalNet::default());
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ids: [NodeId; 3] = [11, 22, 33];
    let mut grids = vec![start(&net, dirs[0].path(), ids[0], None).await];
    for i in 1..3 {
        grids.push(start(&net, dirs[i].path(), ids[i], Some(ids[0])).await);
    }
    settled(&grids, 3).await;

    let mut written = HashMap::new();
    for i in 0..200 {
        let (key, value) = (Bytes::from(format!("k{i}")), format!("v{i}"));
        grids[i % 3].exec(key.clone(), set(value.clone())).await.unwrap();
        written.insert(key, value);
    }
    let key = Bytes::from_static(b"k7");
    let p = grids[0].partition_of(&key);
    let topology = grids[0].cluster_status().await.unwrap().topology.unwrap();
    let owners = topology.partitions[p as usize].owners.clone();
    assert_eq!(owners.len(), 2);
    for owner in owners {
        let grid = &grids[ids.iter().position(|id| *id == owner).unwrap()];
        let old = grid.partition_cell(p).unwrap();
        old.kill();
        let started = Instant::now();
        while grid.partition_cell(p).unwrap().get_id() == old.get_id() {
            assert!(started.elapsed() < Duration::from_secs(5), "the actor was not restarted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Writes to the partition go on through any node, then everything reads back.
        for round in 0..20 {
            let value = format!("after killing {owner} ({round})");
            grids[round % 3].exec(key.clone(), set(value.clone())).await.unwrap();
            written.insert(key.clone(), value);
        }
        for g in &grids {
            read_all(g, &written).await;
        }
    }
    settled(&grids, 3).await;
    for g in grids {
        g.shutdown().await;
    }
}
