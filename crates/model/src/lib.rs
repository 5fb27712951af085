//! The grid's shared vocabulary. Every other crate depends on this one and it depends on none of
//! them.
//!
//! # Layout
//! - [`key`] — which partition a key belongs to (CRC16 of the key or of its `{hash tag}`).
//! - [`entry`] — what is stored under a key: a string, hash, set, sorted set or list, with its expiry and version.
//! - [`op`] — single-key operations a partition executes, and [`reply`] what they answer.
//! - [`apply`] — the Redis semantics of every operation, as a pure function over one entry.
//! - [`delta`] — what a write changed, as stored and replicated: the whole entry, or a hash's or
//!   session's header and the fields that changed.
//! - [`merge`] — how an entry from the other side of a healed network split joins this side's.
//! - [`lcs`] — `LCS`: the longest common subsequence of two strings and its matching runs.
//! - [`glob`] — Redis glob patterns for `KEYS` and `SCAN MATCH`; [`filter`] the key filter built on them.
//! - [`set`], [`zset`], [`list`] — sets, sorted sets and lists: each type, its operations and
//!   their Redis semantics; [`pick`] the seeded random picks of `SPOP` and its kind.
//! - [`notify`] — keyspace notifications: the classes a node publishes and the events of a write.
//! - [`session`] — HTTP sessions, their tombstones and per-user login registries, with their rules.
//! - [`config`] — the node configuration shared by the binary and embedded mode.
//! - [`time`] — the wall clock in unix milliseconds, the unit of every expiry.

pub mod apply;
pub mod config;
pub mod delta;
pub mod entry;
pub mod filter;
pub mod glob;
pub mod key;
pub mod lcs;
pub mod list;
pub mod merge;
pub mod notify;
pub mod num;
pub mod op;
pub mod pick;
pub mod reply;
pub mod session;
pub mod set;
pub mod time;
pub mod zset;

pub use delta::{Change, Delta};
pub use entry::{Entry, Value};
pub use filter::KeyFilter;
pub use key::{partition_of, PartitionId};
pub use op::{Op, SetCond};
pub use reply::Reply;
