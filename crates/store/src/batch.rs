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

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}
