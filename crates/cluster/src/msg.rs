//! Everything nodes say to each other. Each message is small and self-contained; the transport
//! serialises it with postcard and caps its size.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::{Delta, Entry, KeyFilter, Op, PartitionId, Reply};

use crate::placement::NodeId;
use crate::topology::{Epoch, Topology};

/// A primary's reign over one partition: it starts when a node becomes primary in an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Term {
    pub epoch: Epoch,
    pub primary: NodeId,
}

/// A point in a partition's history: the last write a replica has applied. Two replicas at the
/// same position hold the same data, because a term has one primary writing one sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogPos {
    pub term: Term,
    /// Increases with every write, across terms (a new primary continues from the highest
    /// version it has seen).
    pub version: u64,
}

impl LogPos {
    /// An empty partition that has never been written.
    pub const ZERO: LogPos = LogPos { term: Term { epoch: 0, primary: 0 }, version: 0 };
}

/// One write as replicated: the key's whole new state (`None`: deleted), or the new header and
/// changed fields of a hash or session. Each sets what it carries to absolute values, so
/// applying it twice, or replaying the writes since a snapshot began over the snapshot's newer
/// data, ends in the primary's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub pos: LogPos,
    pub key: Bytes,
    pub delta: Delta,
    /// The session events of this write, kept by followers until the primary has published
    /// them, so a follower that takes over can publish what its predecessor could not.
    pub events: Vec<SessionEvent>,
}

impl LogEntry {
    /// Bytes of its key and of what it carries, as the recent log and transfers count them.
    pub fn cost_bytes(&self) -> usize {
        self.key.len() + self.delta.cost_bytes()
    }
}

/// Why a request was not executed. All but [`Refusal::Indeterminate`] mean it had no effect, so
/// it is safe to send again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The receiver is not the partition's primary in its topology.
    NotPrimary,
    /// The primary is waiting for its lease or for the previous primary to let go.
    NotServing,
    /// The partition has no owner in this topology.
    NoOwner,
    /// The write was applied by the primary but could not be confirmed by every owner (the
    /// primary changed or the owners did not answer in time): it may or may not survive.
    Indeterminate,
    /// No answer in time.
    Timeout,
    /// The owner's disk refused the write; nothing changed.
    Store(String),
    /// The owner's disk refuses writes for now (it is full or failing; the last failure's
    /// error): the write was not run, and reads are still served.
    WritesRefused(String),
}

impl Refusal {
    /// True if sending the request again cannot apply it twice.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Refusal::NotPrimary | Refusal::NotServing | Refusal::NoOwner)
    }
}

/// A transaction's (or script's) name on the partitions it holds: the node running it and a
/// number that node does not reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Txn {
    pub node: NodeId,
    pub id: u64,
}

/// A request about a whole partition, answered by its primary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// The keys that pass the filter (expired ones never do), as an array.
    Keys(KeyFilter),
    /// `[keys, keys with a deadline, live sessions]`.
    Count,
    /// Keys and keys with a deadline of each logical database, `[keys0, expiring0, keys1,
    /// ...]`: database 0's from the counts, the others' by reading their keys (stored first,
    /// behind their prefix), so it costs the keys of databases 1..15.
    DbCounts,
    /// Deletes every key; each deletion is replicated like any other write.
    Flush,
    /// Deletes every key of one logical database (`FLUSHDB`), as [`Query::Flush`].
    FlushDb(u8),
    /// How many other owners hold every write the partition acknowledged (`WAIT`).
    InSync,
    /// Holds the partition for `txn`, for at most `ms`: until it is released, the partition
    /// runs only requests within `txn`; the others wait, in the order they came. Answered once
    /// the hold is `txn`'s.
    Hold { txn: Txn, ms: u64 },
    /// Ends `txn`'s hold; answered (1 if it still held the partition, else 0) once every
    /// owner has its writes, which are replicated together when it ends.
    Release { txn: Txn },
    /// `query` as part of `txn`, which holds the partition. A free partition the transaction
    /// takes if `take` (a key it did not name up front); else it answers an error: the hold
    /// was lost (the partition moved to a new primary, which never had the transaction's
    /// earlier writes), so nothing more of the transaction may run there.
    Within { txn: Txn, query: Box<Query>, take: bool },
    /// One operation on one key (within a transaction).
    Op { key: Bytes, op: Op },
}

