//! The control actor: membership and the topology this node follows.
//!
//! # Ownership
//! - **Owns** the protocol's [`Control`] state machine (heartbeats, failure detection, leases,
//!   topologies, the push of a healed split's losing side) and the node's saved topology.
//! - **Started** by [`Grid::start`](crate::Grid::start) after the partition actors; **stopped**
//!   by `Grid::shutdown`, after it has handed the node's partitions over.
//! - **Messages**: [`ControlMsg`]: membership messages from peers (straight from the stream
//!   readers), learners in sync from partitions, answers to merge operations, operator requests,
//!   subscribers that start watching session events, and its own 10 ms tick (at which it
//!   also reads whether this node still has watchers).
//! - **Publishes**, after every message: the lease and, when they change, the topologies the
//!   request paths route by ([`crate::engine::View`]); then sends every partition actor the
//!   topologies it adopted. It never waits for a partition.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sessiongrid_cluster::{ClusterConfig, Control, ControlOutput, MemberMsg, NodeId, Topology};
use sessiongrid_model::PartitionId;
use tracing::info;

use crate::disk::DiskNode;
use crate::engine::{Shared, View};
use crate::partition::PartitionMsg;

const TICK: Duration = Duration::from_millis(10);
/// How long a node that handed everything over keeps answering before it stops.
const LINGER: Duration = Duration::from_millis(500);

/// How long a new watch of session events waits for every member to hear: long enough for a
/// member that does not answer to be declared dead and leave the topology.
pub(crate) fn watch_patience(cfg: &ClusterConfig) -> Duration {
    Duration::from_millis(2 * cfg.dead_after_ms)
}

pub enum ControlMsg {
    Peer {
        from: NodeId,
        msg: MemberMsg,
    },
    /// A local partition's report for the coordinator.
    Report(PartitionId, sessiongrid_cluster::Report),
    /// A peer answered a merge operation.
    MergeAnswered {
        id: u64,
        ok: bool,
    },
    /// The transport resolved a `--join` address to this node.
    Seed(NodeId),
    Tick,
    /// Hand every partition over; answered once the node holds none.
    Leave(RpcReplyPort<()>),
    /// Ask a node (this one or another) to drain.
    Drain(NodeId),
    /// Give up a lost node for good.
    Forget(NodeId),
    Status(RpcReplyPort<ControlStatus>),
    /// A subscriber of this node started watching session events: answered `true` once every
    /// member has heard, `false` if some member has not within twice `dead_after_ms`.
    Watch(RpcReplyPort<bool>),
}

/// Control's view of the cluster, for status pages.
#[derive(Clone, Debug, Default)]
pub struct ControlStatus {
    pub lease: bool,
    pub topology: Option<Arc<Topology>>,
}

pub struct ControlArgs {
    pub shared: Arc<Shared>,
    pub disk: DiskNode,
    /// Seeds were given, so the node waits to join rather than founding a cluster.
    pub joining: bool,
}

pub struct ControlActor;

pub struct ControlState {
    shared: Arc<Shared>,
    control: Control<DiskNode>,
    leaving: Vec<RpcReplyPort<()>>,
    drained_at: Option<Instant>,
    last_epoch: u64,
    /// Watchers waiting for every member to hear, with when they give up.
    watch_waiting: Vec<(RpcReplyPort<bool>, Instant)>,
}

impl Actor for ControlActor {
    type Msg = ControlMsg;
    type State = ControlState;
    type Arguments = ControlArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ControlMsg>,
        args: ControlArgs,
    ) -> Result<ControlState, ActorProcessingErr> {
        let shared = args.shared;
        let now = shared.clock.now();
        let control = Control::new(args.disk, shared.cfg.clone(), Vec::new(), args.joining, now);
        myself.send_interval(TICK, || ControlMsg::Tick);
        let mut state = ControlState {
            shared,
            control,
            leaving: Vec::new(),
            drained_at: None,
            last_epoch: 0,
            watch_waiting: Vec::new(),
        };
        state.flush();
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<ControlMsg>,
        msg: ControlMsg,
        state: &mut ControlState,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(msg);
        state.flush();
        state.answer_watchers();
        Ok(())
    }
}

