//! The node-level half of the protocol: membership, the topology this node follows, and the
//! push of its data when it merges into the other side of a healed split. Pure: the runtime
//! calls [`Control::tick`] and [`Control::receive`] and carries out the [`ControlOutput`]s.
//!
//! Control never touches a partition's replica: it tells the partitions about each new topology
//! ([`ControlOutput::Adopt`]) and publishes a [`Lease`] they read before serving. The runtime
//! delivers both asynchronously (the simulator delays and reorders the adoptions), so a
//! partition may act on an older topology than control's for a moment; the lease names the
//! epoch it holds for, and a partition on another epoch does not serve.

use std::sync::Arc;

use sessiongrid_model::{Op, PartitionId};
use tracing::{debug, info, warn};

use crate::config::ClusterConfig;
use crate::interest::{Interest, Watchers};
use crate::membership::{Membership, Outbox};
use crate::merge::Push;
use crate::msg::{LogPos, MemberMsg, Msg};
use crate::placement::NodeId;
use crate::replica::Report;
use crate::storage::{NodeStore, PartitionStore};
use crate::topology::{Epoch, Topology};
use crate::Now;

/// Ids of the merge operations control sends have this bit set, so their answers are told
/// apart from the answers to forwarded client requests.
pub const MERGE_ID_BIT: u64 = 1 << 63;

/// What control grants the partitions: until when this node may serve the partitions of one
/// epoch, and which members watch their writes' attribute changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The epoch of the topology the lease holds for.
    pub epoch: Epoch,
    /// Monotonic ms before which serving is allowed (0: not at all, `u64::MAX`: alone).
    pub until: u64,
    /// The members of that epoch's topology that watch session events, or have not said (see
    /// [`crate::interest`]): with any, a primary makes attribute-changed events and sends
    /// them to those members; with none, it announces them on this node only.
    pub watchers: Watchers,
}

impl Lease {
    pub const NONE: Lease = Lease { epoch: 0, until: 0, watchers: Watchers::ALL };

    /// True if a partition that follows topology `epoch` may serve at `now`.
    pub fn allows(&self, epoch: Epoch, now: u64) -> bool {
        self.epoch == epoch && now < self.until
    }
}

#[derive(Debug)]
pub enum ControlOutput {
    Send(NodeId, Msg),
    /// Every partition of this node should take its role in this topology.
    Adopt(Arc<Topology>),
    /// An operator asked this node to drain: the embedding process should stop gracefully.
    DrainRequested,
}

pub struct Control<D: NodeStore> {
    me: NodeId,
    cfg: Arc<ClusterConfig>,
    disk: D,
    membership: Membership,
    /// Who watches attribute changes.
    interest: Interest,
    /// Pushing this node's data to the side of a healed split it merges into.
    merge: Option<Push>,
    /// Store handles of the partitions being pushed, read alongside their actors.
    merge_stores: Vec<(PartitionId, D::Partition)>,
    next_merge_id: u64,
    /// Merges into the other side of a healed split this node has finished.
    merges: u64,
    out: Vec<ControlOutput>,
}

