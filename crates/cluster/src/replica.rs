//! One partition on one node: the primary orders writes and replicates them; followers (backups
//! and learners) apply them in order.
//!
//! - **Writes.** The primary applies the operation with [`sessiongrid_model::apply::apply`],
//!   writes the key's new state through to its store, sends it to every follower, and answers once
//!   every owner, and every learner already in sync, has acknowledged it.
//! - **Catching up.** A follower applies an append only if it continues its own log (same
//!   position); otherwise it asks to be synced from its position. The primary sends the missing
//!   entries from its recent log if it has that position, or else a snapshot: chunks that replace
//!   key ranges, then the writes since the snapshot began, replayed in order. Because an entry
//!   sets what it carries (a key's whole state, or a hash's header and some fields) to absolute
//!   values, the replay over newer chunk data ends in exactly the primary's state: a key's
//!   writes up to its chunk's time rebuild what the chunk holds, and a change of kind is always
//!   a whole write.
//! - **Handoff.** A new primary whose predecessor is still alive serves only once the predecessor
//!   released the partition or its lease has surely run out.
//! - **Events.** A write's session events travel with it. The primary publishes them once every
//!   counted follower has the write, and tells followers how far its events are published
//!   and with every member (the partition sends them until each member acknowledges them,
//!   `events.rs`); a follower keeps the rest, and publishes them itself if it becomes primary.
//!   Every owner's disk keeps a write's events with the write until the published mark passes
//!   them, so a replica started from its disk has its copies back; it vouches for no event.
//!   A new primary publishes its copies again and first takes back its followers' copies of
//!   the events of the writes past the published mark it knows (all of them after a start from
//!   disk; a copy that came by snapshot has none). So an event of an acknowledged write reaches
//!   every live member at least once, whichever owners survive or restart.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use sessiongrid_model::apply::apply;
use sessiongrid_model::key::{split_db, DATABASES, DB_PREFIX};
use sessiongrid_model::notify::{self, Notices};
use sessiongrid_model::session::event::{self, Before, EventKind, SessionEvent};
use sessiongrid_model::{Delta, Entry, Op, PartitionId, Reply, Value};
use tracing::{debug, error, warn};

use crate::config::ClusterConfig;
use crate::hold::{Holds, Standing, Waiting};
use crate::log::RecentLog;
use crate::msg::{Chunk, LogEntry, LogPos, Query, Refusal, ReplicaMsg, Term, Txn};
use crate::placement::NodeId;
use crate::storage::{PartitionStore, Prior, StoreError};
use crate::topology::{Epoch, Topology};
use crate::Now;

/// Who is waiting for a request's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Local(u64),
    /// Forwarded by `node` as its request `id`; it gives up at `expires_at` (its wall clock,
    /// unix ms), and the request is not run after that.
    Remote {
        node: NodeId,
        id: u64,
        expires_at: u64,
    },
}

#[derive(Debug)]
pub enum Effect {
    Send(PartitionId, NodeId, ReplicaMsg),
    Reply(Origin, Result<Reply, Refusal>),
    /// Something the coordinator should know (control sends it there).
    Report(PartitionId, Report),
    /// Session events of writes every counted owner has: deliver them to subscribers.
    Publish(Vec<SessionEvent>),
    /// Session events nobody watches, of a write just made (not yet on every owner, so it
    /// may still be lost): count them on this node; they go to no other member and are not
    /// kept.
    Announce(Vec<SessionEvent>),
    /// The keyspace events of a write of this key, made as it was applied (as Redis makes
    /// them: before it is replicated).
    Notify(Bytes, Notices),
}

/// What a partition tells the coordinator, through its node's control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// A learner now holds a complete copy, and acknowledged it while following the table of
    /// epoch `as_of`: it should become an owner.
    Synced { node: NodeId, as_of: Epoch },
    /// This node took over as primary with no copy at all (it never held the partition, or let
    /// its copy go) while another owner holds one: that owner should be primary.
    NoCopy,
}

/// Most events a follower keeps for its primary; past it the oldest go (they were most likely
/// published long ago, and the primary's `published` mark was lost).
const UNCONFIRMED_EVENTS_MAX: usize = 16 * 1024;

/// How far a new primary's versions jump past the newest it has seen. Its predecessor may have
/// applied writes it never replicated (their clients were told nothing, or timed out) under the
/// versions that follow; if the two then serve both sides of a split, a key written on this
/// side must still beat the predecessor's unreplicated copy of it when the sides merge, which
/// keeps the higher version (sim seed 7884 of `serve 2`). Versions only need to increase.
const TAKEOVER_VERSION_GAP: u64 = 1 << 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Primary,
    Follower,
    Idle,
}

struct Follower {
    owner: bool,
    /// Counted for acknowledgements: an owner, or a learner that has caught up once.
    in_sync: bool,
    acked: Option<LogPos>,
    /// The newest table the follower said it followed in an acknowledgement of `acked`.
    acked_epoch: Epoch,
    sent: Option<LogPos>,
    sent_at: u64,
    synced_at: u64,
    snapshot: Option<OutgoingSnapshot>,
    /// The `published` mark this follower was last sent.
    told: u64,
    /// It handed back its copies of the events this replica's earlier life may not have got
    /// to every member; when it was last asked.
    handed: bool,
    wanted_at: Option<u64>,
}

impl Follower {
    fn new(owner: bool) -> Follower {
        Follower {
            owner,
            in_sync: owner,
            acked: None,
            acked_epoch: 0,
            sent: None,
            sent_at: 0,
            synced_at: 0,
            snapshot: None,
            told: 0,
            handed: false,
            wanted_at: None,
        }
    }

    /// True if this follower's copy went back (to `pos`; `None`: incomplete) under a newer
    /// table than the one it last acknowledged in: it dropped its copy under a table the
    /// primary did not see (left out of the partition, then back as a learner), so what it
    /// acknowledged before says nothing now, and it is counted afresh (sim seed 632: reported
    /// in sync on an old acknowledgement, it was made the only owner with an empty copy).
    fn went_back(&mut self, pos: Option<LogPos>, epoch: Epoch) -> bool {
        let behind = self.acked.is_some_and(|a| pos.is_none_or(|p| p.version < a.version));
        if !behind || epoch <= self.acked_epoch {
            return false;
        }
        *self = Follower::new(self.owner);
        true
    }
}

fn copy_went_back(p: PartitionId, follower: NodeId) {
    debug!(partition = p, follower, "a follower's copy went back");
    metrics::counter!("sessiongrid_replication_copies_gone_back_total").increment(1);
}

struct OutgoingSnapshot {
    id: u64,
    as_of: LogPos,
    /// The chunk in flight, kept so a retransmission covers exactly the same key range.
    chunk: Chunk,
    sent_at: u64,
}

struct Pending {
    version: u64,
    origin: Origin,
    reply: Reply,
    deadline: u64,
}

struct IncomingSnapshot {
    id: u64,
    next_seq: u32,
}

pub struct Replica<S> {
    p: PartitionId,
    me: NodeId,
    cfg: Arc<ClusterConfig>,
    store: S,
    role: Role,
    primary: Option<NodeId>,
    /// The epoch of the table this replica adopted last.
    epoch: Epoch,
    /// Mirrors the store's position; `None` while a snapshot is being installed.
    pos: Option<LogPos>,
    log: RecentLog,
    max_version: u64,
    // As primary.
    term: Option<Term>,
    serve_at: u64,
    handoff_from: Option<NodeId>,
    followers: BTreeMap<NodeId, Follower>,
    pending: VecDeque<Pending>,
    next_snapshot: u64,
    next_sweep: u64,
    /// Events of writes not yet on every counted follower, in version order.
    unpublished: VecDeque<SessionEvent>,
    /// Every event up to this version has been published (by this node or its predecessors)
    /// and is with every member: followers forget those, and a successor publishes the rest.
    published: u64,
    /// Every event up to this version has been handed out to be published.
    handed_out: u64,
    /// Every event up to this version is with every member; `None`: none is on its way.
    delivered: Option<u64>,
    /// As primary: writes up to this version came before it took over, past the published mark
    /// it knew (after a start from disk, none), so whether their events reached every member is
    /// unknown; it publishes the copies its followers hand back before `published` passes them
    /// (0: nothing inherited).
    inherited: u64,
    // As follower: events the primary may not have published yet, in version order.
    unconfirmed: VecDeque<SessionEvent>,
    // As follower.
    incoming: Option<IncomingSnapshot>,
    finished: Option<(u64, u32)>,
    /// The newest snapshot a primary began sending here: (primary, id). A chunk 0 of an
    /// older or the same one from that primary is a late or repeated copy.
    snapshot_seen: Option<(NodeId, u64)>,
    sync_asked_at: Option<u64>,
    /// As primary: it took over with no copy at all (position zero), and some owner has not
    /// acknowledged a position of its history since; see [`Replica::gives_way`].
    empty_term: bool,
    /// As such a primary: when it last told the coordinator that an owner holds a copy.
    gave_way_at: Option<u64>,
    /// The store refused to record the protocol's own state (the position, or dropping a copy):
    /// memory and disk may disagree, so the partition must restart from disk.
    failed: Option<StoreError>,
    /// As primary: a transaction's hold, and the requests waiting for its end.
    holds: Holds,
    /// As primary: the topology adopted last stopped counting a follower, and this node has
    /// held no lease in its epoch since (see [`Replica::leased`]). Writes are not answered
    /// meanwhile: the topology may be one the rest of the cluster never saw.
    awaiting_lease: bool,
    /// The expiry sweep runs (`DEBUG SET-ACTIVE-EXPIRE 0` stops it; reads still expire keys).
    active_expire: bool,
    /// Some member watches session events (see [`crate::interest`]): attribute changes make
    /// events that go with the write. Otherwise they are announced on this node only.
    watched: bool,
}

