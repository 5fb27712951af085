//! Deterministic simulation of the cluster protocol.
//!
//! The grid's protocol ([`sessiongrid_cluster`]) runs unchanged over in-memory disks and an
//! in-memory network, with one seeded RNG and a virtual clock: message delay, loss, duplication
//! and reordering, link cuts, lossy nodes (messages resent late, holding up their stream),
//! crashes and restarts with the disk as it was or lost, pauses, disks failing writes or reads,
//! and whole-cluster restarts. A [`checker::Checker`] records every operation and its answer and
//! verifies the grid's properties. A failing seed replays exactly.
//!
//! # Layout
//! - [`world`] — the simulated world and its fault schedule.
//! - [`disk`] — in-memory disks that survive a simulated crash.
//! - [`scale`] — many-node scenarios: movement against the ideal, balance, convergence, traffic.
//! - [`checker`] — the history and the properties it must keep.
//! - [`subscribers`] — what each node's event subscribers saw, and the at-least-once promise.
//! - [`flows`] — clients running the grid's session operations that span keys (rotate, login
//!   with at most one session per user, logout), and the rules over what they leave.

pub mod checker;
pub mod disk;
pub mod flows;
#[doc(hidden)]
pub mod fuzzing;
pub mod scale;
pub mod subscribers;
pub mod world;

pub use world::{Report, SimConfig, World};

/// The `tracing` filter for `SIM_LOG=<filter>`: the filter given, with this crate's `node{i t}`
/// span turned on unless the filter says otherwise, so every line says which node logged it
/// and when.
pub fn log_filter(spec: &str) -> String {
    if spec.contains("sessiongrid_simulations") {
        spec.to_string()
    } else {
        format!("{spec},sessiongrid_simulations=info")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_filter_shows_which_node_logged_unless_told_otherwise() {
        assert_eq!(
            super::log_filter("sessiongrid_cluster=debug"),
            "sessiongrid_cluster=debug,sessiongrid_simulations=info"
        );
        assert_eq!(super::log_filter("sessiongrid_simulations=off"), "sessiongrid_simulations=off");
    }
}
