//! What the peer-frame fuzz target checks of one input, shared with the test that replays the
//! fuzz corpus kept in the repository.

use std::sync::Arc;

use sessiongrid_cluster::{ClusterConfig, Msg, Node, Now};

use crate::disk::MemDisk;

fn at(ms: u64) -> Now {
    Now { mono: ms, wall: 1_700_000_000_000 + ms }
}

/// Feeds `data` to a running node as frames from its peers: each frame that decodes as a grid
/// message (postcard, as `sessiongrid-net` decodes them) is delivered, and the node must never
/// panic, whatever a peer claims (nor may encoding what was decoded: a node sends on entries it
/// received). Frames: a sender (one of four peers), a two-byte length, the bytes.
pub fn peer_frames(data: &[u8]) {
    let cfg = Arc::new(ClusterConfig { partitions: 4, ..ClusterConfig::default() });
    let mut node = Node::new(MemDisk::new(1), cfg, Vec::new(), false, at(0));
    let mut t = 0;
    let mut rest = data;
    while let [from, hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        let Ok(msg) = postcard::from_bytes::<Msg>(frame) else { continue };
        postcard::to_stdvec(&msg).expect("a decoded message encodes");
        t += 50;
        node.receive(at(t), u64::from(*from % 4) + 2, msg);
        node.tick(at(t));
        for internal in node.take_internal() {
            node.deliver(at(t), internal);
        }
        node.take_outputs();
    }
}