impl<S: PartitionStore> Replica<S> {
    pub fn new(p: PartitionId, me: NodeId, cfg: Arc<ClusterConfig>, store: S) -> Self {
        let mut replica = Replica {
            p,
            me,
            log: RecentLog::new(LogPos::ZERO, cfg.log_entries_max, cfg.log_bytes_max),
            cfg,
            store,
            role: Role::Idle,
            primary: None,
            epoch: 0,
            pos: None,
            max_version: 0,
            term: None,
            serve_at: 0,
            handoff_from: None,
            followers: BTreeMap::new(),
            pending: VecDeque::new(),
            next_snapshot: 1,
            next_sweep: 0,
            unpublished: VecDeque::new(),
            published: 0,
            handed_out: 0,
            delivered: None,
            inherited: 0,
            unconfirmed: VecDeque::new(),
            incoming: None,
            finished: None,
            snapshot_seen: None,
            sync_asked_at: None,
            empty_term: false,
            gave_way_at: None,
            failed: None,
            holds: Holds::default(),
            awaiting_lease: false,
            active_expire: true,
            watched: true,
        };
        replica.reset();
        replica
    }

    /// Numbers this replica's snapshots from `first` on: above every id it used before a
    /// restart (see [`crate::dedup::first_forward_id`]), so a follower can tell a late copy of
    /// an old snapshot from a new one.
    pub fn with_snapshot_ids_from(mut self, first: u64) -> Self {
        self.next_snapshot = first;
        self
    }

    /// Forgets everything but the store: the replica is idle, as if just started on it.
    pub fn reset(&mut self) {
        let pos = self.store.position();
        let base = pos.unwrap_or(LogPos::ZERO);
        self.role = Role::Idle;
        self.primary = None;
        self.pos = pos;
        self.log = RecentLog::new(base, self.cfg.log_entries_max, self.cfg.log_bytes_max);
        self.max_version = base.version;
        self.term = None;
        self.serve_at = 0;
        self.handoff_from = None;
        self.followers.clear();
        self.pending.clear();
        self.next_sweep = 0;
        self.unpublished.clear();
        // Nothing is vouched for: followers keep every event until a primary that knows says so.
        self.published = 0;
        self.handed_out = base.version;
        self.delivered = None;
        self.inherited = 0;
        self.unconfirmed.clear();
        self.take_kept_events();
        self.incoming = None;
        self.finished = None;
        self.snapshot_seen = None;
        self.sync_asked_at = None;
        self.failed = None;
        self.holds.drain();
        self.awaiting_lease = false;
    }

    /// What its disk holds, for tests that restart a replica on it.
    #[cfg(test)]
    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    /// Why this replica must be restarted from disk, if it must: it could not record its
    /// position, or its store failed to put a write it took on disk.
    pub fn failure(&self) -> Option<StoreError> {
        self.failed.clone().or_else(|| self.store.commit_failure())
    }

    /// As primary: how many writes the furthest-behind counted follower still lacks.
    pub fn replication_lag(&self) -> u64 {
        let (Role::Primary, Some(pos)) = (self.role, self.pos) else { return 0 };
        self.followers
            .values()
            .filter(|f| f.in_sync)
            .map(|f| pos.version.saturating_sub(f.acked.map_or(0, |a| a.version)))
            .max()
            .unwrap_or(0)
    }

    /// This copy's counts, as its store keeps them.
    pub fn counts(&mut self) -> Option<crate::storage::Counts> {
        self.store.counts().ok()
    }

    pub fn position(&self) -> Option<LogPos> {
        self.pos
    }

