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
//!
//! A replica's role is a type: `Leading` (`replica/leading.rs`) holds what only a primary
//! keeps, `Following` (`replica/following.rs`) what only a follower keeps, and `Base` what
//! every role shares: the copy itself, its position and recent log, and the marks of its events.

mod following;
mod leading;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use sessiongrid_model::key::{split_db, DATABASES, DB_PREFIX};
use sessiongrid_model::notify::Notices;
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::{Entry, Op, PartitionId, Reply, Value};
use tracing::{debug, error, warn};

use crate::config::ClusterConfig;
use crate::log::RecentLog;
use crate::msg::{LogPos, Query, Refusal, ReplicaMsg};

use crate::placement::NodeId;
use crate::storage::{PartitionStore, StoreError};
use crate::topology::{Epoch, Topology};
use crate::Now;

use following::Following;
use leading::Leading;

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

/// The part this node plays in the partition, with what only that part keeps.
enum Role {
    /// Neither primary nor follower: a copy started from disk waits for a table to say what
    /// it is; once a table leaves this node out, its copy is dropped.
    Idle,
    Follower(Following),
    Primary(Leading),
}

impl Role {
    fn name(&self) -> &'static str {
        match self {
            Role::Idle => "idle",
            Role::Follower(_) => "follower",
            Role::Primary(_) => "primary",
        }
    }
}

/// What a replica keeps whatever its role: its copy (the store, its position and recent log),
/// the marks of its session events, and what it remembers of snapshots.
struct Base<S> {
    p: PartitionId,
    me: NodeId,
    cfg: Arc<ClusterConfig>,
    store: S,
    /// The epoch of the table this replica adopted last.
    epoch: Epoch,
    /// Mirrors the store's position; `None` while a snapshot is being installed.
    pos: Option<LogPos>,
    log: RecentLog,
    max_version: u64,
    /// The id of the next snapshot this replica sends as primary (ids only grow, across terms).
    next_snapshot: u64,
    /// When the expiry sweep runs next, as primary (monotonic); kept here, so the schedule
    /// outlives a step-down and the next takeover.
    next_sweep: u64,
    /// Every event up to this version has been published (by this node or its predecessors)
    /// and is with every member: followers forget those, and a successor publishes the rest.
    published: u64,
    /// Every event up to this version has been handed out to be published.
    handed_out: u64,
    /// Every event up to this version is with every member; `None`: none is on its way.
    delivered: Option<u64>,
    /// Writes up to this version came before this replica last took over, past the published
    /// mark it knew (after a start from disk, none), so whether their events reached every
    /// member is unknown: as primary it publishes the copies its followers hand back before
    /// `published` passes them (0: nothing inherited; a primary's word clears it).
    inherited: u64,
    /// Events a primary may not have published yet, in version order: kept as follower (or
    /// from disk), published by this replica if it takes over.
    unconfirmed: VecDeque<SessionEvent>,
    /// The last snapshot chunk installed, (id, seq): a repeat of it is acknowledged again.
    finished: Option<(u64, u32)>,
    /// The newest snapshot a primary began sending here: (primary, id). A chunk 0 of an
    /// older or the same one from that primary is a late or repeated copy.
    snapshot_seen: Option<(NodeId, u64)>,
    /// The store refused to record the protocol's own state (the position, or dropping a copy):
    /// memory and disk may disagree, so the partition must restart from disk.
    failed: Option<StoreError>,
    /// The expiry sweep runs (`DEBUG SET-ACTIVE-EXPIRE 0` stops it; reads still expire keys).
    active_expire: bool,
    /// Some member watches session events (see [`crate::interest`]): attribute changes make
    /// events that go with the write. Otherwise they are announced on this node only.
    watched: bool,
}

/// One partition on one node: its copy, and its role.
pub struct Replica<S> {
    b: Base<S>,
    role: Role,
}

impl<S: PartitionStore> Replica<S> {
    pub fn new(p: PartitionId, me: NodeId, cfg: Arc<ClusterConfig>, store: S) -> Self {
        let b = Base {
            p,
            me,
            log: RecentLog::new(LogPos::ZERO, cfg.log_entries_max, cfg.log_bytes_max),
            cfg,
            store,
            epoch: 0,
            pos: None,
            max_version: 0,
            next_snapshot: 1,
            next_sweep: 0,
            published: 0,
            handed_out: 0,
            delivered: None,
            inherited: 0,
            unconfirmed: VecDeque::new(),
            finished: None,
            snapshot_seen: None,
            failed: None,
            active_expire: true,
            watched: true,
        };
        let mut replica = Replica { b, role: Role::Idle };
        replica.reset();
        replica
    }

    /// Numbers this replica's snapshots from `first` on: above every id it used before a
    /// restart (see [`crate::dedup::first_forward_id`]), so a follower can tell a late copy of
    /// an old snapshot from a new one.
    pub fn with_snapshot_ids_from(mut self, first: u64) -> Self {
        self.b.next_snapshot = first;
        self
    }

