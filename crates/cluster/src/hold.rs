//! A transaction's hold on a partition, as its primary keeps it.
//!
//! A Redis transaction (`MULTI`/`EXEC`) or script runs its commands one by one, each a request
//! like any other. To make them atomic and isolated, the node running it first holds the
//! partitions of its keys (in partition order, so two transactions never wait for each other in
//! a circle), runs its requests within the hold, then releases them. While a partition is held:
//! - requests of other clients wait, in the order they came, and run when the hold ends;
//! - the transaction's own requests are answered at once, without waiting for the backups;
//! - its writes go to the backups only when the hold ends, together, so a failover in the
//!   middle loses the whole transaction, never half of it: the release is answered once every
//!   owner has them.
//!
//! A hold ends when it is released, when it runs out (the node running the transaction died or
//! hung: `until`), or when the partition changes primary.

use std::collections::VecDeque;

use bytes::Bytes;
use sessiongrid_model::Op;

use crate::msg::{Query, Txn};
use crate::replica::Origin;

/// The current hold.
#[derive(Clone, Copy, Debug)]
pub struct Hold {
    pub txn: Txn,
    /// Monotonic ms at which it runs out.
    pub until: u64,
    /// The partition's version when the hold began: writes after it stay on this node until
    /// the hold ends.
    pub horizon: u64,
    /// Unix ms when the hold began: the transaction's requests see this time, as a Redis
    /// script or transaction does (a key does not expire in the middle of one).
    pub wall: u64,
}

/// A request that came while another transaction held the partition.
#[derive(Debug)]
pub enum Waiting {
    Request { origin: Origin, key: Bytes, op: Op },
    Query { origin: Origin, query: Query },
}

impl Waiting {
    pub fn origin(&self) -> Origin {
        match self {
            Waiting::Request { origin, .. } | Waiting::Query { origin, .. } => *origin,
        }
    }
}

/// The hold of a partition and the requests waiting for its end.
#[derive(Debug, Default)]
pub struct Holds {
    current: Option<Hold>,
    waiting: VecDeque<Waiting>,
}

/// How a request stands with the current hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Nobody holds the partition.
    Free,
    /// The request is within the transaction holding it.
    Holder,
    /// Another transaction holds it.
    Other,
}

impl Holds {
    pub fn current(&self) -> Option<Hold> {
        self.current
    }

    pub fn is_held(&self) -> bool {
        self.current.is_some()
    }

    pub fn standing(&self, txn: Option<Txn>) -> Standing {
        match (self.current, txn) {
            (None, _) => Standing::Free,
            (Some(h), Some(t)) if h.txn == t => Standing::Holder,
            _ => Standing::Other,
        }
    }

    /// Gives the partition to `txn` until `until`; `horizon` is the partition's version and
    /// `wall` the time now.
    pub fn take(&mut self, txn: Txn, until: u64, horizon: u64, wall: u64) {
        debug_assert!(self.current.is_none_or(|h| h.txn == txn), "one hold at a time");
        let (horizon, wall) = self.current.map_or((horizon, wall), |h| (h.horizon, h.wall));
        self.current = Some(Hold { txn, until, horizon, wall });
        metrics::counter!("sessiongrid_partition_holds_total").increment(1);
    }

    /// Ends the hold, whoever has it; returns it.
    pub fn end(&mut self) -> Option<Hold> {
        self.current.take()
    }

    /// Ends a hold that ran out at `mono`; returns it.
    pub fn end_if_out(&mut self, mono: u64) -> Option<Hold> {
        if self.current.is_some_and(|h| h.until <= mono) {
            metrics::counter!("sessiongrid_partition_holds_expired_total").increment(1);
            return self.current.take();
        }
        None
    }

    pub fn wait(&mut self, w: Waiting) {
        self.waiting.push_back(w);
    }

    /// The next request that waited, once the partition is free.
    pub fn next_waiting(&mut self) -> Option<Waiting> {
        if self.current.is_some() {
            return None;
        }
        self.waiting.pop_front()
    }

    /// Every waiting request, the hold gone with it (the partition is no longer this node's
    /// to serve).
    pub fn drain(&mut self) -> Vec<Waiting> {
        self.current = None;
        self.waiting.drain(..).collect()
    }
}
