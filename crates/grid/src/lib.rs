//! The grid layer: partitions as actors over the store, and the [`Grid`] handle that routes each
//! key to its partition.
//!
//! # Layout
//! - [`grid`] — [`Grid`], the entry point the doors call: start, execute, scan, flush, shut down.
//! - [`events`] — [`events::EventBus`]: session events for subscribers, and their counts.
//! - [`sessions`] — [`Sessions`]: session and login operations built from single-key grid operations.
//! - [`partition`] — the partition actor, single writer of one partition.
//! - [`supervisor`] — restarts failed partition actors from disk.
//! - [`cluster`] — cluster mode: the protocol node on its own thread, and the [`cluster::Transport`] it
//!   sends through.
//! - [`disk`] — the protocol's disk over RocksDB: writes and positions in one batch.
//! - [`cache`] — the per-partition LRU of hot entries within the memory budget.
//! - [`error`] — [`GridError`].

pub mod cache;
pub mod cluster;
pub mod disk;
pub mod error;
pub mod events;
pub mod grid;
pub mod partition;
pub mod sessions;
pub mod supervisor;

pub use error::GridError;
pub use grid::Grid;
pub use sessiongrid_model::KeyFilter;
pub use sessions::Sessions;
