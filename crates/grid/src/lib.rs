//! The grid layer: a node's actors over the store, and the [`Grid`] handle that routes each key
//! to its partition's primary. A single node and a cluster member run the same engine.
//!
//! # Layout
//! - [`grid`] — [`Grid`], the entry point the doors call: start, execute, scan, flush, shut down.
//! - [`shard`] — the engine threads: each a single-threaded runtime with its share of the
//!   partitions and of the client connections.
//! - [`commit`] — an engine thread's commit group: its partitions' writes as one RocksDB write.
//! - [`engine`] — what the actors share, and the path of a request: routed, forwarded, retried.
//! - [`control`] — the control actor: membership and the topology the node follows.
//! - [`partition`] — the partition actor, single writer of one partition.
//! - [`supervisor`] — restarts failed partition actors from disk.
//! - [`transport`] — the [`transport::Transport`] peers are reached through, and the
//!   [`transport::Inbox`] that hands their messages to the right actor.
//! - [`directory`] — the Redis door of each peer, and the [`directory::SlotMap`] a
//!   cluster-aware client routes by.
//! - [`disk`] — the protocol's disk over RocksDB: writes and positions in one batch, the memory tier.
//! - [`cache`] — the per-partition tiers of hot entries within the node's memory budget (CLOCK
//!   eviction).
//! - [`unsettled`] — a partition's writes not on disk yet, by key, read over the disk.
//! - [`status`] — [`status::ClusterStatus`] and the cluster gauges.
//! - [`events`] — [`events::EventBus`]: session events for subscribers, and their counts.
//! - [`pubsub`] — [`pubsub::PubSub`]: Redis channels, delivered on every node.
//! - [`sessions`] — [`Sessions`]: session and login operations built from single-key grid operations.
//! - [`txn`] — transactions and scripts: the holds on their keys' partitions.
//! - [`error`] — [`GridError`].

pub mod cache;
pub mod commit;
pub mod control;
pub mod directory;
pub mod disk;
pub mod engine;
pub mod error;
pub mod events;
pub mod grid;
pub mod partition;
pub mod pubsub;
pub mod sessions;
pub mod shard;
pub mod status;
pub mod supervisor;
pub mod transport;
pub mod txn;
pub mod unsettled;

pub use error::GridError;
pub use grid::{Grid, Peers};
pub use sessiongrid_cluster::Txn;
pub use sessiongrid_model::KeyFilter;
pub use sessions::Sessions;
