//! The doors into the grid.
//!
//! # Layout
//! - [`redis`] — the Redis-protocol door: server, connections, the command table and families.
//! - [`http`] — the HTTP door: health and Prometheus metrics.

pub mod http;
pub mod redis;
