//! One atomic write of a partition, recorded as owned operations so it can wait in a queue and
//! be written together with other partitions' batches, as one RocksDB write.

use rocksdb::{WriteBatch, DB};
use sessiongrid_model::{Entry, PartitionId};

use crate::keys;
use crate::store::PartitionMeta;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Entries,
    Expiry,
    Meta,
}

enum BatchOp {
    Put(Family, Vec<u8>, Vec<u8>),
    Delete(Family, Vec<u8>),
    DeleteRange(Family, Vec<u8>, Vec<u8>),
}

/// Changes to one partition that land on disk together or not at all.
pub struct Batch {
    partition: PartitionId,
    ops: Vec<BatchOp>,
}

impl Batch {
    pub fn new(partition: PartitionId) -> Self {
        Batch { partition, ops: Vec::new() }
    }

    /// Stores `entry` under `key`; moves its expiry-index row from `old_expiry` if it changed.
    pub fn put(&mut self, key: &[u8], entry: &Entry, old_expiry: Option<u64>) {
        let p = self.partition;
        self.ops.push(BatchOp::Put(Family::Entries, keys::entry_key(p, key), entry.encode()));
        if old_expiry != entry.expire_at_ms {
            self.unindex(key, old_expiry);
            if let Some(at) = entry.expire_at_ms {
                self.ops.push(BatchOp::Put(
                    Family::Expiry,
                    keys::expiry_key(p, at, key),
                    Vec::new(),
                ));
            }
        }
    }

    /// Removes `key` and its expiry-index row.
    pub fn delete(&mut self, key: &[u8], old_expiry: Option<u64>) {
        self.ops.push(BatchOp::Delete(Family::Entries, keys::entry_key(self.partition, key)));
        self.unindex(key, old_expiry);
    }

    /// Removes only an expiry-index row (one that no longer matches its entry).
    pub fn unindex(&mut self, key: &[u8], at: Option<u64>) {
        if let Some(at) = at {
            let row = keys::expiry_key(self.partition, at, key);
            self.ops.push(BatchOp::Delete(Family::Expiry, row));
        }
    }

    /// Records the partition's metadata as of this batch.
    pub fn set_meta(&mut self, meta: &PartitionMeta) {
        self.ops.push(BatchOp::Put(Family::Meta, keys::meta_key(self.partition), meta.encode()));
    }

    /// Stores a named row of an upper layer with this batch.
    pub fn put_extra(&mut self, name: &[u8], value: &[u8]) {
        self.ops.push(BatchOp::Put(Family::Meta, keys::extra_key(name), value.to_vec()));
    }

    /// Deletes the partition's entries with user keys in `[from, to)` (`to = None`: to the end of
    /// the partition). Their expiry rows are the caller's to remove.
    pub fn delete_entries(&mut self, from: &[u8], to: Option<&[u8]>) {
        let p = self.partition;
        let end = match to {
            Some(to) => keys::entry_key(p, to),
            None => keys::partition_end(p),
        };
        self.ops.push(BatchOp::DeleteRange(Family::Entries, keys::entry_key(p, from), end));
    }

    /// Deletes every entry and expiry row of the partition.
    pub fn delete_partition(&mut self) {
        let (start, end) =
            (keys::partition_start(self.partition), keys::partition_end(self.partition));
        self.ops.push(BatchOp::DeleteRange(Family::Entries, start.clone(), end.clone()));
        self.ops.push(BatchOp::DeleteRange(Family::Expiry, start, end));
    }

    /// Appends `later`'s operations, which then apply after this batch's.
    pub fn extend(&mut self, later: Batch) {
        self.ops.extend(later.ops);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Adds the operations to a RocksDB batch.
    pub(crate) fn write_into(self, db: &DB, wb: &mut WriteBatch) {
        let cf = |f: Family| {
            let name = match f {
                Family::Entries => keys::CF_ENTRIES,
                Family::Expiry => keys::CF_EXPIRY,
                Family::Meta => keys::CF_META,
            };
            db.cf_handle(name).expect("column families are created at open")
        };
        for op in self.ops {
            match op {
                BatchOp::Put(f, k, v) => wb.put_cf(cf(f), k, v),
                BatchOp::Delete(f, k) => wb.delete_cf(cf(f), k),
                BatchOp::DeleteRange(f, from, to) => wb.delete_range_cf(cf(f), from, to),
            }
        }
    }
}
