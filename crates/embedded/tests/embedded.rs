//! Nodes started in-process: a single node that keeps its sessions across a restart, and two
//! embedded members of one cluster that see each other's sessions.

use std::time::Duration;

use bytes::Bytes;
use sessiongrid_embedded::{Doors, GetOptions, Node, NodeConfig, Tag};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound address").port()
}

fn config(dir: &std::path::Path) -> NodeConfig {
    NodeConfig {
        data_dir: dir.to_path_buf(),
        resp_listen: format!("127.0.0.1:{}", free_port()),
        http_listen: format!("127.0.0.1:{}", free_port()),
        partitions: 32,
        ..NodeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_node_keeps_its_sessions_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path()), Doors::none()).await.unwrap();
    let sessions = node.sessions();
    let id = sessions.create(Bytes::from_static(b"shop"), None, None).await.unwrap();
    let cart = (Bytes::from_static(b"cart"), Tag::Json, Bytes::from_static(b"[1,2]"));
    assert_eq!(sessions.set(&id, None, vec![cart]).await.unwrap(), Some(2));
    node.shutdown().await.unwrap();

    let node = Node::start(config(dir.path()), Doors::none()).await.unwrap();
    let s = node.sessions().get(&id, &GetOptions::default()).await.unwrap().expect("kept");
    assert_eq!(s.attrs[&Bytes::from_static(b"cart")].value, Bytes::from_static(b"[1,2]"));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_embedded_members_form_one_grid() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let seed = format!("127.0.0.1:{}", free_port());
    let a = Node::start(
        NodeConfig { p2p_listen: Some(seed.clone()), ..config(a_dir.path()) },
        Doors::none(),
    )
    .await
    .unwrap();
    let b = Node::start(
        NodeConfig {
            p2p_listen: Some(format!("127.0.0.1:{}", free_port())),
            join: vec![seed],
            ..config(b_dir.path())
        },
        Doors::none(),
    )
    .await
    .unwrap();
    let mut formed = false;
    for _ in 0..300 {
        let (sa, sb) = (a.grid().cluster_status().await, b.grid().cluster_status().await);
        if let (Some(sa), Some(sb)) = (sa, sb) {
            if sa.members.len() == 2
                && sb.members.len() == 2
                && sa.moving == 0
                && sa.lease
                && sb.lease
            {
                formed = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(formed, "the two members formed a cluster");
    let id = a.sessions().create(Bytes::from_static(b"shop"), None, None).await.unwrap();
    let seen = b.sessions().get(&id, &GetOptions::default()).await.unwrap();
    assert_eq!(seen.map(|s| s.id), Some(id));
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}