impl<D: NodeStore> Control<D> {
    /// Control over `disk`. `joining`: it was given seeds, so it waits for a cluster instead of
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
        let mut control = Control {
            me,
            cfg,
            disk,
            membership,
            interest: Interest::new(me, now.wall),
            merge: None,
            merge_stores: Vec::new(),
            // Like forwards, numbered above any earlier life of this node (see `dedup`).
            next_merge_id: crate::dedup::first_forward_id(now.wall),
            merges: 0,
            out: Vec::new(),
        };
        // The topology to act on: the saved one (unless this node must rejoin first), or the one
        // it has just founded, which nothing else would make it adopt until a peer joins.
        let current = control.membership.topology().cloned();
        match (saved, current) {
            (Some(_), Some(t)) if !control.membership.is_rejoining() => {
                control.out.push(ControlOutput::Adopt(t))
            }
            (None, Some(t)) => control.on_topology(t),
            _ => {}
        }
        if control.cfg.lite {
            // Never an owner: the coordinator keeps it out of every target from the first ping.
            control.leave(now);
        }
        control
    }

    pub fn id(&self) -> NodeId {
        self.me
    }

    pub fn take_outputs(&mut self) -> Vec<ControlOutput> {
        std::mem::take(&mut self.out)
    }

    /// The lease partitions read before serving, as of this node's last step.
    pub fn lease(&self) -> Lease {
        let epoch = self.membership.epoch();
        let until = self.membership.lease_until();
        let watchers = match self.cfg.faults.watches_ignored {
            true => Watchers::NONE,
            false => self.interest.watchers(members(&self.membership)),
        };
        Lease { epoch, until, watchers }
    }

    /// Whether this node has subscribers to session events now; a change is sent at once.
    pub fn set_watching(&mut self, on: bool, now: Now) {
        if on != self.interest.is_on() {
            self.interest.set(on, now.wall);
            self.tell_interest(now);
        }
    }

    /// Tells the members that need it whether this node watches (see [`Interest::tick`]).
    fn tell_interest(&mut self, now: Now) {
        let mut told = Vec::new();
        let members = members(&self.membership);
        self.interest.tick(now.mono, self.cfg.heartbeat_ms, members, &mut told);
        self.flush_outbox(told);
    }

    /// True if this node watches and every member has confirmed hearing it: from now on every
    /// write's attribute changes make events, wherever its primary is.
    pub fn watch_confirmed(&self) -> bool {
        self.interest.confirmed(members(&self.membership))
    }

    pub fn lease_valid(&self, now: Now) -> bool {
        self.membership.lease_valid(now.mono)
    }

    pub fn topology(&self) -> Option<&Arc<Topology>> {
        self.membership.topology()
    }

    /// The topology requests are routed by: the side this node merges into, while it does.
    /// The node's disk, where a partition restarted after a failure opens its copy again.
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    pub fn routing_topology(&self) -> Option<&Arc<Topology>> {
        self.membership.routing_topology()
    }

    pub fn epoch(&self) -> Epoch {
        self.membership.epoch()
    }

    /// True while this node pushes its data to the side of a healed split it lost to.
    pub fn merging(&self) -> bool {
        self.membership.merging().is_some()
    }

    /// True while this node, restarted with a saved topology, waits to hear the cluster.
    pub fn rejoining(&self) -> bool {
        self.membership.is_rejoining()
    }

    /// Merges into the other side of a healed split this node has finished.
    pub fn merges(&self) -> u64 {
        self.merges
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

    pub fn tick(&mut self, now: Now) {
        let mut outbox = Outbox::new();
        let adopted = self.membership.tick(now.mono, &mut outbox);
        self.flush_outbox(outbox);
        if let Some(t) = adopted {
            self.on_topology(t);
        }
        self.tell_interest(now);
        if let Some(push) = self.merge.as_mut() {
            push.retry(now.mono.saturating_sub(self.cfg.request_timeout_ms));
        }
        self.drive_merge(now);
    }

    /// A membership message from a peer. `Stale` (a partition's answer), `Drain` (an
    /// operator's) and who watches events say nothing about who is alive: they do not reach the
    /// failure detector.
    pub fn receive(&mut self, now: Now, from: NodeId, msg: MemberMsg) {
        match msg {
            MemberMsg::Stale { epoch } => {
                if epoch > self.membership.epoch() {
                    self.out.push(ControlOutput::Send(from, MemberMsg::TopologyPull.into()));
                }
            }
            MemberMsg::Drain => self.out.push(ControlOutput::DrainRequested),
            MemberMsg::Watching { seq, on } => {
                let seen = self.interest.on_watching(now.mono, from, seq, on);
                self.out.push(ControlOutput::Send(from, seen.into()));
            }
            MemberMsg::WatchingSeen { seq } => self.interest.on_seen(now.wall, from, seq),
            msg => self.membership_receive(now, from, msg),
        }
    }

    /// A local partition's report, for the coordinator, wherever it is.
    pub fn report(&mut self, now: Now, partition: PartitionId, report: Report) {
        let msg = match report {
            Report::Synced { node, as_of } => MemberMsg::Synced { partition, node, as_of },
            Report::NoCopy => MemberMsg::NoCopy { partition },
        };
        match self.membership.coordinator() {
            Some(c) if c == self.me => self.membership_receive(now, self.me, msg),
            Some(c) => self.out.push(ControlOutput::Send(c, msg.into())),
            None => {}
        }
    }

    fn membership_receive(&mut self, now: Now, from: NodeId, msg: MemberMsg) {
        let mut outbox = Outbox::new();
        let adopted = self.membership.receive(now.mono, from, msg, &mut outbox);
        self.flush_outbox(outbox);
        if let Some(t) = adopted {
            self.on_topology(t);
        }
        self.drive_merge(now);
    }

    /// The answer to merge operation `id` (see [`MERGE_ID_BIT`]).
    pub fn merge_answered(&mut self, now: Now, id: u64, ok: bool) {
        if !ok {
            debug!(id, "merge operation refused; sent again at the next tick");
        }
        if self.merge.as_mut().is_some_and(|push| push.answered(id, ok)) {
            self.drive_merge(now);
        }
    }

    /// While this node merges into the other side of a healed split: reads its copies and sends
    /// their entries over, a window at a time; once all are confirmed, joins that side.
    fn drive_merge(&mut self, now: Now) {
        let Some(target) = self.membership.merging().cloned() else {
            // Not merging (any more: a merge into a side that was merging too is given up).
            self.merge = None;
            self.merge_stores.clear();
            return;
        };
        if self.merge.is_none() {
            self.start_merge(now);
        }
        let ours = self.membership.left().cloned();
        let Some(push) = self.merge.as_mut() else { return };
        let chunk = self.cfg.snapshot_chunk_entries.max(1);
        while push.wants() > 0 {
            if let Some((item, primary)) = push.next_send(&target, ours.as_deref(), self.me) {
                let id = MERGE_ID_BIT | self.next_merge_id;
                self.next_merge_id += 1;
                let op = Op::Merge(Box::new(item.entry.clone()));
                let expires_at = now.wall.saturating_add(self.cfg.request_timeout_ms);
                let (epoch, key) = (target.epoch, item.key.clone());
                debug!(partition = item.partition, to = primary, epoch, "merge operation sent");
                let msg = Msg::Request { id, epoch, expires_at, key, op };
                self.out.push(ControlOutput::Send(primary, msg));
                push.sent(id, item, now.mono);
                continue;
            }
            let Some((p, after)) = push.next_read() else { break };
            let store = self.merge_stores.iter_mut().find(|(q, _)| *q == p).map(|(_, s)| s);
            let rows = match store.map(|s| s.scan(after.as_deref(), chunk)) {
                Some(Ok(rows)) => rows,
                Some(Err(e)) => {
                    // Read again from the same key at the next tick.
                    warn!(partition = p, error = %e, "could not read a copy to merge");
                    return;
                }
                None => Vec::new(),
            };
            let next = rows.last().filter(|_| rows.len() == chunk).map(|(k, _)| k.clone());
            let live = rows.into_iter().filter(|(_, e)| !e.is_expired(now.wall)).collect();
            push.read(p, live, next);
        }
        if !push.is_done() || push.recheck_held(&target, self.me, now.mono) {
            return;
        }
        let (pushed, took_ms) = (push.pushed, now.mono - push.started_at);
        let mut outbox = Outbox::new();
        // The copies this node holds (not let go, nor half-synced): the other side may list it
        // for others it had before.
        let (disk, partitions) = (&mut self.disk, self.cfg.partitions);
        let vouched = || {
            (0..partitions)
                .filter(|p| disk.partition(*p).position().is_some_and(|pos| pos != LogPos::ZERO))
                .collect()
        };
        let adopted = self.membership.finish_merge(now.mono, vouched, &mut outbox);
        self.flush_outbox(outbox);
        let Some(t) = adopted else { return }; // the other side has not published past ours
        info!(entries = pushed, took_ms, "pushed this node's data to the other side");
        metrics::counter!("sessiongrid_cluster_merged_entries_total").increment(pushed);
        self.merge = None;
        self.merge_stores.clear();
        self.merges += 1;
        self.on_topology(t);
    }

    /// The partitions to push: those this node is primary of on its side. The primary's copy is
    /// its side's history: a backup's may hold a write its primary never made part of it. (A
    /// node its side lost is listed as the owner of partitions that wait for it, but served
    /// none.) Their partition actors no longer serve (the lease is gone while merging), so the
    /// copies hold still while they are read.
    fn start_merge(&mut self, now: Now) {
        let ours = self.membership.topology().filter(|t| t.is_member(self.me)).cloned();
        let mut held = Vec::new();
        self.merge_stores.clear();
        if let Some(t) = ours {
            for p in 0..t.partitions.len() as PartitionId {
                if t.primary(p) != Some(self.me) {
                    continue;
                }
                let store = self.disk.partition(p);
                if store.position().is_some() {
                    held.push(p);
                    self.merge_stores.push((p, store));
                }
            }
        }
        info!(partitions = held.len(), "pushing this node's data to the other side");
        self.merge = Some(Push::new(held, now.mono));
    }

    fn flush_outbox(&mut self, outbox: Outbox) {
        self.out.extend(outbox.into_iter().map(|(to, msg)| ControlOutput::Send(to, msg.into())));
    }

    /// Saves a topology this node now follows and hands it to the partitions. Failing to save
    /// it is not fatal here: the node would rejoin with its older saved table, which the
    /// rejoin rules make safe.
    fn on_topology(&mut self, t: Arc<Topology>) {
        if let Err(e) = self.disk.save_topology(&t) {
            warn!(error = %e, "could not save the topology");
        }
        self.out.push(ControlOutput::Adopt(t));
    }
}

/// The members of the topology a node follows (none before it has one).
fn members(membership: &Membership) -> &[NodeId] {
    membership.topology().map_or(&[], |t| &t.members)
}
