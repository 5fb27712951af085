//! A node whose side lost on the heal of a split pushes its data to the other side.
//!
//! It sends every live entry of the partitions it is primary of on its side, one merge operation
//! per key, to the other side's primary of the key's partition, a window at a time, and sends
//! again whatever was refused or not answered. Merging is idempotent (a copy the other side already has, or has
//! newer, changes nothing), so sending twice, or from both owners of a partition, is harmless.
//! A partition the other side has no live owner for waits for one. An entry of it is not pushed
//! if that side lists as an owner this node, or a node this side's table makes an owner too (their
//! copies are the ones that side waits for, and they merge in with them). Otherwise it waits
//! until an owner is back there, for at most [`Push::WAIT_MS`]: the owners that side waits for
//! may have let their copies go under this side's tables (declared dead here, say), and this
//! node's entries may be all that is left.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use sessiongrid_model::{Entry, PartitionId};

use tracing::warn;

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
    /// Held back: entries of partitions the other side's table made this node primary of.
    held: Vec<Item>,
    /// Entries of partitions with no live owner over there, which lists neither this node nor
    /// an owner of this side's as one; and since when they wait (from when the rest of the
    /// push was done).
    waiting: Vec<Item>,
    waiting_since: Option<u64>,
    /// Refused or unanswered: sent again at the next tick, not at once (a primary that is not
    /// serving yet would be asked again and again within milliseconds).
    refused: Vec<Item>,
    pub pushed: u64,
    pub started_at: u64,
}

impl Push {
    pub fn new(partitions: Vec<PartitionId>, now: u64) -> Push {
        Push {
            todo: partitions.into_iter().map(|p| (p, None)).collect(),
            queued: VecDeque::new(),
            inflight: BTreeMap::new(),
            held: Vec::new(),
            waiting: Vec::new(),
            waiting_since: None,
            refused: Vec::new(),
            pushed: 0,
            started_at: now,
        }
    }

    /// How long entries wait for a live owner over there before they are let go: long enough for
    /// the other nodes merging in from this side to push their own entries and join (a second or
    /// two in the simulator's splits), bounded, as two merging nodes could wait for each other.
    pub const WAIT_MS: u64 = 10_000;

    /// Everything read and sent, and confirmed (entries held back or waiting aside).
    pub fn is_done(&self) -> bool {
        self.todo.is_empty()
            && self.queued.is_empty()
            && self.inflight.is_empty()
            && self.refused.is_empty()
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

    /// The next entry to send, with the primary to send it to. An entry of a partition whose
    /// primary is this node in the other side's table (which counts it as a member) is held
    /// back until the push is otherwise done, and then looked at again
    /// ([`Push::recheck_held`]); so is one of a partition without a live owner over there,
    /// unless that table lists as an owner this node or one that `ours` (this side's last table)
    /// makes an owner too (then it is dropped: their copies are the ones that side waits for).
    pub fn next_send(
        &mut self,
        target: &Topology,
        ours: Option<&Topology>,
        me: NodeId,
    ) -> Option<(Item, NodeId)> {
        while let Some(item) = self.queued.pop_front() {
            let Some(a) = target.assignment(item.partition) else { continue };
            let owns_here = |n: &NodeId| {
                *n == me
                    || ours
                        .and_then(|t| t.assignment(item.partition))
                        .is_some_and(|o| o.owners.contains(n))
            };
            match a.primary() {
                Some(n) if n == me && target.is_member(me) => self.held.push(item),
                Some(n) if target.is_member(n) => return Some((item, n)),
                _ if a.owners.iter().any(owns_here) => {}
                _ => self.waiting.push(item),
            }
        }
        None
    }

    /// With everything else pushed: queues again the held-back entries whose partition the
    /// other side's table (`target`, newer by now) no longer makes this node primary of, and
    /// lets the others go (that table keeps this node's copy, so nothing is lost); and the
    /// waiting entries whose partition has a live owner there now. True while anything was
    /// queued or still waits. A table of the other side from before it declared this node dead,
    /// delivered late (a stream stalled by the split), still lists the node as a primary; its
    /// entries dropped then were lost when the node joined a newer table and let its copy go
    /// (sim seed 493 of `serve 2`). An owner the other side waits for may have let its copy go
    /// on this side and come back empty: waiting entries dropped were lost (sim seed 6941).
    pub fn recheck_held(&mut self, target: &Topology, me: NodeId, now: u64) -> bool {
        let held = std::mem::take(&mut self.held);
        let before = self.queued.len();
        self.queued.extend(held.into_iter().filter(|i| target.primary(i.partition) != Some(me)));
        let live = |i: &Item| target.primary(i.partition).is_some_and(|n| target.is_member(n));
        let (back, still): (Vec<Item>, Vec<Item>) =
            std::mem::take(&mut self.waiting).into_iter().partition(live);
        self.queued.extend(back);
        let since = *self.waiting_since.get_or_insert(now);
        let patient = now < since + Self::WAIT_MS;
        if !still.is_empty() && patient {
            self.waiting = still;
        } else {
            if !still.is_empty() {
                warn!(
                    entries = still.len(),
                    "merge: no owner came back over there; letting entries go"
                );
                metrics::counter!("sessiongrid_cluster_merge_entries_let_go_total")
                    .increment(still.len() as u64);
            }
            self.waiting_since = None;
        }
        self.queued.len() > before || !self.waiting.is_empty()
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
            self.refused.push(item);
        }
        true
    }

