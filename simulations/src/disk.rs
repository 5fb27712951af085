//! Disks in memory. A simulated crash drops the node but keeps its disk, exactly as a kill -9
//! keeps what RocksDB wrote to its WAL before the write was acknowledged.
//!
//! A disk can fail its writes for a while (a full disk), as the node's does: a write the
//! partition made is taken and then fails to reach the disk, so the partition must restart
//! from disk with nothing that write caused sent ([`PartitionStore::commit_failure`]); once one
//! has failed, writes are refused up front ([`PartitionStore::refuses_writes`]) until the disk
//! takes them again. A disk can also fail its reads for a while (an unreadable partition).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::rc::Rc;

use bytes::Bytes;
use sessiongrid_cluster::storage::{Counts, Prior, StoreError, StoreResult};
use sessiongrid_cluster::{LogEntry, LogPos, NodeId, NodeStore, PartitionStore, Topology};
use sessiongrid_model::op::FieldNeeds;
use sessiongrid_model::session::event::SessionEvent;
use sessiongrid_model::{Entry, PartitionId};

#[derive(Default)]
pub struct PartitionData {
    pub entries: BTreeMap<Bytes, Entry>,
    pub pos: Option<LogPos>,
    /// Session events by the version of their write, until forgotten.
    pub events: BTreeMap<u64, Vec<SessionEvent>>,
}

/// Whether a disk takes writes.
#[derive(Default)]
pub struct Health {
    /// Writes fail (a fault is on).
    pub failing: bool,
    /// A write failed since the disk last took one: the node knows, and refuses writes.
    known: bool,
    /// Reads fail (a fault is on): a partition that cannot be read.
    unreadable: bool,
}

fn full() -> StoreError {
    StoreError("storage: No space left on device (simulated)".into())
}

fn unreadable() -> StoreError {
    StoreError("storage: Input/output error (simulated)".into())
}

pub struct MemPartition {
    data: Rc<RefCell<PartitionData>>,
    health: Rc<RefCell<Health>>,
    /// A write this copy took failed to reach the disk.
    failed: Option<StoreError>,
}

impl MemPartition {
    /// Runs `write` on the data if the disk takes writes; otherwise the write is lost and this
    /// copy of the partition has failed.
    fn write(&mut self, write: impl FnOnce(&mut PartitionData)) {
        let mut health = self.health.borrow_mut();
        if health.failing {
            health.known = true;
            self.failed.get_or_insert_with(full);
        } else if self.failed.is_none() {
            write(&mut self.data.borrow_mut());
        }
    }

    /// The data, unless the disk fails reads.
    fn read(&self) -> StoreResult<std::cell::Ref<'_, PartitionData>> {
        if self.health.borrow().unreadable {
            return Err(unreadable());
        }
        Ok(self.data.borrow())
    }
}

impl PartitionStore for MemPartition {
    fn get(&mut self, key: &[u8]) -> StoreResult<Option<Entry>> {
        Ok(self.read()?.entries.get(key).cloned())
    }

    fn get_fields(&mut self, key: &[u8], needs: &FieldNeeds) -> StoreResult<Option<Entry>> {
        Ok(self.read()?.entries.get(key).map(|e| e.view(needs)))
    }

    fn append(&mut self, entry: &LogEntry, _: Option<Prior>) -> StoreResult<()> {
        self.write(|d| {
            sessiongrid_cluster::storage::apply_to_map(&mut d.entries, entry);
            d.pos = Some(entry.pos);
            if !entry.events.is_empty() {
                d.events.insert(entry.pos.version, entry.events.clone());
            }
        });
        Ok(())
    }

    fn kept_events(&mut self) -> StoreResult<Vec<SessionEvent>> {
        Ok(self.read()?.events.values().flatten().cloned().collect())
    }

    fn forget_events(&mut self, through: u64) -> StoreResult<()> {
        let kept = self.data.borrow().events.first_key_value().map(|(v, _)| *v);
        if kept.is_some_and(|v| v <= through) && !self.health.borrow().known {
            self.write(|d| d.events.retain(|v, _| *v > through));
        }
        Ok(())
    }

    fn position(&self) -> Option<LogPos> {
        self.data.borrow().pos
    }

    fn set_position(&mut self, pos: Option<LogPos>) -> StoreResult<()> {
        self.write(|d| d.pos = pos);
        Ok(())
    }

