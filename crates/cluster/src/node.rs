//! A whole node, composed the way the runtime composes it: one [`Control`], one [`Partition`]
//! per partition, and the routing of client requests. The pieces talk through
//! [`Internal`] messages that the caller delivers when it likes ([`Node::deliver`]), so the
//! simulator can delay and interleave them as a node's actor mailboxes would; messages from
//! peers go straight to the piece they are for, as the stream readers send them.
//!
//! What is shared rather than sent: the lease (partitions read control's latest, as the runtime
//! reads it from memory) and the routing topology (read when a request is routed).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sessiongrid_model::notify::Notices;
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::{partition_of, Op, PartitionId, Reply};

use crate::config::ClusterConfig;
use crate::control::{Control, ControlOutput, Lease, MERGE_ID_BIT};
use crate::events::Inflow;
use crate::msg::{Msg, Query, Refusal};
use crate::partition::{Partition, PartitionOutput};
use crate::placement::NodeId;
use crate::replica::{Origin, Report};
use crate::route::{route, Route, RETRY_MS};
use crate::storage::NodeStore;
use crate::topology::{Epoch, Topology};
use crate::Now;

#[derive(Debug)]
pub enum Output {
    Send(NodeId, Msg),
    /// The answer to the client request with this id.
    Reply(u64, Result<Reply, Refusal>),
    /// Session events for this node's subscribers.
    Events(Vec<SessionEvent>),
    /// Keyspace events of a write this node applied.
    Notify(Bytes, Notices),
    /// A message another node published, for this node's subscribers.
    Published {
        channel: Bytes,
        message: Bytes,
    },
    /// An operator asked this node to drain: the embedding process should stop gracefully.
    DrainRequested,
}

/// A message between the pieces of one node, in flight.
#[derive(Clone, Debug)]
pub enum Internal {
    /// Control tells partition `.0` about a topology it adopted.
    Adopt(PartitionId, Arc<Topology>),
    /// Partition `.0`'s report for the coordinator, to control.
    Report(PartitionId, Report),
    /// A client request routed to a local partition.
    Work(PartitionId, u64, Work),
}

/// What a client asks of a partition: one operation on one key, or a whole-partition query.
#[derive(Clone, Debug)]
pub enum Work {
    Op { key: Bytes, op: Op },
    Query { partition: PartitionId, query: Query },
}

impl Work {
    pub fn partition(&self, partitions: u16) -> PartitionId {
        match self {
            Work::Op { key, .. } => partition_of(key, partitions),
            Work::Query { partition, .. } => *partition,
        }
    }

    /// True if it changes nothing, so sending it again is harmless.
    pub fn read_only(&self) -> bool {
        match self {
            Work::Op { op, .. } => !op.is_write(),
            Work::Query { query, .. } => query.read_only(),
        }
    }

    /// The message that forwards it to the primary, routed by topology `epoch`, given up on
    /// at `expires_at` (wall clock).
    pub fn forward(self, id: u64, epoch: Epoch, expires_at: u64) -> Msg {
        match self {
            Work::Op { key, op } => Msg::Request { id, epoch, expires_at, key, op },
            Work::Query { partition, query } => {
                Msg::Query { id, epoch, expires_at, partition, query }
            }
        }
    }
}

struct ClientRequest {
    id: u64,
    work: Work,
    deadline: u64,
}

pub struct Node<D: NodeStore> {
    me: NodeId,
    cfg: Arc<ClusterConfig>,
    control: Control<D>,
    partitions: Vec<Partition<D::Partition>>,
    /// Requests sent to another node's primary, by forward id: (request, to).
    forwards: BTreeMap<u64, (ClientRequest, NodeId)>,
    next_forward: u64,
    /// Requests handed to a local partition, by client id.
    local: BTreeMap<u64, ClientRequest>,
    /// Requests waiting to be routed again, with the time they may go.
    waiting: Vec<(u64, ClientRequest)>,
    internal: Vec<Internal>,
    out: Vec<Output>,
    /// Partitions restarted from disk after a write failed to reach it.
    restarts: u64,
    /// Session events other nodes sent, as far as delivered.
    inflow: Inflow,
}