impl ControlState {
    fn handle(&mut self, msg: ControlMsg) {
        let now = self.shared.clock.now();
        let me = self.shared.me;
        match msg {
            ControlMsg::Peer { from, msg } => self.control.receive(now, from, msg),
            ControlMsg::Report(partition, report) => self.control.report(now, partition, report),
            ControlMsg::MergeAnswered { id, ok } => self.control.merge_answered(now, id, ok),
            ControlMsg::Seed(seed) => self.control.add_seed(seed),
            ControlMsg::Tick => {
                self.control.set_watching(self.shared.events.watchers() > 0, now);
                self.control.tick(now);
                self.check_drained();
            }
            ControlMsg::Leave(reply) => {
                info!("handing partitions over before stopping");
                self.control.leave(now);
                self.leaving.push(reply);
            }
            ControlMsg::Drain(target) if target == me => {
                info!("drain requested by an operator");
                self.shared.drain_requested.notify_one();
            }
            ControlMsg::Drain(target) => {
                self.shared.transport.send(target, MemberMsg::Drain.into())
            }
            ControlMsg::Forget(lost) => self.control.forget(now, lost),
            ControlMsg::Status(reply) => {
                let status = ControlStatus {
                    lease: self.control.lease_valid(now),
                    topology: self.control.topology().cloned(),
                };
                let _ = reply.send(status);
            }
            ControlMsg::Watch(reply) => {
                // The watcher counted itself before asking: it is among those read here.
                self.control.set_watching(self.shared.events.watchers() > 0, now);
                let patience = watch_patience(&self.shared.cfg);
                self.watch_waiting.push((reply, Instant::now() + patience));
            }
        }
    }

    /// Answers the watchers once every member has heard (after the lease that says so is
    /// published), or when they give up waiting.
    fn answer_watchers(&mut self) {
        if self.watch_waiting.is_empty() {
            return;
        }
        let heard = self.control.watch_confirmed();
        let now = Instant::now();
        for (reply, until) in std::mem::take(&mut self.watch_waiting) {
            if heard || now >= until {
                let _ = reply.send(heard);
            } else {
                self.watch_waiting.push((reply, until));
            }
        }
    }

    /// Answers the hand-over once the node holds nothing, after a moment in which peers that
    /// have not adopted the last topology yet are told to go elsewhere instead of timing out.
    fn check_drained(&mut self) {
        if self.leaving.is_empty() || !self.control.drained() {
            return;
        }
        let since = *self.drained_at.get_or_insert_with(Instant::now);
        if since.elapsed() >= LINGER {
            info!("all partitions handed over");
            for reply in self.leaving.drain(..) {
                let _ = reply.send(());
            }
        }
    }

    /// Publishes the lease and the view, then carries out the state machine's outputs.
    fn flush(&mut self) {
        let lease = self.control.lease();
        *self.shared.lease.lock().expect("lease lock") = lease;
        metrics::gauge!("sessiongrid_session_events_watched")
            .set(f64::from(u8::from(lease.watchers.any())));
        let topology = self.control.topology().cloned();
        let members = topology.as_ref().map_or(0, |t| t.members.len());
        metrics::gauge!("sessiongrid_session_events_watching_members")
            .set(lease.watchers.count(members) as f64);
        let routing = self.control.routing_topology().cloned();
        self.shared.view.send_if_modified(|view| {
            let same = |a: &Option<Arc<Topology>>, b: &Option<Arc<Topology>>| match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if same(&view.topology, &topology) && same(&view.routing, &routing) {
                return false;
            }
            *view = View { topology, routing };
            true
        });
        let epoch = self.control.epoch();
        if epoch != self.last_epoch {
            metrics::counter!("sessiongrid_cluster_topology_changes_total").increment(1);
            self.last_epoch = epoch;
        }
        for output in self.control.take_outputs() {
            match output {
                ControlOutput::Send(to, msg) => self.shared.transport.send(to, msg),
                ControlOutput::Adopt(t) => {
                    let actors = self.shared.partitions.read().expect("partition table lock");
                    for actor in actors.iter() {
                        let _ = actor.cast(PartitionMsg::Adopt(t.clone()));
                    }
                }
                ControlOutput::DrainRequested => {
                    info!("drain requested by an operator");
                    self.shared.drain_requested.notify_one();
                }
            }
        }
    }
}
