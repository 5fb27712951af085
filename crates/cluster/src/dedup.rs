//! Requests a partition has already taken from each peer, so one delivered twice is not run
//! twice.
//!
//! A forwarded request carries the forwarding node's id for it. A network (or a transport that
//! resends after a reconnect) may deliver the same message twice, the copy much later: run
//! again, a `DEL` would delete what a `SET` acknowledged in between, a flush would wipe it. A
//! requester never reuses an id: it numbers its forwards from its start time
//! ([`first_forward_id`]), so a restarted node's ids are all newer than its earlier ones.
//!
//! The memory is bounded: the newest [`SEEN_PER_NODE`] ids of each peer. An id older than all
//! of them is refused as seen; its requester gave up on it long ago (requests time out after
//! `request_timeout_ms`, a few hundred forwards at most).

use std::collections::{BTreeSet, HashMap};

use crate::NodeId;

/// Ids remembered per requesting node.
pub const SEEN_PER_NODE: usize = 4096;

/// The first forward id of a node started at `wall_ms` (unix ms): above every id the node
/// used in an earlier life, as long as it forwarded fewer than 65 536 requests per ms.
pub fn first_forward_id(wall_ms: u64) -> u64 {
    (wall_ms << 16) + 1
}

#[derive(Default)]
pub struct SeenRequests {
    by_node: HashMap<NodeId, BTreeSet<u64>>,
}

impl SeenRequests {
    /// Records request `id` of `node`; false if it was seen before (or is too old to tell).
    pub fn first_time(&mut self, node: NodeId, id: u64) -> bool {
        let seen = self.by_node.entry(node).or_default();
        let full = seen.len() >= SEEN_PER_NODE;
        if full && seen.first().is_some_and(|&oldest| id < oldest) {
            return false;
        }
        if !seen.insert(id) {
            return false;
        }
        if seen.len() > SEEN_PER_NODE {
            seen.pop_first();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_taken_once() {
        let mut seen = SeenRequests::default();
        assert!(seen.first_time(1, 10));
        assert!(seen.first_time(1, 9), "out of order is fine");
        assert!(seen.first_time(2, 10), "ids are per node");
        assert!(!seen.first_time(1, 10));
        assert!(!seen.first_time(1, 9));
    }

    #[test]
    fn memory_is_bounded_and_what_fell_out_is_refused() {
        let mut seen = SeenRequests::default();
        for id in 0..SEEN_PER_NODE as u64 + 10 {
            assert!(seen.first_time(1, id));
        }
        assert_eq!(seen.by_node[&1].len(), SEEN_PER_NODE);
        assert!(!seen.first_time(1, 3), "older than all remembered");
        assert!(seen.first_time(1, 1_000_000));
    }

    #[test]
    fn a_restarted_node_numbers_above_its_earlier_life() {
        let before = first_forward_id(1_000) + 60_000;
        assert!(first_forward_id(1_001) > before);
    }
}
