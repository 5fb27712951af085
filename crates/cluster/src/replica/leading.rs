//! A primary's side of a partition: it orders writes, sends them to its followers, answers
//! once the counted ones have them, catches up the rest (from its recent log, or by snapshot),
//! publishes session events, and runs transactions' holds and the expiry sweep.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use sessiongrid_model::apply::apply;
use sessiongrid_model::key::split_db;
use sessiongrid_model::notify;
use sessiongrid_model::session::event::{self, Before, EventKind, SessionEvent};
use sessiongrid_model::{Delta, Entry, Op, PartitionId, Reply};
use tracing::{debug, warn};

use super::{Base, Effect, Origin, Report, TAKEOVER_VERSION_GAP};
use crate::hold::{Holds, Standing, Waiting};
use crate::msg::{Chunk, LogEntry, LogPos, Query, Refusal, ReplicaMsg, Term, Txn};
use crate::placement::NodeId;
use crate::storage::{PartitionStore, Prior};
use crate::topology::{Assignment, Epoch};
use crate::Now;

/// What only a primary keeps: its term, its followers, the writes waiting for them, and the
/// transaction holding the partition.
pub(super) struct Leading {
    term: Term,
    /// It serves nothing before this (monotonic) time: a predecessor still alive may hold a
    /// lease until then, unless it releases the partition first.
    serve_at: u64,
    handoff_from: Option<NodeId>,
    followers: BTreeMap<NodeId, Follower>,
    /// Answers waiting for every counted follower to have a version, in version order.
    pending: VecDeque<Pending>,
    /// Events of writes not yet on every counted follower, in version order.
    unpublished: VecDeque<SessionEvent>,
    /// It took over with no copy at all (position zero), and some owner has not acknowledged
    /// a position of its history since; see [`Leading::gives_way`].
    empty_term: bool,
    /// As such a primary: when it last told the coordinator that an owner holds a copy.
    gave_way_at: Option<u64>,
    /// A transaction's hold, and the requests waiting for its end.
    holds: Holds,
    /// The topology adopted last stopped counting a follower, and this node has held no lease
    /// in its epoch since (see [`Leading::leased`]). Writes are not answered meanwhile: the
    /// topology may be one the rest of the cluster never saw.
    awaiting_lease: bool,
}

/// A primary's record of one follower.
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

impl Leading {
    /// Takes the partition over in the table of `epoch`, from `handoff_from` if it is alive.
    pub(super) fn take_over<S: PartitionStore>(
        b: &mut Base<S>,
        now: Now,
        epoch: Epoch,
        handoff_from: Option<NodeId>,
    ) -> Leading {
        let term = Term { epoch, primary: b.me };
        let handoff_from = handoff_from.filter(|n| *n != b.me);
        let serve_at = if handoff_from.is_some() { now.mono + b.cfg.lease_ms } else { now.mono };
        let empty_term = b.pos == Some(LogPos::ZERO);
        b.max_version = b.max_version.saturating_add(TAKEOVER_VERSION_GAP);
        // What the predecessor may not have published is this node's to publish now.
        let unpublished = b.unconfirmed.drain(..).collect();
        // This copy may lack events of writes past the published mark it knows: a copy that
        // came by snapshot holds none, one started from disk vouches for none. The followers'
        // copies are asked for (sim seed 31245: a learner promoted on its primary's graceful
        // leave never published a creation only the other follower still kept).
        b.inherited = b.pos.map_or(0, |p| p.version).max(b.inherited);
        if b.inherited <= b.published {
            b.inherited = 0;
        }
        if b.pos.is_none() {
            // Promoted while re-syncing: every range holds either the old primary's newer data or
            // this node's own copy, which had every acknowledged write (acknowledgements waited
            // for it). Start a new history from here; followers will take a snapshot.
            let pos = LogPos { term, version: b.next_version() };
            warn!(partition = b.p, node = b.me, "promoted with an incomplete copy");
            b.set_position(Some(pos));
            b.log.reset(pos);
        }
        debug!(partition = b.p, node = b.me, epoch, pos = ?b.pos, "primary");
        Leading {
            term,
            serve_at,
            handoff_from,
            followers: BTreeMap::new(),
            pending: VecDeque::new(),
            unpublished,
            empty_term,
            gave_way_at: None,
            holds: Holds::default(),
            awaiting_lease: false,
        }
    }

