//! What the protocol needs from a disk. The grid implements it over RocksDB; the simulator over
//! memory that survives a simulated crash.

use bytes::Bytes;
use sessiongrid_model::op::FieldNeeds;
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::{Entry, PartitionId};

use crate::msg::{LogEntry, LogPos};
use crate::placement::NodeId;
use crate::topology::Topology;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

pub type StoreResult<T> = Result<T, StoreError>;

/// What a key held before a write, when the writer has just read it: the store then need not
/// read it again to move its expiry row and keep its counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prior {
    /// It held a key that counts (a deleted key's tombstone does not).
    pub existed: bool,
    pub expire_at_ms: Option<u64>,
    /// It held a live session.
    pub session: bool,
    /// It held a hash or session, whose fields have rows of their own.
    pub fields: bool,
}

impl Prior {
    pub fn of(slot: Option<&Entry>) -> Prior {
        Prior {
            existed: slot.is_some_and(Entry::is_key),
            expire_at_ms: slot.and_then(|e| e.expire_at_ms),
            session: slot.is_some_and(Entry::is_session),
            fields: slot.is_some_and(|e| e.value.has_fields()),
        }
    }
}

/// How many keys a partition holds, without a scan (expired ones not yet deleted included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub keys: u64,
    /// Keys with a deadline.
    pub expiring: u64,
    /// Live sessions (not their tombstones).
    pub sessions: u64,
}

/// One partition's data on one node.
pub trait PartitionStore {
    fn get(&mut self, key: &[u8]) -> StoreResult<Option<Entry>>;

    /// The key's entry as an operation on some hash fields needs it ([`Entry::view`]): a big
    /// hash need not be read whole. A store without a cheaper way returns it whole.
    fn get_fields(&mut self, key: &[u8], needs: &FieldNeeds) -> StoreResult<Option<Entry>> {
        let _ = needs;
        self.get(key)
    }

    /// Writes the entry's new state and its session events (kept until
    /// [`PartitionStore::forget_events`]) and makes its position the partition's, atomically
    /// and durably, before returning. `prior` is what the key held, if the caller knows.
    fn append(&mut self, entry: &LogEntry, prior: Option<Prior>) -> StoreResult<()>;

    /// The session events [`PartitionStore::append`] kept and nothing forgot since, oldest
    /// first: those of writes that may not have reached every member yet, read when a replica
    /// starts from disk, so that no restart loses one.
    fn kept_events(&mut self) -> StoreResult<Vec<SessionEvent>>;

    /// Every event up to version `through` is with every member: the disk may drop them. A
    /// disk that refuses writes keeps them (they are published again at worst).
    fn forget_events(&mut self, through: u64) -> StoreResult<()>;

    /// The position of the last applied write; `None` if the copy is incomplete (a snapshot was
    /// being installed).
    fn position(&self) -> Option<LogPos>;

    fn set_position(&mut self, pos: Option<LogPos>) -> StoreResult<()>;

    /// Up to `limit` entries with keys after `after` (from the first key if `None`), in key order.
    fn scan(&mut self, after: Option<&[u8]>, limit: usize) -> StoreResult<Vec<(Bytes, Entry)>>;

    /// Makes the keys in `(after, through]` exactly `entries` (`through = None`: to the end).
    fn replace_range(
        &mut self,
        after: Option<&[u8]>,
        through: Option<&[u8]>,
        entries: &[(Bytes, Entry)],
    ) -> StoreResult<()>;

    fn counts(&mut self) -> StoreResult<Counts>;

    /// Up to `limit` keys whose deadline is before `now_ms` (unix ms), about the oldest first.
    /// It may name a key only some time after its deadline (the disk's index files deadlines by
    /// the second), miss the latest writes' deadlines (a later call finds them) and name keys
    /// written since without one: callers check each key's entry.
    fn due(&mut self, now_ms: u64, limit: usize) -> StoreResult<Vec<Bytes>>;

    /// Whether any key may have a deadline, so [`PartitionStore::due`] may name one: with none,
    /// the partition has no expiry sweep to run.
    fn has_deadlines(&self) -> bool;

    /// Drops every entry and kept event and resets the position to [`LogPos::ZERO`].
    fn clear(&mut self) -> StoreResult<()>;

