//! One partition on one node, as its actor runs it: the [`Replica`] state machine, the
//! topology the partition last adopted, and the checks a request or a peer's message passes
//! before the replica sees it. Pure: the runtime (a partition actor, or the simulator) calls
//! [`Partition::adopt`], [`Partition::request`], [`Partition::receive`] and
//! [`Partition::tick`], and carries out the [`PartitionOutput`]s.
//!
//! A partition learns topologies from control asynchronously, so it may be an epoch behind or
//! ahead of the peers that write to it and of control itself:
//! - it serves only under a [`Lease`] for the very epoch it follows;
//! - a replica message from a newer epoch waits (bounded) until the partition adopts that
//!   epoch; one from an older epoch is answered [`MemberMsg::Stale`].

use std::sync::Arc;

use bytes::Bytes;
use sessiongrid_model::notify::Notices;
use sessiongrid_model::session::event::{EventKind::AttributeChanged, SessionEvent};
use sessiongrid_model::{Op, PartitionId, Reply};

use crate::config::ClusterConfig;
use crate::control::Lease;
use crate::dedup::SeenRequests;
use crate::events::{EventsOut, Outboxes};
use crate::interest::Watchers;
use crate::msg::{MemberMsg, Msg, Query, Refusal, ReplicaMsg};
use crate::placement::NodeId;
use crate::replica::{Effect, Origin, Replica, Report};
use crate::storage::{Counts, PartitionStore};
use crate::topology::{Epoch, Topology};
use crate::Now;

/// Replica messages from a future epoch a partition keeps while it waits for that topology.
const EARLY_MESSAGES_MAX: usize = 256;

#[derive(Debug)]
pub enum PartitionOutput {
    Send(NodeId, Msg),
    /// The answer to the local request with this id.
    Reply(u64, Result<Reply, Refusal>),
    /// Session events for this node's subscribers (other members are sent
    /// [`Msg::PartitionEvents`]).
    Events(Vec<SessionEvent>),
    /// Something for the coordinator: control sends it there.
    Report(Report),
    /// Keyspace events of a write this node applied, to publish if the node's flags want them.
    Notify(Bytes, Notices),
}

/// What a partition reports about itself, for status pages and gauges.
#[derive(Clone, Copy, Debug, Default)]
pub struct PartitionStats {
    pub epoch: Epoch,
    pub primary: bool,
    /// An owner (not a learner) in the adopted topology.
    pub owner: bool,
    pub counts: Counts,
    pub replication_lag: u64,
}

pub struct Partition<S> {
    p: PartitionId,
    me: NodeId,
    replica: Replica<S>,
    /// The topology this partition last adopted.
    topology: Option<Arc<Topology>>,
    /// The replica took part in the partition since it last was idle.
    active: bool,
    /// Replica messages from epochs newer than the adopted one: (from, epoch, body).
    early: Vec<(NodeId, Epoch, ReplicaMsg)>,
    /// Forwarded requests already taken, so a copy delivered again is not run again.
    seen: SeenRequests,
    /// Events sent to other members and not acknowledged yet.
    outboxes: Outboxes,
    /// The members of its topology of this epoch that watch attribute changes, as of the
    /// latest lease (see [`Lease::watchers`]).
    watchers: (Epoch, Watchers),
    retransmit_ms: u64,
    /// The planted defect [`crate::config::Faults::events_sent_once`].
    events_sent_once: bool,
    /// The planted defect [`crate::config::Faults::watchers_reversed`].
    watchers_reversed: bool,
    out: Vec<PartitionOutput>,
}

impl<S: PartitionStore> Partition<S> {
    /// A partition started at `now`: its snapshots are numbered from its start time, so a
    /// restarted node's are newer than any it sent before.
    pub fn new(p: PartitionId, me: NodeId, cfg: Arc<ClusterConfig>, store: S, now: Now) -> Self {
        let first_snapshot = crate::dedup::first_forward_id(now.wall);
        let (retransmit_ms, events_sent_once) = (cfg.retransmit_ms, cfg.faults.events_sent_once);
        let watchers_reversed = cfg.faults.watchers_reversed;
        Partition {
            p,
            me,
            replica: Replica::new(p, me, cfg, store).with_snapshot_ids_from(first_snapshot),
            topology: None,
            active: false,
            early: Vec::new(),
            seen: SeenRequests::default(),
            outboxes: Outboxes::default(),
            watchers: (0, Watchers::ALL),
            retransmit_ms,
            events_sent_once,
            watchers_reversed,
            out: Vec::new(),
        }
    }

