//! The grid layer: partitions as actors over the store, and the [`Grid`] handle that routes each
//! key to its partition.
//!
//! # Layout
//! - [`grid`] — [`Grid`], the entry point the doors call: start, execute, scan, flush, shut down.
//! - [`partition`] — the partition actor, single writer of one partition.
//! - [`supervisor`] — restarts failed partition actors from disk.
//! - [`cache`] — the per-partition LRU of hot entries within the memory budget.
//! - [`error`] — [`GridError`].

pub mod cache;
pub mod error;
pub mod grid;
pub mod partition;
pub mod supervisor;

pub use error::GridError;
pub use grid::Grid;
pub use partition::KeyFilter;
