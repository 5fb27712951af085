//! The grid's distributed protocol, as state machines without I/O.
//!
//! A runtime feeds a [`node::Node`] time, messages and client requests, and carries out what it
//! asks for (messages to send, answers to give). The real runtime does this over libp2p and
//! RocksDB; the simulator in `simulations/` over an in-memory network with a virtual clock, so
//! the very same code is tested under seeded faults.
//!
//! # Layout
//! - [`placement`] — XOR preference order and the balanced, minimal-movement placement.
//! - [`topology`] — the epoch-numbered partition table and how the coordinator derives the next.
//! - [`membership`] — heartbeats, failure detection, leases, joining, publishing topologies.
//! - [`replica`] — one partition on one node: ordering, replication, catch-up, snapshots.
//! - [`log`] — the recent writes a replica keeps for catch-up.
//! - [`control`] — the node-level half: membership, the topology to follow, the lease partitions
//!   serve under, and the push of a node's data when a split heals.
//! - [`partition`] — one partition as its actor runs it: a replica, its adopted topology, and the
//!   checks a request or a peer's message passes first.
//! - [`route`] — where a client request goes.
//! - [`dedup`] — the forwarded requests a partition has taken, so none runs twice.
//! - [`interest`] — whether any member watches attribute changes (their events travel only then).
//! - [`events`] — session events sent to every member until each acknowledges them, and
//!   delivered once per sender.
//! - [`node`] — control and partitions composed as the runtime composes them, with the messages
//!   between them made explicit so the simulator can delay and interleave them.
//! - [`msg`] — every message between nodes; [`coalesce`] joins a partition's appends queued
//!   together for one peer.
//! - [`storage`] — what the protocol needs from a disk.
//! - [`config`] — timings and sizes, with their defaults.

pub mod coalesce;
pub mod config;
pub mod control;
pub mod dedup;
pub mod events;
pub mod hold;
pub mod interest;
pub mod log;
pub mod membership;
pub mod merge;
pub mod msg;
pub mod node;
pub mod partition;
pub mod placement;
pub mod replica;
pub mod route;
pub mod storage;
pub mod topology;

pub use config::{ClusterConfig, SplitPolicy};
pub use control::{Control, ControlOutput, Lease};
pub use msg::{Intent, LogEntry, LogPos, MemberMsg, Msg, Query, Refusal, Txn};
pub use node::{Internal, Node, Output};
pub use partition::{Partition, PartitionOutput, PartitionStats};
pub use placement::NodeId;
pub use replica::Report;
pub use storage::{NodeStore, PartitionStore, StoreError};
pub use topology::{Epoch, Topology};

/// The time as a node sees it: `mono` (monotonic ms) for timers and leases, `wall` (unix ms) for
/// expiry deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono: u64,
    pub wall: u64,
}
