//! One atomic write of a partition.

use rocksdb::WriteBatch;
use sessiongrid_model::{Entry, PartitionId};

use crate::keys;
use crate::store::{PartitionMeta, Store};

/// Changes to one partition that land on disk together or not at all.
pub struct Batch<'a> {
    store: &'a Store,
    partition: PartitionId,
    pub(crate) inner: WriteBatch,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(store: &'a Store, partition: PartitionId) -> Self {
        Batch { store, partition, inner: WriteBatch::default() }
    }

    /// Stores `entry` under `key`; moves its expiry-index row from `old_expiry` if it changed.
    pub fn put(&mut self, key: &[u8], entry: &Entry, old_expiry: Option<u64>) {
        let p = self.partition;
        self.inner.put_cf(self.store.entries(), keys::entry_key(p, key), entry.encode());
        if old_expiry != entry.expire_at_ms {
            self.unindex(key, old_expiry);
            if let Some(at) = entry.expire_at_ms {
                self.inner.put_cf(self.store.expiry(), keys::expiry_key(p, at, key), []);
            }
        }
    }

    /// Removes `key` and its expiry-index row.
    pub fn delete(&mut self, key: &[u8], old_expiry: Option<u64>) {
        self.inner.delete_cf(self.store.entries(), keys::entry_key(self.partition, key));
        self.unindex(key, old_expiry);
    }

    /// Removes only an expiry-index row (one that no longer matches its entry).
    pub fn unindex(&mut self, key: &[u8], at: Option<u64>) {
        if let Some(at) = at {
            self.inner.delete_cf(self.store.expiry(), keys::expiry_key(self.partition, at, key));
        }
    }

    /// Records the partition's key count and sequence number as of this batch.
    pub fn set_meta(&mut self, meta: &PartitionMeta) {
        self.inner.put_cf(self.store.meta(), keys::meta_key(self.partition), meta.encode());
    }

    /// Stores a named row of an upper layer with this batch.
    pub fn put_extra(&mut self, name: &[u8], value: &[u8]) {
        self.inner.put_cf(self.store.meta(), keys::extra_key(name), value);
    }

    /// Deletes the partition's entries with user keys in `[from, to)` (`to = None`: to the end of
    /// the partition). Their expiry rows are the caller's to remove.
    pub fn delete_entries(&mut self, from: &[u8], to: Option<&[u8]>) {
        let p = self.partition;
        let end = match to {
            Some(to) => keys::entry_key(p, to),
            None => keys::partition_end(p),
        };
        self.inner.delete_range_cf(self.store.entries(), keys::entry_key(p, from), end);
    }

    /// Deletes every entry and expiry row of the partition.
    pub fn delete_partition(&mut self) {
        let (start, end) =
            (keys::partition_start(self.partition), keys::partition_end(self.partition));
        self.inner.delete_range_cf(self.store.entries(), &start, &end);
        self.inner.delete_range_cf(self.store.expiry(), &start, &end);
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}