    /// Up to `limit` of this copy's entries with keys after `after`, in key order.
    pub fn scan(
        &mut self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> crate::storage::StoreResult<Vec<(Bytes, Entry)>> {
        self.store.scan(after, limit)
    }

    /// Turns the expiry sweep on or off.
    pub fn set_active_expire(&mut self, on: bool) {
        self.active_expire = on;
    }

    /// Whether some member watches session events (control's latest word).
    pub fn set_watched(&mut self, watched: bool) {
        self.watched = watched;
    }

    pub fn is_idle(&self) -> bool {
        self.role == Role::Idle
    }

    /// Takes the partition's role in a new topology.
    pub fn adopt(&mut self, now: Now, t: &Topology, out: &mut Vec<Effect>) {
        let Some(a) = t.assignment(self.p) else { return };
        self.epoch = t.epoch;
        let primary = a.primary();
        let role = if primary == Some(self.me) {
            Role::Primary
        } else if a.holds(self.me) {
            Role::Follower
        } else {
            Role::Idle
        };
        if self.role == Role::Primary && role != Role::Primary {
            self.step_down(primary, out);
        }
        match role {
            Role::Primary => {
                if self.role != Role::Primary {
                    self.take_over(now, t, a.handoff_from);
                }
                // A counted follower that this topology drops or makes a learner no longer
                // holds up the writes it lacks, but only once this node may serve the topology:
                // a coordinator cut off from the rest may publish one without it that nobody
                // else ever adopts, while the others promote that follower without those writes.
                let uncounted = self.followers.iter().any(|(n, f)| {
                    f.in_sync && (!a.holds(*n) || (f.owner && !a.owners.contains(n)))
                });
                self.awaiting_lease |= uncounted;
                self.followers.retain(|n, _| a.holds(*n) && *n != self.me);
                let prev = self.pos;
                for &n in a.owners.iter().chain(&a.target).filter(|n| **n != self.me) {
                    let owner = a.owners.contains(&n);
                    let f = self.followers.entry(n).or_insert_with(|| Follower::new(owner));
                    if f.owner && !owner {
                        // An owner that is only a learner now left the partition in an epoch
                        // this node did not see, and may have dropped its copy there: what it
                        // acknowledged before says nothing; find out afresh.
                        *f = Follower::new(false);
                    }
                    f.owner = owner;
                    f.in_sync |= owner;
                    if f.acked.is_none() && f.snapshot.is_none() && f.sent_at == 0 {
                        f.sent_at = now.mono;
                        if let Some(prev) = prev {
                            out.push(Effect::Send(self.p, n, probe(prev, self.published)));
                        }
                    }
                }
                self.try_complete(out);
            }
            Role::Follower => {
                self.sync_asked_at = None;
            }
            Role::Idle => {
                if self.role != Role::Idle || self.pos != Some(LogPos::ZERO) {
                    self.drop_data();
                }
            }
        }
        self.primary = primary;
        self.role = role;
    }

    fn take_over(&mut self, now: Now, t: &Topology, handoff_from: Option<NodeId>) {
        let term = Term { epoch: t.epoch, primary: self.me };
        self.term = Some(term);
        self.handoff_from = handoff_from.filter(|n| *n != self.me);
        self.serve_at =
            if self.handoff_from.is_some() { now.mono + self.cfg.lease_ms } else { now.mono };
        self.incoming = None;
        self.followers.clear();
        self.empty_term = self.pos == Some(LogPos::ZERO);
        self.gave_way_at = None;
        self.max_version = self.max_version.saturating_add(TAKEOVER_VERSION_GAP);
        // What the predecessor may not have published is this node's to publish now.
        self.unpublished.extend(self.unconfirmed.drain(..));
        // This copy may lack events of writes past the published mark it knows: a copy that
        // came by snapshot holds none, one started from disk vouches for none. The followers'
        // copies are asked for (sim seed 31245: a learner promoted on its primary's graceful
        // leave never published a creation only the other follower still kept).
        self.inherited = self.pos.map_or(0, |p| p.version).max(self.inherited);
        if self.inherited <= self.published {
            self.inherited = 0;
        }
        if self.pos.is_none() {
            // Promoted while re-syncing: every range holds either the old primary's newer data or
            // this node's own copy, which had every acknowledged write (acknowledgements waited
            // for it). Start a new history from here; followers will take a snapshot.
            let pos = LogPos { term, version: self.next_version() };
            warn!(partition = self.p, node = self.me, "promoted with an incomplete copy");
            self.set_position(Some(pos));
            self.log.reset(pos);
        }
        debug!(partition = self.p, node = self.me, epoch = t.epoch, pos = ?self.pos, "primary");
    }

    fn step_down(&mut self, successor: Option<NodeId>, out: &mut Vec<Effect>) {
        for p in self.pending.drain(..) {
            out.push(Effect::Reply(p.origin, Err(Refusal::Indeterminate)));
        }
        // A transaction holding the partition loses it (its writes never reached the backups);
        // the requests waiting for it go to the new primary.
        for w in self.holds.drain() {
            out.push(Effect::Reply(w.origin(), Err(Refusal::NotPrimary)));
        }
        self.followers.clear();
        self.term = None;
        self.awaiting_lease = false;
        // The successor holds these writes' events (or the writes are lost) and publishes them.
        self.unpublished.clear();
        if let Some(next) = successor.filter(|n| *n != self.me) {
            out.push(Effect::Send(self.p, next, ReplicaMsg::Released));
        }
    }

    fn drop_data(&mut self) {
        if let Err(e) = self.store.clear() {
            error!(partition = self.p, error = %e, "could not drop a partition this node no longer holds");
            self.failed = Some(e);
            return;
        }
        self.pos = Some(LogPos::ZERO);
        self.log.reset(LogPos::ZERO);
        self.incoming = None;
        self.unconfirmed.clear();
    }

    fn next_version(&mut self) -> u64 {
        // Versions arrive from peers too; a lying one must not overflow this.
        let v = self.max_version.saturating_add(1);
        self.max_version = v;
        v
    }

    fn set_position(&mut self, pos: Option<LogPos>) {
        self.pos = pos;
        if let Err(e) = self.store.set_position(pos) {
            error!(partition = self.p, error = %e, "could not record the partition's position");
            self.failed = Some(e);
        }
    }

    /// Executes a client operation; the caller has checked that this node's lease is valid.
    pub fn request(&mut self, now: Now, origin: Origin, key: Bytes, op: Op, out: &mut Vec<Effect>) {
        if let Err(r) = self.check_serving(now) {
            return out.push(Effect::Reply(origin, Err(r)));
        }
        self.end_hold_if_out(now, out);
        if self.holds.is_held() {
            return self.holds.wait(Waiting::Request { origin, key, op });
        }
        self.run_op(now, origin, key, op, false, out)
    }

    /// The answer [`Replica::request`] would give a read at once, with nothing to write, send
    /// or wait for: `None` unless this primary serves, no transaction holds the partition, every
    /// write of its history is acknowledged by the followers that count, and the read changes
    /// nothing (a key found expired is deleted by the usual path). The caller has checked the
    /// lease, as for `request`, and that nothing of this partition waits for the disk.
    pub fn read_now(&mut self, now: Now, key: &[u8], op: &Op) -> Option<Reply> {
        if op.is_write() || self.check_serving(now).is_err() || self.holds.is_held() {
            return None;
        }
        let pos = self.pos?;
        if self.awaiting_lease || !self.pending.is_empty() || !self.replicated(pos.version) {
            return None;
        }
        let mut slot = match op.fields() {
            Some(needs) => self.store.get_fields(key, &needs),
            None => self.store.get(key),
        }
        .ok()?;
        if slot.as_ref().is_some_and(|e| e.is_expired(now.wall)) {
            return None;
        }
        let outcome = apply(op.clone(), &mut slot, now.wall);
        (!outcome.changed()).then_some(outcome.reply)
    }

    /// Runs a client operation. `held`: within the transaction holding the partition, answered
    /// as soon as it is applied (its writes reach the backups when the hold ends).
    fn run_op(
        &mut self,
        now: Now,
        origin: Origin,
        key: Bytes,
        op: Op,
        held: bool,
        out: &mut Vec<Effect>,
    ) {
        let read = match op.fields() {
            Some(needs) => self.store.get_fields(&key, &needs),
            None => self.store.get(&key),
        };
        let mut slot = match read {
            Ok(slot) => slot,
            Err(e) => return out.push(Effect::Reply(origin, Err(Refusal::Store(e.0)))),
        };
        let prior = Prior::of(slot.as_ref());
        let before = Before::of(&key, slot.as_ref());
        let live = slot.as_ref().is_some_and(|e| e.is_key() && !e.is_expired(now.wall));
        if let Some(too_big) = self.check_size(&op, slot.as_ref(), now) {
            return self.answer(now, origin, too_big, held, out);
        }
        if let Op::Merge(incoming) = &op {
            // Numbered on from the other side's writes, so what this side writes next beats
            // what it merged.
            self.max_version = self.max_version.max(incoming.version);
        }
        let expired = slot.as_ref().is_some_and(|e| e.is_expired(now.wall));
        let named = notify::Named::of(&op);
        let writes = op.is_write();
        let outcome = apply(op, &mut slot, now.wall);
        if !outcome.changed() {
            return self.answer(now, origin, outcome.reply, held, out);
        }
        if let Some(e) = self.store.refuses_writes() {
            // Nothing is written: a write is refused; a read that found its key expired is
            // answered all the same, the deletion left for when the disk takes writes again.
            if writes {
                return out.push(Effect::Reply(origin, Err(Refusal::WritesRefused(e.0))));
            }
            return self.answer(now, origin, outcome.reply, held, out);
        }
        if expired && slot.is_none() {
            metrics::counter!("sessiongrid_expired_keys_total").increment(1);
        }
        let mut events = event::derive(&key, &before, slot.as_ref(), now.wall);
        // Unwatched attribute changes are not replicated or sent: announced here once written.
        let mut unwatched = Vec::new();
        if !self.watched {
            (unwatched, events) =
                events.into_iter().partition(|e| e.kind == EventKind::AttributeChanged);
        }
        let exists = slot.as_ref().is_some_and(Entry::is_key);
        let notices = named.events(live, exists, expired);
        let delta = if self.cfg.heals_splits() && live && slot.is_none() {
            // Deleted (not expired): a tombstone keeps the deletion for a split's merge.
            Delta::Whole(Some(Entry::deleted(now.wall)))
        } else {
            Delta::of(slot, &outcome.change)
        };
        let notified = (!notices.is_empty()).then(|| key.clone());
        match self.commit(now, key, delta, prior, events, out) {
            Ok(version) => {
                if let Some(key) = notified {
                    out.push(Effect::Notify(key, notices));
                }
                if !unwatched.is_empty() {
                    self.stamp(&mut unwatched, version);
                    out.push(Effect::Announce(unwatched));
                }
                if held {
                    out.push(Effect::Reply(origin, Ok(outcome.reply)));
                } else {
                    self.await_replicas(now, version, origin, outcome.reply, out)
                }
            }
            Err(r) => out.push(Effect::Reply(origin, Err(r))),
        }
    }

    /// Refuses an `APPEND` or `SETRANGE` that would grow a string past `value_bytes_max`.
    fn check_size(&self, op: &Op, current: Option<&Entry>, now: Now) -> Option<Reply> {
        let len = || match current {
            Some(e @ Entry { value: Value::Str(s), .. }) if !e.is_expired(now.wall) => s.len(),
            _ => 0,
        };
        let grown = match op {
            Op::Append { value } => len().saturating_add(value.len()),
            Op::SetRange { offset, value } if !value.is_empty() => {
                usize::try_from(*offset).unwrap_or(usize::MAX).saturating_add(value.len())
            }
            Op::SetBit { offset, .. } => usize::try_from(offset / 8 + 1).unwrap_or(usize::MAX),
            _ => return None,
        };
        (grown > self.cfg.value_bytes_max)
            .then(|| Reply::error("ERR string exceeds maximum allowed size (value_bytes_max)"))
    }

    /// Answers a whole-partition query; the caller has checked this node's lease.
    pub fn query(&mut self, now: Now, origin: Origin, query: Query, out: &mut Vec<Effect>) {
        if let Err(r) = self.check_serving(now) {
            return out.push(Effect::Reply(origin, Err(r)));
        }
        self.end_hold_if_out(now, out);
        match query {
            Query::Hold { txn, ms } => match self.holds.standing(Some(txn)) {
                Standing::Free | Standing::Holder => {
                    self.take_hold(txn, now.mono.saturating_add(ms), now.wall);
                    out.push(Effect::Reply(origin, Ok(Reply::Ok)));
                }
                Standing::Other => self.holds.wait(Waiting::Query { origin, query }),
            },
            Query::Release { txn } => {
                let held = self.holds.standing(Some(txn)) == Standing::Holder;
                if held {
                    self.holds.end();
                    self.ship_held(now, out);
                }
                self.answer_after_pending(now, origin, Reply::Int(held as i64), out);
                self.resume_waiting(now, out);
            }
            Query::Within { txn, query, take } => match self.holds.standing(Some(txn)) {
                Standing::Free if !take => {
                    let lost = "ERR the transaction lost its hold on this key's partition (it \
                                moved to another node); the transaction's writes there are gone";
                    out.push(Effect::Reply(origin, Ok(Reply::error(lost))))
                }
                Standing::Free | Standing::Holder => {
                    if !self.holds.is_held() {
                        // A key the transaction did not name up front: its partition was free.
                        let until = now.mono.saturating_add(self.cfg.request_timeout_ms);
                        self.take_hold(txn, until, now.wall);
                    }
                    // The transaction's clock stands still, as in Redis.
                    let wall = self.holds.current().map_or(now.wall, |h| h.wall);
                    self.run_query(Now { wall, ..now }, origin, *query, true, out)
                }
                Standing::Other => {
                    let busy = "BUSYKEY a key's partition is held by another transaction";
                    out.push(Effect::Reply(origin, Ok(Reply::error(busy))))
                }
            },
            query if self.holds.is_held() => self.holds.wait(Waiting::Query { origin, query }),
            query => self.run_query(now, origin, query, false, out),
        }
    }

    fn take_hold(&mut self, txn: Txn, until: u64, wall: u64) {
        let horizon = self.pos.map_or(0, |p| p.version);
        self.holds.take(txn, until, horizon, wall);
    }

    /// Ends a hold that ran out: its transaction's node died or hung.
    fn end_hold_if_out(&mut self, now: Now, out: &mut Vec<Effect>) {
        if let Some(h) = self.holds.end_if_out(now.mono) {
            warn!(partition = self.p, txn = ?h.txn, "a transaction's hold ran out; released");
            self.ship_held(now, out);
            self.resume_waiting(now, out);
        }
    }

    /// Sends the writes made under the hold that just ended to every follower waiting for them.
    fn ship_held(&mut self, now: Now, out: &mut Vec<Effect>) {
        let Some(pos) = self.pos else { return };
        let behind: Vec<(NodeId, LogPos)> = self
            .followers
            .iter()
            .filter(|(_, f)| f.snapshot.is_none())
            .filter_map(|(&n, f)| f.sent.filter(|s| *s != pos).map(|s| (n, s)))
            .collect();
        for (n, sent) in behind {
            if self.log.contains(sent) {
                self.send_suffix(now, n, sent, out);
            }
        }
    }

    /// Runs the requests that waited for a hold, in order, until one takes the partition again.
    fn resume_waiting(&mut self, now: Now, out: &mut Vec<Effect>) {
        while let Some(w) = self.holds.next_waiting() {
            match w {
                Waiting::Request { origin, key, op } => self.request(now, origin, key, op, out),
                Waiting::Query { origin, query } => self.query(now, origin, query, out),
            }
        }
    }

    /// Answers `origin` now if `held` (within the transaction holding the partition), else once
    /// every write it may have seen is on every owner.
    fn answer(
        &mut self,
        now: Now,
        origin: Origin,
        reply: Reply,
        held: bool,
        out: &mut Vec<Effect>,
    ) {
        if held {
            out.push(Effect::Reply(origin, Ok(reply)));
        } else {
            self.answer_after_pending(now, origin, reply, out);
        }
    }

    /// Runs a query, `held` as in [`Replica::run_op`].
    fn run_query(
        &mut self,
        now: Now,
        origin: Origin,
        query: Query,
        held: bool,
        out: &mut Vec<Effect>,
    ) {
        let reply = match query {
            Query::Count => match self.store.counts() {
                Ok(c) => Reply::Array(
                    [c.keys, c.expiring, c.sessions].map(|n| Reply::Int(n as i64)).to_vec(),
                ),
                Err(e) => return out.push(Effect::Reply(origin, Err(Refusal::Store(e.0)))),
            },
            Query::DbCounts => match self.db_counts() {
                Ok(dbs) => Reply::Array(
                    dbs.iter().flat_map(|&(k, e)| [k, e]).map(|n| Reply::Int(n as i64)).collect(),
                ),
                Err(e) => return out.push(Effect::Reply(origin, Err(Refusal::Store(e.0)))),
            },
            Query::Keys(filter) => match self.all_entries() {
                Ok(entries) => Reply::Array(
                    entries
                        .into_iter()
                        .filter(|(k, e)| filter.accepts(k, e, now.wall))
                        .map(|(k, _)| Reply::Bulk(k))
                        .collect(),
                ),
                Err(e) => return out.push(Effect::Reply(origin, Err(Refusal::Store(e.0)))),
            },
            Query::Flush | Query::FlushDb(_) => {
                if let Some(e) = self.store.refuses_writes() {
                    return out.push(Effect::Reply(origin, Err(Refusal::WritesRefused(e.0))));
                }
                let entries = match self.all_entries() {
                    Ok(entries) => entries,
                    Err(e) => return out.push(Effect::Reply(origin, Err(Refusal::Store(e.0)))),
                };
                let db = if let Query::FlushDb(db) = query { Some(db) } else { None };
                let in_db = |key: &[u8]| db.is_none_or(|db| split_db(key).0 == db);
                let mut last = None;
                for (key, entry) in entries.into_iter().filter(|(k, _)| in_db(k)) {
                    let (gone, prior) = (Delta::Whole(None), Prior::of(Some(&entry)));
                    match self.commit(now, key, gone, prior, Vec::new(), out) {
                        Ok(version) => last = Some(version),
                        Err(r) => return out.push(Effect::Reply(origin, Err(r))),
                    }
                }
                match last {
                    Some(version) if !held => {
                        return self.await_replicas(now, version, origin, Reply::Ok, out)
                    }
                    _ => Reply::Ok,
                }
            }
            Query::Op { key, op } => return self.run_op(now, origin, key, op, held, out),
            Query::InSync => {
                let owners = self.followers.values().filter(|f| f.owner && f.in_sync).count();
                Reply::Int(owners as i64)
            }
            Query::Hold { .. } | Query::Release { .. } | Query::Within { .. } => {
                Reply::error("ERR a transaction's request cannot nest another")
            }
        };
        self.answer(now, origin, reply, held, out);
    }

    /// Answers a request that changed nothing. If it saw writes not yet on every owner, it waits
    /// for them: an answer never reflects a write that may still be lost.
    fn answer_after_pending(
        &mut self,
        now: Now,
        origin: Origin,
        reply: Reply,
        out: &mut Vec<Effect>,
    ) {
        // Waits for the whole history, not only for writes still awaiting their acks: one
        // already answered as indeterminate (it timed out) is applied here too and may yet be
        // lost, so no answer may reflect it before every counted follower has it.
        match self.pos {
            Some(pos) => self.await_replicas(now, pos.version, origin, reply, out),
            None => out.push(Effect::Reply(origin, Ok(reply))),
        }
    }

    fn check_serving(&self, now: Now) -> Result<(), Refusal> {
        if self.role != Role::Primary || self.term.is_none() || self.pos.is_none() {
            return Err(Refusal::NotPrimary);
        }
        if now.mono < self.serve_at {
            return Err(Refusal::NotServing);
        }
        // Taken over with no copy: nothing runs until every owner has acknowledged this
        // history (a round trip), so the position stays zero and an owner holding a copy is
        // never snapshotted over, even by a restart of this partition, which forgets the flag
        // but finds the position zero again ([`Replica::gives_way`]).
        if self.empty_term && self.followers.values().any(|f| f.owner && f.acked.is_none()) {
            return Err(Refusal::NotServing);
        }
        Ok(())
    }

    fn all_entries(&mut self) -> Result<Vec<(Bytes, Entry)>, crate::storage::StoreError> {
        let mut all: Vec<(Bytes, Entry)> = Vec::new();
        loop {
            let after = all.last().map(|(k, _)| k.clone());
            let rows = self.store.scan(after.as_deref(), 1024)?;
            let done = rows.len() < 1024;
            all.extend(rows);
            if done {
                return Ok(all);
            }
        }
    }

    /// (keys, keys with a deadline) of each logical database (see [`Query::DbCounts`]).
    fn db_counts(&mut self) -> Result<Vec<(u64, u64)>, StoreError> {
        let total = self.store.counts()?;
        let mut dbs = vec![(0, 0); usize::from(DATABASES)];
        let mut after = Bytes::from_static(DB_PREFIX);
        'scan: loop {
            let rows = self.store.scan(Some(&after), 1024)?;
            let done = rows.len() < 1024;
            for (key, entry) in rows {
                if !key.starts_with(DB_PREFIX) {
                    break 'scan;
                }
                let db = usize::from(split_db(&key).0);
                if db > 0 && entry.is_key() {
                    dbs[db].0 += 1;
                    dbs[db].1 += u64::from(entry.expire_at_ms.is_some());
                }
                after = key;
            }
            if done {
                break;
            }
        }
        let (keys, expiring) = dbs.iter().fold((0, 0), |(k, e), d| (k + d.0, e + d.1));
        dbs[0] = (total.keys.saturating_sub(keys), total.expiring.saturating_sub(expiring));
        Ok(dbs)
    }