impl<D: NodeStore> Node<D> {
    pub fn new(
        mut disk: D,
        cfg: Arc<ClusterConfig>,
        seeds: Vec<NodeId>,
        joining: bool,
        now: Now,
    ) -> Self {
        let me = disk.node_id();
        let partitions = (0..cfg.partitions)
            .map(|p| Partition::new(p, me, cfg.clone(), disk.partition(p), now))
            .collect();
        let control = Control::new(disk, cfg.clone(), seeds, joining, now);
        let mut node = Node {
            me,
            cfg,
            control,
            partitions,
            forwards: BTreeMap::new(),
            next_forward: crate::dedup::first_forward_id(now.wall),
            local: BTreeMap::new(),
            waiting: Vec::new(),
            internal: Vec::new(),
            out: Vec::new(),
            restarts: 0,
            inflow: Inflow::default(),
        };
        node.collect(now);
        node
    }

    pub fn id(&self) -> NodeId {
        self.me
    }

    /// Whether this node has subscribers to session events (see [`crate::interest`]).
    pub fn set_watching(&mut self, on: bool, now: Now) {
        self.control.set_watching(on, now);
    }

    pub fn control(&self) -> &Control<D> {
        &self.control
    }

    pub fn partitions(&mut self) -> impl Iterator<Item = &mut Partition<D::Partition>> {
        self.partitions.iter_mut()
    }

    pub fn topology(&self) -> Option<&Arc<Topology>> {
        self.control.topology()
    }

    /// The topology partition `p` follows (it adopts control's after a while).
    pub fn partition_topology(&self, p: PartitionId) -> Option<Arc<Topology>> {
        self.partitions.get(p as usize)?.topology().cloned()
    }

    pub fn merging(&self) -> bool {
        self.control.merging()
    }

    pub fn rejoining(&self) -> bool {
        self.control.rejoining()
    }

    pub fn merges(&self) -> u64 {
        self.control.merges()
    }

    /// How many times a partition restarted from disk after a write failed to reach it.
    pub fn partition_restarts(&self) -> u64 {
        self.restarts
    }

    pub fn drained(&self) -> bool {
        self.control.drained()
    }

    pub fn lease_valid(&self, now: Now) -> bool {
        self.control.lease_valid(now)
    }

