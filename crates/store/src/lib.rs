//! RocksDB tier: the durable copy of every partition, and the spill space for entries that do not
//! fit in the memory budget.
//!
//! # Layout
//! - [`keys`] — how entries, expiry-index rows and partition metadata are laid out as RocksDB keys.
//! - [`store`] — [`Store`], the handle partitions use: point reads, atomic batches, scans.
//! - [`batch`] — [`Batch`], one atomic write of a partition (entries + fields + expiry index +
//!   metadata); a hash or session is a header row plus a row per field.
//! - [`journal`] — [`MetaJournal`]: partitions' metadata recorded once per commit group,
//!   checkpointed to their rows every so often, folded into them at open.
//! - `format` — the directory's layout version and the upgrade of older directories at open.
//! - `health` — whether the disk takes writes: after a failed write, writes are refused up
//!   front (reads go on) until a probe write, once a second, succeeds.
//!
//! Every write of a partition is one `WriteBatch` (with its metadata, in its row or the
//! journal's), so an entry, its expiry-index row and the partition's key count and position
//! can never disagree after a crash.

pub mod batch;
mod format;
mod health;
pub mod journal;
pub mod keys;
pub mod store;

pub use batch::Batch;
pub use journal::MetaJournal;
pub use store::{Due, PartitionMeta, Position, Store, StoreError, DUE_LOOK_AHEAD_MS};
