//! The Redis-protocol door: existing Redis clients and session stores talk to the grid through it.
//!
//! - [`server`] — accept loop, connection limit, graceful shutdown.
//! - [`connection`] — one client: read, decode, execute in order, write (pipelining for free).
//! - [`clients`] — the open connections, for `CLIENT LIST` and `CLIENT KILL`.
//! - [`commands`] — the command table and one file per command family.
//! - [`scripting`] — Lua scripts and functions (`EVAL`, `FCALL`), run like transactions.

pub mod acl;
pub mod clients;
pub mod commands;
pub mod connection;
pub mod scripting;
pub mod server;

pub use server::{RedisDoor, RedisDoorConfig};