    /// Forgets everything but the store: the replica is idle, as if just started on it. Requests
    /// a primary was holding are dropped unanswered (their callers time out).
    pub fn reset(&mut self) {
        self.role = Role::Idle;
        self.b.reset();
    }

    /// What its disk holds, for tests that restart a replica on it.
    #[cfg(test)]
    pub(crate) fn store(&self) -> &S {
        &self.b.store
    }

    /// Why this replica must be restarted from disk, if it must: it could not record its
    /// position, or its store failed to put a write it took on disk.
    pub fn failure(&self) -> Option<StoreError> {
        self.b.failed.clone().or_else(|| self.b.store.commit_failure())
    }

    /// As primary: how many writes the furthest-behind counted follower still lacks.
    pub fn replication_lag(&self) -> u64 {
        match &self.role {
            Role::Primary(l) => l.replication_lag(&self.b),
            Role::Idle | Role::Follower(_) => 0,
        }
    }

    /// This copy's counts, as its store keeps them.
    pub fn counts(&mut self) -> Option<crate::storage::Counts> {
        self.b.store.counts().ok()
    }

    pub fn position(&self) -> Option<LogPos> {
        self.b.pos
    }

    /// Up to `limit` of this copy's entries with keys after `after`, in key order.
    pub fn scan(
        &mut self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> crate::storage::StoreResult<Vec<(Bytes, Entry)>> {
        self.b.store.scan(after, limit)
    }

    /// Turns the expiry sweep on or off.
    pub fn set_active_expire(&mut self, on: bool) {
        self.b.active_expire = on;
    }

    /// Whether some member watches session events (control's latest word).
    pub fn set_watched(&mut self, watched: bool) {
        self.b.watched = watched;
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.role, Role::Idle)
    }

    /// Takes the partition's role in a new topology.
    pub fn adopt(&mut self, now: Now, t: &Topology, out: &mut Vec<Effect>) {
        let Some(a) = t.assignment(self.b.p) else { return };
        let b = &mut self.b;
        b.epoch = t.epoch;
        let primary = a.primary();
        if primary == Some(b.me) {
            if !matches!(self.role, Role::Primary(_)) {
                self.role = Role::Primary(Leading::take_over(b, now, t.epoch, a.handoff_from));
            }
            if let Role::Primary(l) = &mut self.role {
                l.adopt(b, now, a, out);
            }
            return;
        }
        let role = std::mem::replace(&mut self.role, Role::Idle);
        let was_idle = matches!(role, Role::Idle);
        let following = match role {
            Role::Primary(l) => {
                l.step_down(b, primary, out);
                None
            }
            Role::Follower(f) => Some(f),
            Role::Idle => None,
        };
        if a.holds(b.me) {
            let mut f = following.unwrap_or_default();
            f.follow(primary);
            self.role = Role::Follower(f);
        } else if !t.is_member(b.me) && b.pos != Some(LogPos::ZERO) {
            // Declared dead by this table: the copy (whole, or cut short) stays, idle, until
            // a table that counts this node says whether it still holds the partition. A
            // takeover's table, built on an older one that listed this node as an owner, may
            // well come next and make it primary; a copy let go here would then be served
            // empty, and every write only it held lost (sim seed 4586 of `deny`: a lossy
            // coordinator declared a primary dead just before a member took over from it).
            // What the roles it had left behind (its recent log, the marks of the events it
            // handed out) goes, as in a restart: a later role starts from the copy alone.
            b.reset();
        } else if !was_idle || b.pos != Some(LogPos::ZERO) {
            b.drop_data();
        }
    }

    /// Executes a client operation; the caller has checked that this node's lease is valid.
    pub fn request(&mut self, now: Now, origin: Origin, key: Bytes, op: Op, out: &mut Vec<Effect>) {
        match &mut self.role {
            Role::Primary(l) => l.request(&mut self.b, now, origin, key, op, out),
            Role::Idle | Role::Follower(_) => {
                out.push(Effect::Reply(origin, Err(Refusal::NotPrimary)))
            }
        }
    }

    /// The answer [`Replica::request`] would give a read at once, with nothing to write, send
    /// or wait for: `None` unless this primary serves, no transaction holds the partition, every
    /// write of its history is acknowledged by the followers that count, and the read changes
    /// nothing (a key found expired is deleted by the usual path; a session read whose touch is
    /// due writes it). Only reads and operations that mostly change nothing are tried
    /// ([`Op::mostly_reads`]). The caller has checked the lease, as for `request`, and that
    /// nothing of this partition waits for the disk.
    pub fn read_now(&mut self, now: Now, key: &[u8], op: &Op) -> Option<Reply> {
        match &mut self.role {
            Role::Primary(l) => l.read_now(&mut self.b, now, key, op),
            Role::Idle | Role::Follower(_) => None,
        }
    }

    /// Answers a whole-partition query; the caller has checked this node's lease.
    pub fn query(&mut self, now: Now, origin: Origin, query: Query, out: &mut Vec<Effect>) {
        match &mut self.role {
            Role::Primary(l) => l.query(&mut self.b, now, origin, query, out),
            Role::Idle | Role::Follower(_) => {
                out.push(Effect::Reply(origin, Err(Refusal::NotPrimary)))
            }
        }
    }

