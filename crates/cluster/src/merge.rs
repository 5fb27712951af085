//! A node whose side lost on the heal of a split pushes its data to the other side.
//!
//! It sends every live entry of the partitions it is primary of on its side, one merge operation
//! per key, to the other side's primary of the key's partition, a window at a time, and sends
//! again whatever was refused or not answered. Merging is idempotent (a copy the other side already has, or has
//! newer, changes nothing), so sending twice, or from both owners of a partition, is harmless.
//! Partitions the other side has no live owner for are not pushed: this node's copy is the one
//! that side waits for.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use sessiongrid_model::{Entry, PartitionId};

use crate::placement::NodeId;
use crate::topology::Topology;

/// Merge operations in flight at once.
const WINDOW: usize = 128;

/// One entry to push.
pub struct Item {
    pub partition: PartitionId,
    pub key: Bytes,
    pub entry: Entry,
}

/// The state of one node's push.
pub struct Push {
    /// Partitions left to read, with the last key read from each.
    todo: VecDeque<(PartitionId, Option<Bytes>)>,
    /// Entries read and not yet sent (or to send again).
    queued: VecDeque<Item>,
    /// Sent and not confirmed, by request id, with when they went.
    inflight: BTreeMap<u64, (Item, u64)>,
    pub pushed: u64,
    pub started_at: u64,
}

impl Push {
    pub fn new(partitions: Vec<PartitionId>, now: u64) -> Push {
        Push {
            todo: partitions.into_iter().map(|p| (p, None)).collect(),
            queued: VecDeque::new(),
            inflight: BTreeMap::new(),
            pushed: 0,
            started_at: now,
        }
    }

    pub fn is_done(&self) -> bool {
        self.todo.is_empty() && self.queued.is_empty() && self.inflight.is_empty()
    }

    /// Room for more in flight.
    pub fn wants(&self) -> usize {
        WINDOW.saturating_sub(self.inflight.len())
    }

    /// The next partition to read from, and the key to read after; `None` once every partition
    /// is read.
    pub fn next_read(&self) -> Option<(PartitionId, Option<Bytes>)> {
        if self.queued.len() >= WINDOW {
            return None;
        }
        self.todo.front().cloned()
    }

    /// What a read of `p` returned to push, and the key the next read goes on after (`None`:
    /// the partition is read to its end).
    pub fn read(&mut self, p: PartitionId, rows: Vec<(Bytes, Entry)>, next: Option<Bytes>) {
        self.queued.extend(rows.into_iter().map(|(key, entry)| Item { partition: p, key, entry }));
        match (self.todo.front_mut(), next) {
            (Some(front), Some(next)) => front.1 = Some(next),
            _ => {
                self.todo.pop_front();
            }
        }
    }

    /// The next entry to send, with the primary to send it to; entries of partitions without a
    /// live owner over there are dropped.
    pub fn next_send(&mut self, target: &Topology, me: NodeId) -> Option<(Item, NodeId)> {
        while let Some(item) = self.queued.pop_front() {
            let primary =
                target.primary(item.partition).filter(|n| *n != me && target.is_member(*n));
            if let Some(primary) = primary {
                return Some((item, primary));
            }
        }
        None
    }

    pub fn sent(&mut self, id: u64, item: Item, now: u64) {
        self.inflight.insert(id, (item, now));
    }

    /// An answer to request `id`: true if it was one of this push's.
    pub fn answered(&mut self, id: u64, ok: bool) -> bool {
        let Some((item, _)) = self.inflight.remove(&id) else { return false };
        if ok {
            self.pushed += 1;
        } else {
            self.queued.push_back(item);
        }
        true
    }

    /// Queues again what has gone unanswered since `before`.
    pub fn expire(&mut self, before: u64) {
        let late: Vec<u64> =
            self.inflight.iter().filter(|(_, (_, at))| *at < before).map(|(id, _)| *id).collect();
        for id in late {
            self.answered(id, false);
        }
    }
}
