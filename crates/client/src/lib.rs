//! A small async client for grid nodes' Redis door (RESP2), with no dependency on the grid.
//! The tower-sessions store and `sessiongrid bench` talk to nodes through it.
//!
//! # Layout
//! - [`connection`] — one connection: send a command, read its reply, within bounds.
//! - [`pool`] — connections to several nodes: a pool of idle ones, failover, `TRYAGAIN` retry,
//!   and a call about one key sent to its primary.
//! - [`routes`] — each hash slot's primary, from `CLUSTER SHARDS`.
//! - [`tls`] — TLS to nodes' TLS ports: the CA to trust, the client certificate to show.

pub mod connection;
pub mod pool;
pub mod routes;
pub mod tls;

pub use connection::{Auth, Connection, Io, Reply, Value};
pub use pool::Pool;
pub use routes::{Routes, SLOTS};
pub use tls::Tls;
