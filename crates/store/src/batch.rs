//! One atomic write of a partition, recorded as owned operations so it can wait in a queue and
//! be written together with other partitions' batches, as one RocksDB write.

use bytes::Bytes;
use rocksdb::{WriteBatch, DB};
use sessiongrid_model::{Entry, PartitionId};

use crate::journal::Metas;
use crate::keys;
use crate::store::PartitionMeta;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    Entries,
    Expiry,
    Meta,
    Fields,
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
    /// Metadata by partition, encoded and written after `ops`: of the batches joined by
    /// [`Batch::extend`], only each partition's last is written (every write of a partition
    /// sets it; encoding and writing each would only add memtable entries that the last
    /// replaces).
    metas: Metas,
}

impl Batch {
    pub fn new(partition: PartitionId) -> Self {
        Batch { partition, ops: Vec::new(), metas: Vec::new() }
    }

    /// Stores `entry` under `key`, replacing what was there; moves its expiry-index row from
    /// `old_expiry`'s slot if the slot changed. `old_fields`: the key held a value with field
    /// rows, which go.
    pub fn put(&mut self, key: &[u8], entry: &Entry, old_expiry: Option<u64>, old_fields: bool) {
        if old_fields {
            self.delete_fields(key);
        }
        if entry.value.has_fields() {
            self.put_header(key, &entry.header(), old_expiry);
            for (field, row) in entry.value.field_rows() {
                self.put_field(key, &field, row.to_vec());
            }
        } else {
            self.put_header(key, entry, old_expiry);
        }
    }

    /// Stores the new header of the hash or session under `key` and its changed field rows
    /// (`None`: removed), leaving its other fields as they are.
    pub fn patch(
        &mut self,
        key: &[u8],
        header: &Entry,
        rows: &[(Bytes, Option<Bytes>)],
        old_expiry: Option<u64>,
    ) {
        self.put_header(key, header, old_expiry);
        for (field, row) in rows {
            match row {
                Some(row) => self.put_field(key, field, row.to_vec()),
                None => {
                    let k = keys::field_key(self.partition, key, field);
                    self.ops.push(BatchOp::Delete(Family::Fields, k));
                }
            }
        }
    }

    fn put_header(&mut self, key: &[u8], header: &Entry, old_expiry: Option<u64>) {
        let p = self.partition;
        self.ops.push(BatchOp::Put(Family::Entries, keys::entry_key(p, key), header.encode()));
        if old_expiry.map(keys::expiry_slot) != header.expire_at_ms.map(keys::expiry_slot) {
            self.unindex(key, old_expiry);
            if let Some(at) = header.expire_at_ms {
                self.ops.push(BatchOp::Put(
                    Family::Expiry,
                    keys::expiry_key(p, keys::expiry_slot(at), key),
                    Vec::new(),
                ));
            }
        }
    }

    fn put_field(&mut self, key: &[u8], field: &[u8], row: Vec<u8>) {
        let k = keys::field_key(self.partition, key, field);
        self.ops.push(BatchOp::Put(Family::Fields, k, row));
    }

    fn delete_fields(&mut self, key: &[u8]) {
        let (from, to) =
            (keys::fields_prefix(self.partition, key), keys::fields_end(self.partition, key));
        self.ops.push(BatchOp::DeleteRange(Family::Fields, from, to));
    }

    /// Removes `key`, its field rows if it has any (`old_fields`) and its expiry-index row.
    pub fn delete(&mut self, key: &[u8], old_expiry: Option<u64>, old_fields: bool) {
        self.ops.push(BatchOp::Delete(Family::Entries, keys::entry_key(self.partition, key)));
        if old_fields {
            self.delete_fields(key);
        }
        self.unindex(key, old_expiry);
    }

    /// Removes only an expiry-index row (one that no longer matches its entry).
    pub fn unindex(&mut self, key: &[u8], at: Option<u64>) {
        if let Some(at) = at {
            let row = keys::expiry_key(self.partition, keys::expiry_slot(at), key);
            self.ops.push(BatchOp::Delete(Family::Expiry, row));
        }
    }

    /// Records the partition's metadata as of this batch.
    pub fn set_meta(&mut self, meta: &PartitionMeta) {
        self.set_meta_of(self.partition, *meta);
    }

    /// Stores a named row of an upper layer with this batch.
    pub fn put_extra(&mut self, name: &[u8], value: &[u8]) {
        self.ops.push(BatchOp::Put(Family::Meta, keys::extra_key(name), value.to_vec()));
    }

    /// Keeps the session events of the write at `version` (encoded by the caller) until
    /// [`Batch::forget_events`] drops them.
    pub fn keep_events(&mut self, version: u64, events: Vec<u8>) {
        let key = keys::events_key(self.partition, version);
        self.ops.push(BatchOp::Put(Family::Meta, key, events));
    }

    /// Drops the session events kept for the write at `version`. (A point deletion: range
    /// deletions do not mix with the in-place updates of the `meta` family.)
    pub fn forget_events(&mut self, version: u64) {
        self.ops.push(BatchOp::Delete(Family::Meta, keys::events_key(self.partition, version)));
    }

