//! A node's forwarded requests when their primary leaves the topology, driven by hand.

use std::sync::Arc;

use bytes::Bytes;
use sessiongrid_cluster::{
    ClusterConfig, MemberMsg, Msg, Node, NodeId, Now, Output, Refusal, Topology,
};
use sessiongrid_model::Op;
use sessiongrid_simulations::disk::MemDisk;

const ME: NodeId = 1;

fn at(ms: u64) -> Now {
    Now { mono: ms, wall: 1_750_000_000_000 + ms }
}

/// Coordinator 3's table of members 1, 2 and 3 (one partition), whose primary is `primary`.
fn table(epoch: u64, members: Vec<NodeId>, primary: NodeId) -> Arc<Topology> {
    let mut t = Topology::founded_by(3, 1);
    t.epoch = epoch;
    t.members = members;
    t.stable = t.members.clone();
    t.partitions[0].owners = vec![primary];
    t.partitions[0].target = vec![primary];
    Arc::new(t)
}

/// Hands `node` a message from `from`, carries out its internal messages, and returns its
/// outputs.
fn receive(node: &mut Node<MemDisk>, now: Now, from: NodeId, msg: Msg) -> Vec<Output> {
    node.receive(now, from, msg);
    settle(node, now)
}

fn settle(node: &mut Node<MemDisk>, now: Now) -> Vec<Output> {
    loop {
        let internal = node.take_internal();
        if internal.is_empty() {
            return node.take_outputs();
        }
        for msg in internal {
            node.deliver(now, msg);
        }
    }
}

fn replies(outputs: &[Output]) -> Vec<(u64, Result<(), Refusal>)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Reply(id, result) => Some((*id, result.clone().map(|_| ()))),
            _ => None,
        })
        .collect()
}

fn forwarded_to(outputs: &[Output]) -> Vec<NodeId> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(to, Msg::Request { .. }) => Some(*to),
            _ => None,
        })
        .collect()
}

#[test]
fn a_write_forwarded_to_a_primary_that_leaves_is_answered_only_at_its_deadline() {
    let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
    let timeout = cfg.request_timeout_ms;
    let mut node = Node::new(MemDisk::new(ME), cfg, vec![3], true, at(0));
    settle(&mut node, at(0));
    let welcome = MemberMsg::Welcome { topology: Some(table(5, vec![1, 2, 3], 2)), settled: true };
    receive(&mut node, at(1), 3, welcome.into());
    node.request(at(10), 100, Bytes::from_static(b"k"), Op::Del);
    node.request(at(10), 101, Bytes::from_static(b"k"), Op::Get);
    assert_eq!(forwarded_to(&settle(&mut node, at(10))), vec![2, 2]);
    // Node 2 is declared dead (across a lossy link, say: it may still be alive). The read goes
    // to the new primary at once; the write may still reach node 2 and run there until its
    // deadline, so it is not answered before.
    let without = MemberMsg::TopologyPush(table(6, vec![1, 3], 3));
    let out = receive(&mut node, at(20), 3, without.into());
    assert_eq!(forwarded_to(&out), vec![3], "the read goes again");
    assert!(replies(&out).is_empty(), "{out:?}");
    node.tick(at(10 + timeout - 1));
    assert!(replies(&settle(&mut node, at(10 + timeout - 1))).is_empty());
    node.tick(at(10 + timeout));
    let out = settle(&mut node, at(10 + timeout));
    // (The read went to node 3, which never answers here.)
    let expected = vec![(100, Err(Refusal::Indeterminate)), (101, Err(Refusal::Timeout))];
    assert_eq!(replies(&out), expected);
}
