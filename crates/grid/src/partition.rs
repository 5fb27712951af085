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
use sessiongrid_store::Store;
use tracing::debug_span;

use crate::control::ControlMsg;
use crate::disk::{DiskNode, DiskPartition, Pending};
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
    /// The partition's writes not yet committed, and the store that commits them.
    pending: Pending,
    store: Store,
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
        let disk = args.disk.partition(args.id);
        let pending = disk.pending();
        let store = args.disk.store().clone();
        let partition = Partition::new(args.id, shared.me, shared.cfg.clone(), disk);
        myself.send_interval(TICK, || PartitionMsg::Tick);
        let waiting = HashMap::new();
        Ok(PartitionState { shared, partition, pending, store, waiting, next_id: 1 })
    }

    async fn handle(
        &self,
        _myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        state: &mut PartitionState,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(msg);
        // Nothing the writes caused leaves before they are committed.
        if let Some(batch) = state.pending.take() {
            if let Err(e) = state.store.commit(batch).await {
                // Memory is ahead of disk: the supervisor restarts the partition from disk.
                return Err(format!("partition {}: {e}", state.partition.id()).into());
            }
        }
        let failure = state.partition.failure().map(|e| e.to_string());
        if let Some(e) = failure.or_else(|| state.pending.failure().map(|e| e.to_string())) {
            return Err(format!("partition {}: {e}", state.partition.id()).into());
        }
        state.flush();
        Ok(())
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
