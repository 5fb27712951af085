//! The partition actor: the only writer of one partition on this node.
//!
//! # Ownership
//! - **Owns** the partition's [`Partition`] state machine (its replica, the topology it follows)
//!   and, through its [`DiskPartition`], the partition's rows and its LRU tier of hot entries.
//! - **Started** by the [`supervisor`](crate::supervisor) at node start, and again by it if the
//!   actor fails; a restarted actor starts from disk (every acknowledged write is there) and is
//!   given the topology control follows.
//! - **Messages**: [`PartitionMsg`]: client requests of this node, requests, queries and
//!   replication from peers (straight from the stream readers), topologies from control, its
//!   own tick. One at a time, so every operation on a key is atomic and the partition's writes
//!   are totally ordered.
//! - **Sends** peer messages itself through the transport, answers to the waiting request
//!   path, events to the event bus, and learners in sync to control.
//! - **Exits** when the supervisor stops it at shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sessiongrid_cluster::replica::Origin;
use sessiongrid_cluster::{Msg, NodeId, Partition, PartitionOutput, PartitionStats, Refusal};
use sessiongrid_cluster::{NodeStore, Topology};
use sessiongrid_model::{PartitionId, Reply};
use tracing::debug_span;

use crate::control::ControlMsg;
use crate::disk::{DiskNode, DiskPartition};
use crate::engine::{Shared, Work};

/// How often a partition retransmits, sweeps expired keys and times out requests.
const TICK: Duration = Duration::from_millis(20);

pub enum PartitionMsg {
    /// A client request of this node.
    Local {
        work: Work,
        reply: RpcReplyPort<Result<Reply, Refusal>>,
    },
    /// A request, query or replication message from a peer.
    Peer {
        from: NodeId,
        msg: Msg,
    },
    /// A topology control adopted.
    Adopt(Arc<Topology>),
    Tick,
    Stats(RpcReplyPort<PartitionStats>),
}

/// Everything a partition actor needs to start.
#[derive(Clone)]
pub struct PartitionArgs {
    pub id: PartitionId,
    pub shared: Arc<Shared>,
    pub disk: DiskNode,
}

pub struct PartitionActor;

pub struct PartitionState {
    shared: Arc<Shared>,
    partition: Partition<DiskPartition>,
    /// Local requests waiting for their answer, by the id the state machine knows them by.
    waiting: HashMap<u64, RpcReplyPort<Result<Reply, Refusal>>>,
    next_id: u64,
}

impl Actor for PartitionActor {
    type Msg = PartitionMsg;
    type State = PartitionState;
    type Arguments = PartitionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PartitionMsg>,
        mut args: PartitionArgs,
    ) -> Result<PartitionState, ActorProcessingErr> {
        let shared = args.shared;
        let store = args.disk.partition(args.id);
        let partition = Partition::new(args.id, shared.me, shared.cfg.clone(), store);
        myself.send_interval(TICK, || PartitionMsg::Tick);
        Ok(PartitionState { shared, partition, waiting: HashMap::new(), next_id: 1 })
    }

    async fn handle(
        &self,
        _myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        state: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(msg);
        match state.partition.failure() {
            // The supervisor restarts it from disk.
            Some(e) => Err(format!("partition {}: {e}", state.partition.id()).into()),
            None => Ok(()),
        }
    }
}

impl PartitionState {
    fn handle(&mut self, msg: PartitionMsg) {
        let now = self.shared.clock.now();
        let lease = self.shared.lease();
        let p = &mut self.partition;
        match msg {
            PartitionMsg::Local { work, reply } => {
                let id = self.next_id;
                self.next_id += 1;
                self.waiting.insert(id, reply);
                let (origin, epoch) = (Origin::Local(id), p.epoch());
                match work {
                    Work::Op { key, op } => {
                        let _span = debug_span!("partition_op", partition = p.id(), op = op.name())
                            .entered();
                        p.request(now, lease, origin, epoch, key, op)
                    }
                    Work::Query { query, .. } => p.query(now, lease, origin, epoch, query),
                }
            }
            PartitionMsg::Peer { from, msg } => match msg {
                Msg::Request { id, epoch, key, op } => {
                    let _span =
                        debug_span!("partition_op", partition = p.id(), op = op.name(), from)
                            .entered();
                    p.request(now, lease, Origin::Remote { node: from, id }, epoch, key, op)
                }
                Msg::Query { id, epoch, query, .. } => {
                    p.query(now, lease, Origin::Remote { node: from, id }, epoch, query)
                }
                Msg::Replica { epoch, body, .. } => p.receive(now, lease, from, epoch, body),
                Msg::Response { .. } | Msg::Events(_) | Msg::Membership(_) => {
                    tracing::debug!(from, "not a partition's message")
                }
            },
            PartitionMsg::Adopt(t) => p.adopt(now, t),
            PartitionMsg::Tick => p.tick(now),
            PartitionMsg::Stats(reply) => {
                let _ = reply.send(p.stats());
            }
        }
        self.flush();
    }

    /// Carries out what the state machine asked for.
    fn flush(&mut self) {
        let p = self.partition.id();
        for output in self.partition.take_outputs() {
            match output {
                PartitionOutput::Send(to, msg) => self.shared.transport.send(to, msg),
                PartitionOutput::Reply(id, result) => {
                    if let Some(reply) = self.waiting.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                PartitionOutput::Events(events) => self.shared.events.publish(events),
                PartitionOutput::Synced(node) => {
                    self.shared.to_control(ControlMsg::Synced(p, node))
                }
            }
        }
    }
}
