//! The protocol's disk, over the node's RocksDB [`Store`]: every write lands with the
//! partition's new position in one atomic batch, so after a kill -9 a replica restarts exactly
//! where its data is. Each partition keeps its hot entries in a memory tier within its share of
//! the memory budget; disk is the truth and the tier always equals it.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use metrics::{Counter, Gauge};
use sessiongrid_cluster::msg::Term;
use sessiongrid_cluster::storage::{Counts, Prior, StoreError, StoreResult};
use sessiongrid_cluster::topology::Assignment;
use sessiongrid_cluster::{LogEntry, LogPos, NodeId, NodeStore, PartitionStore, Topology};
use sessiongrid_model::op::FieldNeeds;
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::{Delta, Entry, PartitionId};
use sessiongrid_store::{keys, PartitionMeta, Position, Store};
use tracing::warn;

use crate::cache::{Budget, EntryCache};
use crate::commit::{Committer, Pending};
use crate::unsettled::{Unsettled, Written};

const TOPOLOGY: &[u8] = b"topology";

fn position_row(p: PartitionId) -> Vec<u8> {
    let mut name = b"pos/".to_vec();
    name.extend_from_slice(&p.to_be_bytes());
    name
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// A node's disk for the protocol. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct DiskNode {
    store: Store,
    id: NodeId,
    /// The memory budget its partitions' tiers share.
    budget: Arc<Budget>,
    /// The commit group of each engine thread; partition `p` commits with `p % len`'s.
    committers: Arc<Vec<Arc<Committer>>>,
}

