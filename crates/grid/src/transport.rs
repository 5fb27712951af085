//! How a node reaches its peers, and where their messages come in.
//!
//! [`Transport`] is libp2p in the binary. [`Inbox`] is what the transport delivers to: it hands
//! each message straight to the actor it is for (a partition's replication, requests and
//! queries to that partition's actor, or runs them in the partition on the spot when the actor
//! runs on the receiving thread; answers to the request waiting for them; membership to
//! control), so no central thread sits on the data path.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use sessiongrid_cluster::control::MERGE_ID_BIT;
use sessiongrid_cluster::{Msg, NodeId};
use sessiongrid_model::partition_of;

use crate::control::ControlMsg;
use crate::engine::Shared;

/// How the node reaches its peers; libp2p in the binary.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, to: NodeId, msg: Msg);

    /// Starts the transport's tasks on the current runtime. The grid calls it once; on a node
    /// of one engine thread, on that thread, so that peers' messages are read and written
    /// where the work they cause runs, not handed between threads.
    fn start(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The transport of a node without peers (a single node): there is nobody to send to.
pub struct NoPeers;

impl Transport for NoPeers {
    fn send(&self, to: NodeId, _msg: Msg) {
        tracing::debug!(to, "no peers: message dropped");
    }
}

/// Where the transport delivers what peers send. Cheap to clone; created before the grid
/// starts (the transport needs it first) and attached to the grid once it runs. Messages that
/// come before are dropped (the protocol tolerates lost messages); seeds and doors are kept.
#[derive(Clone, Default)]
pub struct Inbox {
    inner: Arc<InboxInner>,
}

#[derive(Default)]
struct InboxInner {
    shared: OnceLock<Arc<Shared>>,
    /// What came before the grid was attached; taken under the same lock that sets `shared`.
    early: Mutex<Early>,
}

#[derive(Default)]
struct Early {
    seeds: Vec<NodeId>,
    doors: Vec<(NodeId, String)>,
}

impl Inbox {
    pub fn new() -> Inbox {
        Inbox::default()
    }

    pub(crate) fn attach(&self, shared: Arc<Shared>) {
        let early = {
            let mut early = self.inner.early.lock().expect("inbox lock");
            let _ = self.inner.shared.set(shared.clone());
            std::mem::take(&mut *early)
        };
        for seed in early.seeds {
            shared.to_control(ControlMsg::Seed(seed));
        }
        for (node, addr) in early.doors {
            shared.directory.set(node, addr);
        }
    }

    /// Runs `now` on the grid if it is attached, else `later` on what is kept until it is.
    fn when_attached(&self, now: impl FnOnce(&Shared), later: impl FnOnce(&mut Early)) {
        let mut early = self.inner.early.lock().expect("inbox lock");
        match self.inner.shared.get() {
            Some(shared) => now(shared),
            None => later(&mut early),
        }
    }

    /// The transport resolved a `--join` address to this node.
    pub fn seed(&self, node: NodeId) {
        self.when_attached(
            |shared| shared.to_control(ControlMsg::Seed(node)),
            |early| early.seeds.push(node),
        );
    }

    /// Peer `node` announced that its Redis door answers at `addr` (`host:port`).
    pub fn door(&self, node: NodeId, addr: String) {
        let kept = addr.clone();
        self.when_attached(
            |shared| shared.directory.set(node, addr),
            |early| early.doors.push((node, kept)),
        );
    }

    /// A message from peer `from`, handed to the actor it is for (or run on the spot, see
    /// [`Shared::peer_to_partition`](crate::engine::Shared::peer_to_partition)).
    pub fn message(&self, from: NodeId, msg: Msg) {
        let Some(shared) = self.inner.shared.get() else { return };
        let partitions = shared.cfg.partitions;
        match msg {
            Msg::Request { id, epoch, ref key, ref op, .. } => {
                let p = partition_of(key, partitions);
                if let Some(reply) = shared.read_forwarded(p, epoch, key, op) {
                    return shared.transport.send(from, Msg::Response { id, result: Ok(reply) });
                }
                shared.peer_to_partition(p, from, msg);
            }
            Msg::Query { partition: p, .. } | Msg::Replica { partition: p, .. } => {
                if p < partitions {
                    shared.peer_to_partition(p, from, msg);
                }
            }
            Msg::Response { id, result } if id & MERGE_ID_BIT != 0 => {
                shared.to_control(ControlMsg::MergeAnswered { id, ok: result.is_ok() });
            }
            Msg::Response { id, result } => shared.forwards.answer(id, result),
            Msg::Events(events) => shared.events.publish(events),
            Msg::PartitionEvents { partition, events } => {
                let (fresh, through) = shared.inflow(from, partition, events);
                shared.transport.send(from, Msg::EventsAck { partition, through });
                if !fresh.is_empty() {
                    shared.events.publish(fresh);
                }
            }
            Msg::EventsAck { partition: p, .. } => {
                if p < partitions {
                    shared.peer_to_partition(p, from, msg);
                }
            }
            Msg::Publish { channel, message } => {
                shared.pubsub.deliver(channel, message);
            }
            Msg::NotifyFlags(flags) => shared.notify_flags.store(flags, Ordering::Relaxed),
            Msg::Membership(msg) => shared.to_control(ControlMsg::Peer { from, msg }),
        }
    }
}
