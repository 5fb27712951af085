//! Errors of grid operations. Each maps to one Redis error reply in the doors.

use sessiongrid_cluster::Refusal;
use sessiongrid_model::PartitionId;
use sessiongrid_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The disk refused or returned corrupt data; the operation changed nothing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The partition's actor is restarting or the node is shutting down.
    #[error("partition {partition} is unavailable, try again")]
    Unavailable { partition: PartitionId },
    /// The cluster could not run the request now (a partition is moving or failing over).
    #[error("{}", refusal_text(.0))]
    Cluster(Refusal),
    /// A request that needs the other mode: partition actors on a clustered node, or a
    /// cluster operation on a single node.
    #[error("not available in this node's mode (single node or cluster member)")]
    NotInCluster,
    #[error("grid failed to start: {0}")]
    Start(String),
}

impl GridError {
    /// True if the operation had no effect and the client should retry (Redis' `TRYAGAIN`).
    pub fn is_transient(&self) -> bool {
        match self {
            GridError::Unavailable { .. } => true,
            GridError::Cluster(r) => {
                !matches!(r, Refusal::Store(_) | Refusal::Indeterminate | Refusal::WritesRefused(_))
            }
            _ => false,
        }
    }

    /// True if a write may or may not have been applied: sending it again could apply it twice,
    /// so it is not a `TRYAGAIN` (clients retry those on their own).
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, GridError::Cluster(Refusal::Indeterminate))
    }

    /// True if the owner's disk refuses writes for now (full or failing); reads are served.
    pub fn is_writes_refused(&self) -> bool {
        matches!(self, GridError::Cluster(Refusal::WritesRefused(_)))
    }
}

fn refusal_text(r: &Refusal) -> String {
    match r {
        Refusal::NotPrimary => "the partition is changing owner, try again".into(),
        Refusal::NoOwner => "every copy of this partition is on nodes that are gone: it waits for \
             one of them to come back (`sessiongrid forget NODE` gives them up)"
            .into(),
        Refusal::NotServing => "this node is not serving: a failover is in progress, or it is cut \
             off from most of the cluster (when_split = deny); try again"
            .into(),
        Refusal::Indeterminate => {
            "the write was not confirmed by every owner; it may or may not have been applied".into()
        }
        Refusal::Timeout => "no answer from the partition's owner in time".into(),
        Refusal::Store(e) => format!("store: {e}"),
        Refusal::WritesRefused(e) => format!(
            "the disk refuses writes ({e}); nothing was written, reads are served, and writes \
             are taken again once the disk has room"
        ),
    }
}