impl DiskNode {
    pub fn new(
        store: Store,
        id: NodeId,
        budget: Arc<Budget>,
        committers: Vec<Arc<Committer>>,
    ) -> Self {
        assert!(!committers.is_empty(), "a disk needs a committer");
        DiskNode { store, id, budget, committers: Arc::new(committers) }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl NodeStore for DiskNode {
    type Partition = DiskPartition;

    fn partition(&mut self, p: PartitionId) -> DiskPartition {
        let committer = self.committers[p as usize % self.committers.len()].clone();
        DiskPartition::load(self.store.clone(), p, self.budget.clone(), committer)
    }

    fn node_id(&self) -> NodeId {
        self.id
    }

    fn load_topology(&self) -> Option<Topology> {
        let bytes = match self.store.get_extra(TOPOLOGY) {
            Ok(bytes) => bytes?,
            Err(e) => {
                warn!(error = %e, "could not read the saved topology");
                return None;
            }
        };
        decode_topology(&bytes)
            .inspect_err(|e| warn!(error = %e, "saved topology is unreadable; joining afresh"))
            .ok()
    }

    fn save_topology(&mut self, topology: &Topology) -> StoreResult<()> {
        let bytes = postcard::to_stdvec(topology).map_err(err)?;
        let mut batch = self.store.batch(0);
        batch.put_extra(TOPOLOGY, &bytes);
        self.store.commit(batch).map_err(err)
    }
}

/// A saved topology, in the current layout or in the one before `Topology::lite` existed.
fn decode_topology(bytes: &[u8]) -> postcard::Result<Topology> {
    #[derive(serde::Deserialize)]
    struct BeforeLite {
        epoch: u64,
        coordinator: NodeId,
        members: Vec<NodeId>,
        leaving: Vec<NodeId>,
        stable: Vec<NodeId>,
        partitions: Vec<Assignment>,
    }
    postcard::from_bytes(bytes).or_else(|e| {
        let Ok(old) = postcard::from_bytes::<BeforeLite>(bytes) else { return Err(e) };
        Ok(Topology {
            epoch: old.epoch,
            coordinator: old.coordinator,
            members: old.members,
            leaving: old.leaving,
            stable: old.stable,
            partitions: old.partitions,
            lite: Vec::new(),
        })
    })
}

/// One partition's rows, its key counts, its replication position and its hot entries.
pub struct DiskPartition {
    store: Store,
    p: PartitionId,
    pos: Option<LogPos>,
    meta: PartitionMeta,
    cache: EntryCache,
    /// The tier holds every entry of the partition (nothing was ever evicted or left out), so
    /// a key it lacks is absent without asking the disk.
    complete: bool,
    metrics: CacheMetrics,
    /// Writes made but not on disk yet.
    pending: Pending,
    committer: Arc<Committer>,
    /// The versions of the writes whose session events have a row (until forgotten).
    kept: BTreeSet<u64>,
    /// Its writes that may not be on disk yet, for reads of keys the tier lacks.
    unsettled: Unsettled,
    /// No expiry row of the partition is filed under an earlier slot (0: not known). The
    /// sweep reads the index only once this is due, and keeps it from what the index told it
    /// and the deadlines written since; with deadlines minutes away (sessions), most sweeps
    /// read nothing.
    no_row_before: u64,
}

/// Handles to the node-wide series a partition's tier contributes to.
struct CacheMetrics {
    bytes: Gauge,
    entries: Gauge,
    evictions: Counter,
    disk_reads: Counter,
}

impl CacheMetrics {
    fn new() -> Self {
        CacheMetrics {
            bytes: metrics::gauge!("sessiongrid_memory_entries_bytes"),
            entries: metrics::gauge!("sessiongrid_memory_entries"),
            evictions: metrics::counter!("sessiongrid_memory_evictions_total"),
            disk_reads: metrics::counter!("sessiongrid_store_entry_reads_total"),
        }
    }
}

impl DiskPartition {
    fn load(store: Store, p: PartitionId, budget: Arc<Budget>, committer: Arc<Committer>) -> Self {
        let meta = store.partition_meta(p).unwrap_or_default();
        let pos = match meta.position {
            Position::At { epoch, primary, version } => {
                Some(LogPos { term: Term { epoch, primary }, version })
            }
            Position::Incomplete => None,
            Position::Unrecorded => legacy_position(&store, p, meta.seq),
        };
        let cache = EntryCache::new(budget);
        let complete = store.scan(p, None, 1).is_ok_and(|rows| rows.is_empty());
        let metrics = CacheMetrics::new();
        let pending = Pending::default();
        let kept = match store.kept_events(p) {
            Ok(rows) => rows.into_iter().map(|(version, _)| version).collect(),
            Err(e) => {
                warn!(partition = p, error = %e, "could not read the kept session events");
                BTreeSet::new()
            }
        };
        let unsettled = Unsettled::default();
        DiskPartition {
            store,
            p,
            pos,
            meta,
            cache,
            complete,
            metrics,
            pending,
            committer,
            kept,
            unsettled,
            no_row_before: 0,
        }
    }
}

/// The position of a copy written before positions were kept with the metadata: in a row of
/// its own, or none at all (a single node's), when its history is the writes its metadata
/// counted.
fn legacy_position(store: &Store, p: PartitionId, seq: u64) -> Option<LogPos> {
    match store.get_extra(&position_row(p)) {
        Ok(None) => Some(LogPos { version: seq, ..LogPos::ZERO }),
        Ok(Some(bytes)) => postcard::from_bytes(&bytes).unwrap_or_else(|e| {
            warn!(partition = p, error = %e, "unreadable position; the copy will be resent");
            None
        }),
        Err(e) => {
            warn!(partition = p, error = %e, "could not read the position");
            None
        }
    }
}

impl DiskPartition {
    /// Runs `f` on the tier and reports the change in cached bytes and entries.
    fn account<T>(&mut self, f: impl FnOnce(&mut EntryCache) -> T) -> T {
        let (bytes, len) = (self.cache.bytes(), self.cache.len());
        let out = f(&mut self.cache);
        self.metrics.bytes.increment(self.cache.bytes() as f64 - bytes as f64);
        self.metrics.entries.increment(self.cache.len() as f64 - len as f64);
        out
    }

    /// A write files an expiry row for a key due at `deadline_ms`: the sweep's bound comes
    /// down to its slot.
    fn files_deadline(&mut self, deadline_ms: u64) {
        self.no_row_before = self.no_row_before.min(keys::expiry_slot(deadline_ms));
    }

    fn remember(&mut self, key: &[u8], entry: Option<Entry>) {
        match entry {
            Some(e) => match self.account(|cache| cache.insert(key, e)) {
                Some(evicted) => self.evicted(evicted),
                None => self.complete = false,
            },
            None => {
                self.account(|cache| cache.take(key));
            }
        }
    }

    /// The tier evicted entries: a key it lacks may be on disk now.
    fn evicted(&mut self, evicted: usize) {
        if evicted > 0 {
            self.complete = false;
            self.metrics.evictions.increment(evicted as u64);
        }
    }

    /// Brings the tier's copy of a key up to a change written to disk. A field change patches
    /// the copy in place; one the copy cannot take (not there, or of another kind) drops it,
    /// so the next read sees the disk.
    /// A key that held nothing (`!existed`) is cached whole: its header and rows are all of it.
    fn remember_change(&mut self, key: &Bytes, delta: &Delta, existed: bool) {
        match delta {
            Delta::Whole(state) => self.remember(key, state.clone()),
            Delta::Fields { header, rows } => {
                let patched = self.account(|cache| cache.patch(key, |slot| delta.patch(slot)));
                if let Some(evicted) = patched {
                    self.evicted(evicted);
                } else if !existed {
                    let mut entry = header.clone();
                    for (name, row) in rows {
                        entry.value.set_field_row(name, row.as_deref());
                    }
                    self.remember(key, Some(entry));
                } else {
                    // Not held (or not of its kind): it is read from disk when next asked for.
                    self.account(|cache| cache.take(key));
                    self.complete = false;
                }
            }
        }
    }

    /// Reads `key` through `seen` from the tier or, if the tier may lack it, through `read`
    /// from disk (`None` if absent), once the disk shows this partition's writes of `key`:
    /// see [`DiskPartition::before_disk_read`].
    fn lookup<T>(
        &mut self,
        key: &[u8],
        overlay: bool,
        seen: impl FnOnce(&Entry) -> T,
        read: impl FnOnce(&mut Self) -> StoreResult<Option<T>>,
    ) -> StoreResult<Option<T>> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(Some(seen(hit)));
        }
        if self.complete {
            return Ok(None);
        }
        self.before_disk_read(key, overlay)?;
        read(self)
    }

