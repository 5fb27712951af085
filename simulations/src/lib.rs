//! Deterministic simulations of the grid (seeded RNG, virtual clock, in-memory transport).
//!
//! Placeholder crate: the simulator arrives with clustering, when the grid logic talks to a
//! transport trait that this crate implements in memory.
