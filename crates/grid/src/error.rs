//! Errors of grid operations. Each maps to one Redis error reply in the doors.

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
    #[error("grid failed to start: {0}")]
    Start(String),
}