    /// At a tick: queues again what was refused, and what has gone unanswered since `before`.
    pub fn retry(&mut self, before: u64) {
        let late: Vec<u64> =
            self.inflight.iter().filter(|(_, (_, at))| *at < before).map(|(id, _)| *id).collect();
        for id in late {
            self.answered(id, false);
        }
        self.queued.extend(self.refused.drain(..));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiongrid_model::Value;

    fn row(key: &'static str) -> (Bytes, Entry) {
        (Bytes::from_static(key.as_bytes()), Entry::new(Value::Str(Bytes::from_static(b"v"))))
    }

    /// A two-partition table of coordinator 1: partition 0's primary is `p0`, 1's is `p1`.
    fn table(members: Vec<NodeId>, p0: NodeId, p1: NodeId) -> Topology {
        let mut t = Topology::founded_by(1, 2);
        t.members = members;
        t.partitions[0].owners = vec![p0];
        t.partitions[1].owners = vec![p1];
        t
    }

    #[test]
    fn an_entry_waits_while_the_other_sides_table_still_makes_this_node_its_primary() {
        let me = 7;
        let mut push = Push::new(vec![0, 1], 0);
        push.read(0, vec![row("a")], None);
        push.read(1, vec![row("b")], None);
        // A table of the other side from before it declared node 7 dead: 7 is a member and
        // partition 0's primary there.
        let stale = table(vec![1, 7], me, 1);
        let (sent, to) = push.next_send(&stale, None, me).expect("partition 1 goes to node 1");
        assert_eq!((sent.key.as_ref(), to), (&b"b"[..], 1));
        assert!(push.next_send(&stale, None, me).is_none(), "partition 0 is held back");
        assert!(!push.recheck_held(&stale, me, 0), "the same table: nothing to send");
        // Its newer table has node 1 as partition 0's primary.
        push.held.push(Item { partition: 0, key: Bytes::from_static(b"a"), entry: row("a").1 });
        let newer = table(vec![1], 1, 1);
        assert!(push.recheck_held(&newer, me, 0));
        let (sent, to) = push.next_send(&newer, None, me).expect("partition 0 goes now");
        assert_eq!((sent.key.as_ref(), to), (&b"a"[..], 1));
    }

    #[test]
    fn a_refused_entry_is_sent_again_at_the_next_tick_not_at_once() {
        let me = 7;
        let mut push = Push::new(vec![0], 0);
        push.read(0, vec![row("a")], None);
        let t = table(vec![1], 1, 1);
        let (item, _) = push.next_send(&t, None, me).expect("sent");
        push.sent(1, item, 0);
        assert!(push.answered(1, false));
        assert!(push.next_send(&t, None, me).is_none(), "not sent again before the tick");
        assert!(!push.is_done());
        push.retry(0);
        let (item, _) = push.next_send(&t, None, me).expect("sent again at the tick");
        push.sent(2, item, 10);
        push.retry(5);
        assert!(push.next_send(&t, None, me).is_none(), "in flight, not late yet");
        assert!(push.answered(2, true));
        assert!(push.is_done() && push.pushed == 1);
    }

    #[test]
    fn an_entry_of_a_partition_the_other_side_waits_for_this_node_with_is_not_pushed() {
        let me = 7;
        let mut push = Push::new(vec![0], 0);
        push.read(0, vec![row("a")], None);
        // Node 7 is no member over there, but still the owner of partition 0, which waits for
        // it: its copy stays with it when it joins.
        let waits = table(vec![1], me, 1);
        assert!(push.next_send(&waits, None, me).is_none());
        assert!(push.is_done());
    }

    #[test]
    fn an_entry_waits_for_an_owner_of_its_partition_to_be_back_over_there_for_a_while() {
        let me = 7;
        let mut push = Push::new(vec![0], 0);
        push.read(0, vec![row("a"), row("b")], None);
        // Partition 0 waits for node 5 over there, which may have let its copy go.
        let waits = table(vec![1], 5, 1);
        assert!(push.next_send(&waits, None, me).is_none());
        assert!(push.is_done(), "everything else is pushed");
        assert!(push.recheck_held(&waits, me, 200), "still waiting for node 5");
        // Node 5 is back: the entries go to it.
        let back = table(vec![1, 5], 5, 1);
        assert!(push.recheck_held(&back, me, 300));
        let (sent, to) = push.next_send(&back, None, me).expect("sent to node 5");
        assert_eq!((sent.key.as_ref(), to), (&b"a"[..], 5));
        // Once the wait has run out, what still waits is let go.
        let mut push = Push::new(vec![0], 0);
        push.read(0, vec![row("a")], None);
        assert!(push.next_send(&waits, None, me).is_none());
        assert!(push.recheck_held(&waits, me, 150), "the wait starts with the rest pushed");
        assert!(push.recheck_held(&waits, me, 150 + Push::WAIT_MS - 1));
        assert!(!push.recheck_held(&waits, me, 150 + Push::WAIT_MS));
        // Node 5 owns partition 0 on this side too: it merges in with its copy; nothing waits.
        let mut push = Push::new(vec![0], 0);
        push.read(0, vec![row("a")], None);
        let ours = table(vec![5, me], 5, me);
        assert!(push.next_send(&waits, Some(&ours), me).is_none());
        assert!(push.is_done() && !push.recheck_held(&waits, me, 100));
    }
}