impl Query {
    /// True if it changes nothing, so sending it again is harmless (taking or ending a hold
    /// twice is the same as once).
    pub fn read_only(&self) -> bool {
        match self {
            Query::Keys(_)
            | Query::Count
            | Query::DbCounts
            | Query::InSync
            | Query::Hold { .. }
            | Query::Release { .. } => true,
            Query::Flush | Query::FlushDb(_) => false,
            Query::Within { query, .. } => query.read_only(),
            Query::Op { op, .. } => !op.is_write(),
        }
    }
}

/// What a member tells the coordinator about itself on each ping. (On the wire `Stay` and
/// `Leave` are the `false` and `true` of the flag it replaced.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// Owns its share of the partitions.
    Stay,
    /// Hands its partitions over before it stops (false again after a restart).
    Leave,
    /// A lite member: routes requests, never owns a partition.
    Lite,
}

/// Everything one node sends another, by the actor that handles it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// Membership and topologies: for the receiver's control.
    Membership(MemberMsg),
    /// A client request forwarded to the partition's primary. The sender gives up on it at
    /// `expires_at` (its wall clock, unix ms): delivered later (a stream that stalled through a
    /// network cut delivers what it held once the link is back), it is not run.
    Request { id: u64, epoch: Epoch, expires_at: u64, key: Bytes, op: Op },
    /// A whole-partition request forwarded to the partition's primary.
    Query { id: u64, epoch: Epoch, expires_at: u64, partition: PartitionId, query: Query },
    /// The answer to a [`Msg::Request`] or [`Msg::Query`], for the request waiting for it.
    Response { id: u64, result: Result<Reply, Refusal> },
    /// Replication of one partition between its primary and the nodes that hold it.
    Replica { partition: PartitionId, epoch: Epoch, body: ReplicaMsg },
    /// Session events published by a primary, for the receiver's subscribers, unacknowledged
    /// (as nodes sent them before [`Msg::PartitionEvents`]).
    Events(Vec<SessionEvent>),
    /// A Redis `PUBLISH` made on the sender, for the receiver's subscribers.
    Publish { channel: Bytes, message: Bytes },
    /// The keyspace events to publish (`notify-keyspace-events`), set on the sender for every
    /// member.
    NotifyFlags(u16),
    /// Session events of a partition's writes, from its primary, for the receiver's
    /// subscribers; the receiver answers [`Msg::EventsAck`] (see [`crate::events`]).
    PartitionEvents { partition: PartitionId, events: Vec<SessionEvent> },
    /// The sender delivered every event of `partition` the receiver sent up to `through`.
    EventsAck { partition: PartitionId, through: u64 },
}

impl Msg {
    /// What kind of message it is, for metrics: the top-level variant, or a replication
    /// message's own kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Membership(_) => "membership",
            Msg::Request { .. } => "request",
            Msg::Query { .. } => "query",
            Msg::Response { .. } => "response",
            Msg::Replica { body, .. } => match body {
                ReplicaMsg::Append { entries, .. } if entries.is_empty() => "probe",
                ReplicaMsg::Append { .. } => "append",
                ReplicaMsg::Ack { .. } => "ack",
                ReplicaMsg::SyncRequest { .. } => "sync_request",
                ReplicaMsg::Chunk(_) => "chunk",
                ReplicaMsg::ChunkAck { .. } => "chunk_ack",
                ReplicaMsg::Released => "released",
                ReplicaMsg::EventsWanted { .. } | ReplicaMsg::EventsHanded { .. } => "events",
            },
            Msg::Events(_) | Msg::PartitionEvents { .. } | Msg::EventsAck { .. } => "events",
            Msg::Publish { .. } | Msg::NotifyFlags(_) => "pubsub",
        }
    }
}

