//! The doors into the grid.
//!
//! # Layout
//! - [`redis`] — the Redis-protocol door: server, connections, the command table and families.
//! - [`http`] — the HTTP door: health, Prometheus metrics and the session API.
//! - [`json`] — JSON shapes of sessions, events and stats, for the API and pub/sub.
//! - [`audit`] — the audit trail of actions on others' sessions and on the node.
//! - [`throttle`] — failed credentials slow their address down; secrets compared in constant time.
//! - [`tls`] — TLS settings read from PEM files (reloadable) and the plain-or-TLS stream.

pub mod audit;
pub mod http;
pub mod json;
pub mod redis;
pub mod throttle;
pub mod tls;
