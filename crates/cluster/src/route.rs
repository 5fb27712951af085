//! Where a client request goes: the partition's primary in the routing topology, here or on a
//! peer. Shared by the runtime's request path and the simulator's node, so both route alike.

use sessiongrid_model::PartitionId;

use crate::control::Lease;
use crate::msg::Refusal;
use crate::placement::NodeId;
use crate::topology::{Epoch, Topology};

/// How long a request refused as "not here yet" waits before it is routed again.
pub const RETRY_MS: u64 = 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// This node is the primary and holds a lease: hand it to the local partition.
    Local,
    /// Forward it to the primary, tagged with the epoch it was routed by.
    Remote { primary: NodeId, epoch: Epoch },
    /// Nowhere to go now: try again shortly (or give up with this refusal).
    Wait(Refusal),
    /// This node is in no cluster yet (still joining, or rejoining without a table): nothing to
    /// wait for that the client's own retry would not wait for as well.
    Refuse(Refusal),
}

/// Routes a request for partition `p` by `topology` (the routing topology of control).
pub fn route(
    me: NodeId,
    topology: Option<&std::sync::Arc<Topology>>,
    lease: Lease,
    now: u64,
    p: PartitionId,
) -> Route {
    let Some(t) = topology else { return Route::Refuse(Refusal::NotServing) };
    match t.primary(p).filter(|n| t.is_member(*n)) {
        Some(primary) if primary == me => {
            if now < lease.until {
                Route::Local
            } else {
                Route::Wait(Refusal::NotServing)
            }
        }
        Some(primary) => Route::Remote { primary, epoch: t.epoch },
        None => Route::Wait(Refusal::NoOwner),
    }
}