    pub fn id(&self) -> PartitionId {
        self.p
    }

    /// The epoch of the adopted topology (0: none yet).
    pub fn epoch(&self) -> Epoch {
        self.topology.as_ref().map_or(0, |t| t.epoch)
    }

    pub fn topology(&self) -> Option<&Arc<Topology>> {
        self.topology.as_ref()
    }

    pub fn replica(&mut self) -> &mut Replica<S> {
        &mut self.replica
    }

    /// Why this partition must be restarted from disk, if it must (see [`Replica::failure`]).
    pub fn failure(&self) -> Option<crate::storage::StoreError> {
        self.replica.failure()
    }

    pub fn take_outputs(&mut self) -> Vec<PartitionOutput> {
        std::mem::take(&mut self.out)
    }

    /// The "not here" refusal local request `id`, just made, got at once, if it got one. Such
    /// refusals come from the partition's role and lease, which no request changes: every
    /// request made after it in the same message would be refused alike.
    pub fn refused_now(&self, id: u64) -> Option<Refusal> {
        match self.out.last() {
            Some(PartitionOutput::Reply(i, Err(r))) if *i == id && r.is_retryable() => {
                Some(r.clone())
            }
            _ => None,
        }
    }

    pub fn stats(&mut self) -> PartitionStats {
        let a = self.topology.as_ref().and_then(|t| t.assignment(self.p));
        PartitionStats {
            epoch: self.epoch(),
            primary: a.and_then(|a| a.primary()) == Some(self.me),
            owner: a.is_some_and(|a| a.owners.contains(&self.me)),
            counts: self.replica.counts().unwrap_or_default(),
            replication_lag: self.replica.replication_lag(),
        }
    }

    /// Takes the partition's role in `t`. Control sends topologies in the order it adopts
    /// them; an older one than the adopted is ignored all the same.
    pub fn adopt(&mut self, now: Now, t: Arc<Topology>) {
        if self.topology.as_ref().is_some_and(|mine| t.epoch < mine.epoch) {
            return;
        }
        debug_assert!(t.members.windows(2).all(|w| w[0] < w[1]), "members are sorted");
        self.outboxes.keep_only(&t.members);
        let holds = t.assignment(self.p).is_some_and(|a| a.holds(self.me));
        if holds || self.active {
            let mut effects = Vec::new();
            self.replica.adopt(now, &t, &mut effects);
            self.active = !self.replica.is_idle();
            if !self.active {
                // As a partition this node never held: its next role starts from the store.
                self.replica.reset();
            }
            self.topology = Some(t.clone());
            self.apply(now, effects);
        } else {
            self.topology = Some(t.clone());
        }
        let (ready, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.early).into_iter().partition(|(_, e, _)| *e <= t.epoch);
        self.early = later;
        for (from, epoch, body) in ready {
            self.replica_message(now, from, epoch, body);
        }
    }

    /// Refuses a request this partition may not serve now: it is not the primary in the
    /// topology it follows, or holds no lease for that topology.
    fn check(&self, now: Now, lease: Lease) -> Result<(), Refusal> {
        let primary = self.topology.as_ref().and_then(|t| t.primary(self.p));
        if primary != Some(self.me) {
            return Err(Refusal::NotPrimary);
        }
        if !lease.allows(self.epoch(), now.mono) {
            return Err(Refusal::NotServing);
        }
        Ok(())
    }

    /// A client request, from this node (`Origin::Local`) or forwarded by a peer that routed it
    /// here by a topology of `epoch`.
    pub fn request(
        &mut self,
        now: Now,
        lease: Lease,
        origin: Origin,
        epoch: Epoch,
        key: Bytes,
        op: Op,
    ) {
        if !self.first_time(now, origin) {
            return;
        }
        self.pull_if_behind(origin, epoch, lease);
        if let Err(r) = self.check(now, lease) {
            return self.refuse(origin, r);
        }
        self.note_lease(now, lease);
        let mut effects = Vec::new();
        self.replica.request(now, origin, key, op, &mut effects);
        self.apply(now, effects);
    }

    /// The answer [`Partition::request`] would give this node's read at once, with no output
    /// ([`Replica::read_now`]); `None`: it must be sent as a request.
    pub fn read_now(&mut self, now: Now, lease: Lease, key: &[u8], op: &Op) -> Option<Reply> {
        if self.check(now, lease).is_err() || self.replica.failure().is_some() {
            return None;
        }
        self.replica.read_now(now, key, op)
    }