    /// Writes a key's new state as the next entry of the log: through to the store, then to
    /// every follower that is up to date. Returns the entry's version.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        now: Now,
        key: Bytes,
        mut delta: Delta,
        prior: Prior,
        mut events: Vec<SessionEvent>,
        out: &mut Vec<Effect>,
    ) -> Result<u64, Refusal> {
        let (Some(term), Some(prev)) = (self.term, self.pos) else {
            return Err(Refusal::NotPrimary);
        };
        let version = self.next_version();
        delta.set_version(version);
        self.stamp(&mut events, version);
        debug_assert!(version > prev.version, "a primary's versions increase");
        let entry = LogEntry { pos: LogPos { term, version }, key, delta, events };
        tracing::trace!(partition = self.p, node = self.me, version, key = ?entry.key, "commit");
        self.store.append(&entry, Some(prior)).map_err(|e| Refusal::Store(e.0))?;
        self.pos = Some(entry.pos);
        let held = self.holds.is_held();
        for (&n, f) in self.followers.iter_mut() {
            if f.snapshot.is_none() && f.sent == Some(prev) && !held {
                f.sent = Some(entry.pos);
                f.sent_at = now.mono;
                f.told = self.published;
                let append = ReplicaMsg::Append {
                    prev,
                    entries: vec![entry.clone()],
                    published: self.published,
                };
                out.push(Effect::Send(self.p, n, append));
            }
        }
        self.unpublished.extend(entry.events.iter().cloned());
        if self.followers.is_empty() {
            // Nobody to catch up from it (a single node, or a copy waiting for a new owner,
            // which takes a snapshot): keeping it would only cost time and memory.
            self.log.reset(entry.pos);
        } else {
            self.log.push(entry);
        }
        Ok(version)
    }

    /// Marks events as this primary's, of its write at `version`.
    fn stamp(&self, events: &mut [SessionEvent], version: u64) {
        for e in events {
            (e.node, e.partition, e.version) = (self.me, self.p, version);
        }
    }

    /// Publishes the events of writes that every counted follower has.
    fn publish_replicated(&mut self, out: &mut Vec<Effect>) {
        let Some(pos) = self.pos else { return };
        let replicated = self
            .followers
            .values()
            .filter(|f| f.in_sync)
            .map(|f| f.acked.map_or(0, |a| a.version))
            .min()
            .unwrap_or(pos.version)
            .min(pos.version);
        let mut ready = Vec::new();
        while self.unpublished.front().is_some_and(|e| e.version <= replicated) {
            ready.extend(self.unpublished.pop_front());
        }
        if let Some(first) = ready.first() {
            // On their way from now on: not with every member until the node says so.
            let before = first.version.saturating_sub(1);
            self.delivered = Some(self.delivered.map_or(before, |d| d.min(before)));
            out.push(Effect::Publish(ready));
        }
        // Every event of a write up to `replicated` is out (those left are of later writes).
        self.handed_out = self.handed_out.max(replicated);
        self.advance_published();
    }

    /// How far the events handed out have reached every member: `None` if none is on its way.
    /// Until they have, followers keep them, so a successor publishes them again.
    pub fn events_delivered(&mut self, through: Option<u64>) {
        self.delivered = through;
        self.advance_published();
    }

    fn advance_published(&mut self) {
        if self.inherited > 0 {
            return; // Until the followers have handed back what this replica inherited.
        }
        let with_all = self.delivered.map_or(self.handed_out, |d| d.min(self.handed_out));
        if with_all > self.published {
            self.published = with_all;
            self.forget_kept_events();
        }
    }

    /// Takes the events the disk kept with their writes as copies that no primary vouched
    /// for: published again if this replica becomes primary, forgotten once one vouches.
    fn take_kept_events(&mut self) {
        match self.store.kept_events() {
            Ok(events) => {
                let excess = events.len().saturating_sub(UNCONFIRMED_EVENTS_MAX);
                self.unconfirmed = events.into_iter().skip(excess).collect();
            }
            Err(e) => {
                error!(partition = self.p, error = %e, "could not read the kept session events")
            }
        }
    }

    /// The disk need not keep the events up to `published` any longer.
    fn forget_kept_events(&mut self) {
        if let Err(e) = self.store.forget_events(self.published) {
            warn!(partition = self.p, error = %e, "could not drop session events delivered");
        }
    }

    /// Answers `origin` with `reply` once every counted follower has `version`.
    fn await_replicas(
        &mut self,
        now: Now,
        version: u64,
        origin: Origin,
        reply: Reply,
        out: &mut Vec<Effect>,
    ) {
        let deadline = now.mono + self.cfg.request_timeout_ms;
        self.pending.push_back(Pending { version, origin, reply, deadline });
        self.try_complete(out);
    }

    /// True once every counted follower has this node's history up to `version`.
    fn replicated(&self, version: u64) -> bool {
        self.cfg.faults.ack_before_backups
            || self
                .followers
                .values()
                .filter(|f| f.in_sync)
                .all(|f| f.acked.is_some_and(|a| a.version >= version))
    }

    /// This node holds a lease in the epoch of the topology adopted last, so it may serve that
    /// topology (under `when_split = deny`: a majority has it) and the followers it dropped are
    /// out. Answers the writes that waited only for them.
    pub fn leased(&mut self, out: &mut Vec<Effect>) {
        if self.awaiting_lease {
            self.awaiting_lease = false;
            self.try_complete(out);
        }
    }

    /// Answers every write that all counted followers now have, and publishes its events.
    fn try_complete(&mut self, out: &mut Vec<Effect>) {
        self.publish_replicated(out);
        while let Some(front) = self.pending.front() {
            if self.awaiting_lease || !self.replicated(front.version) {
                break;
            }
            let done = self.pending.pop_front().expect("front exists");
            out.push(Effect::Reply(done.origin, Ok(done.reply)));
        }
    }

    pub fn receive(&mut self, now: Now, from: NodeId, msg: ReplicaMsg, out: &mut Vec<Effect>) {
        match (self.role, msg) {
            (Role::Follower, ReplicaMsg::Append { prev, entries, published })
                if self.is_primary(from) =>
            {
                self.confirm_published(published);
                self.on_append(now, from, prev, entries, out)
            }
            (Role::Follower, ReplicaMsg::Chunk(chunk)) if self.is_primary(from) => {
                self.on_chunk(now, from, chunk, out)
            }
            (Role::Primary, ReplicaMsg::Ack { pos, epoch }) => {
                self.on_ack(now, from, pos, epoch, out)
            }
            (Role::Primary, ReplicaMsg::SyncRequest { pos, epoch }) => {
                self.on_sync_request(now, from, pos, epoch, out)
            }
            (Role::Primary, ReplicaMsg::ChunkAck { id, seq, epoch }) => {
                self.on_chunk_ack(now, from, id, seq, epoch, out)
            }
            (Role::Primary, ReplicaMsg::Released) => {
                if self.handoff_from == Some(from) {
                    self.serve_at = now.mono;
                }
            }
            (Role::Follower, ReplicaMsg::EventsWanted { through }) if self.is_primary(from) => {
                let events =
                    self.unconfirmed.iter().filter(|e| e.version <= through).cloned().collect();
                out.push(Effect::Send(self.p, from, ReplicaMsg::EventsHanded { through, events }));
            }
            (Role::Primary, ReplicaMsg::EventsHanded { through, events }) => {
                self.on_events_handed(from, through, events, out)
            }
            // Not for this role, or a follower's message not from its primary (every kind is
            // named, so a new one must be placed here or above).
            (
                role,
                msg @ (ReplicaMsg::Append { .. }
                | ReplicaMsg::Chunk(_)
                | ReplicaMsg::Ack { .. }
                | ReplicaMsg::SyncRequest { .. }
                | ReplicaMsg::ChunkAck { .. }
                | ReplicaMsg::Released
                | ReplicaMsg::EventsWanted { .. }
                | ReplicaMsg::EventsHanded { .. }),
            ) => debug!(partition = self.p, ?role, ?msg, "ignored replica message"),
        }
    }

    /// A follower's copies of events this replica inherited: published (again) now; once
    /// every follower has answered, `published` may pass them.
    fn on_events_handed(
        &mut self,
        from: NodeId,
        through: u64,
        events: Vec<SessionEvent>,
        out: &mut Vec<Effect>,
    ) {
        if through != self.inherited || self.inherited == 0 {
            return;
        }
        let Some(f) = self.followers.get_mut(&from) else { return };
        f.handed = true;
        let fresh: Vec<SessionEvent> =
            events.into_iter().filter(|e| !self.unpublished.contains(e)).collect();
        let mut all: Vec<SessionEvent> = self.unpublished.drain(..).chain(fresh).collect();
        all.sort_by_key(|e| e.version);
        self.unpublished = all.into();
        self.settle_inherited();
        self.publish_replicated(out);
    }

    /// Forgets what this replica inherited once every follower has handed back its copies.
    fn settle_inherited(&mut self) {
        if self.inherited > 0 && self.followers.values().all(|f| f.handed) {
            self.inherited = 0;
        }
    }

    fn is_primary(&self, from: NodeId) -> bool {
        self.primary == Some(from)
    }

    fn on_append(
        &mut self,
        now: Now,
        from: NodeId,
        prev: LogPos,
        entries: Vec<LogEntry>,
        out: &mut Vec<Effect>,
    ) {
        if self.incoming.is_some() {
            return;
        }
        if self.store.refuses_writes().is_some() {
            // A full disk: nothing is applied or acknowledged, and the primary sends again
            // later. Applied, the write would fail and restart this partition every time.
            return;
        }
        let Some(pos) = self.pos else {
            return self.ask_sync(now, from, out);
        };
        tracing::trace!(
            partition = self.p,
            node = self.me,
            ?prev,
            ?pos,
            n = entries.len(),
            "append"
        );
        let start = if prev == pos {
            0
        } else if let Some(i) = entries.iter().position(|e| e.pos == pos) {
            i + 1
        } else if entries.last().is_some_and(|e| self.log.contains(e.pos)) {
            entries.len() // a duplicate of what this replica already has
        } else {
            return self.ask_sync(now, from, out);
        };
        for entry in entries.into_iter().skip(start) {
            if self.pos.is_some_and(|p| p.version >= entry.pos.version) {
                // Not a continuation of this log: a confused or lying primary. Checked before
                // the write, which would otherwise overwrite newer state.
                warn!(partition = self.p, from, "an append that does not move forward; ignored");
                break;
            }
            tracing::trace!(partition = self.p, node = self.me, version = entry.pos.version, key = ?entry.key, "replicated");
            if let Err(e) = self.store.append(&entry, None) {
                warn!(partition = self.p, error = %e, "could not apply a replicated write");
                break;
            }
            self.max_version = self.max_version.max(entry.pos.version);
            self.pos = Some(entry.pos);
            self.keep_unconfirmed(&entry.events);
            self.log.push(entry);
        }
        if let Some(pos) = self.pos {
            out.push(Effect::Send(self.p, from, ReplicaMsg::Ack { pos, epoch: self.epoch }));
        }
    }

    /// The primary has published everything up to `published`: forget those events.
    fn confirm_published(&mut self, published: u64) {
        if published > self.published {
            self.published = published;
            self.forget_kept_events();
        }
        if published >= self.inherited {
            // A primary vouches for everything this replica inherited.
            self.inherited = 0;
        }
        while self.unconfirmed.front().is_some_and(|e| e.version <= published) {
            self.unconfirmed.pop_front();
        }
    }

    fn keep_unconfirmed(&mut self, events: &[SessionEvent]) {
        for e in events.iter().filter(|e| e.version > self.published) {
            if self.unconfirmed.len() == UNCONFIRMED_EVENTS_MAX {
                self.unconfirmed.pop_front();
            }
            self.unconfirmed.push_back(e.clone());
        }
    }

    fn ask_sync(&mut self, now: Now, from: NodeId, out: &mut Vec<Effect>) {
        let recently = self.sync_asked_at.is_some_and(|at| now.mono < at + self.cfg.retransmit_ms);
        if !recently {
            self.sync_asked_at = Some(now.mono);
            out.push(Effect::Send(
                self.p,
                from,
                ReplicaMsg::SyncRequest { pos: self.pos, epoch: self.epoch },
            ));
        }
    }

    fn on_chunk(&mut self, now: Now, from: NodeId, chunk: Chunk, out: &mut Vec<Effect>) {
        let Chunk { id, seq, after, through, entries, as_of } = chunk;
        let ack = ReplicaMsg::ChunkAck { id, seq, epoch: self.epoch };
        if self.finished == Some((id, seq)) {
            return out.push(Effect::Send(self.p, from, ack));
        }
        if self.store.refuses_writes().is_some() {
            return; // as for an append: the chunk comes again
        }
        if seq == 0 && self.incoming.as_ref().is_none_or(|s| s.id != id) {
            // A primary numbers its snapshots upwards: chunk 0 of one it began before the
            // newest it sent here is a late or repeated copy, and installing it would undo the
            // writes appended since.
            if self.snapshot_seen.is_some_and(|(primary, newest)| primary == from && id <= newest) {
                debug!(partition = self.p, node = self.me, from, id, "late snapshot chunk ignored");
                return;
            }
            self.snapshot_seen = Some((from, id));
            self.set_position(None);
            self.incoming = Some(IncomingSnapshot { id, next_seq: 0 });
        }
        let Some(incoming) = self.incoming.as_mut().filter(|s| s.id == id) else {
            if self.incoming.is_none() && self.finished.is_none_or(|(done, _)| done != id) {
                // A snapshot this replica dropped midway (left out of the partition for a
                // while): the primary would send this chunk for good.
                self.ask_sync(now, from, out);
            }
            return;
        };
        if seq.checked_add(1) == Some(incoming.next_seq) {
            return out.push(Effect::Send(self.p, from, ack));
        }
        if seq != incoming.next_seq {
            return;
        }
        tracing::trace!(
            partition = self.p,
            node = self.me,
            id,
            seq,
            n = entries.len(),
            ?as_of,
            "chunk"
        );
        if let Err(e) = self.store.replace_range(after.as_deref(), through.as_deref(), &entries) {
            warn!(partition = self.p, error = %e, "could not install a snapshot chunk");
            return;
        }
        incoming.next_seq += 1;
        if through.is_none() {
            self.incoming = None;
            self.finished = Some((id, seq));
            self.set_position(Some(as_of));
            self.log.reset(as_of);
            self.max_version = self.max_version.max(as_of.version);
            debug!(partition = self.p, node = self.me, "snapshot installed");
        }
        out.push(Effect::Send(self.p, from, ack));
    }

    /// True if `pos` is a point of this replica's history it can continue from.
    fn knows(&self, pos: LogPos) -> bool {
        self.pos == Some(pos) || self.log.contains(pos)
    }

    fn on_ack(&mut self, now: Now, from: NodeId, pos: LogPos, epoch: Epoch, out: &mut Vec<Effect>) {
        let Some(f) = self.followers.get_mut(&from) else { return };
        if f.snapshot.is_some() {
            return;
        }
        if f.went_back(Some(pos), epoch) {
            copy_went_back(self.p, from);
        } else if let Some(acked) = f.acked.filter(|a| pos.version <= a.version) {
            if pos == acked {
                f.acked_epoch = f.acked_epoch.max(epoch);
            }
            return; // stale, or the answer to a probe
        }
        if !(self.pos == Some(pos) || self.log.contains(pos)) {
            if self.gives_way(now, from, Some(pos), out) {
                return;
            }
            return self.start_snapshot(now, from, out);
        }
        f.acked = Some(pos);
        f.acked_epoch = f.acked_epoch.max(epoch);
        if self.empty_term && self.followers.values().all(|f| !f.owner || f.acked.is_some()) {
            self.empty_term = false;
        }
        let Some(f) = self.followers.get_mut(&from) else { return };
        if f.sent.is_none_or(|s| s.version < pos.version) {
            f.sent = Some(pos);
        }
        if self.pos == Some(pos) {
            if !f.in_sync {
                f.in_sync = true;
                f.synced_at = now.mono;
                out.push(Effect::Report(
                    self.p,
                    Report::Synced { node: from, as_of: f.acked_epoch },
                ));
            }
        } else if f.sent == Some(pos) {
            self.send_suffix(now, from, pos, out);
        }
        self.try_complete(out);
    }

    fn on_sync_request(
        &mut self,
        now: Now,
        from: NodeId,
        pos: Option<LogPos>,
        epoch: Epoch,
        out: &mut Vec<Effect>,
    ) {
        let known = pos.filter(|p| self.knows(*p));
        let Some(f) = self.followers.get_mut(&from) else { return };
        if f.went_back(pos, epoch) {
            copy_went_back(self.p, from);
        }
        match known {
            Some(pos) => {
                f.snapshot = None;
                f.acked = None;
                f.sent = None;
                self.on_ack(now, from, pos, epoch, out);
            }
            None if self.gives_way(now, from, pos, out) => {}
            None => self.start_snapshot(now, from, out),
        }
    }

    /// True if this primary must not replace follower `to`'s copy (at `theirs`) with its own:
    /// it took over with no copy at all (position zero: it never held the partition, or let
    /// its copy go), not every owner has acknowledged its history since (writes it applied
    /// meanwhile were never acknowledged), and `to` is an owner holding a copy, whole or not.
    /// That can only be a table that counted this node for a copy it no longer has (it let it
    /// go under another table, on the other side of a split, say); a snapshot would wipe the
    /// copy with every acknowledged write (sim
    /// seed 6941: a node declared dead on one side merged into the other, which still listed
    /// it as primary). It asks the coordinator to make an owner with a copy primary, and
    /// serves nothing meanwhile ([`Replica::check_serving`] refuses until every owner has
    /// acknowledged, which that owner never does).
    fn gives_way(
        &mut self,
        now: Now,
        to: NodeId,
        theirs: Option<LogPos>,
        out: &mut Vec<Effect>,
    ) -> bool {
        // An incomplete copy (`None`: a resync cut short by a restart) holds every acknowledged
        // write of the ranges it has.
        let holds = theirs != Some(LogPos::ZERO);
        if !(self.empty_term && holds && self.followers.get(&to).is_some_and(|f| f.owner)) {
            return false;
        }
        let due = self.gave_way_at.is_none_or(|at| now.mono >= at + self.cfg.retransmit_ms);
        if due {
            if self.gave_way_at.is_none() {
                warn!(
                    partition = self.p,
                    node = self.me,
                    owner = to,
                    "primary with no copy; an owner holds one: giving way"
                );
                metrics::counter!("sessiongrid_partition_gave_way_total").increment(1);
            }
            self.gave_way_at = Some(now.mono);
            out.push(Effect::Report(self.p, Report::NoCopy));
        }
        true
    }

    fn send_suffix(&mut self, now: Now, to: NodeId, from_pos: LogPos, out: &mut Vec<Effect>) {
        let Some(mut entries) = self.log.after(from_pos, self.cfg.snapshot_chunk_entries) else {
            return self.start_snapshot(now, to, out);
        };
        if let Some(hold) = self.holds.current() {
            // A transaction's writes go out together, when its hold ends.
            entries.retain(|e| e.pos.version <= hold.horizon);
            if entries.is_empty() {
                return;
            }
        }
        let Some(f) = self.followers.get_mut(&to) else { return };
        f.sent = Some(entries.last().map_or(from_pos, |e| e.pos));
        f.sent_at = now.mono;
        metrics::counter!("sessiongrid_transfer_bytes_total").increment(entries_bytes(&entries));
        let published = self.published;
        out.push(Effect::Send(
            self.p,
            to,
            ReplicaMsg::Append { prev: from_pos, entries, published },
        ));
    }

    fn start_snapshot(&mut self, now: Now, to: NodeId, out: &mut Vec<Effect>) {
        let Some(as_of) = self.pos else { return };
        let id = self.next_snapshot;
        self.next_snapshot += 1;
        debug!(partition = self.p, node = self.me, follower = to, id, as_of = ?self.pos, "snapshot started");
        metrics::counter!("sessiongrid_transfer_snapshots_total").increment(1);
        self.send_chunk(now, to, id, 0, None, as_of, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_chunk(
        &mut self,
        now: Now,
        to: NodeId,
        id: u64,
        seq: u32,
        after: Option<Bytes>,
        as_of: LogPos,
        out: &mut Vec<Effect>,
    ) {
        let limit = self.cfg.snapshot_chunk_entries.max(1);
        let entries = match self.store.scan(after.as_deref(), limit) {
            Ok(entries) => entries,
            Err(e) => {
                warn!(partition = self.p, error = %e, "could not read a snapshot chunk");
                return;
            }
        };
        let through =
            if entries.len() < limit { None } else { entries.last().map(|e| e.0.clone()) };
        let chunk = Chunk { id, seq, after, through, entries, as_of };
        let Some(f) = self.followers.get_mut(&to) else { return };
        let bytes: usize = chunk.entries.iter().map(|(k, e)| k.len() + e.cost_bytes()).sum();
        metrics::counter!("sessiongrid_transfer_bytes_total").increment(bytes as u64);
        metrics::counter!("sessiongrid_transfer_chunks_total").increment(1);
        f.acked = None;
        f.sent = None;
        f.snapshot = Some(OutgoingSnapshot { id, as_of, chunk: chunk.clone(), sent_at: now.mono });
        out.push(Effect::Send(self.p, to, ReplicaMsg::Chunk(chunk)));
    }

    fn on_chunk_ack(
        &mut self,
        now: Now,
        from: NodeId,
        id: u64,
        seq: u32,
        epoch: Epoch,
        out: &mut Vec<Effect>,
    ) {
        let Some(f) = self.followers.get_mut(&from) else { return };
        let Some(s) = f.snapshot.as_ref().filter(|s| s.id == id) else { return };
        if s.chunk.seq != seq {
            return;
        }
        let as_of = s.as_of;
        match s.chunk.through.clone() {
            Some(through) => self.send_chunk(now, from, id, seq + 1, Some(through), as_of, out),
            None => {
                f.snapshot = None;
                debug!(partition = self.p, follower = from, "snapshot delivered");
                if self.knows(as_of) {
                    self.on_ack(now, from, as_of, epoch, out);
                } else {
                    self.start_snapshot(now, from, out); // the log moved on too far meanwhile
                }
            }
        }
    }

    /// Retransmissions, probes and timeouts.
    /// When [`Replica::tick`] next has work (a monotonic time; at or before `now` means at the
    /// next tick), or `None` if it has none until a message changes that. Only a primary has
    /// any: retransmissions and snapshots to followers not caught up, learners to report, writes
    /// or a hold waiting, and the expiry sweep while it has deadlines to watch. An idle
    /// partition thus costs nothing between messages.
    pub fn next_tick(&self) -> Option<u64> {
        if self.role != Role::Primary {
            return None;
        }
        let busy = self.holds.is_held()
            || self.awaiting_lease
            || self.inherited > 0
            || self.pos.is_some_and(|pos| {
                !self.pending.is_empty()
                    || self.followers.values().any(|f| {
                        f.snapshot.is_some()
                            || f.acked != Some(pos)
                            || f.told < self.published
                            || (f.in_sync && !f.owner)
                    })
            });
        if busy {
            return Some(0);
        }
        let sweeps = self.pos.is_some() && self.active_expire && self.store.has_deadlines();
        sweeps.then_some(self.next_sweep)
    }

    /// The store's own periodic work ([`PartitionStore::housekeep`]), whatever the role.
    pub fn housekeep(&mut self) {
        self.store.housekeep();
    }

    pub fn tick(&mut self, now: Now, out: &mut Vec<Effect>) {
        if self.role != Role::Primary {
            return;
        }
        self.end_hold_if_out(now, out);
        let Some(pos) = self.pos else { return };
        let retransmit = self.cfg.retransmit_ms;
        self.settle_inherited();
        if self.inherited > 0 {
            let through = self.inherited;
            for (&n, f) in self.followers.iter_mut().filter(|(_, f)| !f.handed) {
                if f.wanted_at.is_none_or(|at| now.mono >= at + retransmit) {
                    f.wanted_at = Some(now.mono);
                    out.push(Effect::Send(self.p, n, ReplicaMsg::EventsWanted { through }));
                }
            }
        }
        let mut suffixes = Vec::new();
        for (&n, f) in self.followers.iter_mut() {
            if let Some(s) = f.snapshot.as_mut() {
                if now.mono >= s.sent_at + retransmit {
                    s.sent_at = now.mono;
                    out.push(Effect::Send(self.p, n, ReplicaMsg::Chunk(s.chunk.clone())));
                }
                continue;
            }
            if f.acked != Some(pos) && now.mono >= f.sent_at + retransmit {
                f.sent_at = now.mono;
                match f.acked {
                    Some(acked) if self.log.contains(acked) => suffixes.push((n, acked)),
                    _ => out.push(Effect::Send(self.p, n, probe(pos, self.published))),
                }
            }
            if f.acked == Some(pos) && f.told < self.published {
                // Idle: tell the follower which events it no longer needs to keep.
                f.told = self.published;
                out.push(Effect::Send(self.p, n, probe(pos, self.published)));
            }
            if f.in_sync && !f.owner && now.mono >= f.synced_at + retransmit {
                f.synced_at = now.mono;
                out.push(Effect::Report(self.p, Report::Synced { node: n, as_of: f.acked_epoch }));
                if f.acked == Some(pos) && f.acked_epoch < self.epoch {
                    // The coordinator counts only an acknowledgement made under a table that
                    // still had it learning: ask for one under this node's newest.
                    out.push(Effect::Send(self.p, n, probe(pos, self.published)));
                }
            }
        }
        for (n, acked) in suffixes {
            self.send_suffix(now, n, acked, out);
        }
        if now.mono >= self.next_sweep && !self.holds.is_held() && self.active_expire {
            self.next_sweep = now.mono + self.cfg.sweep_interval_ms;
            self.sweep(now, out);
        }
        while self.pending.front().is_some_and(|p| p.deadline <= now.mono) {
            let late = self.pending.pop_front().expect("front exists");
            out.push(Effect::Reply(late.origin, Err(Refusal::Indeterminate)));
        }
    }
}

impl<S: PartitionStore> Replica<S> {
    /// Deletes entries past their deadline and replicates the deletions, as a read of them would.
    fn sweep(&mut self, now: Now, out: &mut Vec<Effect>) {
        if self.check_serving(now).is_err() || self.store.refuses_writes().is_some() {
            return;
        }
        let due = match self.store.due(now.wall, self.cfg.sweep_keys_max) {
            Ok(due) => due,
            Err(e) => return warn!(partition = self.p, error = %e, "expiry sweep failed"),
        };
        for key in due {
            let Ok(Some(entry)) = self.store.get(&key) else { continue };
            if !entry.is_expired(now.wall) {
                continue;
            }
            let events = event::derive(&key, &Before::of(&key, Some(&entry)), None, now.wall);
            let gone = Delta::Whole(None);
            if self.commit(now, key.clone(), gone, Prior::of(Some(&entry)), events, out).is_err() {
                return;
            }
            out.push(Effect::Notify(key, notify::expired()));
            metrics::counter!("sessiongrid_expired_keys_total").increment(1);
        }
        self.publish_replicated(out);
    }
}

/// Bytes of the writes in a catch-up, for the transfer metric.
fn entries_bytes(entries: &[LogEntry]) -> u64 {
    entries.iter().map(LogEntry::cost_bytes).sum::<usize>() as u64
}

/// An empty append: the follower acknowledges if it is at `pos`, or asks to be synced.
fn probe(pos: LogPos, published: u64) -> ReplicaMsg {
    ReplicaMsg::Append { prev: pos, entries: Vec::new(), published }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStore;

    /// A follower (node 1) of partition 0, whose primary is node 7, and the topology it follows.
    fn follower_of_7() -> (Replica<MemStore>, Topology) {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut t = Topology::founded_by(7, 1);
        t.members = vec![1, 7];
        t.partitions[0].owners = vec![7, 1];
        t.partitions[0].target = vec![7, 1];
        let mut r = Replica::new(0, 1, cfg, MemStore::empty());
        r.adopt(Now { mono: 0, wall: 0 }, &t, &mut Vec::new());
        (r, t)
    }

    #[test]
    fn a_lying_primary_cannot_overflow_versions_or_chunk_numbers() {
        let (mut r, mut t) = follower_of_7();
        let now = Now { mono: 0, wall: 0 };
        let mut out = Vec::new();
        let top = LogPos { term: Term { epoch: 1, primary: 7 }, version: u64::MAX };
        let entry = LogEntry {
            pos: top,
            key: Bytes::from_static(b"k"),
            delta: Delta::Whole(None),
            events: Vec::new(),
        };
        r.receive(
            now,
            7,
            ReplicaMsg::Append { prev: LogPos::ZERO, entries: vec![entry], published: 0 },
            &mut out,
        );
        let chunk = |seq| Chunk {
            id: 1,
            seq,
            after: None,
            through: Some(Bytes::from_static(b"m")),
            entries: Vec::new(),
            as_of: top,
        };
        r.receive(now, 7, ReplicaMsg::Chunk(chunk(0)), &mut out);
        r.receive(now, 7, ReplicaMsg::Chunk(chunk(u32::MAX)), &mut out);
        // Promoted: its next version saturates instead of overflowing.
        t.partitions[0].owners = vec![1];
        t.partitions[0].target = vec![1];
        t.epoch = 2;
        r.adopt(now, &t, &mut out);
        assert_eq!(r.next_version(), u64::MAX);
    }

    #[test]
    fn a_new_primary_asks_its_followers_for_events_past_the_published_mark_and_numbers_on_past_them(
    ) {
        let (mut r, mut t) = follower_of_7();
        let now = Now { mono: 0, wall: 0 };
        let mut out = Vec::new();
        let at = |version| LogPos { term: Term { epoch: t.epoch, primary: 7 }, version };
        // Its copy comes by snapshot, which carries no events; nothing is published yet.
        let snapshot =
            Chunk { id: 1, seq: 0, after: None, through: None, entries: Vec::new(), as_of: at(14) };
        r.receive(now, 7, ReplicaMsg::Chunk(snapshot), &mut out);
        assert_eq!(r.position(), Some(at(14)));
        // Node 7 leaves; node 1 is primary, node 9 (which may keep events 7 had not got to
        // every member) its follower.
        t.members = vec![1, 7, 9];
        t.partitions[0].owners = vec![1, 9];
        t.partitions[0].target = vec![1, 9];
        t.epoch += 1;
        out.clear();
        r.adopt(now, &t, &mut out);
        r.tick(now, &mut out);
        let asked = out
            .iter()
            .any(|e| matches!(e, Effect::Send(_, 9, ReplicaMsg::EventsWanted { through: 14 })));
        assert!(asked, "{out:?}");
        // Its own writes are numbered far past anything its predecessor may have applied.
        assert_eq!(r.next_version(), 14 + TAKEOVER_VERSION_GAP + 1);
    }

    #[test]
    fn a_follower_whose_disk_refuses_writes_takes_nothing_until_it_takes_writes_again() {
        let (mut r, t) = follower_of_7();
        let now = Now { mono: 0, wall: 0 };
        let at = |version| LogPos { term: Term { epoch: t.epoch, primary: 7 }, version };
        let append = || ReplicaMsg::Append {
            prev: LogPos::ZERO,
            entries: vec![LogEntry {
                pos: at(1),
                key: Bytes::from_static(b"k"),
                delta: Delta::Whole(None),
                events: Vec::new(),
            }],
            published: 0,
        };
        r.store.refusing = true;
        let mut out = Vec::new();
        r.receive(now, 7, append(), &mut out);
        assert_eq!(r.position(), Some(LogPos::ZERO), "nothing applied");
        assert!(out.is_empty(), "nothing acknowledged: {out:?}");
        r.store.refusing = false;
        r.receive(now, 7, append(), &mut out);
        assert_eq!(r.position(), Some(at(1)));
        assert!(out.iter().any(|e| matches!(e, Effect::Send(_, 7, ReplicaMsg::Ack { .. }))));
    }

    #[test]
    fn a_learner_whose_copy_went_back_under_a_newer_table_is_reported_in_sync_only_anew() {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let now = Now { mono: 0, wall: 0 };
        let mut t = Topology::founded_by(7, 1);
        t.members = vec![1, 7];
        t.partitions[0].target = vec![7, 1];
        t.epoch = 5;
        let mut r = Replica::new(0, 7, cfg, MemStore::empty());
        let mut out = Vec::new();
        r.adopt(now, &t, &mut out);
        let incr = Op::IncrBy { delta: 1 };
        r.request(now, Origin::Local(1), Bytes::from_static(b"k"), incr, &mut out);
        let pos = r.position().expect("a primary has a position");
        out.clear();
        r.receive(now, 1, ReplicaMsg::Ack { pos, epoch: 5 }, &mut out);
        assert!(
            out.iter()
                .any(|e| matches!(e, Effect::Report(0, Report::Synced { node: 1, as_of: 5 }))),
            "{out:?}"
        );
        // Left out under table 6, which this node never saw, node 1 dropped its copy; a learner
        // again under table 7, it answers a probe from nothing.
        out.clear();
        r.receive(now, 1, ReplicaMsg::SyncRequest { pos: Some(LogPos::ZERO), epoch: 7 }, &mut out);
        let later = |ms| Now { mono: ms, wall: ms };
        r.tick(later(10_000), &mut out);
        assert!(
            !out.iter().any(|e| matches!(e, Effect::Report(_, Report::Synced { .. }))),
            "{out:?}"
        );
        let resent = out.iter().any(|e| {
            matches!(e, Effect::Send(_, 1, ReplicaMsg::Append { entries, .. }) if !entries.is_empty())
        });
        assert!(resent, "the write goes again: {out:?}");
        // Caught up again, it counts from the table it acknowledged under.
        out.clear();
        r.receive(later(10_001), 1, ReplicaMsg::Ack { pos, epoch: 7 }, &mut out);
        assert!(
            out.iter()
                .any(|e| matches!(e, Effect::Report(0, Report::Synced { node: 1, as_of: 7 }))),
            "{out:?}"
        );
    }

    #[test]
    fn a_primary_with_no_copy_gives_way_to_an_owner_holding_one_and_snapshots_over_no_owner() {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut t = Topology::founded_by(7, 1);
        t.members = vec![1, 7, 9];
        t.partitions[0].owners = vec![7, 1];
        t.partitions[0].target = vec![7, 1, 9];
        t.epoch = 5;
        // Node 7 never held partition 0 (or let its copy go); node 1, an owner, holds one.
        let mut r = Replica::new(0, 7, cfg, MemStore::empty());
        let mut out = Vec::new();
        let now = |ms| Now { mono: ms, wall: ms };
        r.adopt(now(0), &t, &mut out);
        let theirs = LogPos { term: Term { epoch: 3, primary: 1 }, version: 40 };
        let snapshot = |out: &[Effect], to| {
            out.iter().any(|e| matches!(e, Effect::Send(_, n, ReplicaMsg::Chunk(_)) if *n == to))
        };
        let gave_way =
            |out: &[Effect]| out.iter().any(|e| matches!(e, Effect::Report(0, Report::NoCopy)));
        out.clear();
        r.receive(now(1), 1, ReplicaMsg::SyncRequest { pos: Some(theirs), epoch: 5 }, &mut out);
        assert!(gave_way(&out) && !snapshot(&out, 1), "{out:?}");
        // It runs nothing meanwhile (its position stays zero, so even a restart of the partition,
        // which forgets that it gave way, finds it empty again).
        out.clear();
        r.request(
            now(2),
            Origin::Local(1),
            Bytes::from_static(b"k"),
            Op::IncrBy { delta: 1 },
            &mut out,
        );
        assert!(
            out.iter().any(|e| matches!(e, Effect::Reply(_, Err(Refusal::NotServing)))),
            "{out:?}"
        );
        assert_eq!(r.position(), Some(LogPos::ZERO));
        // Asked again at once, it tells the coordinator again only after a while.
        out.clear();
        r.receive(now(3), 1, ReplicaMsg::Ack { pos: theirs, epoch: 5 }, &mut out);
        assert!(!gave_way(&out) && !snapshot(&out, 1), "{out:?}");
        let later = now(3 + r.cfg.retransmit_ms);
        r.receive(later, 1, ReplicaMsg::SyncRequest { pos: Some(theirs), epoch: 5 }, &mut out);
        assert!(gave_way(&out), "{out:?}");
        // A learner's copy is no owner's: it is replaced as always.
        out.clear();
        r.receive(later, 9, ReplicaMsg::SyncRequest { pos: Some(theirs), epoch: 5 }, &mut out);
        assert!(snapshot(&out, 9) && !gave_way(&out), "{out:?}");
        // An owner's incomplete copy (a resync cut short) holds what it has: not replaced.
        out.clear();
        let later = now(3 + 2 * r.cfg.retransmit_ms);
        r.receive(later, 1, ReplicaMsg::SyncRequest { pos: None, epoch: 5 }, &mut out);
        assert!(gave_way(&out) && !snapshot(&out, 1), "{out:?}");
    }

    #[test]
    fn a_read_is_answered_at_once_only_when_the_request_path_would_answer_it_at_once() {
        let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
        let mut t = Topology::founded_by(7, 1);
        t.members = vec![1, 7];
        t.partitions[0].owners = vec![7, 1];
        t.partitions[0].target = vec![7, 1];
        t.epoch = 5;
        let mut r = Replica::new(0, 7, cfg, MemStore::empty());
        let mut out = Vec::new();
        let now = |ms| Now { mono: ms, wall: ms };
        let k = Bytes::from_static(b"k");
        r.adopt(now(0), &t, &mut out);
        // Taken over with no copy: nothing runs before the owner acknowledged the history.
        assert_eq!(r.read_now(now(1), &k, &Op::Get), None);
        let ack = |r: &mut Replica<MemStore>, out: &mut Vec<Effect>| {
            let pos = r.position().expect("a primary has a position");
            r.receive(now(2), 1, ReplicaMsg::Ack { pos, epoch: 5 }, out);
        };
        ack(&mut r, &mut out);
        assert_eq!(r.read_now(now(2), &k, &Op::Get), Some(Reply::Nil));
        // A write the follower does not have yet: a read waits for it, as a request would.
        let set = Op::Set {
            value: Bytes::from_static(b"v"),
            cond: sessiongrid_model::op::SetCond::Always,
            expiry: sessiongrid_model::op::ExpiryChange::At(100),
            get: false,
        };
        r.request(now(3), Origin::Local(1), k.clone(), set, &mut out);
        assert_eq!(r.read_now(now(3), &k, &Op::Get), None);
        ack(&mut r, &mut out);
        let v = Some(Reply::Bulk(Bytes::from_static(b"v")));
        assert_eq!(r.read_now(now(4), &k, &Op::Get), v);
        // Never a write, nor a read that finds its key expired (the request path deletes it).
        assert_eq!(r.read_now(now(4), &k, &Op::IncrBy { delta: 1 }), None);
        assert_eq!(r.read_now(now(101), &k, &Op::Get), None);
        // Nor while a transaction holds the partition.
        let txn = Txn { node: 7, id: 1 };
        r.query(now(5), Origin::Local(2), Query::Hold { txn, ms: 1000 }, &mut out);
        assert_eq!(r.read_now(now(5), &k, &Op::Get), None);
        r.query(now(6), Origin::Local(3), Query::Release { txn }, &mut out);
        assert_eq!(r.read_now(now(6), &k, &Op::Get), v);
    }

    #[test]
    fn a_follower_that_dropped_a_snapshot_midway_asks_for_a_new_one() {
        let (mut r, mut t) = follower_of_7();
        let now = Now { mono: 0, wall: 0 };
        let mut out = Vec::new();
        let as_of = LogPos { term: Term { epoch: t.epoch, primary: 7 }, version: 9 };
        let chunk = |seq, through: Option<&'static [u8]>| Chunk {
            id: 5,
            seq,
            after: None,
            through: through.map(Bytes::from_static),
            entries: Vec::new(),
            as_of,
        };
        r.receive(now, 7, ReplicaMsg::Chunk(chunk(0, Some(b"m"))), &mut out);
        // Left out of the partition for a while, it lets its copy go, then learns again.
        let owners = t.partitions[0].clone();
        t.partitions[0].owners = vec![7];
        t.partitions[0].target = vec![7];
        t.epoch += 1;
        r.adopt(now, &t, &mut out);
        t.partitions[0] = owners;
        t.epoch += 1;
        r.adopt(now, &t, &mut out);
        out.clear();
        // The primary goes on with the snapshot it started: chunk 1 alone cannot be installed.
        r.receive(now, 7, ReplicaMsg::Chunk(chunk(1, None)), &mut out);
        let asked = out
            .iter()
            .any(|e| matches!(e, Effect::Send(_, 7, ReplicaMsg::SyncRequest { epoch, .. }) if *epoch == t.epoch));
        assert!(asked, "{out:?}");
    }

    #[test]
    fn a_late_chunk_of_a_replaced_snapshot_does_not_undo_newer_writes() {
        let (mut r, t) = follower_of_7();
        let now = Now { mono: 0, wall: 0 };
        let mut out = Vec::new();
        let term = Term { epoch: t.epoch, primary: 7 };
        let at = |version| LogPos { term, version };
        let snapshot = |id, version| Chunk {
            id,
            seq: 0,
            after: None,
            through: None,
            entries: Vec::new(),
            as_of: at(version),
        };
        r.receive(now, 7, ReplicaMsg::Chunk(snapshot(2, 14)), &mut out);
        assert_eq!(r.position(), Some(at(14)));
        let entry = LogEntry {
            pos: at(15),
            key: Bytes::from_static(b"k"),
            delta: Delta::Whole(None),
            events: Vec::new(),
        };
        let append = ReplicaMsg::Append { prev: at(14), entries: vec![entry], published: 0 };
        r.receive(now, 7, append, &mut out);
        assert_eq!(r.position(), Some(at(15)));
        // The primary's first snapshot, replaced by the second, arrives late; then the second
        // again.
        r.receive(now, 7, ReplicaMsg::Chunk(snapshot(1, 14)), &mut out);
        assert_eq!(r.position(), Some(at(15)), "the write after the snapshot is kept");
        r.receive(now, 7, ReplicaMsg::Chunk(snapshot(2, 14)), &mut out);
        assert_eq!(r.position(), Some(at(15)));
        // A new one is installed, even as of an older position (it rolls a copy back).
        r.receive(now, 7, ReplicaMsg::Chunk(snapshot(3, 13)), &mut out);
        assert_eq!(r.position(), Some(at(13)));
    }
}