    fn scan(&mut self, after: Option<&[u8]>, limit: usize) -> StoreResult<Vec<(Bytes, Entry)>> {
        let d = self.read()?;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(d.entries
            .range::<[u8], _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn replace_range(
        &mut self,
        after: Option<&[u8]>,
        through: Option<&[u8]>,
        entries: &[(Bytes, Entry)],
    ) -> StoreResult<()> {
        self.write(|d| {
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let end = through.map_or(Bound::Unbounded, Bound::Included);
            let doomed: Vec<Bytes> =
                d.entries.range::<[u8], _>((start, end)).map(|(k, _)| k.clone()).collect();
            for k in doomed {
                d.entries.remove(&k);
            }
            for (k, v) in entries {
                d.entries.insert(k.clone(), v.clone());
            }
        });
        Ok(())
    }

    fn counts(&mut self) -> StoreResult<Counts> {
        let d = self.read()?;
        let expiring = d.entries.values().filter(|e| e.expire_at_ms.is_some()).count();
        let sessions = d.entries.values().filter(|e| e.is_session()).count();
        Ok(Counts {
            keys: d.entries.values().filter(|e| e.is_key()).count() as u64,
            expiring: expiring as u64,
            sessions: sessions as u64,
        })
    }

    fn due(&mut self, now_ms: u64, limit: usize) -> StoreResult<Vec<Bytes>> {
        let d = self.read()?;
        let mut due: Vec<(u64, Bytes)> = d
            .entries
            .iter()
            .filter_map(|(k, e)| e.expire_at_ms.filter(|at| *at < now_ms).map(|at| (at, k.clone())))
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, k)| k).collect())
    }

    fn has_deadlines(&self) -> bool {
        self.data.borrow().entries.values().any(|e| e.expire_at_ms.is_some())
    }

    fn clear(&mut self) -> StoreResult<()> {
        self.write(|d| {
            d.entries.clear();
            d.events.clear();
            d.pos = Some(LogPos::ZERO);
        });
        Ok(())
    }

    fn commit_failure(&self) -> Option<StoreError> {
        self.failed.clone()
    }

    /// Refused once a write has failed, until the disk takes writes again (the node's probe
    /// succeeds at once here).
    fn refuses_writes(&mut self) -> Option<StoreError> {
        let mut health = self.health.borrow_mut();
        health.known &= health.failing;
        health.known.then(full)
    }
}

pub struct DiskState {
    pub id: NodeId,
    pub partitions: BTreeMap<PartitionId, Rc<RefCell<PartitionData>>>,
    pub topology: Option<Topology>,
    pub health: Rc<RefCell<Health>>,
}

/// A node's disk; clones share it, so it outlives the node that uses it.
#[derive(Clone)]
pub struct MemDisk(pub Rc<RefCell<DiskState>>);

impl MemDisk {
    pub fn new(id: NodeId) -> Self {
        MemDisk(Rc::new(RefCell::new(DiskState {
            id,
            partitions: BTreeMap::new(),
            topology: None,
            health: Rc::default(),
        })))
    }

    /// From now on, writes fail (`true`) or are taken (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.0.borrow().health.borrow_mut().failing = failing;
    }

    /// From now on, reads fail (`true`) or are served (`false`).
    pub fn set_unreadable(&self, unreadable: bool) {
        self.0.borrow().health.borrow_mut().unreadable = unreadable;
    }

    /// The entry stored under `key` in partition `p`, if this disk has it.
    pub fn entry(&self, p: PartitionId, key: &[u8]) -> Option<Entry> {
        self.0.borrow().partitions.get(&p)?.borrow().entries.get(key).cloned()
    }
}

impl NodeStore for MemDisk {
    type Partition = MemPartition;

    fn partition(&mut self, p: PartitionId) -> MemPartition {
        let mut d = self.0.borrow_mut();
        let data = d.partitions.entry(p).or_insert_with(|| {
            Rc::new(RefCell::new(PartitionData {
                entries: BTreeMap::new(),
                pos: Some(LogPos::ZERO),
                events: BTreeMap::new(),
            }))
        });
        MemPartition { data: data.clone(), health: d.health.clone(), failed: None }
    }

    fn node_id(&self) -> NodeId {
        self.0.borrow().id
    }

    fn load_topology(&self) -> Option<Topology> {
        self.0.borrow().topology.clone()
    }

    fn save_topology(&mut self, topology: &Topology) -> StoreResult<()> {
        let mut d = self.0.borrow_mut();
        let mut health = d.health.borrow_mut();
        if health.failing {
            health.known = true;
            return Err(full());
        }
        drop(health);
        d.topology = Some(topology.clone());
        Ok(())
    }
}