    /// A whole-partition query, like [`Partition::request`].
    pub fn query(&mut self, now: Now, lease: Lease, origin: Origin, epoch: Epoch, query: Query) {
        if !self.first_time(now, origin) {
            return;
        }
        self.pull_if_behind(origin, epoch, lease);
        if let Err(r) = self.check(now, lease) {
            return self.refuse(origin, r);
        }
        self.note_lease(now, lease);
        let mut effects = Vec::new();
        self.replica.query(now, origin, query, &mut effects);
        self.apply(now, effects);
    }

    /// False for a forwarded request this partition has taken before, refused or run: its
    /// requester has the answer, or will time out (a refused one was sent again under a new
    /// id). A duplicate is dropped without a word. Also false for one come after its sender
    /// gave up on it (`expires_at`): run then, an old write would overwrite what was
    /// acknowledged since (a stream stalled by a network cut delivers everything it held when
    /// the link comes back, seconds late).
    fn first_time(&mut self, now: Now, origin: Origin) -> bool {
        match origin {
            Origin::Local(_) => true,
            Origin::Remote { node, id, expires_at } if now.wall > expires_at => {
                metrics::counter!("sessiongrid_requests_late_total").increment(1);
                tracing::debug!(
                    partition = self.p,
                    from = node,
                    id,
                    "a request come too late; dropped"
                );
                false
            }
            Origin::Remote { node, id, .. } => {
                let first = self.seen.first_time(node, id);
                if !first {
                    metrics::counter!("sessiongrid_requests_duplicate_total").increment(1);
                    tracing::debug!(
                        partition = self.p,
                        from = node,
                        id,
                        "a request delivered twice; dropped"
                    );
                }
                first
            }
        }
    }

    /// A peer routed by a newer topology than this node's control has: fetch it.
    fn pull_if_behind(&mut self, origin: Origin, epoch: Epoch, lease: Lease) {
        if let Origin::Remote { node, .. } = origin {
            if epoch > lease.epoch {
                self.out.push(PartitionOutput::Send(node, MemberMsg::TopologyPull.into()));
            }
        }
    }

    fn refuse(&mut self, origin: Origin, why: Refusal) {
        tracing::debug!(partition = self.p, epoch = self.epoch(), ?why, "request refused");
        match origin {
            Origin::Local(id) => self.out.push(PartitionOutput::Reply(id, Err(why))),
            // A peer retries elsewhere on any "not here" answer.
            Origin::Remote { node, id, .. } => {
                let result = Err(Refusal::NotPrimary);
                self.out.push(PartitionOutput::Send(node, Msg::Response { id, result }))
            }
        }
    }

    /// A replica message from a peer, sent under its topology of `epoch`. `lease` is control's
    /// latest: a sender ahead of control too is asked for its topology.
    pub fn receive(
        &mut self,
        now: Now,
        lease: Lease,
        from: NodeId,
        epoch: Epoch,
        body: ReplicaMsg,
    ) {
        self.note_lease(now, lease);
        let mine = self.epoch();
        if epoch > mine {
            // Kept for when this partition adopts that epoch (a dropped `Released` would cost a
            // whole lease); control fetches the topology if it does not have it either.
            if self.early.len() < EARLY_MESSAGES_MAX {
                self.early.push((from, epoch, body));
            }
            if epoch > lease.epoch {
                self.out.push(PartitionOutput::Send(from, MemberMsg::TopologyPull.into()));
            }
            return;
        }
        self.replica_message(now, from, epoch, body);
    }

    fn replica_message(&mut self, now: Now, from: NodeId, epoch: Epoch, body: ReplicaMsg) {
        let mine = self.epoch();
        if epoch < mine {
            let stale = MemberMsg::Stale { epoch: mine }.into();
            return self.out.push(PartitionOutput::Send(from, stale));
        }
        let mut effects = Vec::new();
        self.replica.receive(now, from, body, &mut effects);
        self.apply(now, effects);
    }

    /// When [`Partition::tick`] next has work, if ever (see [`Replica::next_tick`]), events
    /// to send again included.
    pub fn next_tick(&self) -> Option<u64> {
        let replica = self.active.then(|| self.replica.next_tick()).flatten();
        let events =
            self.outboxes.next_retransmit(self.retransmit_ms).filter(|_| !self.events_sent_once);
        replica.into_iter().chain(events).min()
    }

