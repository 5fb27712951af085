//! The grid over a real RocksDB directory: routing, restart from disk, supervision.

use std::time::Duration;

use bytes::Bytes;
use sessiongrid_grid::{Grid, KeyFilter};
use sessiongrid_model::config::NodeConfig;
use sessiongrid_model::op::ExpiryChange;
use sessiongrid_model::{Op, Reply, SetCond};

fn config(dir: &std::path::Path) -> NodeConfig {
    NodeConfig { data_dir: dir.to_path_buf(), partitions: 16, ..NodeConfig::default() }
}

fn set(value: &'static str) -> Op {
    Op::Set {
        value: Bytes::from_static(value.as_bytes()),
        cond: SetCond::Always,
        expiry: ExpiryChange::Clear,
        get: false,
    }
}

fn key(k: &str) -> Bytes {
    Bytes::copy_from_slice(k.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_counts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(&config(dir.path())).await.unwrap();
    for i in 0..100 {
        grid.exec(key(&format!("k{i}")), set("v")).await.unwrap();
    }
    grid.exec(key("k0"), Op::Del).await.unwrap();
    grid.shutdown().await;

    let grid = Grid::start(&config(dir.path())).await.unwrap();
    assert_eq!(grid.dbsize().await.unwrap(), 99);
    assert_eq!(grid.exec(key("k1"), Op::Get).await.unwrap(), Reply::Bulk(key("v")));
    assert_eq!(grid.exec(key("k0"), Op::Get).await.unwrap(), Reply::Nil);
    let mut all = Vec::new();
    for p in 0..grid.partitions() {
        all.extend(grid.keys(p, KeyFilter::default()).await.unwrap());
    }
    assert_eq!(all.len(), 99);
    grid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_partition_is_restarted_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(&config(dir.path())).await.unwrap();
    grid.exec(key("survivor"), set("still here")).await.unwrap();
    let p = grid.partition_of(b"survivor");
    let old = grid.partition_cell(p).expect("single-node grid");
    old.kill();

    let mut restarted = false;
    for _ in 0..200 {
        if grid.partition_cell(p).expect("single-node grid").get_id() != old.get_id() {
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(restarted, "the supervisor did not replace the killed partition actor");
    let got = grid.exec(key("survivor"), Op::Get).await.unwrap();
    assert_eq!(got, Reply::Bulk(key("still here")));
    assert_eq!(grid.dbsize().await.unwrap(), 1, "metadata reloaded from disk");
    grid.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_tags_keep_keys_in_one_partition() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(&config(dir.path())).await.unwrap();
    assert_eq!(grid.partition_of(b"{user:7}.cart"), grid.partition_of(b"{user:7}.profile"));
    grid.shutdown().await;
}
