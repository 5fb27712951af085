//! The doors into the grid.
//!
//! # Layout
//! - [`resp`] — the Redis protocol itself: a bounded request decoder, inline requests, the reply
//!   encoder for RESP2 and RESP3. No I/O, no grid: fuzzed alone.
//! - [`redis`] — the Redis-protocol door: server, connections, the command table and families.
//! - [`http`] — the HTTP door: health and Prometheus metrics.

pub mod http;
pub mod redis;
pub mod resp;
