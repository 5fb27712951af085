//! A whole node of the protocol: membership, the replicas of the partitions it holds, and the
//! routing of client requests to primaries. Pure: the runtime calls [`Node::tick`],
//! [`Node::receive`] and [`Node::request`], and carries out the [`Output`]s.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::{partition_of, Op, PartitionId, Reply};
use tracing::{info, warn};

use crate::config::ClusterConfig;
use crate::membership::{Membership, Outbox};
use crate::merge::Push;
use crate::msg::{Msg, Query, Refusal};
use crate::placement::NodeId;
use crate::replica::{Effect, Origin, Replica};
use crate::storage::NodeStore;
use crate::topology::Topology;
use crate::Now;

/// How long a request refused as "not here yet" waits before it is routed again.
const RETRY_MS: u64 = 20;
/// Replica messages from a future epoch kept while the topology is fetched.
const EARLY_MESSAGES_MAX: usize = 4096;

#[derive(Debug)]
pub enum Output {
    Send(NodeId, Msg),
    /// The answer to the client request with this id.
    Reply(u64, Result<Reply, Refusal>),
    /// Session events for this node's subscribers.
    Events(Vec<SessionEvent>),
    /// An operator asked this node to drain: the embedding process should stop gracefully.
    DrainRequested,
}

struct ClientRequest {
    id: u64,
    work: Work,
    deadline: u64,
}

#[derive(Clone)]
enum Work {
    Op { key: Bytes, op: Op },
    Query { partition: PartitionId, query: Query },
}

pub struct Node<D: NodeStore> {
    me: NodeId,
    cfg: Arc<ClusterConfig>,
    disk: D,
    membership: Membership,
    replicas: BTreeMap<PartitionId, Replica<D::Partition>>,
    /// Requests sent to another node's primary, by forward id: (request, sent at, to).
    forwards: BTreeMap<u64, (ClientRequest, u64, NodeId)>,
    next_forward: u64,
    /// Replica messages from a newer epoch than this node's, held until it catches up.
    early: Vec<(NodeId, Msg)>,
    /// Requests waiting to be routed again, with the time they may go.
    waiting: Vec<(u64, ClientRequest)>,
    /// Pushing this node's data to the side of a healed split it merges into.
    merge: Option<Push>,
    /// Merges into the other side of a healed split this node has finished.
    merges: u64,
    out: Vec<Output>,
}

impl<D: NodeStore> Node<D> {
    /// A node over `disk`. `joining`: it was given seeds, so it waits for a cluster instead of
    /// founding one (irrelevant once the disk remembers a topology).
    pub fn new(
        disk: D,
        cfg: Arc<ClusterConfig>,
        seeds: Vec<NodeId>,
        joining: bool,
        now: Now,
    ) -> Self {
        let me = disk.node_id();
        let saved = disk.load_topology();
        let mut membership = Membership::new(me, cfg.clone(), joining, saved.clone(), now.mono);
        for seed in seeds {
            membership.add_seed(seed);
        }
        let mut node = Node {
            me,
            cfg,
            disk,
            membership,
            replicas: BTreeMap::new(),
            forwards: BTreeMap::new(),
            next_forward: 1,
            early: Vec::new(),
            waiting: Vec::new(),
            merge: None,
            merges: 0,
            out: Vec::new(),
        };
        // The topology to act on: the saved one (unless this node must rejoin first), or the one
        // it has just founded, which nothing else would make it adopt until a peer joins.
        let current = node.membership.topology().cloned();
        match (saved, current) {
            (Some(t), _) if !node.membership.is_rejoining() => node.adopt_replicas(now, &t),
            (None, Some(t)) => node.on_topology(now, &t),
            _ => {}
        }
        if node.cfg.lite {
            // Never an owner: the coordinator keeps it out of every target from the first ping.
            node.leave(now);
        }
        node
    }

    pub fn id(&self) -> NodeId {
        self.me
    }

    /// Starts handing this node's partitions over to the others (graceful shutdown).
    pub fn leave(&mut self, now: Now) {
        let mut outbox = Outbox::new();
        self.membership.leave(now.mono, &mut outbox);
        self.flush_outbox(outbox);
    }

    /// Gives up lost node `node` for good; see [`Membership::forget`].
    pub fn forget(&mut self, now: Now, node: NodeId) {
        let mut outbox = Outbox::new();
        self.membership.forget(now.mono, node, &mut outbox);
        self.flush_outbox(outbox);
    }

