//! Run a Sessiongrid node inside an application.
//!
//! The `sessiongrid node` binary is a thin shell around this crate, so an embedded node is the
//! same node: it persists to RocksDB under `data_dir`, joins a cluster when `p2p_listen` is
//! set, and can open the Redis and HTTP doors too.
//!
//! ```no_run
//! use sessiongrid_embedded::{Doors, Node, NodeConfig};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let config = NodeConfig {
//!     data_dir: "./data/app".into(),
//!     p2p_listen: Some("127.0.0.1:7100".into()),
//!     join: vec!["127.0.0.1:7101".into()],
//!     ..NodeConfig::default()
//! };
//! let node = Node::start(config, Doors::none()).await?;
//! let id = node.sessions().create("shop".into(), None, None).await?;
//! let session = node.sessions().get(&id, &Default::default()).await?;
//! node.shutdown().await?; // hands this member's partitions over first
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`Node`], [`NodeHandle`], [`Doors`] (`node.rs`) — start, use, stop.
//! - [`secrets`] — reading secret files (cluster secret, passwords, tokens) safely.
//! - `gauges.rs` — gauges a node refreshes itself.

#[doc(hidden)]
pub mod fuzzing;
mod gauges;
mod node;
pub mod secrets;

pub use node::{Doors, Node, NodeHandle};
pub use sessiongrid_grid::sessions::{GetOptions, LoginOutcome, SessionError, Sessions, Stats};
pub use sessiongrid_grid::Grid;
pub use sessiongrid_model::config::NodeConfig;
pub use sessiongrid_model::session::{LoginPolicy, Session, Tag};