/// What control actors say to each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MemberMsg {
    /// A node looking for a cluster asks a seed to tell it about one.
    Hello,
    /// The answer to [`MemberMsg::Hello`]: the sender's topology (`None` if it has no cluster
    /// yet), and whether the sender is live in it (`false` while it is itself restarting and
    /// rejoining).
    Welcome {
        topology: Option<Arc<Topology>>,
        settled: bool,
    },
    /// Heartbeat; `sent_at` is the sender's monotonic clock and comes back in the pong.
    Ping {
        sent_at: u64,
        epoch: Epoch,
        intent: Intent,
    },
    /// `member` tells the pinger whether the sender's topology counts it in.
    Pong {
        echo: u64,
        epoch: Epoch,
        coordinator: NodeId,
        member: bool,
    },
    /// Ask for the sender's topology.
    TopologyPull,
    TopologyPush(Arc<Topology>),
    /// A member asks the coordinator to move its partitions elsewhere before it stops.
    Leave,
    /// A primary tells the coordinator that a learner holds a complete copy, as it
    /// acknowledged while following the table of epoch `as_of`.
    Synced {
        partition: PartitionId,
        node: NodeId,
        as_of: Epoch,
    },
    /// The receiver's epoch is newer than the sender's: catch up.
    Stale {
        epoch: Epoch,
    },
    /// An operator asks the receiver to hand its partitions over and stop (`sessiongrid drain`).
    Drain,
    /// An operator gave up a lost node for good: partitions that wait for it start empty.
    Forget {
        node: NodeId,
    },
    /// Whether the sender has subscribers to session events, in its state numbered `seq`
    /// (see [`crate::interest`]); the receiver answers [`MemberMsg::WatchingSeen`].
    Watching {
        seq: u64,
        on: bool,
    },
    /// The sender heard the receiver's [`MemberMsg::Watching`] numbered `seq`.
    WatchingSeen {
        seq: u64,
    },
    /// A primary that took over this partition with no copy at all tells the coordinator
    /// that another owner holds one: that owner should be primary, and the sender a learner.
    NoCopy {
        partition: PartitionId,
    },
    /// Sent by a node that merged in from the other side of a split, just before it asks to
    /// join: the partitions whose copy it still holds. This side's table may list it for
    /// others it let go over there.
    Merged {
        vouched: Vec<PartitionId>,
    },
}

impl From<MemberMsg> for Msg {
    fn from(m: MemberMsg) -> Msg {
        Msg::Membership(m)
    }
}

/// Chunk `seq` of snapshot `id`: the keys in `(after, through]` (`through = None`: to the end)
/// are exactly `entries`. After the last chunk the follower is at `as_of` and the primary streams
/// what followed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub id: u64,
    pub seq: u32,
    pub after: Option<Bytes>,
    pub through: Option<Bytes>,
    pub entries: Vec<(Bytes, Entry)>,
    pub as_of: LogPos,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReplicaMsg {
    /// Entries following `prev` in the primary's log (none: a probe asking for an ack).
    /// `published`: the primary has published the events of every write up to this version.
    Append {
        prev: LogPos,
        entries: Vec<LogEntry>,
        published: u64,
    },
    /// The follower's position after applying what it had, following the table of `epoch`.
    Ack {
        pos: LogPos,
        epoch: Epoch,
    },
    /// A follower whose log does not continue the primary's asks to be caught up from `pos`
    /// (`None`: it holds an incomplete copy).
    SyncRequest {
        pos: Option<LogPos>,
        epoch: Epoch,
    },
    /// One piece of a snapshot.
    Chunk(Chunk),
    ChunkAck {
        id: u64,
        seq: u32,
        epoch: Epoch,
    },
    /// The previous primary has stopped serving the partition.
    Released,
    /// A primary that started afresh from its disk asks for the follower's copies of the events
    /// of writes up to `through`: it cannot know whether its earlier life got them to every
    /// member.
    EventsWanted {
        through: u64,
    },
    /// The answer to [`ReplicaMsg::EventsWanted`]: the follower's copies of those events.
    EventsHanded {
        through: u64,
        events: Vec<SessionEvent>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_without_entries_counts_as_a_probe() {
        let replica = |body| Msg::Replica { partition: 3, epoch: 1, body };
        let entry = LogEntry {
            pos: LogPos::ZERO,
            key: Bytes::from_static(b"k"),
            delta: Delta::Whole(None),
            events: Vec::new(),
        };
        let append = |entries| ReplicaMsg::Append { prev: LogPos::ZERO, entries, published: 0 };
        assert_eq!(replica(append(Vec::new())).kind(), "probe");
        assert_eq!(replica(append(vec![entry])).kind(), "append");
        let ack = ReplicaMsg::Ack { pos: LogPos::ZERO, epoch: 1 };
        assert_eq!(replica(ack).kind(), "ack");
        assert_eq!(replica(ReplicaMsg::Released).kind(), "released");
        assert_eq!(Msg::Membership(MemberMsg::Leave).kind(), "membership");
        let response = Msg::Response { id: 1, result: Err(Refusal::NotPrimary) };
        assert_eq!(response.kind(), "response");
        assert_eq!(Msg::EventsAck { partition: 3, through: 9 }.kind(), "events");
        assert_eq!(Msg::NotifyFlags(0).kind(), "pubsub");
    }
}
