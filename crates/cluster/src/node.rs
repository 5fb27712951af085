//! A whole node of the protocol: membership, the replicas of the partitions it holds, and the
//! routing of client requests to primaries. Pure: the runtime calls [`Node::tick`],
//! [`Node::receive`] and [`Node::request`], and carries out the [`Output`]s.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sessiongrid_model::{partition_of, Op, PartitionId, Reply};
use tracing::warn;

use crate::config::ClusterConfig;
use crate::membership::{Membership, Outbox};
use crate::msg::{Msg, Refusal};
use crate::placement::NodeId;
use crate::replica::{Effect, Origin, Replica};
use crate::storage::NodeStore;
use crate::topology::Topology;
use crate::Now;

/// How long a request refused as "not here yet" waits before it is routed again.
const RETRY_MS: u64 = 20;

#[derive(Debug)]
pub enum Output {
    Send(NodeId, Msg),
    /// The answer to the client request with this id.
    Reply(u64, Result<Reply, Refusal>),
}

struct ClientRequest {
    id: u64,
    key: Bytes,
    op: Op,
    deadline: u64,
}

pub struct Node<D: NodeStore> {
    me: NodeId,
    cfg: Arc<ClusterConfig>,
    disk: D,
    membership: Membership,
    replicas: BTreeMap<PartitionId, Replica<D::Partition>>,
    /// Requests sent to another node's primary, by forward id.
    forwards: BTreeMap<u64, (ClientRequest, u64)>,
    next_forward: u64,
    /// Requests waiting to be routed again, with the time they may go.
    waiting: Vec<(u64, ClientRequest)>,
    out: Vec<Output>,
}

impl<D: NodeStore> Node<D> {
    pub fn new(disk: D, cfg: Arc<ClusterConfig>, seeds: Vec<NodeId>, now: Now) -> Self {
        let me = disk.node_id();
        let saved = disk.load_topology();
        let membership = Membership::new(me, cfg.clone(), seeds, saved.clone(), now.mono);
        let mut node = Node {
            me,
            cfg,
            disk,
            membership,
            replicas: BTreeMap::new(),
            forwards: BTreeMap::new(),
            next_forward: 1,
            waiting: Vec::new(),
            out: Vec::new(),
        };
        if let Some(t) = saved {
            node.adopt_replicas(now, &t);
        }
        node
    }

    pub fn id(&self) -> NodeId {
        self.me
    }

    pub fn topology(&self) -> Option<&Arc<Topology>> {
        self.membership.topology()
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
        let mut effects = Vec::new();
        for replica in self.replicas.values_mut() {
            replica.tick(now, &mut effects);
        }
        self.apply_effects(now, effects);
        let late: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, (_, sent))| now.mono >= sent + self.cfg.request_timeout_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some((req, _)) = self.forwards.remove(&id) {
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
        self.route(now, ClientRequest { id, key, op, deadline });
    }

    fn partition(&self, key: &[u8]) -> PartitionId {
        partition_of(key, self.cfg.partitions)
    }

    fn route(&mut self, now: Now, req: ClientRequest) {
        let p = self.partition(&req.key);
        let primary = self.topology().and_then(|t| t.primary(p));
        match primary {
            Some(primary) if primary == self.me => {
                if !self.membership.lease_valid(now.mono) {
                    return self.retry(now, req, Refusal::NotServing);
                }
                let mut effects = Vec::new();
                let replica = self.replica(p);
                replica.request(now, Origin::Local(req.id), req.key, req.op, &mut effects);
                self.apply_effects(now, effects);
            }
            Some(primary) => {
                let id = self.next_forward;
                self.next_forward += 1;
                let msg = Msg::Request {
                    id,
                    epoch: self.membership.epoch(),
                    key: req.key.clone(),
                    op: req.op.clone(),
                };
                self.out.push(Output::Send(primary, msg));
                self.forwards.insert(id, (req, now.mono));
            }
            None => self.retry(now, req, Refusal::NoOwner),
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

    fn replica(&mut self, p: PartitionId) -> &mut Replica<D::Partition> {
        let (me, cfg) = (self.me, self.cfg.clone());
        let disk = &mut self.disk;
        self.replicas.entry(p).or_insert_with(|| Replica::new(p, me, cfg, disk.partition(p)))
    }

    pub fn receive(&mut self, now: Now, from: NodeId, msg: Msg) {
        let epoch = self.membership.epoch();
        match msg {
            Msg::Request { id, epoch: theirs, key, op } => {
                let p = self.partition(&key);
                let primary = self.topology().and_then(|t| t.primary(p));
                if theirs > epoch {
                    self.out.push(Output::Send(from, Msg::TopologyPull));
                }
                if primary != Some(self.me) || !self.membership.lease_valid(now.mono) {
                    let result = Err(Refusal::NotPrimary);
                    return self.out.push(Output::Send(from, Msg::Response { id, result }));
                }
                let mut effects = Vec::new();
                let origin = Origin::Remote { node: from, id };
                self.replica(p).request(now, origin, key, op, &mut effects);
                self.apply_effects(now, effects);
            }
            Msg::Response { id, result } => {
                let Some((req, _)) = self.forwards.remove(&id) else { return };
                match result {
                    Err(r) if r.is_retryable() => self.retry(now, req, r),
                    result => self.out.push(Output::Reply(req.id, result)),
                }
            }
            Msg::Replica { partition, epoch: theirs, body } => {
                if theirs > epoch {
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
            membership => {
                let mut outbox = Outbox::new();
                let adopted = self.membership.receive(now.mono, from, membership, &mut outbox);
                self.flush_outbox(outbox);
                if let Some(t) = adopted {
                    self.on_topology(now, &t);
                }
            }
        }
    }

    fn flush_outbox(&mut self, outbox: Outbox) {
        self.out.extend(outbox.into_iter().map(|(to, msg)| Output::Send(to, msg)));
    }

    fn on_topology(&mut self, now: Now, t: &Topology) {
        if let Err(e) = self.disk.save_topology(t) {
            warn!(error = %e, "could not save the topology");
        }
        self.adopt_replicas(now, t);
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
}