    /// True once this node holds nothing the cluster needs, or there is nobody left to take it
    /// (every other member is leaving too): it may stop.
    pub fn drained(&self) -> bool {
        let Some(t) = self.topology() else { return true };
        let nobody_stays =
            t.members.iter().all(|m| *m == self.me || t.leaving.binary_search(m).is_ok());
        !t.is_member(self.me) || nobody_stays || t.drained(self.me)
    }

    /// A seed found after start (the transport resolved a `--join` address to a node).
    pub fn add_seed(&mut self, seed: NodeId) {
        self.membership.add_seed(seed);
    }

    pub fn topology(&self) -> Option<&Arc<Topology>> {
        self.membership.topology()
    }

    /// True while this node pushes its data to the side of a healed split it lost to.
    pub fn merging(&self) -> bool {
        self.membership.merging().is_some()
    }

    /// Merges into the other side of a healed split this node has finished.
    pub fn merges(&self) -> u64 {
        self.merges
    }

    pub fn lease_valid(&self, now: Now) -> bool {
        self.membership.lease_valid(now.mono)
    }

    /// The replicas this node holds, for inspection.
    pub fn replicas(&mut self) -> impl Iterator<Item = (&PartitionId, &mut Replica<D::Partition>)> {
        self.replicas.iter_mut()
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    pub fn tick(&mut self, now: Now) {
        let mut outbox = Outbox::new();
        let adopted = self.membership.tick(now.mono, &mut outbox);
        self.flush_outbox(outbox);
        if let Some(t) = adopted {
            self.on_topology(now, &t);
        }
        if let Some(push) = self.merge.as_mut() {
            push.expire(now.mono.saturating_sub(self.cfg.request_timeout_ms));
        }
        self.drive_merge(now);
        let mut effects = Vec::new();
        for replica in self.replicas.values_mut() {
            replica.tick(now, &mut effects);
        }
        self.apply_effects(now, effects);
        let late: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, (_, sent, _))| now.mono >= sent + self.cfg.request_timeout_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some((req, _, _)) = self.forwards.remove(&id) {
                self.out.push(Output::Reply(req.id, Err(Refusal::Timeout)));
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

    fn partition(&self, key: &[u8]) -> PartitionId {
        partition_of(key, self.cfg.partitions)
    }

    fn route(&mut self, now: Now, req: ClientRequest) {
        let p = match &req.work {
            Work::Op { key, .. } => self.partition(key),
            Work::Query { partition, .. } => *partition,
        };
        let routing = self.membership.routing_topology();
        let primary = routing.and_then(|t| t.primary(p).filter(|n| t.is_member(*n)));
        match primary {
            Some(primary) if primary == self.me => {
                if !self.membership.lease_valid(now.mono) {
                    return self.retry(now, req, Refusal::NotServing);
                }
                let origin = Origin::Local(req.id);
                self.execute(now, p, origin, req.work);
            }
            Some(primary) => {
                let id = self.next_forward;
                self.next_forward += 1;
                let epoch = routing.map_or(0, |t| t.epoch);
                let msg = match req.work.clone() {
                    Work::Op { key, op } => Msg::Request { id, epoch, key, op },
                    Work::Query { partition, query } => Msg::Query { id, epoch, partition, query },
                };
                self.out.push(Output::Send(primary, msg));
                self.forwards.insert(id, (req, now.mono, primary));
            }
            None => self.retry(now, req, Refusal::NoOwner),
        }
    }

    fn execute(&mut self, now: Now, p: PartitionId, origin: Origin, work: Work) {
        let mut effects = Vec::new();
        let replica = self.replica(p);
        match work {
            Work::Op { key, op } => replica.request(now, origin, key, op, &mut effects),
            Work::Query { query, .. } => replica.query(now, origin, query, &mut effects),
        }
        self.apply_effects(now, effects);
    }

    /// A forwarded request arrived: run it if this node is the partition's serving primary.
    fn serve_forwarded(&mut self, now: Now, from: NodeId, id: u64, epoch: u64, work: Work) {
        let p = match &work {
            Work::Op { key, .. } => self.partition(key),
            Work::Query { partition, .. } => *partition,
        };
        if epoch > self.membership.epoch() {
            self.out.push(Output::Send(from, Msg::TopologyPull));
        }
        let primary = self.topology().and_then(|t| t.primary(p));
        if primary != Some(self.me) || !self.membership.lease_valid(now.mono) {
            let result = Err(Refusal::NotPrimary);
            return self.out.push(Output::Send(from, Msg::Response { id, result }));
        }
        self.execute(now, p, Origin::Remote { node: from, id }, work);
    }

    /// Routes `req` again shortly, or gives up with `why` once its deadline has passed.
    fn retry(&mut self, now: Now, req: ClientRequest, why: Refusal) {
        if now.mono + RETRY_MS > req.deadline {
            self.out.push(Output::Reply(req.id, Err(why)));
        } else {
            self.waiting.push((now.mono + RETRY_MS, req));
        }
    }

    fn replica(&mut self, p: PartitionId) -> &mut Replica<D::Partition> {
        let (me, cfg) = (self.me, self.cfg.clone());
        let disk = &mut self.disk;
        self.replicas.entry(p).or_insert_with(|| Replica::new(p, me, cfg, disk.partition(p)))
    }

    pub fn receive(&mut self, now: Now, from: NodeId, msg: Msg) {
        let epoch = self.membership.epoch();
        match msg {
            Msg::Request { id, epoch, key, op } => {
                self.serve_forwarded(now, from, id, epoch, Work::Op { key, op })
            }
            Msg::Query { id, epoch, partition, query } => {
                self.serve_forwarded(now, from, id, epoch, Work::Query { partition, query })
            }
            Msg::Response { id, result } => {
                if self.merge.as_mut().is_some_and(|push| push.answered(id, result.is_ok())) {
                    return self.drive_merge(now);
                }
                let Some((req, _, _)) = self.forwards.remove(&id) else { return };
                match result {
                    Err(r) if r.is_retryable() => self.retry(now, req, r),
                    result => self.out.push(Output::Reply(req.id, result)),
                }
            }
            Msg::Replica { partition, epoch: theirs, body } => {
                if theirs > epoch {
                    // The sender has seen a topology this node has not: fetch it, and keep the
                    // message for then (a dropped `Released` would cost a whole lease).
                    if self.early.len() < EARLY_MESSAGES_MAX {
                        self.early.push((from, Msg::Replica { partition, epoch: theirs, body }));
                    }
                    return self.out.push(Output::Send(from, Msg::TopologyPull));
                }
                if theirs < epoch {
                    return self.out.push(Output::Send(from, Msg::Stale { epoch }));
                }
                let mut effects = Vec::new();
                if let Some(replica) = self.replicas.get_mut(&partition) {
                    replica.receive(now, from, body, &mut effects);
                }
                self.apply_effects(now, effects);
            }
            Msg::Stale { epoch: theirs } => {
                if theirs > epoch {
                    self.out.push(Output::Send(from, Msg::TopologyPull));
                }
            }
            Msg::Events(events) => self.out.push(Output::Events(events)),
            Msg::Drain => self.out.push(Output::DrainRequested),
            membership => {
                let mut outbox = Outbox::new();
                let adopted = self.membership.receive(now.mono, from, membership, &mut outbox);
                self.flush_outbox(outbox);
                if let Some(t) = adopted {
                    self.on_topology(now, &t);
                }
                self.drive_merge(now);
            }
        }
    }

    /// While this node merges into the other side of a healed split: reads its copies and sends
    /// their entries over, a window at a time; once all are confirmed, joins that side.
    fn drive_merge(&mut self, now: Now) {
        let Some(target) = self.membership.merging().cloned() else { return };
        let push = match self.merge.as_mut() {
            Some(push) => push,
            None => {
                // The primary's copy is its side's history: a backup's may hold a write its
                // primary never made part of it. (A node its side lost is listed as the owner
                // of partitions that wait for it, but served none.)
                let ours = self.membership.topology().filter(|t| t.is_member(self.me)).cloned();
                let primary_here = |p: PartitionId| ours.as_ref().and_then(|t| t.primary(p));
                let held: Vec<PartitionId> = self
                    .replicas
                    .iter()
                    .filter(|(p, r)| r.position().is_some() && primary_here(**p) == Some(self.me))
                    .map(|(p, _)| *p)
                    .collect();
                info!(partitions = held.len(), "pushing this node's data to the other side");
                self.merge.insert(Push::new(held, now.mono))
            }
        };
        let chunk = self.cfg.snapshot_chunk_entries.max(1);
        while push.wants() > 0 {
            if let Some((item, primary)) = push.next_send(&target, self.me) {
                let id = self.next_forward;
                self.next_forward += 1;
                let op = Op::Merge(Box::new(item.entry.clone()));
                let msg = Msg::Request { id, epoch: target.epoch, key: item.key.clone(), op };
                self.out.push(Output::Send(primary, msg));
                push.sent(id, item, now.mono);
                continue;
            }
            let Some((p, after)) = push.next_read() else { break };
            let rows = match self.replicas.get_mut(&p).map(|r| r.scan(after.as_deref(), chunk)) {
                Some(Ok(rows)) => rows,
                Some(Err(e)) => {
                    // Sent again from the same key at the next tick.
                    warn!(partition = p, error = %e, "could not read a copy to merge");
                    return;
                }
                None => Vec::new(),
            };
            let next = rows.last().filter(|_| rows.len() == chunk).map(|(k, _)| k.clone());
            let live = rows.into_iter().filter(|(_, e)| !e.is_expired(now.wall)).collect();
            push.read(p, live, next);
        }
        if !push.is_done() {
            return;
        }
        let (pushed, took_ms) = (push.pushed, now.mono - push.started_at);
        let mut outbox = Outbox::new();
        let adopted = self.membership.finish_merge(now.mono, &mut outbox);
        self.flush_outbox(outbox);
        let Some(t) = adopted else { return }; // the other side has not published past ours
        info!(entries = pushed, took_ms, "pushed this node's data to the other side");
        metrics::counter!("sessiongrid_cluster_merged_entries_total").increment(pushed);
        self.merge = None;
        self.merges += 1;
        self.on_topology(now, &t);
    }

    fn flush_outbox(&mut self, outbox: Outbox) {
        self.out.extend(outbox.into_iter().map(|(to, msg)| Output::Send(to, msg)));
    }

    fn on_topology(&mut self, now: Now, t: &Topology) {
        if let Err(e) = self.disk.save_topology(t) {
            warn!(error = %e, "could not save the topology");
        }
        self.adopt_replicas(now, t);
        self.abandon_dead_forwards(now, t);
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early)
            .into_iter()
            .partition(|(_, m)| matches!(m, Msg::Replica { epoch, .. } if *epoch <= t.epoch));
        self.early = later;
        for (from, msg) in ready {
            self.receive(now, from, msg);
        }
    }

    /// Requests forwarded to a node that left the cluster get no answer: reads go again to the
    /// new primary at once; writes fail at once as indeterminate (the dead node may have applied
    /// them), instead of both waiting out the timeout.
    fn abandon_dead_forwards(&mut self, now: Now, t: &Topology) {
        let dead: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, (_, _, to))| !t.is_member(*to))
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            let Some((req, _, _)) = self.forwards.remove(&id) else { continue };
            let read_only = match &req.work {
                Work::Op { op, .. } => !op.is_write(),
                Work::Query { query, .. } => !matches!(query, Query::Flush),
            };
            if read_only {
                self.route(now, req);
            } else {
                self.out.push(Output::Reply(req.id, Err(Refusal::Indeterminate)));
            }
        }
    }

    fn adopt_replicas(&mut self, now: Now, t: &Topology) {
        let mut effects = Vec::new();
        for (p, a) in t.partitions.iter().enumerate() {
            let p = p as PartitionId;
            if a.holds(self.me) || self.replicas.contains_key(&p) {
                self.replica(p).adopt(now, t, &mut effects);
            }
        }
        self.replicas.retain(|_, r| !r.is_idle());
        self.apply_effects(now, effects);
    }

    fn apply_effects(&mut self, now: Now, effects: Vec<Effect>) {
        let epoch = self.membership.epoch();
        for effect in effects {
            match effect {
                Effect::Send(partition, to, body) => {
                    self.out.push(Output::Send(to, Msg::Replica { partition, epoch, body }))
                }
                Effect::Reply(Origin::Local(id), result) => {
                    self.out.push(Output::Reply(id, result))
                }
                Effect::Reply(Origin::Remote { node, id }, result) => {
                    self.out.push(Output::Send(node, Msg::Response { id, result }))
                }
                Effect::Publish(events) => self.publish(events),
                Effect::Synced(partition, node) => {
                    let msg = Msg::Synced { partition, node };
                    match self.membership.coordinator() {
                        Some(c) if c == self.me => {
                            let mut outbox = Outbox::new();
                            let adopted =
                                self.membership.receive(now.mono, self.me, msg, &mut outbox);
                            self.flush_outbox(outbox);
                            debug_assert!(adopted.is_none());
                        }
                        Some(c) => self.out.push(Output::Send(c, msg)),
                        None => {}
                    }
                }
            }
        }
    }

    /// Delivers events to this node's subscribers and every other member's.
    fn publish(&mut self, events: Vec<SessionEvent>) {
        if let Some(t) = self.membership.topology() {
            for &n in t.members.iter().filter(|n| **n != self.me) {
                self.out.push(Output::Send(n, Msg::Events(events.clone())));
            }
        }
        self.out.push(Output::Events(events));
    }
}