    /// Makes a read of `key` from disk see this partition's writes: settles them first
    /// unless the disk has all of `key`'s or (`overlay`) the caller reads its field writes
    /// ([`Written::Fields`]) over the disk. A partition whose commit failed reads nothing.
    fn before_disk_read(&mut self, key: &[u8], overlay: bool) -> StoreResult<()> {
        if let Some(e) = self.pending.failure() {
            return Err(err(e));
        }
        self.metrics.disk_reads.increment(1);
        if self.pending.is_idle() {
            self.unsettled.clear();
            return Ok(());
        }
        let settle = self.unsettled.untracked()
            || match self.unsettled.of(key) {
                None => false,
                Some(Written::Fields { .. }) => !overlay,
                Some(Written::Whole) => true,
            };
        if settle {
            self.settle()?;
        }
        Ok(())
    }

    /// What a key holds before a write, from the tier or from its header row on disk.
    fn prior(&mut self, key: &[u8]) -> StoreResult<Prior> {
        let of = |e: &Entry| Prior::of(Some(e));
        let prior = self.lookup(key, true, of, |disk| {
            if let Some(Written::Fields { header, .. }) = disk.unsettled.of(key) {
                return Ok(Some(of(header)));
            }
            Ok(disk.store.get_header(disk.p, key).map_err(err)?.as_ref().map(of))
        })?;
        Ok(prior.unwrap_or(Prior::of(None)))
    }

    fn write(
        &mut self,
        pos: Option<LogPos>,
        meta: PartitionMeta,
        fill: impl FnOnce(&mut sessiongrid_store::Batch),
    ) -> StoreResult<()> {
        let mut batch = self.store.batch(self.p);
        fill(&mut batch);
        let mut meta = meta;
        meta.stamp = self.meta.stamp + 1;
        meta.position = match pos {
            Some(LogPos { term, version }) => {
                Position::At { epoch: term.epoch, primary: term.primary, version }
            }
            None => Position::Incomplete,
        };
        batch.set_meta(&meta);
        self.pending.add(batch);
        self.pos = pos;
        self.meta = meta;
        Ok(())
    }

    /// Writes this partition's writes not on disk yet now, on this thread, with the rest of
    /// its thread's group: before a read of the disk itself, which must see them.
    fn settle(&mut self) -> StoreResult<()> {
        if !self.pending.is_idle() {
            if self.pending.has_writes() {
                self.committer.submit(&self.pending, Box::new(|_| {}));
            }
            self.committer.flush();
        }
        if let Some(e) = self.pending.failure() {
            return Err(err(e));
        }
        self.unsettled.clear();
        Ok(())
    }

    /// Where this partition's writes wait for its actor to submit them.
    pub fn pending(&self) -> Pending {
        self.pending.clone()
    }

    pub fn committer(&self) -> Arc<Committer> {
        self.committer.clone()
    }
}