    /// Retransmissions, the expiry sweep and timeouts; `lease` is control's latest.
    pub fn tick(&mut self, now: Now, lease: Lease) {
        self.replica.housekeep();
        let mut sends = Vec::new();
        if !self.events_sent_once {
            self.outboxes.retransmit(now.mono, self.retransmit_ms, &mut sends);
        }
        self.send_events(sends);
        if !self.active {
            return;
        }
        self.note_lease(now, lease);
        let mut effects = Vec::new();
        self.replica.tick(now, &mut effects);
        self.apply(now, effects);
    }

    /// Tells the replica if this node holds a lease in the epoch it follows (see
    /// [`Replica::leased`]), and whether attribute changes are watched.
    fn note_lease(&mut self, now: Now, lease: Lease) {
        self.replica.set_watched(lease.watchers.any());
        self.watchers = (lease.epoch, lease.watchers);
        if lease.allows(self.epoch(), now.mono) {
            let mut effects = Vec::new();
            self.replica.leased(&mut effects);
            self.apply(now, effects);
        }
    }

    fn apply(&mut self, now: Now, effects: Vec<Effect>) {
        self.apply_effects(now, effects);
        self.report_delivered();
    }

    /// Tells the replica how far its events are with every member: followers keep a write's
    /// events until then, so a successor publishes again what may not have reached one.
    fn report_delivered(&mut self) {
        let delivered = self.outboxes.delivered_through();
        self.replica.events_delivered(delivered);
    }

    fn apply_effects(&mut self, now: Now, effects: Vec<Effect>) {
        let epoch = self.epoch();
        for effect in effects {
            match effect {
                Effect::Send(partition, to, body) => {
                    let msg = Msg::Replica { partition, epoch, body };
                    self.out.push(PartitionOutput::Send(to, msg));
                }
                Effect::Reply(Origin::Local(id), result) => {
                    self.out.push(PartitionOutput::Reply(id, result))
                }
                Effect::Reply(Origin::Remote { node, id, .. }, result) => {
                    self.out.push(PartitionOutput::Send(node, Msg::Response { id, result }))
                }
                Effect::Publish(events) => self.publish(now, events),
                Effect::Announce(events) => self.out.push(PartitionOutput::Events(events)),
                Effect::Notify(key, notices) => {
                    self.out.push(PartitionOutput::Notify(key, notices))
                }
                Effect::Report(_, report) => self.out.push(PartitionOutput::Report(report)),
            }
        }
    }

    /// Delivers events to this node's subscribers and, until each acknowledges them, every
    /// other member's (see [`crate::events`]); attribute changes only to the members that
    /// watch them (see [`crate::interest`]).
    fn publish(&mut self, now: Now, events: Vec<SessionEvent>) {
        if let Some(t) = &self.topology {
            let watchers = match self.watchers {
                (epoch, watchers) if epoch == t.epoch => watchers,
                _ => Watchers::ALL, // a lease of another topology: its places are not these
            };
            let watches = |i: usize| watchers.at(i) != self.watchers_reversed;
            let others = || t.members.iter().enumerate().filter(|(_, n)| **n != self.me);
            let mut sends = Vec::new();
            let watching = others().filter(|(i, _)| watches(*i)).map(|(_, n)| *n);
            self.outboxes.publish(now.mono, watching, &events, &mut sends);
            if others().any(|(i, _)| !watches(i)) {
                let lifecycle: Vec<SessionEvent> =
                    events.iter().filter(|e| e.kind != AttributeChanged).cloned().collect();
                if !lifecycle.is_empty() {
                    let not = others().filter(|(i, _)| !watches(*i)).map(|(_, n)| *n);
                    self.outboxes.publish(now.mono, not, &lifecycle, &mut sends);
                }
            }
            self.send_events(sends);
        }
        self.out.push(PartitionOutput::Events(events));
    }

    /// Member `from` delivered this partition's events up to version `through`.
    pub fn events_acked(&mut self, now: Now, from: NodeId, through: u64) {
        let mut sends = Vec::new();
        self.outboxes.acked(now.mono, from, through, &mut sends);
        self.send_events(sends);
        self.report_delivered();
    }