    /// This node holds a lease in the epoch of the topology adopted last, so it may serve that
    /// topology (under `when_split = deny`: a majority has it) and the followers it dropped are
    /// out. Answers the writes that waited only for them.
    pub fn leased(&mut self, out: &mut Vec<Effect>) {
        if let Role::Primary(l) = &mut self.role {
            l.leased(&mut self.b, out);
        }
    }

    /// How far the events handed out have reached every member: `None` if none is on its way.
    /// Until they have, followers keep them, so a successor publishes them again.
    pub fn events_delivered(&mut self, through: Option<u64>) {
        self.b.delivered = through;
        self.b.advance_published();
    }

    pub fn receive(&mut self, now: Now, from: NodeId, msg: ReplicaMsg, out: &mut Vec<Effect>) {
        let b = &mut self.b;
        match (&mut self.role, msg) {
            (Role::Follower(f), ReplicaMsg::Append { prev, entries, published })
                if f.follows(from) =>
            {
                b.confirm_published(published);
                f.on_append(b, now, from, prev, entries, out)
            }
            (Role::Follower(f), ReplicaMsg::Chunk(chunk)) if f.follows(from) => {
                f.on_chunk(b, now, from, chunk, out)
            }
            (Role::Follower(f), ReplicaMsg::EventsWanted { through }) if f.follows(from) => {
                let events =
                    b.unconfirmed.iter().filter(|e| e.version <= through).cloned().collect();
                out.push(Effect::Send(b.p, from, ReplicaMsg::EventsHanded { through, events }));
            }
            (Role::Primary(l), ReplicaMsg::Ack { pos, epoch }) => {
                l.on_ack(b, now, from, pos, epoch, out)
            }
            (Role::Primary(l), ReplicaMsg::SyncRequest { pos, epoch }) => {
                l.on_sync_request(b, now, from, pos, epoch, out)
            }
            (Role::Primary(l), ReplicaMsg::ChunkAck { id, seq, epoch }) => {
                l.on_chunk_ack(b, now, from, (id, seq), epoch, out)
            }
            (Role::Primary(l), ReplicaMsg::Released) => l.released(now, from),
            (Role::Primary(l), ReplicaMsg::EventsHanded { through, events }) => {
                l.on_events_handed(b, from, through, events, out)
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
            ) => debug!(partition = b.p, role = role.name(), ?msg, "ignored replica message"),
        }
    }

    /// When [`Replica::tick`] next has work (a monotonic time; at or before `now` means at the
    /// next tick), or `None` if it has none until a message changes that. Only a primary has
    /// any (see `Leading::next_tick`): an idle partition thus costs nothing between messages.
    pub fn next_tick(&self) -> Option<u64> {
        match &self.role {
            Role::Primary(l) => l.next_tick(&self.b),
            Role::Idle | Role::Follower(_) => None,
        }
    }

    /// The store's own periodic work ([`PartitionStore::housekeep`]), whatever the role.
    pub fn housekeep(&mut self) {
        self.b.store.housekeep();
    }

    /// Retransmissions, probes and timeouts (a primary's only).
    pub fn tick(&mut self, now: Now, out: &mut Vec<Effect>) {
        if let Role::Primary(l) = &mut self.role {
            l.tick(&mut self.b, now, out);
        }
    }
}

impl<S: PartitionStore> Base<S> {
    /// Forgets everything but the store, as if just started on it.
    fn reset(&mut self) {
        let pos = self.store.position();
        let base = pos.unwrap_or(LogPos::ZERO);
        self.pos = pos;
        self.log = RecentLog::new(base, self.cfg.log_entries_max, self.cfg.log_bytes_max);
        self.max_version = base.version;
        self.next_sweep = 0;
        // Nothing is vouched for: followers keep every event until a primary that knows says so.
        self.published = 0;
        self.handed_out = base.version;
        self.delivered = None;
        self.inherited = 0;
        self.unconfirmed.clear();
        self.take_kept_events();
        self.finished = None;
        self.snapshot_seen = None;
        self.failed = None;
    }

    /// Lets the copy go (a follower's snapshot in progress goes with its role).
    fn drop_data(&mut self) {
        if let Err(e) = self.store.clear() {
            error!(partition = self.p, error = %e, "could not drop a partition this node no longer holds");
            self.failed = Some(e);
            return;
        }
        self.pos = Some(LogPos::ZERO);
        self.log.reset(LogPos::ZERO);
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

    /// True if `pos` is a point of this replica's history it can continue from.
    fn knows(&self, pos: LogPos) -> bool {
        self.pos == Some(pos) || self.log.contains(pos)
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

    fn all_entries(&mut self) -> Result<Vec<(Bytes, Entry)>, StoreError> {
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

    /// Marks events as this node's, of its write at `version`.
    fn stamp(&self, events: &mut [SessionEvent], version: u64) {
        for e in events {
            (e.node, e.partition, e.version) = (self.me, self.p, version);
        }
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
}
