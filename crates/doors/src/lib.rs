//! The doors into the grid.
//!
//! # Layout
//! - [`redis`] — the Redis-protocol door: server, connections, the command table and families.
//! - [`http`] — the HTTP door: health, Prometheus metrics and the session API.
//! - [`json`] — JSON shapes of sessions, events and stats, for the API and pub/sub.
//! - [`tls`] — TLS settings read from PEM files (reloadable) and the plain-or-TLS stream.

pub mod http;
pub mod json;
pub mod redis;
pub mod tls;