    fn send_events(&mut self, sends: Vec<EventsOut>) {
        for (to, events) in sends {
            let msg = Msg::PartitionEvents { partition: self.p, events };
            self.out.push(PartitionOutput::Send(to, msg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{LogPos, Txn};
    use crate::storage::MemStore;
    use sessiongrid_model::session::session_key;

    /// The only partition of node 7, which founded its cluster alone: primary, under a lease
    /// that never runs out.
    fn primary_alone() -> (Partition<MemStore>, Arc<Topology>, Lease, Now) {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let t = Arc::new(Topology::founded_by(7, 1));
        let lease = Lease { epoch: t.epoch, until: u64::MAX, watchers: Watchers::ALL };
        let now = Now { mono: 1, wall: 1 };
        let mut p = Partition::new(0, 7, cfg, MemStore::empty(), now);
        p.adopt(now, t.clone());
        (p, t, lease, now)
    }

    #[test]
    fn a_forwarded_request_delivered_twice_or_too_late_runs_once() {
        let (mut p, t, lease, now) = primary_alone();
        let key = Bytes::from_static(b"counter");
        let incr = || Op::IncrBy { delta: 1 };
        let from_peer = Origin::Remote { node: 9, id: 41, expires_at: u64::MAX };
        p.request(now, lease, from_peer, t.epoch, key.clone(), incr());
        p.request(now, lease, from_peer, t.epoch, key.clone(), incr());
        let answers = p
            .take_outputs()
            .into_iter()
            .filter(|o| matches!(o, PartitionOutput::Send(9, Msg::Response { id: 41, .. })))
            .count();
        assert_eq!(answers, 1, "the copy is dropped without an answer");
        let other = Origin::Remote { node: 9, id: 42, expires_at: u64::MAX };
        p.request(now, lease, other, t.epoch, key.clone(), incr());
        // One its sender gave up on before it came (a stream stalled by a cut) is not run.
        let late = Origin::Remote { node: 9, id: 43, expires_at: now.wall - 1 };
        p.request(now, lease, late, t.epoch, key.clone(), incr());
        p.request(now, lease, Origin::Local(1), t.epoch, key, Op::Get);
        let got = p.take_outputs().into_iter().find_map(|o| match o {
            PartitionOutput::Reply(1, result) => Some(result),
            _ => None,
        });
        assert_eq!(got, Some(Ok(Reply::Bulk(Bytes::from_static(b"2")))));
    }

    #[test]
    fn a_write_waits_for_a_lease_in_a_topology_that_dropped_a_backup() {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let now = Now { mono: 1, wall: 1 };
        let mut t = Topology::founded_by(7, 1);
        t.members = vec![1, 7];
        t.partitions[0].owners = vec![7, 1];
        t.partitions[0].target = vec![7, 1];
        t.epoch = 5;
        let mut p = Partition::new(0, 7, cfg, MemStore::empty(), now);
        p.adopt(now, Arc::new(t.clone()));
        let lease = |epoch| Lease { epoch, until: u64::MAX, watchers: Watchers::ALL };
        // Backup 1 answers the new primary's probe: it holds the same (empty) history.
        p.receive(now, lease(5), 1, 5, ReplicaMsg::Ack { pos: LogPos::ZERO, epoch: 5 });
        let incr = Op::IncrBy { delta: 1 };
        p.request(now, lease(5), Origin::Local(1), 5, Bytes::from_static(b"k"), incr);
        assert_eq!(replies(&mut p), vec![], "backup 1 does not have it");
        // This node's coordinator, cut off from the rest, declares 1 dead and publishes a table
        // without it, which no other node may ever see.
        t.members = vec![7];
        t.partitions[0].owners = vec![7];
        t.partitions[0].target = vec![7];
        t.epoch = 6;
        p.adopt(now, Arc::new(t));
        p.tick(now, lease(5));
        assert_eq!(replies(&mut p), vec![], "not answered without a lease in the new epoch");
        // A majority has the new table: 1 is out for good.
        p.tick(now, lease(6));
        assert_eq!(replies(&mut p), vec![(1, Ok(Reply::Int(1)))]);
    }

    /// The creation of session `id` (which has an event), as a request: (key, op).
    fn create_session(id: &'static [u8]) -> (Bytes, Op) {
        use sessiongrid_model::session::op::SessionOp;
        let op = SessionOp::Create {
            id: Bytes::from_static(id),
            group: Bytes::new(),
            idle_ms: 60_000,
            absolute_ms: None,
        };
        (session_key(id), Op::Session(op))
    }

    /// Sets attribute `n` of a session.
    fn set_attribute() -> Op {
        use sessiongrid_model::session::{op::SessionOp, SessionLimits, Tag};
        let limits = SessionLimits {
            attrs_max: 9,
            attr_name_bytes_max: 9,
            attr_bytes_max: 9,
            session_bytes_max: 999,
        };
        let attrs = vec![(Bytes::from_static(b"n"), Tag::Utf8, Bytes::from_static(b"1"))];
        Op::Session(SessionOp::Set {
            if_version: None,
            replace: false,
            idle_ms: None,
            attrs,
            limits,
        })
    }

    /// The events messages among `p`'s outputs: (to, versions).
    fn events_sent(p: &mut Partition<MemStore>) -> Vec<(NodeId, Vec<u64>)> {
        p.take_outputs()
            .into_iter()
            .filter_map(|o| match o {
                PartitionOutput::Send(to, Msg::PartitionEvents { events, .. }) => {
                    Some((to, events.iter().map(|e| e.version).collect()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn events_go_to_every_other_member_until_each_acknowledges_them() {
        // Node 7 owns the partition alone; 8 and 9 are members that hold none of it.
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut t = Topology::founded_by(7, 1);
        t.members = vec![7, 8, 9];
        let lease = Lease { epoch: t.epoch, until: u64::MAX, watchers: Watchers::ALL };
        let at = |mono| Now { mono, wall: 1 };
        let mut p = Partition::new(0, 7, cfg.clone(), MemStore::empty(), at(1));
        p.adopt(at(1), Arc::new(t.clone()));
        let (key, op) = create_session(b"a");
        p.request(at(1), lease, Origin::Local(1), t.epoch, key, op);
        // Versions are numbered on from where the primary took over.
        let sent = events_sent(&mut p);
        let v = |n: u64| sent[0].1[0] + n - 1;
        assert_eq!(sent, vec![(8, vec![v(1)]), (9, vec![v(1)])]);
        // 8 acknowledges; 9's answer is lost. The next event goes to 8 at once, and waits for
        // 9's acknowledgement, or for the retransmission with all 9 still lacks.
        p.events_acked(at(2), 8, v(1));
        let (key, op) = create_session(b"b");
        p.request(at(3), lease, Origin::Local(2), t.epoch, key, op);
        assert_eq!(events_sent(&mut p), vec![(8, vec![v(2)])]);
        let retransmit = 1 + cfg.retransmit_ms;
        assert_eq!(p.next_tick(), Some(retransmit), "the first message to 9 is due again");
        p.tick(at(retransmit), lease);
        assert_eq!(events_sent(&mut p), vec![(9, vec![v(1), v(2)])]);
        p.events_acked(at(retransmit), 9, v(2));
        p.events_acked(at(retransmit), 8, v(2));
        assert!(events_sent(&mut p).is_empty());
        assert_eq!(p.next_tick(), None, "nothing left to send again, nothing else to do");
        // A member that leaves is forgotten: what it did not acknowledge is not sent again.
        let (key, op) = create_session(b"c");
        p.request(at(retransmit), lease, Origin::Local(3), t.epoch, key, op);
        assert_eq!(events_sent(&mut p), vec![(8, vec![v(3)]), (9, vec![v(3)])]);
        t.members = vec![7, 8];
        t.epoch += 1;
        p.adopt(at(retransmit), Arc::new(t));
        p.tick(at(2 * retransmit), lease);
        assert_eq!(events_sent(&mut p), vec![(8, vec![v(3)])]);
    }

    #[test]
    fn unwatched_attribute_changes_are_announced_here_only_and_lifecycle_events_go_everywhere() {
        use sessiongrid_model::session::event::EventKind;
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut t = Topology::founded_by(7, 1);
        t.members = vec![7, 8];
        let watched = Lease { epoch: t.epoch, until: u64::MAX, watchers: Watchers::ALL };
        let unwatched = Lease { watchers: Watchers::NONE, ..watched };
        let now = Now { mono: 1, wall: 1 };
        let mut p = Partition::new(0, 7, cfg, MemStore::empty(), now);
        p.adopt(now, Arc::new(t.clone()));
        // Events here, and events sent: (kinds delivered on this node, versions sent to 8).
        let outputs = |p: &mut Partition<MemStore>| {
            let (mut here, mut sent) = (Vec::new(), Vec::new());
            for o in p.take_outputs() {
                match o {
                    PartitionOutput::Events(events) => here.extend(events.iter().map(|e| e.kind)),
                    PartitionOutput::Send(8, Msg::PartitionEvents { events, .. }) => {
                        sent.extend(events.iter().map(|e| e.kind))
                    }
                    _ => {}
                }
            }
            (here, sent)
        };
        let (key, op) = create_session(b"a");
        p.request(now, unwatched, Origin::Local(1), t.epoch, key, op);
        let created = vec![EventKind::Created];
        assert_eq!(outputs(&mut p), (created.clone(), created), "a creation always travels");
        let creation = *p.replica().store().events.keys().next().unwrap();
        p.events_acked(now, 8, creation);
        p.request(now, unwatched, Origin::Local(2), t.epoch, session_key(b"a"), set_attribute());
        let changed = vec![EventKind::AttributeChanged];
        assert_eq!(outputs(&mut p), (changed.clone(), vec![]), "counted here, sent nowhere");
        assert!(p.replica().store().events.is_empty(), "nor kept on disk");
        p.request(now, watched, Origin::Local(3), t.epoch, session_key(b"a"), set_attribute());
        assert_eq!(outputs(&mut p), (changed.clone(), changed), "watched: it travels");
    }

    #[test]
    fn attribute_changes_go_only_to_the_members_that_watch_them() {
        use sessiongrid_model::session::event::EventKind::{AttributeChanged, Created};
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut t = Topology::founded_by(7, 1);
        t.members = vec![7, 8, 9];
        let watchers = Watchers::of(&t.members, |n| n == 9);
        assert_eq!((watchers.count(3), watchers.at(2), watchers.at(1)), (1, true, false));
        let lease = Lease { epoch: t.epoch, until: u64::MAX, watchers };
        let now = Now { mono: 1, wall: 1 };
        let mut p = Partition::new(0, 7, cfg, MemStore::empty(), now);
        p.adopt(now, Arc::new(t.clone()));
        // (member, kinds) of every events message.
        let sent = |p: &mut Partition<MemStore>| {
            let mut sent = Vec::new();
            for o in p.take_outputs() {
                if let PartitionOutput::Send(to, Msg::PartitionEvents { events, .. }) = o {
                    sent.push((to, events.iter().map(|e| e.kind).collect::<Vec<_>>()));
                }
            }
            sent.sort_by_key(|(to, _)| *to);
            sent
        };
        let (key, op) = create_session(b"a");
        p.request(now, lease, Origin::Local(1), t.epoch, key, op);
        assert_eq!(sent(&mut p), vec![(8, vec![Created]), (9, vec![Created])], "to every member");
        let created = *p.replica().store().events.keys().next().unwrap();
        p.events_acked(now, 8, created);
        p.events_acked(now, 9, created);
        p.request(now, lease, Origin::Local(2), t.epoch, session_key(b"a"), set_attribute());
        assert_eq!(sent(&mut p), vec![(9, vec![AttributeChanged])], "to the watcher alone");
        let changed = *p.replica().store().events.keys().next().unwrap();
        p.events_acked(now, 9, changed);
        assert!(p.replica().store().events.is_empty(), "with every member it went to: forgotten");
        // Watchers of another epoch's topology name places in its member list, not in this
        // one's: every member is sent the change then.
        t.epoch += 1;
        p.adopt(now, Arc::new(t.clone()));
        p.note_lease(now, lease);
        let mut event = sessiongrid_model::session::event::SessionEvent {
            kind: AttributeChanged,
            id: Bytes::from_static(b"a"),
            group: Bytes::new(),
            principal: None,
            moved_to: None,
            at_ms: 1,
            node: 7,
            partition: 0,
            version: changed + 1,
            session_version: changed + 1,
        };
        p.publish(now, vec![event.clone()]);
        assert_eq!(sent(&mut p), vec![(8, vec![AttributeChanged]), (9, vec![AttributeChanged])]);
        p.note_lease(now, Lease { epoch: t.epoch, ..lease });
        event.version += 1;
        p.publish(now, vec![event]);
        p.events_acked(now, 8, changed + 1);
        p.events_acked(now, 9, changed + 1);
        assert_eq!(sent(&mut p), vec![(9, vec![AttributeChanged])], "the lease caught up");
    }

    #[test]
    fn a_primary_restarted_from_disk_sends_again_the_events_no_member_acknowledged() {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut t = Topology::founded_by(7, 1);
        t.members = vec![7, 8, 9];
        let t = Arc::new(t);
        let lease = Lease { epoch: t.epoch, until: u64::MAX, watchers: Watchers::ALL };
        let at = |mono| Now { mono, wall: 1 };
        let mut p = Partition::new(0, 7, cfg.clone(), MemStore::empty(), at(1));
        p.adopt(at(1), t.clone());
        for (n, id) in [b"a", b"b"].into_iter().enumerate() {
            let (key, op) = create_session(id);
            p.request(at(1), lease, Origin::Local(n as u64), t.epoch, key, op);
        }
        let sent = events_sent(&mut p);
        let v = |n: u64| sent[0].1[0] + n - 1;
        assert_eq!(sent, vec![(8, vec![v(1)]), (9, vec![v(1)])]);
        p.events_acked(at(2), 8, v(1));
        p.events_acked(at(2), 9, v(1));
        assert_eq!(events_sent(&mut p), vec![(8, vec![v(2)]), (9, vec![v(2)])]);
        p.events_acked(at(2), 8, v(2));
        // Killed before 9 acknowledged the second: its disk is all that is left of it.
        let disk = p.replica().store().clone();
        let mut p = Partition::new(0, 7, cfg, disk, at(3));
        p.adopt(at(3), t.clone());
        p.tick(at(3), lease);
        assert_eq!(events_sent(&mut p), vec![(8, vec![v(2)]), (9, vec![v(2)])], "published again");
        p.events_acked(at(4), 8, v(2));
        p.events_acked(at(4), 9, v(2));
        assert!(p.replica().store().events.is_empty(), "with every member: forgotten");
    }

    fn replies(p: &mut Partition<MemStore>) -> Vec<(u64, Result<Reply, Refusal>)> {
        p.take_outputs()
            .into_iter()
            .filter_map(|o| match o {
                PartitionOutput::Reply(id, result) => Some((id, result)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_held_partition_runs_other_requests_only_after_the_transaction() {
        let (mut p, t, lease, now) = primary_alone();
        let (a, b) = (Txn { node: 7, id: 1 }, Txn { node: 7, id: 2 });
        let key = Bytes::from_static(b"k");
        let within = |txn, op| Query::Within {
            txn,
            query: Box::new(Query::Op { key: key.clone(), op }),
            take: true,
        };
        let epoch = t.epoch;
        p.query(now, lease, Origin::Local(1), epoch, Query::Hold { txn: a, ms: 1000 });
        assert_eq!(replies(&mut p), vec![(1, Ok(Reply::Ok))]);
        // Another client's write and another transaction's hold wait.
        p.request(now, lease, Origin::Local(2), epoch, key.clone(), Op::IncrBy { delta: 10 });
        p.query(now, lease, Origin::Local(3), epoch, Query::Hold { txn: b, ms: 1000 });
        // A request of `b` before it holds anything finds the partition busy.
        p.query(now, lease, Origin::Local(4), epoch, within(b, Op::Get));
        let busy = replies(&mut p);
        assert!(matches!(&busy[..], [(4, Ok(r))] if r.is_error()), "{busy:?}");
        p.query(now, lease, Origin::Local(5), epoch, within(a, Op::IncrBy { delta: 1 }));
        p.query(now, lease, Origin::Local(6), epoch, within(a, Op::IncrBy { delta: 1 }));
        assert_eq!(replies(&mut p), vec![(5, Ok(Reply::Int(1))), (6, Ok(Reply::Int(2)))]);
        p.query(now, lease, Origin::Local(7), epoch, Query::Release { txn: a });
        // Released: the write that waited runs after the transaction, then `b` takes the hold.
        let after = replies(&mut p);
        assert_eq!(
            after,
            vec![(7, Ok(Reply::Int(1))), (2, Ok(Reply::Int(12))), (3, Ok(Reply::Ok))]
        );
        // `b`'s hold runs out: a waiting read runs then.
        p.request(now, lease, Origin::Local(8), epoch, key.clone(), Op::Get);
        assert_eq!(replies(&mut p), vec![]);
        p.tick(Now { mono: 2000, wall: 2 }, lease);
        assert_eq!(replies(&mut p), vec![(8, Ok(Reply::Bulk(Bytes::from_static(b"12"))))]);
        // A transaction that finds a partition it held up front free lost its hold there (a
        // new primary never had its writes): refused, not run.
        let late = Query::Within {
            txn: a,
            query: Box::new(Query::Op { key: key.clone(), op: Op::IncrBy { delta: 1 } }),
            take: false,
        };
        p.query(now, lease, Origin::Local(9), epoch, late);
        let refused = replies(&mut p);
        assert!(matches!(&refused[..], [(9, Ok(r))] if r.is_error()), "{refused:?}");
        p.request(now, lease, Origin::Local(10), epoch, key.clone(), Op::Get);
        assert_eq!(replies(&mut p), vec![(10, Ok(Reply::Bulk(Bytes::from_static(b"12"))))]);
    }
}