impl Drop for DiskPartition {
    fn drop(&mut self) {
        self.account(EntryCache::clear);
    }
}

fn count(present: bool) -> u64 {
    present as u64
}

impl PartitionStore for DiskPartition {
    fn get(&mut self, key: &[u8]) -> StoreResult<Option<Entry>> {
        self.lookup(key, false, Entry::clone, |disk| {
            let found = disk.store.get(disk.p, key).map_err(err)?;
            if let Some(e) = &found {
                disk.remember(key, Some(e.clone()));
            }
            Ok(found)
        })
    }

    fn get_fields(&mut self, key: &[u8], needs: &FieldNeeds) -> StoreResult<Option<Entry>> {
        self.lookup(
            key,
            true,
            |hit| hit.view(needs),
            |disk| {
                let (store, p) = (&disk.store, disk.p);
                let found = match disk.unsettled.of(key) {
                    Some(Written::Fields { header, rows }) => {
                        store.get_fields_over(p, key, header.clone(), needs, rows).map(Some)
                    }
                    _ => store.get_fields(p, key, needs),
                };
                let found = found.map_err(err)?;
                // A value read whole (not a view of some fields) joins the tier.
                if let Some(e) = found.as_ref().filter(|e| !e.value.is_read_in_part()) {
                    disk.remember(key, Some(e.clone()));
                }
                Ok(found)
            },
        )
    }

    fn append(&mut self, entry: &LogEntry, prior: Option<Prior>) -> StoreResult<()> {
        let prior = match prior {
            Some(prior) => prior,
            None => self.prior(&entry.key)?,
        };
        if self.pending.is_idle() {
            self.unsettled.clear();
        }
        let old_expiry = prior.expire_at_ms;
        let head = entry.delta.head();
        let mut meta = self.meta;
        let new_key = head.is_some_and(Entry::is_key);
        meta.keys = meta.keys + count(new_key) - count(prior.existed).min(meta.keys);
        let new_expiring = head.is_some_and(|e| e.expire_at_ms.is_some());
        meta.expiring =
            meta.expiring + count(new_expiring) - count(old_expiry.is_some()).min(meta.expiring);
        let new_session = head.is_some_and(Entry::is_session);
        meta.sessions =
            meta.sessions + count(new_session) - count(prior.session).min(meta.sessions);
        meta.seq = entry.pos.version;
        let key = &entry.key;
        let events = match entry.events.is_empty() {
            true => None,
            false => Some(postcard::to_allocvec(&entry.events).map_err(err)?),
        };
        if let Some(at) = head.and_then(|e| e.expire_at_ms) {
            self.files_deadline(at);
        }
        let version = entry.pos.version;
        let written = self.write(Some(entry.pos), meta, |batch| {
            match &entry.delta {
                Delta::Whole(Some(e)) => batch.put(key, e, old_expiry, prior.fields),
                Delta::Whole(None) => batch.delete(key, old_expiry, prior.fields),
                Delta::Fields { header, rows } => batch.patch(key, header, rows, old_expiry),
            }
            if let Some(events) = events {
                batch.keep_events(version, events);
            }
        });
        if written.is_ok() {
            self.unsettled.record(key, &entry.delta);
            if !entry.events.is_empty() {
                self.kept.insert(version);
            }
            self.remember_change(key, &entry.delta, prior.existed);
        } else {
            // Refused: the key leaves the tier, so the next read sees disk.
            self.complete = false;
            self.remember(key, None);
        }
        written
    }

    fn kept_events(&mut self) -> StoreResult<Vec<SessionEvent>> {
        if self.kept.is_empty() {
            return Ok(Vec::new());
        }
        self.settle()?;
        let mut events = Vec::new();
        for (version, row) in self.store.kept_events(self.p).map_err(err)? {
            match postcard::from_bytes::<Vec<SessionEvent>>(&row) {
                Ok(of_write) => events.extend(of_write),
                Err(e) => {
                    warn!(partition = self.p, version, error = %e, "unreadable session events")
                }
            }
        }
        Ok(events)
    }

    fn forget_events(&mut self, through: u64) -> StoreResult<()> {
        let doomed: Vec<u64> = self.kept.range(..=through).copied().collect();
        if doomed.is_empty() || self.store.refuses_writes().is_some() {
            return Ok(());
        }
        let (pos, meta) = (self.pos, self.meta);
        self.write(pos, meta, |batch| doomed.iter().for_each(|v| batch.forget_events(*v)))?;
        self.kept.retain(|v| *v > through);
        Ok(())
    }