    /// A write this store took (its call returned `Ok`) that it then failed to put on disk, if
    /// one did: memory is ahead of disk, so the partition must restart from disk, and nothing
    /// the write caused may leave it. A store that writes before returning never has one.
    fn commit_failure(&self) -> Option<StoreError> {
        None
    }

    /// Work the store does now and then, at the partition's tick: a memory tier above its
    /// share gives back what the node's other partitions need.
    fn housekeep(&mut self) {}

    /// Why the disk refuses writes for now (it is full or failing), if it does: writes are
    /// then refused before they run, and reads still served.
    fn refuses_writes(&mut self) -> Option<StoreError> {
        None
    }
}

/// A node's disk: its partitions and what it must remember across restarts.
pub trait NodeStore {
    type Partition: PartitionStore;

    fn partition(&mut self, p: PartitionId) -> Self::Partition;

    fn node_id(&self) -> NodeId;

    fn load_topology(&self) -> Option<Topology>;

    fn save_topology(&mut self, topology: &Topology) -> StoreResult<()>;
}

/// Applies a log entry to entries kept whole in a map, as the disk applies it to rows: the
/// stores in memory of the protocol's tests and of the simulator.
pub fn apply_to_map(entries: &mut std::collections::BTreeMap<Bytes, Entry>, entry: &LogEntry) {
    let mut slot = entries.remove(&entry.key);
    entry.delta.apply_as_rows(&mut slot);
    if let Some(e) = slot {
        entries.insert(entry.key.clone(), e);
    }
}

/// A partition's entries in a map, for the protocol's unit tests.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct MemStore {
    pub entries: std::collections::BTreeMap<Bytes, Entry>,
    pub pos: Option<LogPos>,
    pub events: std::collections::BTreeMap<u64, Vec<SessionEvent>>,
    /// The disk refuses writes (it is full).
    pub refusing: bool,
}

#[cfg(test)]
impl MemStore {
    /// An empty partition with a history that starts at zero.
    pub fn empty() -> MemStore {
        MemStore { pos: Some(LogPos::ZERO), ..MemStore::default() }
    }
}

#[cfg(test)]
impl PartitionStore for MemStore {
    fn get(&mut self, key: &[u8]) -> StoreResult<Option<Entry>> {
        Ok(self.entries.get(key).cloned())
    }
    fn append(&mut self, e: &LogEntry, _: Option<Prior>) -> StoreResult<()> {
        apply_to_map(&mut self.entries, e);
        self.pos = Some(e.pos);
        if !e.events.is_empty() {
            self.events.insert(e.pos.version, e.events.clone());
        }
        Ok(())
    }
    fn kept_events(&mut self) -> StoreResult<Vec<SessionEvent>> {
        Ok(self.events.values().flatten().cloned().collect())
    }
    fn forget_events(&mut self, through: u64) -> StoreResult<()> {
        self.events.retain(|v, _| *v > through);
        Ok(())
    }
    fn position(&self) -> Option<LogPos> {
        self.pos
    }
    fn set_position(&mut self, pos: Option<LogPos>) -> StoreResult<()> {
        self.pos = pos;
        Ok(())
    }
    fn scan(&mut self, _: Option<&[u8]>, _: usize) -> StoreResult<Vec<(Bytes, Entry)>> {
        Ok(Vec::new())
    }
    fn replace_range(
        &mut self,
        _: Option<&[u8]>,
        _: Option<&[u8]>,
        _: &[(Bytes, Entry)],
    ) -> StoreResult<()> {
        Ok(())
    }
    fn counts(&mut self) -> StoreResult<Counts> {
        Ok(Counts::default())
    }
    fn due(&mut self, _: u64, _: usize) -> StoreResult<Vec<Bytes>> {
        Ok(Vec::new())
    }
    fn has_deadlines(&self) -> bool {
        false
    }
    fn clear(&mut self) -> StoreResult<()> {
        self.entries.clear();
        self.events.clear();
        self.pos = Some(LogPos::ZERO);
        Ok(())
    }
    fn refuses_writes(&mut self) -> Option<StoreError> {
        self.refusing.then(|| StoreError("No space left on device".into()))
    }
}