    pub fn leave(&mut self, now: Now) {
        self.control.leave(now);
        self.collect(now);
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// Messages between this node's pieces, to be handed back through [`Node::deliver`].
    pub fn take_internal(&mut self) -> Vec<Internal> {
        std::mem::take(&mut self.internal)
    }

    pub fn tick(&mut self, now: Now) {
        self.control.tick(now);
        self.collect(now);
        let lease = self.control.lease();
        for i in 0..self.partitions.len() {
            if self.partitions[i].next_tick().is_some_and(|at| at <= now.mono) {
                self.partitions[i].tick(now, lease);
            }
            self.collect_partition(now, i);
        }
        let late: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, (req, _))| now.mono >= req.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some((req, _)) = self.forwards.remove(&id) {
                // No answer says nothing about a write: the primary may have it queued.
                let why =
                    if req.work.read_only() { Refusal::Timeout } else { Refusal::Indeterminate };
                self.out.push(Output::Reply(req.id, Err(why)));
            }
        }
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|(at, _)| *at <= now.mono);
        self.waiting = later;
        for (_, req) in due {
            self.route(now, req);
        }
    }

    /// A client asks this node to run `op` on `key`; the answer comes as [`Output::Reply`].
    pub fn request(&mut self, now: Now, id: u64, key: Bytes, op: Op) {
        let deadline = now.mono + self.cfg.request_timeout_ms;
        self.route(now, ClientRequest { id, work: Work::Op { key, op }, deadline });
    }

    /// A client asks about a whole partition; answered by its primary, wherever it is.
    pub fn query(&mut self, now: Now, id: u64, partition: PartitionId, query: Query) {
        let deadline = now.mono + self.cfg.request_timeout_ms;
        self.route(now, ClientRequest { id, work: Work::Query { partition, query }, deadline });
    }

    fn route(&mut self, now: Now, req: ClientRequest) {
        if now.mono >= req.deadline {
            // Its client has been answered, or is about to be: sent on now (after a pause, say),
            // a write would land after whatever that client did next (sim seed 10953 of
            // `deny 2`). No attempt so far was run (each was refused), so it is a plain timeout.
            return self.out.push(Output::Reply(req.id, Err(Refusal::Timeout)));
        }
        let p = req.work.partition(self.cfg.partitions);
        let lease = self.control.lease();
        match route(self.me, self.control.routing_topology(), lease, now.mono, p) {
            Route::Local => {
                self.internal.push(Internal::Work(p, req.id, req.work.clone()));
                self.local.insert(req.id, req);
            }
            Route::Remote { primary, epoch } => {
                let id = self.next_forward;
                self.next_forward += 1;
                // The primary drops it once its client's deadline has passed.
                let expires_at = now.wall.saturating_add(req.deadline - now.mono);
                let msg = req.work.clone().forward(id, epoch, expires_at);
                self.out.push(Output::Send(primary, msg));
                self.forwards.insert(id, (req, primary));
            }
            Route::Wait(why) => self.retry(now, req, why),
            Route::Refuse(why) => self.out.push(Output::Reply(req.id, Err(why))),
        }
    }

    /// Routes `req` again shortly, or gives up with `why` once its deadline has passed.
    fn retry(&mut self, now: Now, req: ClientRequest, why: Refusal) {
        if now.mono + RETRY_MS > req.deadline {
            self.out.push(Output::Reply(req.id, Err(why)));
        } else {
            self.waiting.push((now.mono + RETRY_MS, req));
        }
    }

    /// Hands an internal message to the piece it is for.
    pub fn deliver(&mut self, now: Now, msg: Internal) {
        match msg {
            Internal::Adopt(p, t) => {
                if let Some(i) = self.index(p) {
                    self.partitions[i].adopt(now, t);
                    self.collect_partition(now, i);
                }
            }
            Internal::Report(partition, report) => {
                self.control.report(now, partition, report);
                self.collect(now);
            }
            Internal::Work(p, id, work) => {
                let Some(i) = self.index(p) else { return };
                let lease = self.control.lease();
                let origin = Origin::Local(id);
                let epoch = self.partitions[i].epoch();
                match work {
                    Work::Op { key, op } => {
                        self.partitions[i].request(now, lease, origin, epoch, key, op)
                    }
                    Work::Query { query, .. } => {
                        self.partitions[i].query(now, lease, origin, epoch, query)
                    }
                }
                self.collect_partition(now, i);
            }
        }
    }

    fn index(&self, p: PartitionId) -> Option<usize> {
        (p < self.cfg.partitions).then_some(p as usize)
    }

    /// A message from a peer, handed to the piece it is for.
    pub fn receive(&mut self, now: Now, from: NodeId, msg: Msg) {
        let lease = self.control.lease();
        match msg {
            Msg::Request { id, epoch, expires_at, key, op } => {
                let p = partition_of(&key, self.cfg.partitions);
                let origin = Origin::Remote { node: from, id, expires_at };
                self.partitions[p as usize].request(now, lease, origin, epoch, key, op);
                self.collect_partition(now, p as usize);
            }
            Msg::Query { id, epoch, expires_at, partition, query } => {
                let Some(i) = self.index(partition) else { return };
                let origin = Origin::Remote { node: from, id, expires_at };
                self.partitions[i].query(now, lease, origin, epoch, query);
                self.collect_partition(now, i);
            }
            Msg::Replica { partition, epoch, body } => {
                let Some(i) = self.index(partition) else { return };
                self.partitions[i].receive(now, lease, from, epoch, body);
                self.collect_partition(now, i);
            }
            Msg::Response { id, result } if id & MERGE_ID_BIT != 0 => {
                self.control.merge_answered(now, id, result.is_ok());
                self.collect(now);
            }
            Msg::Response { id, result } => {
                let Some((req, _)) = self.forwards.remove(&id) else { return };
                match result {
                    Err(r) if r.is_retryable() => self.retry(now, req, r),
                    result => self.out.push(Output::Reply(req.id, result)),
                }
            }
            Msg::Events(events) => self.out.push(Output::Events(events)),
            Msg::PartitionEvents { partition, events } => {
                let (fresh, through) = self.inflow.receive(from, partition, events);
                self.out.push(Output::Send(from, Msg::EventsAck { partition, through }));
                if !fresh.is_empty() {
                    self.out.push(Output::Events(fresh));
                }
            }
            Msg::EventsAck { partition, through } => {
                let Some(i) = self.index(partition) else { return };
                self.partitions[i].events_acked(now, from, through);
                self.collect_partition(now, i);
            }
            Msg::Publish { channel, message } => {
                self.out.push(Output::Published { channel, message })
            }
            // Keyspace events are published by the embedding node, which keeps the flags.
            Msg::NotifyFlags(_) => {}
            Msg::Membership(msg) => {
                self.control.receive(now, from, msg);
                self.collect(now);
            }
        }
    }

    /// Carries out control's outputs.
    fn collect(&mut self, now: Now) {
        for output in self.control.take_outputs() {
            match output {
                ControlOutput::Send(to, msg) => self.out.push(Output::Send(to, msg)),
                ControlOutput::Adopt(t) => {
                    self.reroute_dead_reads(now, &t);
                    for p in 0..self.cfg.partitions {
                        self.internal.push(Internal::Adopt(p, t.clone()));
                    }
                }
                ControlOutput::DrainRequested => self.out.push(Output::DrainRequested),
            }
        }
    }

    fn collect_partition(&mut self, now: Now, i: usize) {
        if self.partitions[i].failure().is_some() {
            return self.restart_partition(now, i);
        }
        let p = self.partitions[i].id();
        for output in self.partitions[i].take_outputs() {
            match output {
                PartitionOutput::Send(to, msg) => self.out.push(Output::Send(to, msg)),
                PartitionOutput::Reply(id, result) => {
                    let Some(req) = self.local.remove(&id) else { continue };
                    match result {
                        Err(r) if r.is_retryable() => self.retry(now, req, r),
                        result => self.out.push(Output::Reply(id, result)),
                    }
                }
                PartitionOutput::Events(events) => self.out.push(Output::Events(events)),
                PartitionOutput::Notify(key, notices) => {
                    self.out.push(Output::Notify(key, notices))
                }
                PartitionOutput::Report(report) => self.internal.push(Internal::Report(p, report)),
            }
        }
    }

    /// Partition `i`'s store failed to put a write on disk, so memory is ahead of disk: what
    /// the partition said since its last message is dropped (nothing a lost write caused may
    /// leave), and it starts again from disk, as the node's supervisor restarts a failed actor.
    /// The requests it had end as a dead actor's do (writes indeterminate, reads routed again),
    /// and it is handed the topology control follows, as a message like any other.
    fn restart_partition(&mut self, now: Now, i: usize) {
        let p = self.partitions[i].id();
        self.restarts += 1;
        let store = self.control.disk_mut().partition(p);
        self.partitions[i] = Partition::new(p, self.me, self.cfg.clone(), store, now);
        let partitions = self.cfg.partitions;
        let theirs: Vec<u64> = self
            .local
            .iter()
            .filter(|(_, req)| req.work.partition(partitions) == p)
            .map(|(id, _)| *id)
            .collect();
        for id in theirs {
            let Some(req) = self.local.remove(&id) else { continue };
            if req.work.read_only() {
                self.route(now, req);
            } else {
                self.out.push(Output::Reply(req.id, Err(Refusal::Indeterminate)));
            }
        }
        if let Some(t) = self.control.topology().cloned() {
            self.internal.push(Internal::Adopt(p, t));
        }
    }

    /// Reads forwarded to a node that left the cluster go again to the new primary at once,
    /// instead of waiting out the timeout. Writes wait for their deadline, past which the
    /// primary drops them: the node may be alive (declared dead across a cut or a lossy link,
    /// or back since) and still run one that reaches it late; answered indeterminate at once,
    /// it landed after the write its client sent next (sim seed 1095: a hash field set again
    /// to its older value).
    fn reroute_dead_reads(&mut self, now: Now, t: &Topology) {
        let dead: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, (req, to))| req.work.read_only() && !t.is_member(*to))
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            if let Some((req, _)) = self.forwards.remove(&id) {
                self.route(now, req);
            }
        }
    }

    /// Control's lease as partitions read it now.
    pub fn lease(&self) -> Lease {
        self.control.lease()
    }
}