    fn position(&self) -> Option<LogPos> {
        self.pos
    }

    fn set_position(&mut self, pos: Option<LogPos>) -> StoreResult<()> {
        let meta = self.meta;
        self.write(pos, meta, |_| {})
    }

    fn scan(&mut self, after: Option<&[u8]>, limit: usize) -> StoreResult<Vec<(Bytes, Entry)>> {
        self.settle()?;
        let rows = self.store.scan(self.p, after, limit).map_err(err)?;
        Ok(rows.into_iter().map(|(k, e)| (Bytes::from(k), e)).collect())
    }

    fn replace_range(
        &mut self,
        after: Option<&[u8]>,
        through: Option<&[u8]>,
        entries: &[(Bytes, Entry)],
    ) -> StoreResult<()> {
        self.settle()?;
        // The rows going away, to drop their expiry index rows and keep the counts right.
        let mut doomed: Vec<(Vec<u8>, Option<u64>)> = Vec::new();
        let mut doomed_sessions = 0;
        let mut doomed_keys = 0;
        let mut cursor = after.map(<[u8]>::to_vec);
        'scan: loop {
            let rows = self.store.scan(self.p, cursor.as_deref(), 1024).map_err(err)?;
            let last = rows.len() < 1024;
            for (k, e) in rows {
                if through.is_some_and(|t| k.as_slice() > t) {
                    break 'scan;
                }
                cursor = Some(k.clone());
                doomed_sessions += count(e.is_session());
                doomed_keys += count(e.is_key());
                doomed.push((k, e.expire_at_ms));
            }
            if last {
                break;
            }
        }
        let mut meta = self.meta;
        let gone_expiring = doomed.iter().filter(|(_, at)| at.is_some()).count() as u64;
        meta.keys = meta.keys.saturating_sub(doomed_keys)
            + entries.iter().filter(|(_, e)| e.is_key()).count() as u64;
        meta.expiring = meta.expiring.saturating_sub(gone_expiring)
            + entries.iter().filter(|(_, e)| e.expire_at_ms.is_some()).count() as u64;
        meta.sessions = meta.sessions.saturating_sub(doomed_sessions)
            + entries.iter().filter(|(_, e)| e.is_session()).count() as u64;
        let pos = self.pos;
        for at in entries.iter().filter_map(|(_, e)| e.expire_at_ms) {
            self.files_deadline(at);
        }
        self.account(EntryCache::clear);
        self.complete = false;
        self.unsettled.record_untracked();
        self.write(pos, meta, |batch| {
            for (k, at) in &doomed {
                batch.unindex(k, *at);
            }
            batch.delete_entries(after, through);
            for (k, e) in entries {
                batch.put(k, e, None, false);
            }
        })
    }

    fn counts(&mut self) -> StoreResult<Counts> {
        let m = self.meta;
        Ok(Counts { keys: m.keys, expiring: m.expiring, sessions: m.sessions })
    }

    fn due(&mut self, now_ms: u64, limit: usize) -> StoreResult<Vec<Bytes>> {
        if self.meta.expiring == 0 {
            return Ok(Vec::new());
        }
        // Read from disk without waiting for this partition's pending writes: the sweeper checks
        // each key it is given against its current entry, and a deadline still pending is found
        // by a later sweep. (Settling here would cut every partition's write groups short ten
        // times a second.) The index is `<=`-inclusive; an entry lives through its deadline
        // millisecond.
        let through = now_ms.saturating_sub(1);
        if through < self.no_row_before {
            return Ok(Vec::new());
        }
        let due = self.store.due_expiries(self.p, through, limit).map_err(err)?;
        // With writes pending, the index read may lack their rows; written deadlines already
        // lowered the bound, which only a read of everything written may raise. (A partition
        // restarted after its actor failed starts from 0 with nothing pending of its own: the
        // commits of its earlier life were flushed by this thread's committer long before its
        // first sweep, as its load of the metadata already assumes.)
        if due.rows.is_empty() && self.pending.is_idle() {
            self.no_row_before = due.none_before;
        }
        Ok(due.rows.into_iter().map(|(_, k)| Bytes::from(k)).collect())
    }

    fn has_deadlines(&self) -> bool {
        self.meta.expiring > 0
    }

    fn clear(&mut self) -> StoreResult<()> {
        self.account(EntryCache::clear);
        let kept = std::mem::take(&mut self.kept);
        self.unsettled.record_untracked();
        let written = self.write(Some(LogPos::ZERO), PartitionMeta::default(), |batch| {
            batch.delete_partition();
            kept.iter().for_each(|v| batch.forget_events(*v));
        });
        self.complete = written.is_ok();
        written
    }

    fn commit_failure(&self) -> Option<StoreError> {
        self.pending.failure().map(err)
    }

    fn refuses_writes(&mut self) -> Option<StoreError> {
        self.store.refuses_writes().map(err)
    }

    fn housekeep(&mut self) {
        let evicted = self.account(EntryCache::trim);
        self.evicted(evicted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_written_before_positions_were_kept_continues_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path(), 4, sessiongrid_model::config::Durability::Process).unwrap();
        let mut batch = store.batch(2);
        batch.set_meta(&PartitionMeta { keys: 1, seq: 70, ..PartitionMeta::default() });
        store.commit(batch).unwrap();
        let committer = Arc::new(Committer::new(store.clone()));
        let mut disk = DiskNode::new(store, 7, Budget::new(1 << 20), vec![committer]);
        assert_eq!(disk.partition(2).position(), Some(LogPos { version: 70, ..LogPos::ZERO }));
        assert_eq!(disk.partition(3).position(), Some(LogPos::ZERO), "never written");
    }

    /// The write at `version` of `delta` to `key`, without session events.
    fn write_of(version: u64, key: &'static [u8], delta: Delta) -> LogEntry {
        let pos = LogPos { version, ..LogPos::ZERO };
        LogEntry { pos, key: Bytes::from_static(key), delta, events: Vec::new() }
    }

    fn set(disk: &mut DiskPartition, version: u64, key: &'static [u8], len: usize) {
        let value = sessiongrid_model::Value::Str(Bytes::from(vec![b'x'; len]));
        let delta = Delta::Whole(Some(Entry::new(value)));
        disk.append(&write_of(version, key, delta), None).unwrap();
    }

    /// A node's disk of 4 partitions in `dir`, with a memory budget of `budget` bytes.
    fn disk_node(dir: &tempfile::TempDir, budget: usize) -> DiskNode {
        let store =
            Store::open(dir.path(), 4, sessiongrid_model::config::Durability::Process).unwrap();
        let committer = Arc::new(Committer::new(store.clone()));
        DiskNode::new(store, 7, Budget::new(budget), vec![committer])
    }

    #[test]
    fn session_events_stay_on_disk_until_forgotten_or_cleared() {
        use sessiongrid_model::session::event::EventKind;
        let write = |version, events: usize| LogEntry {
            pos: LogPos { version, ..LogPos::ZERO },
            key: Bytes::from_static(b"s"),
            delta: Delta::Whole(Some(Entry::new(sessiongrid_model::Value::Str(Bytes::new())))),
            events: (0..events)
                .map(|i| SessionEvent {
                    kind: EventKind::Created,
                    id: Bytes::from(format!("s{version}-{i}")),
                    group: Bytes::new(),
                    principal: None,
                    moved_to: None,
                    at_ms: 1,
                    node: 7,
                    partition: 1,
                    version,
                    session_version: 1,
                })
                .collect(),
        };
        let kept = |p: &mut DiskPartition| -> Vec<Bytes> {
            p.kept_events().unwrap().into_iter().map(|e| e.id).collect()
        };
        let dir = tempfile::tempdir().unwrap();
        {
            let mut disk = disk_node(&dir, 1 << 20);
            let mut p = disk.partition(1);
            p.append(&write(1, 2), None).unwrap();
            set(&mut p, 2, b"k", 10);
            p.append(&write(3, 1), None).unwrap();
            assert_eq!(kept(&mut p), ["s1-0", "s1-1", "s3-0"]);
            p.forget_events(2).unwrap();
            p.settle().unwrap();
        }
        // As after a kill -9: what was on disk is all there is.
        let mut disk = disk_node(&dir, 1 << 20);
        let mut p = disk.partition(1);
        assert_eq!(kept(&mut p), ["s3-0"]);
        assert!(kept(&mut disk.partition(2)).is_empty(), "another partition's are its own");
        p.clear().unwrap();
        assert!(kept(&mut p).is_empty());
        p.settle().unwrap();
        drop((p, disk));
        assert!(kept(&mut disk_node(&dir, 1 << 20).partition(1)).is_empty());
    }

    #[test]
    fn the_sweep_reads_the_index_only_once_a_row_may_be_due() {
        let expiring = |at| {
            let mut e = Entry::new(sessiongrid_model::Value::Str(Bytes::from_static(b"v")));
            e.expire_at_ms = Some(at);
            Delta::Whole(Some(e))
        };
        let dir = tempfile::tempdir().unwrap();
        let mut disk = disk_node(&dir, 1 << 20);
        let mut p = disk.partition(1);
        p.append(&write_of(1, b"late", expiring(30_500)), None).unwrap();
        p.settle().unwrap();
        assert!(p.due(1_000, 10).unwrap().is_empty());
        assert_eq!(p.no_row_before, 31_000, "the index told its next row's slot");
        // A deadline written since lowers the bound. A read while that write is not on disk
        // cannot see its row, and must not raise the bound past it.
        p.append(&write_of(2, b"soon", expiring(5_500)), None).unwrap();
        assert_eq!(p.no_row_before, 6_000);
        assert!(p.due(5_999, 10).unwrap().is_empty(), "not due yet");
        assert!(p.due(7_000, 10).unwrap().is_empty(), "its row is not on disk yet");
        assert_eq!(p.no_row_before, 6_000);
        p.settle().unwrap();
        assert_eq!(p.due(7_000, 10).unwrap(), [Bytes::from_static(b"soon")]);
        // A row beyond the index's look-ahead: the bound is the look-ahead's end. Rows a
        // snapshot brings lower it.
        let mut q = disk.partition(2);
        q.append(&write_of(1, b"late", expiring(599_500)), None).unwrap();
        q.settle().unwrap();
        assert!(q.due(1_000, 10).unwrap().is_empty());
        assert_eq!(q.no_row_before, 999 + sessiongrid_store::DUE_LOOK_AHEAD_MS);
        let mut copied = Entry::new(sessiongrid_model::Value::Str(Bytes::new()));
        copied.expire_at_ms = Some(9_500);
        q.replace_range(None, None, &[(Bytes::from_static(b"copied"), copied)]).unwrap();
        assert_eq!(q.no_row_before, 10_000);
        q.settle().unwrap();
        assert_eq!(q.due(10_001, 10).unwrap(), [Bytes::from_static(b"copied")]);
    }

    #[test]
    fn a_key_the_tier_dropped_or_never_held_is_still_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        // Room for a few small entries, none of more than 250 bytes.
        let mut disk = disk_node(&dir, 1000);
        let mut p = disk.partition(1);
        assert!(p.get(b"nothing").unwrap().is_none(), "an empty partition answers from memory");
        set(&mut p, 1, b"big", 1000);
        assert!(p.get(b"big").unwrap().is_some(), "too big for the tier: read from disk");
        let mut p = disk.partition(2);
        for (version, key) in [b"k0", b"k1", b"k2", b"k3", b"k4", b"k5"].into_iter().enumerate() {
            set(&mut p, version as u64 + 1, key, 100);
        }
        assert!(p.cache.get(b"k0").is_none() && !p.complete);
        assert!(p.get(b"k0").unwrap().is_some(), "evicted: read from disk");
    }

    /// A write of fields `rows` (`None`: removed) of hash `h` at `version`, over `prior`.
    fn hset(p: &mut DiskPartition, version: u64, rows: &[(&str, Option<&str>)], prior: Prior) {
        use sessiongrid_model::Value;
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let header = Entry { value: Value::Hash(Default::default()), expire_at_ms: None, version };
        let rows = rows.iter().map(|(n, v)| (b(n), v.map(b))).collect();
        p.append(&write_of(version, b"h", Delta::Fields { header, rows }), Some(prior)).unwrap();
    }

    #[test]
    fn a_hash_the_tier_cannot_hold_is_read_over_its_writes_not_on_disk_yet() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = disk_node(&dir, 400);
        let mut p = disk.partition(1);
        let big = "x".repeat(1000);
        hset(&mut p, 1, &[("a", Some(&big)), ("b", Some("2"))], Prior::of(None));
        p.settle().unwrap();
        assert!(p.cache.get(b"h").is_none(), "larger than the tier");
        let hash = Prior::of(p.store.get_header(1, b"h").unwrap().as_ref());
        hset(&mut p, 2, &[("c", Some("3")), ("b", None)], hash);
        hset(&mut p, 3, &[("d", Some("4"))], hash);
        let needs = |names: &[&str], others| FieldNeeds {
            names: names.iter().map(|n| Bytes::copy_from_slice(n.as_bytes())).collect(),
            others,
        };
        let view = p.get_fields(b"h", &needs(&["a", "b", "c", "zz"], false)).unwrap().unwrap();
        assert_eq!(view.version, 3);
        let names: Vec<_> = view.value.field_rows().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "c"], "b removed, c written, zz never there");
        // The other field is one written since (d) or one on disk not removed since (a).
        let view = p.get_fields(b"h", &needs(&["c"], true)).unwrap().unwrap();
        assert_eq!(view.value.field_rows().len(), 2);
        assert!(p.prior(b"h").unwrap().existed);
        assert!(p.pending.has_writes(), "nothing was written to be read back");
        assert_eq!(p.store.get_header(1, b"h").unwrap().unwrap().version, 1);
        // A whole write cannot be read over: the read settles first.
        p.append(&write_of(4, b"h", Delta::Whole(None)), Some(hash)).unwrap();
        hset(&mut p, 5, &[("e", Some("5"))], Prior::of(None));
        p.cache.take(b"h");
        p.complete = false;
        let view = p.get_fields(b"h", &needs(&["a", "e"], true)).unwrap().unwrap();
        let names: Vec<_> = view.value.field_rows().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["e"], "the deletion took a with it");
        assert!(p.pending.is_idle());
    }

    #[test]
    fn a_key_evicted_for_a_growing_hash_is_still_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = disk_node(&dir, 1000);
        let mut p = disk.partition(1);
        set(&mut p, 1, b"a", 10);
        set(&mut p, 2, b"b", 10);
        for (version, key) in [(3, b"c"), (4, b"d"), (5, b"e")] {
            set(&mut p, version, key, 100);
        }
        hset(&mut p, 6, &[("f", Some("1"))], Prior::of(None));
        assert!(p.complete && p.cache.get(b"h").is_some(), "a new hash is cached whole");
        let hash = Prior::of(p.cache.get(b"h"));
        hset(&mut p, 7, &[("g", Some(&"y".repeat(50)))], hash);
        assert!(p.cache.get(b"h").is_some(), "patched in place");
        assert!(p.cache.get(b"a").is_none(), "evicted for the hash's growth");
        assert!(p.get(b"a").unwrap().is_some(), "and read from disk, not taken for absent");
    }

    #[test]
    fn a_new_list_written_by_fields_stays_in_the_tier_whole() {
        use sessiongrid_model::list::List;
        use sessiongrid_model::Value;
        let dir = tempfile::tempdir().unwrap();
        let mut disk = disk_node(&dir, 1 << 20);
        let mut p = disk.partition(1);
        let mut list = List::default();
        let rows = ["a", "b"].map(|v| (list.push_back(Bytes::from_static(v.as_bytes())), v));
        let header = Entry::new(Value::List(list.header()));
        let rows = rows.map(|(n, v)| (n, Some(Bytes::from_static(v.as_bytes())))).to_vec();
        let entry = write_of(1, b"l", Delta::Fields { header, rows });
        p.append(&entry, Some(Prior::of(None))).unwrap();
        assert!(p.complete, "the tier still holds every key of the partition");
        let cached = p.cache.get(b"l").cloned().expect("cached whole");
        assert_eq!(cached.value, Value::List(list));
        assert_eq!(p.get(b"l").unwrap(), Some(cached));
    }

    #[test]
    fn a_topology_saved_before_lite_members_still_loads() {
        #[derive(serde::Serialize)]
        struct BeforeLite<'a>(
            u64,
            NodeId,
            &'a [NodeId],
            &'a [NodeId],
            &'a [NodeId],
            &'a [Assignment],
        );
        let mut now = Topology::founded_by(7, 4);
        now.members = vec![3, 7];
        now.leaving = vec![3];
        let t = &now;
        let old = postcard::to_stdvec(&BeforeLite(
            t.epoch,
            t.coordinator,
            &t.members,
            &t.leaving,
            &t.stable,
            &t.partitions,
        ))
        .unwrap();
        assert_eq!(decode_topology(&old).unwrap(), now);
        now.lite = vec![3];
        assert_eq!(decode_topology(&postcard::to_stdvec(&now).unwrap()).unwrap(), now);
        assert!(decode_topology(b"\x01").is_err());
    }
}
