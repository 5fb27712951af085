//! The partition supervisor: one-for-one restarts of failed partition actors.
//!
//! # Ownership
//! - **Owns** the spawning of every [`Partition`] actor of this node and writes their refs into the
//!   shared [`PartitionTable`] that [`Grid`](crate::Grid) reads.
//! - **Started** by [`Grid::start`](crate::Grid::start); **stopped** by `Grid::shutdown`, which
//!   stops its children with it.
//! - **Messages**: none of its own; it reacts to supervision events. A partition that fails (a
//!   panic or an error from a handler) or is killed is restarted from disk. Partitions stop
//!   normally only together with the supervisor, which then no longer handles events.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use sessiongrid_model::PartitionId;
use tracing::{error, info};

use crate::partition::{Partition, PartitionArgs, PartitionMsg};

/// Current actor of every partition, indexed by partition id.
pub type PartitionTable = RwLock<Vec<ActorRef<PartitionMsg>>>;

pub struct Supervisor;

pub struct SupervisorArgs {
    /// Arguments of every partition, indexed by partition id.
    pub partitions: Vec<PartitionArgs>,
    pub table: Arc<PartitionTable>,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    /// Which partition each live child actor serves.
    children: HashMap<ActorId, PartitionId>,
}

impl SupervisorState {
    async fn spawn(
        &mut self,
        myself: &ActorRef<()>,
        p: PartitionId,
    ) -> Result<ActorRef<PartitionMsg>, ActorProcessingErr> {
        let args = self.args.partitions[p as usize].clone();
        let (actor, _) = Actor::spawn_linked(None, Partition, args, myself.get_cell()).await?;
        self.children.insert(actor.get_id(), p);
        Ok(actor)
    }
}

impl Actor for Supervisor {
    type Msg = ();
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<()>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let count = args.partitions.len();
        let mut state = SupervisorState { args, children: HashMap::new() };
        let mut refs = Vec::with_capacity(count);
        for p in 0..count {
            refs.push(state.spawn(&myself, p as PartitionId).await?);
        }
        *state.args.table.write().expect("partition table lock") = refs;
        Ok(state)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, reason) => {
                let Some(p) = state.children.remove(&cell.get_id()) else { return Ok(()) };
                error!(partition = p, %reason, "partition actor failed; restarting from disk");
                restart(&myself, state, p).await?;
            }
            // Partitions only stop with the supervisor; one that stops alone (killed) is restarted.
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let Some(p) = state.children.remove(&cell.get_id()) else { return Ok(()) };
                error!(partition = p, ?reason, "partition actor stopped; restarting from disk");
                restart(&myself, state, p).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Starts a new actor for partition `p` and publishes it in the table.
async fn restart(
    myself: &ActorRef<()>,
    state: &mut SupervisorState,
    p: PartitionId,
) -> Result<(), ActorProcessingErr> {
    metrics::counter!("sessiongrid_partition_restarts_total").increment(1);
    let actor = state.spawn(myself, p).await?;
    state.args.table.write().expect("partition table lock")[p as usize] = actor;
    info!(partition = p, "partition actor restarted");
    Ok(())
}