    /// Deletes the partition's entries, and their field rows, with user keys after `after`
    /// through `through` (`None`: from the first / to the last key of the partition). Their
    /// expiry rows are the caller's to remove.
    pub fn delete_entries(&mut self, after: Option<&[u8]>, through: Option<&[u8]>) {
        let p = self.partition;
        // The smallest key greater than `k` is `k` + 00.
        let past = |k: &[u8]| keys::entry_key(p, &[k, &[0u8][..]].concat());
        let from = after.map_or_else(|| keys::partition_start(p), past);
        let to = through.map_or_else(|| keys::partition_end(p), past);
        self.ops.push(BatchOp::DeleteRange(Family::Entries, from, to));
        let from = after.map_or_else(|| keys::partition_start(p), |k| keys::fields_end(p, k));
        let to = through.map_or_else(|| keys::partition_end(p), |k| keys::fields_end(p, k));
        self.ops.push(BatchOp::DeleteRange(Family::Fields, from, to));
    }

    /// Deletes every entry, field and expiry row of the partition.
    pub fn delete_partition(&mut self) {
        let (start, end) =
            (keys::partition_start(self.partition), keys::partition_end(self.partition));
        self.ops.push(BatchOp::DeleteRange(Family::Entries, start.clone(), end.clone()));
        self.ops.push(BatchOp::DeleteRange(Family::Fields, start.clone(), end.clone()));
        self.ops.push(BatchOp::DeleteRange(Family::Expiry, start, end));
    }

    /// Appends `later`'s operations, which then apply after this batch's.
    pub fn extend(&mut self, later: Batch) {
        self.ops.extend(later.ops);
        for (p, meta) in later.metas {
            self.set_meta_of(p, meta);
        }
    }

    fn set_meta_of(&mut self, p: PartitionId, meta: PartitionMeta) {
        match self.metas.iter_mut().find(|(q, _)| *q == p) {
            Some((_, earlier)) => *earlier = meta,
            None => self.metas.push((p, meta)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.metas.is_empty()
    }

    /// Which operations still matter: not one a later put or delete of the same row replaces
    /// (with no range deletion of its family in between). A group of many writes of one hot
    /// key then costs RocksDB one row, not one per write; the group lands atomically all the
    /// same, so no state in between was ever on disk to keep.
    fn live(&self) -> Vec<bool> {
        let mut live = vec![true; self.ops.len()];
        if self.ops.len() < 2 {
            return live;
        }
        let mut later: hashbrown::HashSet<(Family, &[u8])> =
            hashbrown::HashSet::with_capacity(self.ops.len());
        for (i, op) in self.ops.iter().enumerate().rev() {
            match op {
                BatchOp::Put(f, k, _) | BatchOp::Delete(f, k) => {
                    live[i] = later.insert((*f, k.as_slice()))
                }
                BatchOp::DeleteRange(f, ..) => later.retain(|(g, _)| g != f),
            }
        }
        live
    }

    /// Adds the operations that still matter to a RocksDB batch; gives back the partitions'
    /// metadata, for the caller to write where it belongs.
    pub(crate) fn write_into(self, db: &DB, wb: &mut WriteBatch) -> Metas {
        let cf = |f: Family| {
            let name = match f {
                Family::Entries => keys::CF_ENTRIES,
                Family::Expiry => keys::CF_EXPIRY,
                Family::Meta => keys::CF_META,
                Family::Fields => keys::CF_FIELDS,
            };
            db.cf_handle(name).expect("column families are created at open")
        };
        let live = self.live();
        for (op, _) in self.ops.into_iter().zip(live).filter(|(_, live)| *live) {
            match op {
                BatchOp::Put(f, k, v) => wb.put_cf(cf(f), k, v),
                BatchOp::Delete(f, k) => wb.delete_cf(cf(f), k),
                BatchOp::DeleteRange(f, from, to) => wb.delete_range_cf(cf(f), from, to),
            }
        }
        self.metas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(f: Family, k: &str) -> BatchOp {
        BatchOp::Put(f, k.as_bytes().to_vec(), b"v".to_vec())
    }

    fn live(ops: Vec<BatchOp>) -> Vec<bool> {
        Batch { partition: 0, ops, metas: Vec::new() }.live()
    }

    #[test]
    fn a_row_written_again_later_in_the_batch_is_written_once() {
        let (e, x) = (Family::Entries, Family::Expiry);
        let del = |f, k: &str| BatchOp::Delete(f, k.as_bytes().to_vec());
        let ops = vec![put(e, "a"), put(e, "b"), del(e, "a"), put(x, "a"), put(e, "a")];
        assert_eq!(live(ops), [false, true, false, true, true]);
    }

    #[test]
    fn a_range_deletion_keeps_the_writes_before_it() {
        let (e, f) = (Family::Entries, Family::Fields);
        let range = |f| BatchOp::DeleteRange(f, b"a".to_vec(), b"z".to_vec());
        // The range deletion of fields keeps the field row before it; the entry row before it
        // is still replaced by the later one.
        let ops = vec![put(f, "h1"), put(e, "h"), range(f), put(f, "h1"), put(e, "h")];
        assert_eq!(live(ops), [true, false, true, true, true]);
    }
}
