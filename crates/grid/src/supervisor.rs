//! The partition supervisor: one-for-one restarts of failed partition actors.
//!
//! # Ownership
//! - **Owns** the spawning of every [`PartitionActor`] of this node, each on its shard's thread,
//!   and writes their refs into the shared partition table that the request paths and the inbox
//!   read.
//! - **Started** by [`Grid::start`](crate::Grid::start); **stopped** by `Grid::shutdown`, which
//!   stops its children with it.
//! - **Messages**: [`SupervisorMsg`]; otherwise it reacts to supervision events. A partition
//!   that fails (a panic or an error from a handler) or is killed is restarted from disk and
//!   handed the topology control follows. Partitions stop normally only together with the
//!   supervisor, which then no longer handles events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use sessiongrid_model::PartitionId;
use tracing::{error, info};

use crate::disk::DiskNode;
use crate::engine::Shared;
use crate::partition::{PartitionActor, PartitionArgs, PartitionMsg};
use crate::shard::Shards;

pub struct Supervisor;

pub enum SupervisorMsg {
    /// Start partition `p` again (after a failure, or a failed restart).
    Restart(PartitionId),
    /// The node is stopping: children that stop from now on are not restarted.
    ShuttingDown(ractor::RpcReplyPort<()>),
}

pub struct SupervisorArgs {
    pub shared: Arc<Shared>,
    pub disk: DiskNode,
    pub shards: Arc<Shards>,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    /// Which partition each live child actor serves.
    children: HashMap<ActorId, PartitionId>,
    shutting_down: bool,
}

/// Wait before retrying a restart that failed.
const RESTART_RETRY: Duration = Duration::from_secs(1);

impl SupervisorState {
    async fn spawn(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        p: PartitionId,
    ) -> Result<ActorRef<PartitionMsg>, ActorProcessingErr> {
        let args =
            PartitionArgs { id: p, shared: self.args.shared.clone(), disk: self.args.disk.clone() };
        let me = myself.get_cell();
        // Spawned from its shard's thread, so the actor and its timers run there.
        let started = self.args.shards.of_partition(p).spawn(async move {
            Actor::spawn_linked(None, PartitionActor, args, me).await.map(|(actor, _)| actor)
        });
        let actor = started.await??;
        self.children.insert(actor.get_id(), p);
        Ok(actor)
    }

    /// Starts a new actor for partition `p`, publishes it in the table and hands it the current
    /// topology; if that fails, tries again later. Never fails itself: a supervisor that
    /// returned an error would take every partition down with it.
    async fn restart(&mut self, myself: &ActorRef<SupervisorMsg>, p: PartitionId) {
        metrics::counter!("sessiongrid_partition_restarts_total").increment(1);
        match self.spawn(myself, p).await {
            Ok(actor) => {
                let shared = &self.args.shared;
                shared.partitions.write().expect("partition table lock")[p as usize] =
                    actor.clone();
                // After the table: control, which publishes the view before it sends a
                // topology to the table's actors, either reaches this actor or is seen here.
                let current = shared.view.borrow().topology.clone();
                if let Some(t) = current {
                    let _ = actor.cast(PartitionMsg::Adopt(t));
                }
                info!(partition = p, "partition actor restarted");
            }
            Err(e) => {
                error!(partition = p, error = %e, "partition restart failed; retrying");
                myself.send_after(RESTART_RETRY, move || SupervisorMsg::Restart(p));
            }
        }
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let count = args.shared.cfg.partitions;
        let mut state = SupervisorState { args, children: HashMap::new(), shutting_down: false };
        let mut refs = Vec::with_capacity(count as usize);
        for p in 0..count {
            refs.push(state.spawn(&myself, p).await?);
        }
        *state.args.shared.partitions.write().expect("partition table lock") = refs;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Restart(p) if !state.shutting_down => state.restart(&myself, p).await,
            SupervisorMsg::Restart(_) => {}
            SupervisorMsg::ShuttingDown(reply) => {
                state.shutting_down = true;
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, reason) => (cell, reason.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let Some(p) = state.children.remove(&cell.get_id()) else { return Ok(()) };
        if !state.shutting_down {
            error!(partition = p, reason = why, "partition actor ended; restarting from disk");
            state.restart(&myself, p).await;
        }
        Ok(())
    }
}
