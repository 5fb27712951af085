//! The grid's transport over libp2p.
//!
//! TCP, then (with a cluster secret) a pre-shared-key handshake that strangers cannot complete,
//! then noise and yamux. Identify tells peers each other's listen addresses, which feed
//! Kademlia (in server mode, under the grid's own protocol name), so a node given one member's
//! address finds them all. Grid messages travel on one long-lived stream per peer and direction
//! (see [`streams`]), as length-prefixed postcard frames (see [`codec`]).
//!
//! # Layout
//! - [`swarm`] — the libp2p swarm, its event loop, and [`swarm::Net`], the grid's
//!   [`sessiongrid_grid::transport::Transport`]: built with the node, started by the grid on
//!   the runtime its tasks are to run on (the engine thread, on a node of one).
//! - [`streams`] — a writer per peer that batches queued messages into writes; readers of the
//!   streams peers open.
//! - [`codec`] — length-prefixed postcard frames with a size cap.
//! - [`identity`] — the node key kept in the data directory, and node ids derived from peer ids.

pub mod codec;
pub mod identity;
mod streams;
pub mod swarm;

pub use swarm::{Net, NetConfig};