    /// Follows a new table that keeps this node primary: its followers are the table's owners
    /// and learners.
    pub(super) fn adopt<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        a: &Assignment,
        out: &mut Vec<Effect>,
    ) {
        // A counted follower that this topology drops or makes a learner no longer holds up
        // the writes it lacks, but only once this node may serve the topology: a coordinator
        // cut off from the rest may publish one without it that nobody else ever adopts, while
        // the others promote that follower without those writes.
        let uncounted = self
            .followers
            .iter()
            .any(|(n, f)| f.in_sync && (!a.holds(*n) || (f.owner && !a.owners.contains(n))));
        self.awaiting_lease |= uncounted;
        self.followers.retain(|n, _| a.holds(*n) && *n != b.me);
        for &n in a.owners.iter().chain(&a.target).filter(|n| **n != b.me) {
            let owner = a.owners.contains(&n);
            let f = self.followers.entry(n).or_insert_with(|| Follower::new(owner));
            if f.owner && !owner {
                // An owner that is only a learner now left the partition in an epoch this node
                // did not see, and may have dropped its copy there: what it acknowledged before
                // says nothing; find out afresh.
                *f = Follower::new(false);
            }
            f.owner = owner;
            f.in_sync |= owner;
            if f.acked.is_none() && f.snapshot.is_none() && f.sent_at == 0 {
                f.sent_at = now.mono;
                if let Some(pos) = b.pos {
                    out.push(Effect::Send(b.p, n, probe(pos, b.published)));
                }
            }
        }
        self.try_complete(b, out);
    }

    /// Hands the partition on: whatever waited is answered, and the successor told.
    pub(super) fn step_down<S: PartitionStore>(
        self,
        b: &Base<S>,
        successor: Option<NodeId>,
        out: &mut Vec<Effect>,
    ) {
        for p in self.pending {
            out.push(Effect::Reply(p.origin, Err(Refusal::Indeterminate)));
        }
        // A transaction holding the partition loses it (its writes never reached the backups);
        // the requests waiting for it go to the new primary.
        let mut holds = self.holds;
        for w in holds.drain() {
            out.push(Effect::Reply(w.origin(), Err(Refusal::NotPrimary)));
        }
        // The successor holds the unpublished writes' events (or the writes are lost) and
        // publishes them.
        if let Some(next) = successor.filter(|n| *n != b.me) {
            out.push(Effect::Send(b.p, next, ReplicaMsg::Released));
        }
    }

    /// The predecessor released the partition: this node may serve at once.
    pub(super) fn released(&mut self, now: Now, from: NodeId) {
        if self.handoff_from == Some(from) {
            self.serve_at = now.mono;
        }
    }

    /// How many writes the furthest-behind counted follower still lacks.
    pub(super) fn replication_lag<S>(&self, b: &Base<S>) -> u64 {
        let Some(pos) = b.pos else { return 0 };
        self.followers
            .values()
            .filter(|f| f.in_sync)
            .map(|f| pos.version.saturating_sub(f.acked.map_or(0, |a| a.version)))
            .max()
            .unwrap_or(0)
    }

    pub(super) fn request<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        origin: Origin,
        key: Bytes,
        op: Op,
        out: &mut Vec<Effect>,
    ) {
        if let Err(r) = self.check_serving(b, now) {
            return out.push(Effect::Reply(origin, Err(r)));
        }
        self.end_hold_if_out(b, now, out);
        if self.holds.is_held() {
            return self.holds.wait(Waiting::Request { origin, key, op });
        }
        self.run_op(b, now, (origin, false), key, op, out)
    }

    /// See [`super::Replica::read_now`].
    pub(super) fn read_now<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        key: &[u8],
        op: &Op,
    ) -> Option<Reply> {
        if !op.mostly_reads() || self.check_serving(b, now).is_err() || self.holds.is_held() {
            return None;
        }
        let pos = b.pos?;
        if self.awaiting_lease || !self.pending.is_empty() || !self.replicated(b, pos.version) {
            return None;
        }
        let mut slot = match op.fields() {
            Some(needs) => b.store.get_fields(key, &needs),
            None => b.store.get(key),
        }
        .ok()?;
        if slot.as_ref().is_some_and(|e| e.is_expired(now.wall)) {
            return None;
        }
        let outcome = apply(op.clone(), &mut slot, now.wall);
        (!outcome.changed()).then_some(outcome.reply)
    }

    /// Runs a client operation for `to` = (origin, held). `held`: within the transaction
    /// holding the partition, answered as soon as it is applied (its writes reach the backups
    /// when the hold ends).
    fn run_op<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        to: (Origin, bool),
        key: Bytes,
        op: Op,
        out: &mut Vec<Effect>,
    ) {
        let (origin, held) = to;
        let read = match op.fields() {
            Some(needs) => b.store.get_fields(&key, &needs),
            None => b.store.get(&key),
        };
        let mut slot = match read {
            Ok(slot) => slot,
            Err(e) => return out.push(Effect::Reply(origin, Err(Refusal::Store(e.0)))),
        };
        let prior = Prior::of(slot.as_ref());
        let before = Before::of(&key, slot.as_ref());
        let live = slot.as_ref().is_some_and(|e| e.is_key() && !e.is_expired(now.wall));
        if let Some(too_big) = b.check_size(&op, slot.as_ref(), now) {
            return self.answer(b, now, to, too_big, out);
        }
        if let Op::Merge(incoming) = &op {
            // Numbered on from the other side's writes, so what this side writes next beats
            // what it merged.
            b.max_version = b.max_version.max(incoming.version);
        }
        let expired = slot.as_ref().is_some_and(|e| e.is_expired(now.wall));
        let named = notify::Named::of(&op);
        let writes = op.is_write();
        let outcome = apply(op, &mut slot, now.wall);
        if !outcome.changed() {
            return self.answer(b, now, to, outcome.reply, out);
        }
        if let Some(e) = b.store.refuses_writes() {
            // Nothing is written: a write is refused; a read that found its key expired is
            // answered all the same, the deletion left for when the disk takes writes again.
            if writes {
                return out.push(Effect::Reply(origin, Err(Refusal::WritesRefused(e.0))));
            }
            return self.answer(b, now, to, outcome.reply, out);
        }
        if expired && slot.is_none() {
            metrics::counter!("sessiongrid_expired_keys_total").increment(1);
        }
        let mut events = event::derive(&key, &before, slot.as_ref(), now.wall);
        // Unwatched attribute changes are not replicated or sent: announced here once written.
        let mut unwatched = Vec::new();
        if !b.watched {
            (unwatched, events) =
                events.into_iter().partition(|e| e.kind == EventKind::AttributeChanged);
        }
        let exists = slot.as_ref().is_some_and(Entry::is_key);
        let notices = named.events(live, exists, expired);
        let delta = if b.cfg.heals_splits() && live && slot.is_none() {
            // Deleted (not expired): a tombstone keeps the deletion for a split's merge.
            Delta::Whole(Some(Entry::deleted(now.wall)))
        } else {
            Delta::of(slot, &outcome.change)
        };
        let notified = (!notices.is_empty()).then(|| key.clone());
        match self.commit(b, now, key, (delta, prior), events, out) {
            Ok(version) => {
                if let Some(key) = notified {
                    out.push(Effect::Notify(key, notices));
                }
                if !unwatched.is_empty() {
                    b.stamp(&mut unwatched, version);
                    out.push(Effect::Announce(unwatched));
                }
                if held {
                    out.push(Effect::Reply(origin, Ok(outcome.reply)));
                } else {
                    self.await_replicas(b, now, version, origin, outcome.reply, out)
                }
            }
            Err(r) => out.push(Effect::Reply(origin, Err(r))),
        }
    }

    pub(super) fn query<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        origin: Origin,
        query: Query,
        out: &mut Vec<Effect>,
    ) {
        if let Err(r) = self.check_serving(b, now) {
            return out.push(Effect::Reply(origin, Err(r)));
        }
        self.end_hold_if_out(b, now, out);
        match query {
            Query::Hold { txn, ms } => match self.holds.standing(Some(txn)) {
                Standing::Free | Standing::Holder => {
                    self.take_hold(b, txn, now.mono.saturating_add(ms), now.wall);
                    out.push(Effect::Reply(origin, Ok(Reply::Ok)));
                }
                Standing::Other => self.holds.wait(Waiting::Query { origin, query }),
            },
            Query::Release { txn } => {
                let held = self.holds.standing(Some(txn)) == Standing::Holder;
                if held {
                    self.holds.end();
                    self.ship_held(b, now, out);
                }
                self.answer_after_pending(b, now, origin, Reply::Int(held as i64), out);
                self.resume_waiting(b, now, out);
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
                        let until = now.mono.saturating_add(b.cfg.request_timeout_ms);
                        self.take_hold(b, txn, until, now.wall);
                    }
                    // The transaction's clock stands still, as in Redis.
                    let wall = self.holds.current().map_or(now.wall, |h| h.wall);
                    self.run_query(b, Now { wall, ..now }, (origin, true), *query, out)
                }
                Standing::Other => {
                    let busy = "BUSYKEY a key's partition is held by another transaction";
                    out.push(Effect::Reply(origin, Ok(Reply::error(busy))))
                }
            },
            query if self.holds.is_held() => self.holds.wait(Waiting::Query { origin, query }),
            query => self.run_query(b, now, (origin, false), query, out),
        }
    }

    fn take_hold<S>(&mut self, b: &Base<S>, txn: Txn, until: u64, wall: u64) {
        let horizon = b.pos.map_or(0, |p| p.version);
        self.holds.take(txn, until, horizon, wall);
    }

    /// Ends a hold that ran out: its transaction's node died or hung.
    fn end_hold_if_out<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        out: &mut Vec<Effect>,
    ) {
        if let Some(h) = self.holds.end_if_out(now.mono) {
            warn!(partition = b.p, txn = ?h.txn, "a transaction's hold ran out; released");
            self.ship_held(b, now, out);
            self.resume_waiting(b, now, out);
        }
    }

    /// Sends the writes made under the hold that just ended to every follower waiting for them.
    fn ship_held<S: PartitionStore>(&mut self, b: &mut Base<S>, now: Now, out: &mut Vec<Effect>) {
        let Some(pos) = b.pos else { return };
        let behind: Vec<(NodeId, LogPos)> = self
            .followers
            .iter()
            .filter(|(_, f)| f.snapshot.is_none())
            .filter_map(|(&n, f)| f.sent.filter(|s| *s != pos).map(|s| (n, s)))
            .collect();
        for (n, sent) in behind {
            if b.log.contains(sent) {
                self.send_suffix(b, now, n, sent, out);
            }
        }
    }

    /// Runs the requests that waited for a hold, in order, until one takes the partition again.
    fn resume_waiting<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        out: &mut Vec<Effect>,
    ) {
        while let Some(w) = self.holds.next_waiting() {
            match w {
                Waiting::Request { origin, key, op } => self.request(b, now, origin, key, op, out),
                Waiting::Query { origin, query } => self.query(b, now, origin, query, out),
            }
        }
    }

    /// Answers `to` = (origin, held) now if `held` (within the transaction holding the
    /// partition), else once every write it may have seen is on every owner.
    fn answer<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        to: (Origin, bool),
        reply: Reply,
        out: &mut Vec<Effect>,
    ) {
        match to {
            (origin, true) => out.push(Effect::Reply(origin, Ok(reply))),
            (origin, false) => self.answer_after_pending(b, now, origin, reply, out),
        }
    }

    /// Runs a query for `to` = (origin, held), as [`Leading::run_op`] does an operation.
    fn run_query<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        to: (Origin, bool),
        query: Query,
        out: &mut Vec<Effect>,
    ) {
        let (origin, held) = to;
        let reply = match query {
            Query::Count => match b.store.counts() {
                Ok(c) => Reply::Array(
                    [c.keys, c.expiring, c.sessions].map(|n| Reply::Int(n as i64)).to_vec(),
                ),
                Err(e) => return out.push(Effect::Reply(origin, Err(Refusal::Store(e.0)))),
            },
            Query::DbCounts => match b.db_counts() {
                Ok(dbs) => Reply::Array(
                    dbs.iter().flat_map(|&(k, e)| [k, e]).map(|n| Reply::Int(n as i64)).collect(),
                ),
                Err(e) => return out.push(Effect::Reply(origin, Err(Refusal::Store(e.0)))),
            },
            Query::Keys(filter) => match b.all_entries() {
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
                if let Some(e) = b.store.refuses_writes() {
                    return out.push(Effect::Reply(origin, Err(Refusal::WritesRefused(e.0))));
                }
                let entries = match b.all_entries() {
                    Ok(entries) => entries,
                    Err(e) => return out.push(Effect::Reply(origin, Err(Refusal::Store(e.0)))),
                };
                let db = if let Query::FlushDb(db) = query { Some(db) } else { None };
                let in_db = |key: &[u8]| db.is_none_or(|db| split_db(key).0 == db);
                let mut last = None;
                for (key, entry) in entries.into_iter().filter(|(k, _)| in_db(k)) {
                    let gone = (Delta::Whole(None), Prior::of(Some(&entry)));
                    match self.commit(b, now, key, gone, Vec::new(), out) {
                        Ok(version) => last = Some(version),
                        Err(r) => return out.push(Effect::Reply(origin, Err(r))),
                    }
                }
                match last {
                    Some(version) if !held => {
                        return self.await_replicas(b, now, version, origin, Reply::Ok, out)
                    }
                    _ => Reply::Ok,
                }
            }
            Query::Op { key, op } => return self.run_op(b, now, to, key, op, out),
            Query::InSync => {
                let owners = self.followers.values().filter(|f| f.owner && f.in_sync).count();
                Reply::Int(owners as i64)
            }
            Query::Hold { .. } | Query::Release { .. } | Query::Within { .. } => {
                Reply::error("ERR a transaction's request cannot nest another")
            }
        };
        self.answer(b, now, to, reply, out);
    }

    /// Answers a request that changed nothing. If it saw writes not yet on every owner, it waits
    /// for them: an answer never reflects a write that may still be lost.
    fn answer_after_pending<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        origin: Origin,
        reply: Reply,
        out: &mut Vec<Effect>,
    ) {
        // Waits for the whole history, not only for writes still awaiting their acks: one
        // already answered as indeterminate (it timed out) is applied here too and may yet be
        // lost, so no answer may reflect it before every counted follower has it.
        match b.pos {
            Some(pos) => self.await_replicas(b, now, pos.version, origin, reply, out),
            None => out.push(Effect::Reply(origin, Ok(reply))),
        }
    }

    fn check_serving<S>(&self, b: &Base<S>, now: Now) -> Result<(), Refusal> {
        if b.pos.is_none() {
            return Err(Refusal::NotPrimary);
        }
        if now.mono < self.serve_at {
            return Err(Refusal::NotServing);
        }
        // Taken over with no copy: nothing runs until every owner has acknowledged this
        // history (a round trip), so the position stays zero and an owner holding a copy is
        // never snapshotted over, even by a restart of this partition, which forgets the flag
        // but finds the position zero again ([`Leading::gives_way`]).
        if self.empty_term && self.followers.values().any(|f| f.owner && f.acked.is_none()) {
            return Err(Refusal::NotServing);
        }
        Ok(())
    }

    /// Writes a key's new state (`change`: the delta and the state it replaces) as the next
    /// entry of the log: through to the store, then to every follower that is up to date.
    /// Returns the entry's version.
    fn commit<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        key: Bytes,
        change: (Delta, Prior),
        mut events: Vec<SessionEvent>,
        out: &mut Vec<Effect>,
    ) -> Result<u64, Refusal> {
        let (mut delta, prior) = change;
        let Some(prev) = b.pos else { return Err(Refusal::NotPrimary) };
        let version = b.next_version();
        delta.set_version(version);
        b.stamp(&mut events, version);
        debug_assert!(version > prev.version, "a primary's versions increase");
        let entry = LogEntry { pos: LogPos { term: self.term, version }, key, delta, events };
        tracing::trace!(partition = b.p, node = b.me, version, key = ?entry.key, "commit");
        b.store.append(&entry, Some(prior)).map_err(|e| Refusal::Store(e.0))?;
        b.pos = Some(entry.pos);
        let held = self.holds.is_held();
        for (&n, f) in self.followers.iter_mut() {
            if f.snapshot.is_none() && f.sent == Some(prev) && !held {
                f.sent = Some(entry.pos);
                f.sent_at = now.mono;
                f.told = b.published;
                let append = ReplicaMsg::Append {
                    prev,
                    entries: vec![entry.clone()],
                    published: b.published,
                };
                out.push(Effect::Send(b.p, n, append));
            }
        }
        self.unpublished.extend(entry.events.iter().cloned());
        if self.followers.is_empty() {
            // Nobody to catch up from it (a single node, or a copy waiting for a new owner,
            // which takes a snapshot): keeping it would only cost time and memory.
            b.log.reset(entry.pos);
        } else {
            b.log.push(entry);
        }
        Ok(version)
    }

    /// Publishes the events of writes that every counted follower has.
    fn publish_replicated<S: PartitionStore>(&mut self, b: &mut Base<S>, out: &mut Vec<Effect>) {
        let Some(pos) = b.pos else { return };
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
            b.delivered = Some(b.delivered.map_or(before, |d| d.min(before)));
            out.push(Effect::Publish(ready));
        }
        // Every event of a write up to `replicated` is out (those left are of later writes).
        b.handed_out = b.handed_out.max(replicated);
        b.advance_published();
    }

    /// Answers `origin` with `reply` once every counted follower has `version`.
    fn await_replicas<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        version: u64,
        origin: Origin,
        reply: Reply,
        out: &mut Vec<Effect>,
    ) {
        let deadline = now.mono + b.cfg.request_timeout_ms;
        self.pending.push_back(Pending { version, origin, reply, deadline });
        self.try_complete(b, out);
    }

    /// True once every counted follower has this node's history up to `version`.
    fn replicated<S>(&self, b: &Base<S>, version: u64) -> bool {
        b.cfg.faults.ack_before_backups
            || self
                .followers
                .values()
                .filter(|f| f.in_sync)
                .all(|f| f.acked.is_some_and(|a| a.version >= version))
    }

    /// See [`super::Replica::leased`].
    pub(super) fn leased<S: PartitionStore>(&mut self, b: &mut Base<S>, out: &mut Vec<Effect>) {
        if self.awaiting_lease {
            self.awaiting_lease = false;
            self.try_complete(b, out);
        }
    }

    /// Answers every write that all counted followers now have, and publishes its events.
    fn try_complete<S: PartitionStore>(&mut self, b: &mut Base<S>, out: &mut Vec<Effect>) {
        self.publish_replicated(b, out);
        while let Some(front) = self.pending.front() {
            if self.awaiting_lease || !self.replicated(b, front.version) {
                break;
            }
            let done = self.pending.pop_front().expect("front exists");
            out.push(Effect::Reply(done.origin, Ok(done.reply)));
        }
    }

    /// A follower's copies of events this replica inherited: published (again) now; once
    /// every follower has answered, `published` may pass them.
    pub(super) fn on_events_handed<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        from: NodeId,
        through: u64,
        events: Vec<SessionEvent>,
        out: &mut Vec<Effect>,
    ) {
        if through != b.inherited || b.inherited == 0 {
            return;
        }
        let Some(f) = self.followers.get_mut(&from) else { return };
        f.handed = true;
        let fresh: Vec<SessionEvent> =
            events.into_iter().filter(|e| !self.unpublished.contains(e)).collect();
        let mut all: Vec<SessionEvent> = self.unpublished.drain(..).chain(fresh).collect();
        all.sort_by_key(|e| e.version);
        self.unpublished = all.into();
        self.settle_inherited(b);
        self.publish_replicated(b, out);
    }

    /// Forgets what this replica inherited once every follower has handed back its copies.
    fn settle_inherited<S>(&self, b: &mut Base<S>) {
        if b.inherited > 0 && self.followers.values().all(|f| f.handed) {
            b.inherited = 0;
        }
    }

    pub(super) fn on_ack<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        from: NodeId,
        pos: LogPos,
        epoch: Epoch,
        out: &mut Vec<Effect>,
    ) {
        let Some(f) = self.followers.get_mut(&from) else { return };
        if f.snapshot.is_some() {
            return;
        }
        if f.went_back(Some(pos), epoch) {
            copy_went_back(b.p, from);
        } else if let Some(acked) = f.acked.filter(|a| pos.version <= a.version) {
            if pos == acked {
                f.acked_epoch = f.acked_epoch.max(epoch);
            }
            return; // stale, or the answer to a probe
        }
        if !b.knows(pos) {
            if self.gives_way(b, now, from, Some(pos), out) {
                return;
            }
            return self.start_snapshot(b, now, from, out);
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
        if b.pos == Some(pos) {
            if !f.in_sync {
                f.in_sync = true;
                f.synced_at = now.mono;
                let synced = Report::Synced { node: from, as_of: f.acked_epoch };
                out.push(Effect::Report(b.p, synced));
            }
        } else if f.sent == Some(pos) {
            self.send_suffix(b, now, from, pos, out);
        }
        self.try_complete(b, out);
    }

    pub(super) fn on_sync_request<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        from: NodeId,
        pos: Option<LogPos>,
        epoch: Epoch,
        out: &mut Vec<Effect>,
    ) {
        let known = pos.filter(|p| b.knows(*p));
        let Some(f) = self.followers.get_mut(&from) else { return };
        if f.went_back(pos, epoch) {
            copy_went_back(b.p, from);
        }
        match known {
            Some(pos) => {
                f.snapshot = None;
                f.acked = None;
                f.sent = None;
                self.on_ack(b, now, from, pos, epoch, out);
            }
            None if self.gives_way(b, now, from, pos, out) => {}
            None => self.start_snapshot(b, now, from, out),
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
    /// serves nothing meanwhile ([`Leading::check_serving`] refuses until every owner has
    /// acknowledged, which that owner never does).
    fn gives_way<S>(
        &mut self,
        b: &Base<S>,
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
        let due = self.gave_way_at.is_none_or(|at| now.mono >= at + b.cfg.retransmit_ms);
        if due {
            if self.gave_way_at.is_none() {
                warn!(
                    partition = b.p,
                    node = b.me,
                    owner = to,
                    "primary with no copy; an owner holds one: giving way"
                );
                metrics::counter!("sessiongrid_partition_gave_way_total").increment(1);
            }
            self.gave_way_at = Some(now.mono);
            out.push(Effect::Report(b.p, Report::NoCopy));
        }
        true
    }

    fn send_suffix<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        to: NodeId,
        from_pos: LogPos,
        out: &mut Vec<Effect>,
    ) {
        let Some(mut entries) = b.log.after(from_pos, b.cfg.snapshot_chunk_entries) else {
            return self.start_snapshot(b, now, to, out);
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
        let append = ReplicaMsg::Append { prev: from_pos, entries, published: b.published };
        out.push(Effect::Send(b.p, to, append));
    }

    fn start_snapshot<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        to: NodeId,
        out: &mut Vec<Effect>,
    ) {
        let Some(as_of) = b.pos else { return };
        let id = b.next_snapshot;
        b.next_snapshot += 1;
        debug!(partition = b.p, node = b.me, follower = to, id, ?as_of, "snapshot started");
        metrics::counter!("sessiongrid_transfer_snapshots_total").increment(1);
        self.send_chunk(b, now, to, (id, as_of), (0, None), out);
    }

    /// Sends follower `to` chunk `seq` of snapshot (`id`, `as_of`): the keys after `after`.
    fn send_chunk<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        to: NodeId,
        (id, as_of): (u64, LogPos),
        (seq, after): (u32, Option<Bytes>),
        out: &mut Vec<Effect>,
    ) {
        let limit = b.cfg.snapshot_chunk_entries.max(1);
        let entries = match b.store.scan(after.as_deref(), limit) {
            Ok(entries) => entries,
            Err(e) => {
                warn!(partition = b.p, error = %e, "could not read a snapshot chunk");
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
        out.push(Effect::Send(b.p, to, ReplicaMsg::Chunk(chunk)));
    }

    pub(super) fn on_chunk_ack<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        from: NodeId,
        (id, seq): (u64, u32),
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
            Some(through) => {
                self.send_chunk(b, now, from, (id, as_of), (seq + 1, Some(through)), out)
            }
            None => {
                f.snapshot = None;
                debug!(partition = b.p, follower = from, "snapshot delivered");
                if b.knows(as_of) {
                    self.on_ack(b, now, from, as_of, epoch, out);
                } else {
                    self.start_snapshot(b, now, from, out); // the log moved on too far meanwhile
                }
            }
        }
    }

    /// When [`Leading::tick`] next has work (see [`super::Replica::next_tick`]):
    /// retransmissions and snapshots to followers not caught up, learners to report, writes
    /// or a hold waiting, and the expiry sweep while it has deadlines to watch.
    pub(super) fn next_tick<S: PartitionStore>(&self, b: &Base<S>) -> Option<u64> {
        let busy = self.holds.is_held()
            || self.awaiting_lease
            || b.inherited > 0
            || b.pos.is_some_and(|pos| {
                !self.pending.is_empty()
                    || self.followers.values().any(|f| {
                        f.snapshot.is_some()
                            || f.acked != Some(pos)
                            || f.told < b.published
                            || (f.in_sync && !f.owner)
                    })
            });
        if busy {
            return Some(0);
        }
        let sweeps = b.pos.is_some() && b.active_expire && b.store.has_deadlines();
        sweeps.then_some(b.next_sweep)
    }

    /// Retransmissions, probes, reports of learners in sync, the expiry sweep and timeouts.
    pub(super) fn tick<S: PartitionStore>(
        &mut self,
        b: &mut Base<S>,
        now: Now,
        out: &mut Vec<Effect>,
    ) {
        self.end_hold_if_out(b, now, out);
        let Some(pos) = b.pos else { return };
        let retransmit = b.cfg.retransmit_ms;
        self.settle_inherited(b);
        if b.inherited > 0 {
            let through = b.inherited;
            for (&n, f) in self.followers.iter_mut().filter(|(_, f)| !f.handed) {
                if f.wanted_at.is_none_or(|at| now.mono >= at + retransmit) {
                    f.wanted_at = Some(now.mono);
                    out.push(Effect::Send(b.p, n, ReplicaMsg::EventsWanted { through }));
                }
            }
        }
        let mut suffixes = Vec::new();
        for (&n, f) in self.followers.iter_mut() {
            if let Some(s) = f.snapshot.as_mut() {
                if now.mono >= s.sent_at + retransmit {
                    s.sent_at = now.mono;
                    out.push(Effect::Send(b.p, n, ReplicaMsg::Chunk(s.chunk.clone())));
                }
                continue;
            }
            if f.acked != Some(pos) && now.mono >= f.sent_at + retransmit {
                f.sent_at = now.mono;
                match f.acked {
                    Some(acked) if b.log.contains(acked) => suffixes.push((n, acked)),
                    _ => out.push(Effect::Send(b.p, n, probe(pos, b.published))),
                }
            }
            if f.acked == Some(pos) && f.told < b.published {
                // Idle: tell the follower which events it no longer needs to keep.
                f.told = b.published;
                out.push(Effect::Send(b.p, n, probe(pos, b.published)));
            }
            if f.in_sync && !f.owner && now.mono >= f.synced_at + retransmit {
                f.synced_at = now.mono;
                out.push(Effect::Report(b.p, Report::Synced { node: n, as_of: f.acked_epoch }));
                if f.acked == Some(pos) && f.acked_epoch < b.epoch {
                    // The coordinator counts only an acknowledgement made under a table that
                    // still had it learning: ask for one under this node's newest.
                    out.push(Effect::Send(b.p, n, probe(pos, b.published)));
                }
            }
        }
        for (n, acked) in suffixes {
            self.send_suffix(b, now, n, acked, out);
        }
        if now.mono >= b.next_sweep && !self.holds.is_held() && b.active_expire {
            b.next_sweep = now.mono + b.cfg.sweep_interval_ms;
            self.sweep(b, now, out);
        }
        while self.pending.front().is_some_and(|p| p.deadline <= now.mono) {
            let late = self.pending.pop_front().expect("front exists");
            out.push(Effect::Reply(late.origin, Err(Refusal::Indeterminate)));
        }
    }

    /// Deletes entries past their deadline and replicates the deletions, as a read of them would.
    fn sweep<S: PartitionStore>(&mut self, b: &mut Base<S>, now: Now, out: &mut Vec<Effect>) {
        if self.check_serving(b, now).is_err() || b.store.refuses_writes().is_some() {
            return;
        }
        let due = match b.store.due(now.wall, b.cfg.sweep_keys_max) {
            Ok(due) => due,
            Err(e) => return warn!(partition = b.p, error = %e, "expiry sweep failed"),
        };
        for key in due {
            let Ok(Some(entry)) = b.store.get(&key) else { continue };
            if !entry.is_expired(now.wall) {
                continue;
            }
            let events = event::derive(&key, &Before::of(&key, Some(&entry)), None, now.wall);
            let gone = (Delta::Whole(None), Prior::of(Some(&entry)));
            if self.commit(b, now, key.clone(), gone, events, out).is_err() {
                return;
            }
            out.push(Effect::Notify(key, notify::expired()));
            metrics::counter!("sessiongrid_expired_keys_total").increment(1);
        }
        self.publish_replicated(b, out);
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
