//! [`Store`]: the RocksDB handle shared by all partitions of a node.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hashbrown::HashMap;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction,
    IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};
use serde::{Deserialize, Serialize};
use sessiongrid_model::config::Durability;
use sessiongrid_model::op::FieldNeeds;
use sessiongrid_model::{Entry, PartitionId};

use crate::batch::Batch;
use crate::health::WriteHealth;
use crate::journal::MetaJournal;
use crate::keys;

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("storage: corrupt {what}")]
    Corrupt { what: &'static str },
    #[error("storage: the write task was cancelled")]
    Cancelled,
    #[error(
        "storage: the data directory is in format {found}, newer than this build reads \
         (format {}); run the newer sessiongrid on it, or start this one on an empty directory",
        keys::FORMAT
    )]
    NewerFormat { found: u16 },
}

/// Where a partition's copy stands in its replicated history, recorded with its metadata. The
/// layer above gives the numbers their meaning; the store only keeps them with each write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// Written before positions were kept here.
    #[default]
    Unrecorded,
    /// The copy is incomplete (a snapshot was being installed).
    Incomplete,
    At {
        epoch: u64,
        primary: u64,
        version: u64,
    },
}

/// Per-partition bookkeeping, written in the same batch as every change to the partition: in
/// the partition's row, or in its committer's journal ([`crate::journal`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Number of keys on disk (expired but not yet swept keys included, as Redis counts them).
    pub keys: u64,
    /// Sequence number of the partition's last write; versions entries.
    pub seq: u64,
    /// Number of keys with a deadline (`INFO` keyspace `expires`).
    pub expiring: u64,
    /// Number of live sessions (not their tombstones).
    pub sessions: u64,
    /// The copy's replication position.
    pub position: Position,
    /// How many times the partition's metadata was written: of several copies (its row, the
    /// journal's), the one with the highest stamp is the newest.
    pub stamp: u64,
}

impl PartitionMeta {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("meta serialises")
    }

    /// Reads metadata, also as written before it was stamped (stamp 0), before positions were
    /// kept here, or before sessions were counted (there were none then).
    pub fn decode(bytes: &[u8]) -> Result<PartitionMeta, StoreError> {
        #[derive(Deserialize)]
        struct BeforeStamp {
            keys: u64,
            seq: u64,
            expiring: u64,
            sessions: u64,
            position: Position,
        }
        #[derive(Deserialize)]
        struct Before {
            keys: u64,
            seq: u64,
            expiring: u64,
        }
        #[derive(Deserialize)]
        struct BeforePosition {
            keys: u64,
            seq: u64,
            expiring: u64,
            sessions: u64,
        }
        postcard::from_bytes(bytes)
            .or_else(|_| {
                postcard::from_bytes::<BeforeStamp>(bytes).map(|b| PartitionMeta {
                    keys: b.keys,
                    seq: b.seq,
                    expiring: b.expiring,
                    sessions: b.sessions,
                    position: b.position,
                    stamp: 0,
                })
            })
            .or_else(|_| {
                postcard::from_bytes::<BeforePosition>(bytes).map(|b| PartitionMeta {
                    keys: b.keys,
                    seq: b.seq,
                    expiring: b.expiring,
                    sessions: b.sessions,
                    position: Position::Unrecorded,
                    stamp: 0,
                })
            })
            .or_else(|_| {
                postcard::from_bytes::<Before>(bytes).map(|b| PartitionMeta {
                    keys: b.keys,
                    seq: b.seq,
                    expiring: b.expiring,
                    sessions: 0,
                    position: Position::Unrecorded,
                    stamp: 0,
                })
            })
            .map_err(|_| StoreError::Corrupt { what: "partition metadata" })
    }
}

pub(crate) fn decode_entry(row: &[u8]) -> Result<Entry, StoreError> {
    Entry::decode(row).map_err(|_| StoreError::Corrupt { what: "entry" })
}

/// Bytes of RocksDB block cache; entries have their own budget in the partitions.
const BLOCK_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Size of one memtable; at most two per column family are alive.
const WRITE_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// What [`Store::due_expiries`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Due {
    /// The rows due, as (slot, user key), oldest first.
    pub rows: Vec<(u64, Vec<u8>)>,
    /// No other row of the partition is filed under an earlier slot: the slot of its first
    /// row after them (due too if the limit cut them short), or, with none within
    /// [`DUE_LOOK_AHEAD_MS`] of the time asked about, the end of that look-ahead.
    pub none_before: u64,
}

/// How far past the time asked about [`Store::due_expiries`] looks for the next row: rows
/// deleted there (a session touched every second leaves one per touch until compaction) are
/// walked past, so the walk is kept short.
pub const DUE_LOOK_AHEAD_MS: u64 = 60_000;

/// Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    durability: Durability,
    partitions: u16,
    read_seconds: metrics::Histogram,
    write_seconds: metrics::Histogram,
    write_errors: metrics::Counter,
    health: WriteHealth,
    /// The id of the next [`MetaJournal`].
    journals: AtomicU32,
}

impl Store {
    /// Opens (or creates) the database in `dir`. The partition count is fixed by the first open:
    /// a later `partitions` that differs is ignored and the stored one is used (see
    /// [`Store::partitions`]).
    pub fn open(dir: &Path, partitions: u16, durability: Durability) -> Result<Store, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_write_buffer_size(WRITE_BUFFER_BYTES);
        opts.set_max_write_buffer_number(2);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        // Writers that wait for the write group block instead of spinning on sched_yield: with
        // a core per worker thread, spinning only takes the core from the thread it waits for.
        opts.set_enable_write_thread_adaptive_yield(false);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&Cache::new_lru_cache(BLOCK_CACHE_BYTES));
        table.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&table);
        // The metadata journal's slots and the partition rows are rewritten over and over:
        // updated in place in the memtable, each stays one entry there instead of one per
        // write, which every later insert would search past. (In-place updates require
        // memtable writes from one writer at a time.)
        opts.set_allow_concurrent_memtable_write(false);
        let mut meta_opts = opts.clone();
        meta_opts.set_inplace_update_support(true);
        // Most reads of entries and fields that reach RocksDB are of rows the memtable does not
        // hold (written before its last flush): a bloom filter of its keys answers those
        // without searching its skiplist (cache misses all the way down).
        opts.set_memtable_prefix_bloom_ratio(0.05);
        opts.set_memtable_whole_key_filtering(true);
        let cfs = [
            ColumnFamilyDescriptor::new(keys::CF_ENTRIES, opts.clone()),
            ColumnFamilyDescriptor::new(keys::CF_EXPIRY, opts.clone()),
            ColumnFamilyDescriptor::new(keys::CF_META, meta_opts),
            ColumnFamilyDescriptor::new(keys::CF_FIELDS, opts.clone()),
        ];
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        let meta = db.cf_handle(keys::CF_META).expect("meta column family exists");
        let partitions = match db.get_cf(meta, keys::META_PARTITIONS)? {
            Some(v) => {
                let bytes: [u8; 2] = v
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt { what: "partition count" })?;
                u16::from_be_bytes(bytes)
            }
            None => {
                let mut sync = WriteOptions::default();
                sync.set_sync(true);
                db.put_cf_opt(meta, keys::META_PARTITIONS, partitions.to_be_bytes(), &sync)?;
                partitions
            }
        };
        if partitions == 0 {
            return Err(StoreError::Corrupt { what: "partition count" });
        }
        crate::format::upgrade(&db)?;
        crate::journal::fold(&db, db.cf_handle(keys::CF_META).expect("meta column family exists"))?;
        let inner = Inner {
            db,
            durability,
            partitions,
            read_seconds: metrics::histogram!("sessiongrid_store_read_seconds"),
            write_seconds: metrics::histogram!("sessiongrid_store_write_seconds"),
            write_errors: metrics::counter!("sessiongrid_store_write_errors_total"),
            health: WriteHealth::new(),
            journals: AtomicU32::new(0),
        };
        Ok(Store { inner: Arc::new(inner) })
    }

    /// The partition count this data directory was created with.
    pub fn partitions(&self) -> u16 {
        self.inner.partitions
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.inner.db.cf_handle(name).expect("column families are created at open")
    }

    pub(crate) fn entries(&self) -> &ColumnFamily {
        self.cf(keys::CF_ENTRIES)
    }

    pub(crate) fn expiry(&self) -> &ColumnFamily {
        self.cf(keys::CF_EXPIRY)
    }

    #[cfg(test)]
    pub(crate) fn db(&self) -> &DB {
        &self.inner.db
    }

    #[cfg(test)]
    pub(crate) fn get_raw_meta(&self, row: &[u8]) -> Option<Vec<u8>> {
        self.inner.db.get_cf(self.meta(), row).unwrap()
    }

    pub(crate) fn meta(&self) -> &ColumnFamily {
        self.cf(keys::CF_META)
    }

    pub(crate) fn fields(&self) -> &ColumnFamily {
        self.cf(keys::CF_FIELDS)
    }

    /// Partition `p`'s metadata as of its last write on disk.
    pub fn partition_meta(&self, p: PartitionId) -> Result<PartitionMeta, StoreError> {
        crate::journal::newest(&self.inner.db, self.meta(), p)
    }

    /// Reads one entry from disk, a hash's or session's fields included.
    pub fn get(&self, p: PartitionId, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        let started = Instant::now();
        let row = self.inner.db.get_pinned_cf(self.entries(), keys::entry_key(p, key))?;
        let entry = match row {
            None => None,
            Some(v) => {
                let mut entry = decode_entry(&v)?;
                self.load_fields(p, key, &mut entry)?;
                Some(entry)
            }
        };
        self.inner.read_seconds.record(started.elapsed());
        Ok(entry)
    }

    /// Reads what an operation on some fields of a hash, set or sorted set needs ([`Entry::view`]): the header,
    /// those fields and, if asked, the first other field if there is one. Any other value is
    /// read whole.
    pub fn get_fields(
        &self,
        p: PartitionId,
        key: &[u8],
        needs: &FieldNeeds,
    ) -> Result<Option<Entry>, StoreError> {
        let started = Instant::now();
        let Some(header) = self.get_header(p, key)? else { return Ok(None) };
        let entry = self.fill_fields(p, key, header, needs, &HashMap::new())?;
        self.inner.read_seconds.record(started.elapsed());
        Ok(Some(entry))
    }

    /// Reads what [`Store::get_fields`] does of `key`, whose newest header is `header` and
    /// whose rows in `written` (`None`: removed) are newer than the disk's: those are taken in
    /// place of the disk's. A value not read in part is read whole (`written` must then be
    /// empty).
    pub fn get_fields_over(
        &self,
        p: PartitionId,
        key: &[u8],
        header: Entry,
        needs: &FieldNeeds,
        written: &HashMap<Bytes, Option<Bytes>>,
    ) -> Result<Entry, StoreError> {
        let started = Instant::now();
        let entry = self.fill_fields(p, key, header, needs, written)?;
        self.inner.read_seconds.record(started.elapsed());
        Ok(entry)
    }

    fn fill_fields(
        &self,
        p: PartitionId,
        key: &[u8],
        mut entry: Entry,
        needs: &FieldNeeds,
        written: &HashMap<Bytes, Option<Bytes>>,
    ) -> Result<Entry, StoreError> {
        if !entry.value.is_read_in_part() {
            debug_assert!(written.is_empty(), "rows over a value read whole");
            self.load_fields(p, key, &mut entry)?;
            return Ok(entry);
        }
        let names = &needs.names;
        for name in names {
            match written.get(name) {
                Some(row) => {
                    entry.value.set_field_row(name, row.as_deref());
                }
                None => {
                    let row_key = keys::field_key(p, key, name);
                    if let Some(row) = self.inner.db.get_pinned_cf(self.fields(), row_key)? {
                        entry.value.set_field_row(name, Some(&row));
                    }
                }
            }
        }
        if !needs.others {
            return Ok(entry);
        }
        let other = |name: &Bytes| !names.contains(name);
        if let Some((name, Some(row))) = written.iter().find(|(n, r)| r.is_some() && other(n)) {
            entry.value.set_field_row(name, Some(row));
            return Ok(entry);
        }
        // Each row passed over is a named field or one removed since.
        for row in self.field_rows(p, key).take(names.len() + written.len() + 1) {
            let (name, v) = row?;
            if other(&name) && !written.contains_key(&name) {
                entry.value.set_field_row(&name, Some(&v));
                break;
            }
        }
        Ok(entry)
    }

    /// Reads a key's header row alone: a hash or session without its fields.
    pub fn get_header(&self, p: PartitionId, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        let row = self.inner.db.get_pinned_cf(self.entries(), keys::entry_key(p, key))?;
        row.map(|v| decode_entry(&v)).transpose()
    }

    /// Fills a hash or session read from its header row with its field rows.
    fn load_fields(&self, p: PartitionId, key: &[u8], entry: &mut Entry) -> Result<(), StoreError> {
        if !entry.value.has_fields() {
            return Ok(());
        }
        for row in self.field_rows(p, key) {
            let (name, v) = row?;
            if !entry.value.set_field_row(&name, Some(&v)) {
                return Err(StoreError::Corrupt { what: "field" });
            }
        }
        Ok(())
    }

    /// The field rows of `key` in field order, as (field name, row).
    fn field_rows(
        &self,
        p: PartitionId,
        key: &[u8],
    ) -> impl Iterator<Item = Result<(Bytes, Box<[u8]>), StoreError>> + '_ {
        let prefix = keys::fields_prefix(p, key);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::fields_end(p, key));
        let mode = IteratorMode::From(&prefix, Direction::Forward);
        let name_at = prefix.len();
        self.inner.db.iterator_cf_opt(self.fields(), ro, mode).map(move |row| {
            let (k, v) = row?;
            Ok((Bytes::copy_from_slice(&k[name_at..]), v))
        })
    }

    /// The `entries` row of a key as it is on disk.
    #[cfg(test)]
    pub(crate) fn inner_get_raw(&self, p: PartitionId, key: &[u8]) -> Vec<u8> {
        self.inner.db.get_cf(self.entries(), keys::entry_key(p, key)).unwrap().unwrap()
    }

    pub fn batch(&self, p: PartitionId) -> Batch {
        Batch::new(p)
    }

    /// A new metadata journal, for one committer ([`Store::commit_journaled`]).
    pub fn journal(&self) -> MetaJournal {
        MetaJournal::new(self.inner.journals.fetch_add(1, Ordering::Relaxed))
    }

    /// Writes `batch` atomically on the calling thread, as durably as configured: in the
    /// write-ahead log (survives kill -9), or also fsynced in `power` mode. The partitions'
    /// metadata it carries is written to their rows.
    pub fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut wb = WriteBatch::default();
        for (p, meta) in batch.write_into(&self.inner.db, &mut wb) {
            wb.put_cf(self.meta(), keys::meta_key(p), meta.encode());
        }
        self.write(wb)
    }

    /// Writes `batch` as [`Store::commit`] does, its partitions' metadata recorded in
    /// `journal`. Partitions' writes come here gathered by their engine thread's committer,
    /// many batches as one.
    pub fn commit_journaled(
        &self,
        batch: Batch,
        journal: &mut MetaJournal,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut wb = WriteBatch::default();
        let metas = batch.write_into(&self.inner.db, &mut wb);
        let checkpoint = journal.record(self.meta(), &metas, &mut wb);
        self.write(wb)?;
        journal.landed(metas, checkpoint);
        Ok(())
    }

    fn write(&self, wb: WriteBatch) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut opts = WriteOptions::default();
        opts.set_sync(self.inner.durability == Durability::Power);
        let result = self.inner.db.write_opt(wb, &opts).map_err(StoreError::from);
        self.inner.write_seconds.record(started.elapsed());
        match &result {
            Ok(()) => self.inner.health.succeeded(),
            Err(e) => {
                self.inner.write_errors.increment(1);
                self.inner.health.failed(e);
            }
        }
        result
    }

    /// The error of the write that failed last, while the disk refuses writes (it is full or
    /// failing): the layers above refuse writes with it up front and keep serving reads. At
    /// most once a second, a call first tries a small write; once one succeeds, writes are
    /// taken again.
    pub fn refuses_writes(&self) -> Option<StoreError> {
        self.inner.health.refusal(|| {
            let mut opts = WriteOptions::default();
            opts.set_sync(self.inner.durability == Durability::Power);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let row = keys::extra_key(b"disk-probe");
            Ok(self.inner.db.put_cf_opt(self.meta(), row, now.to_be_bytes(), &opts)?)
        })
    }

    /// A named row of an upper layer (see [`Batch::put_extra`]).
    pub fn get_extra(&self, name: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.db.get_cf(self.meta(), keys::extra_key(name))?)
    }

    /// The session events rows of partition `p` ([`crate::Batch::keep_events`]), as
    /// (version, bytes), oldest first.
    pub fn kept_events(&self, p: PartitionId) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let prefix = keys::events_prefix(p);
        let iter =
            self.inner.db.iterator_cf(self.meta(), IteratorMode::From(&prefix, Direction::Forward));
        let mut rows = Vec::new();
        for row in iter {
            let (k, v) = row?;
            let Some(version) = k.strip_prefix(prefix.as_slice()) else { break };
            let version: [u8; 8] =
                version.try_into().map_err(|_| StoreError::Corrupt { what: "events row" })?;
            rows.push((u64::from_be_bytes(version), v.into_vec()));
        }
        Ok(rows)
    }

    /// Up to `limit` (user key, entry) pairs of partition `p` with keys after `after` (from the
    /// first if `None`), in key order.
    pub fn scan(
        &self,
        p: PartitionId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::partition_end(p));
        ro.fill_cache(false);
        let start = match after {
            // The smallest key greater than `after`.
            Some(after) => keys::entry_key(p, &[after, &[0u8][..]].concat()),
            None => keys::partition_start(p),
        };
        let iter = self.inner.db.iterator_cf_opt(
            self.entries(),
            ro,
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut rows = Vec::new();
        for row in iter.take(limit) {
            let (k, v) = row?;
            let mut entry = decode_entry(&v)?;
            let key = keys::user_key(&k).to_vec();
            self.load_fields(p, &key, &mut entry)?;
            rows.push((key, entry));
        }
        Ok(rows)
    }

    /// Up to `limit` expiry-index rows of partition `p` whose slot ([`keys::expiry_slot`]) is
    /// at or before `now_ms`, oldest first, as (slot, user key): their keys' deadlines have
    /// passed too. With them, a slot before which the partition has no other row.
    pub fn due_expiries(
        &self,
        p: PartitionId,
        now_ms: u64,
        limit: usize,
    ) -> Result<Due, StoreError> {
        let horizon = now_ms.saturating_add(DUE_LOOK_AHEAD_MS);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::expiry_key(p, horizon, b""));
        let start = keys::partition_start(p);
        let iter = self.inner.db.iterator_cf_opt(
            self.expiry(),
            ro,
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut due = Due { rows: Vec::new(), none_before: horizon };
        for row in iter {
            let (k, _) = row?;
            let (slot, key) = keys::split_expiry_key(&k)
                .ok_or(StoreError::Corrupt { what: "expiry index row" })?;
            if slot > now_ms || due.rows.len() == limit {
                due.none_before = slot;
                break;
            }
            due.rows.push((slot, key.to_vec()));
        }
        Ok(due)
    }

    /// Flushes the write-ahead log to disk (`fsync`); used at shutdown.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.inner.db.flush_wal(true)?;
        Ok(())
    }

    /// A RocksDB integer property (e.g. `rocksdb.estimate-num-keys`) of the entries family.
    pub fn property(&self, name: &str) -> Option<u64> {
        self.inner.db.property_int_value_cf(self.entries(), name).ok().flatten()
    }

    /// A RocksDB integer property summed over every column family (e.g.
    /// `rocksdb.cur-size-all-mem-tables`: each family has memtables of its own).
    pub fn property_of_all(&self, name: &str) -> Option<u64> {
        let families = [self.entries(), self.expiry(), self.meta(), self.fields()];
        let values = families.map(|cf| self.inner.db.property_int_value_cf(cf, name));
        values.into_iter().map(|v| v.ok().flatten()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sessiongrid_model::Value;

    fn entry(v: &'static str, expire: Option<u64>) -> Entry {
        Entry {
            value: Value::Str(Bytes::from_static(v.as_bytes())),
            expire_at_ms: expire,
            version: 1,
        }
    }

    #[test]
    fn metadata_of_every_earlier_layout_still_reads() {
        #[derive(Serialize)]
        struct BeforePosition(u64, u64, u64, u64);
        #[derive(Serialize)]
        struct BeforeSessions(u64, u64, u64);
        let unrecorded = |b: Vec<u8>| PartitionMeta::decode(&b).unwrap();
        let old = unrecorded(postcard::to_stdvec(&BeforePosition(3, 70, 1, 2)).unwrap());
        assert_eq!(
            old,
            PartitionMeta { keys: 3, seq: 70, expiring: 1, sessions: 2, ..Default::default() }
        );
        assert_eq!(old.position, Position::Unrecorded);
        let older = unrecorded(postcard::to_stdvec(&BeforeSessions(3, 70, 1)).unwrap());
        assert_eq!(older, PartitionMeta { keys: 3, seq: 70, expiring: 1, ..Default::default() });
        let now = PartitionMeta {
            keys: 3,
            seq: 70,
            position: Position::At { epoch: 5, primary: 9, version: 70 },
            ..Default::default()
        };
        assert_eq!(PartitionMeta::decode(&now.encode()).unwrap(), now);
        let incomplete = PartitionMeta { position: Position::Incomplete, ..now };
        assert_eq!(PartitionMeta::decode(&incomplete.encode()).unwrap(), incomplete);
    }

    #[tokio::test]
    async fn writes_survive_reopen_with_their_index_and_meta() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 8, Durability::Process).unwrap();
            let mut b = store.batch(3);
            b.put(b"k", &entry("v", Some(50)), None, false);
            b.set_meta(&PartitionMeta { keys: 1, seq: 7, expiring: 1, ..PartitionMeta::default() });
            store.commit(b).unwrap();
        }
        let store = Store::open(dir.path(), 99, Durability::Power).unwrap();
        assert_eq!(store.partitions(), 8, "partition count is fixed by the first open");
        assert_eq!(store.get(3, b"k").unwrap(), Some(entry("v", Some(50))));
        assert_eq!(store.get(2, b"k").unwrap(), None);
        assert_eq!(
            store.partition_meta(3).unwrap(),
            PartitionMeta { keys: 1, seq: 7, expiring: 1, ..PartitionMeta::default() }
        );
        assert_eq!(store.due_expiries(3, 999, 10).unwrap().rows, vec![], "due at its slot's end");
        assert_eq!(store.due_expiries(3, 1000, 10).unwrap().rows, vec![(1000, b"k".to_vec())]);
    }

    #[tokio::test]
    async fn changing_a_deadline_moves_its_index_row_to_another_slot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let mut b = store.batch(0);
        b.put(b"a", &entry("1", Some(10)), None, false);
        store.commit(b).unwrap();
        let mut b = store.batch(0);
        b.put(b"a", &entry("1", Some(20)), Some(10), false);
        store.commit(b).unwrap();
        assert_eq!(store.due_expiries(0, 1000, 10).unwrap().rows, vec![(1000, b"a".to_vec())]);
        let mut b = store.batch(0);
        b.put(b"a", &entry("1", Some(1500)), Some(20), false);
        store.commit(b).unwrap();
        let not_yet = Due { rows: vec![], none_before: 2000 };
        assert_eq!(store.due_expiries(0, 1999, 10).unwrap(), not_yet, "the next row's slot told");
        let due = Due { rows: vec![(2000, b"a".to_vec())], none_before: 2000 + DUE_LOOK_AHEAD_MS };
        assert_eq!(store.due_expiries(0, 2000, 10).unwrap(), due, "none within the look-ahead");
        let mut b = store.batch(0);
        b.delete(b"a", Some(1500), false);
        store.commit(b).unwrap();
        assert_eq!(store.due_expiries(0, 5000, 10).unwrap().rows, vec![]);
    }

    #[tokio::test]
    async fn deleting_a_partition_removes_only_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        for p in 0..4 {
            let mut b = store.batch(p);
            b.put(b"k", &entry("v", Some(5)), None, false);
            store.commit(b).unwrap();
        }
        let mut b = store.batch(1);
        b.delete_partition();
        store.commit(b).unwrap();
        let mut seen = Vec::new();
        for p in 0..4 {
            for (k, _) in store.scan(p, None, 10).unwrap() {
                seen.push((p, k));
            }
        }
        assert_eq!(seen, vec![(0, b"k".to_vec()), (2, b"k".to_vec()), (3, b"k".to_vec())]);
        let none = Due { rows: vec![], none_before: 1000 + DUE_LOOK_AHEAD_MS };
        assert_eq!(store.due_expiries(1, 1000, 10).unwrap(), none);
    }

    #[tokio::test]
    async fn a_property_of_every_family_is_their_sum() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let mut b = store.batch(1);
        b.put(b"k", &entry("v", Some(5)), None, false);
        store.commit(b).unwrap();
        let name = "rocksdb.num-entries-active-mem-table";
        assert_eq!(store.property(name), Some(1), "the entry");
        // Its expiry row, and the partition count and format rows written at open.
        assert_eq!(store.property_of_all(name), Some(4));
        assert_eq!(store.property_of_all("rocksdb.no-such-property"), None);
    }

    #[tokio::test]
    async fn due_rows_past_the_limit_are_told_as_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let mut b = store.batch(2);
        for (k, at) in [("a", 10), ("b", 1500), ("c", 2500), ("d", 99_500)] {
            b.put(k.as_bytes(), &entry("v", Some(at)), None, false);
        }
        store.commit(b).unwrap();
        let due = store.due_expiries(2, 5000, 2).unwrap();
        assert_eq!(due.rows, vec![(1000, b"a".to_vec()), (2000, b"b".to_vec())]);
        assert_eq!(due.none_before, 3000, "due too, past the limit");
        let rest = store.due_expiries(2, 3000, 10).unwrap();
        assert_eq!((rest.rows.len(), rest.none_before), (3, 3000 + DUE_LOOK_AHEAD_MS), "d beyond");
        let to = |now| store.due_expiries(2, now, 10).unwrap().none_before;
        assert_eq!(to(100_000 - DUE_LOOK_AHEAD_MS), 100_000, "d at the look-ahead's end");
        assert_eq!(to(100_001 - DUE_LOOK_AHEAD_MS), 100_000, "d within it");
        let other = store.due_expiries(3, 5000, 2).unwrap();
        assert_eq!(other.none_before, 5000 + DUE_LOOK_AHEAD_MS, "not another's");
    }

    fn hash(fields: &[(&str, &str)], version: u64) -> Entry {
        let h = fields
            .iter()
            .map(|(k, v)| {
                (Bytes::copy_from_slice(k.as_bytes()), Bytes::copy_from_slice(v.as_bytes()))
            })
            .collect();
        Entry { value: Value::Hash(h), expire_at_ms: None, version }
    }

    #[tokio::test]
    async fn a_hash_is_a_header_and_a_row_per_field_and_a_patch_writes_only_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let mut b = store.batch(0);
        b.put(b"h", &hash(&[("a", "1"), ("b", "2")], 1), None, false);
        b.put(b"h\x00", &hash(&[("z", "9")], 1), None, false);
        store.commit(b).unwrap();
        let mut b = store.batch(0);
        let rows = [
            (Bytes::from_static(b"a"), None),
            (Bytes::from_static(b"c"), Some(Bytes::from_static(b"3"))),
        ];
        b.patch(b"h", &hash(&[], 2), &rows, None);
        store.commit(b).unwrap();
        let mut want = hash(&[("b", "2"), ("c", "3")], 2);
        assert_eq!(store.get(0, b"h").unwrap(), Some(want.clone()));
        // A whole put replaces every field; a string over a hash leaves no field behind.
        let mut b = store.batch(0);
        b.put(b"h", &hash(&[("d", "4")], 3), None, true);
        store.commit(b).unwrap();
        want = hash(&[("d", "4")], 3);
        assert_eq!(store.get(0, b"h").unwrap(), Some(want));
        let mut b = store.batch(0);
        b.put(b"h", &entry("s", None), None, true);
        b.put(b"h", &hash(&[], 4), None, false);
        store.commit(b).unwrap();
        assert_eq!(store.get(0, b"h").unwrap(), Some(hash(&[], 4)));
        assert_eq!(store.get(0, b"h\x00").unwrap(), Some(hash(&[("z", "9")], 1)), "untouched");
        let keys: Vec<_> =
            store.scan(0, None, 10).unwrap().into_iter().map(|(k, e)| (k, e.value)).collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1], (b"h\x00".to_vec(), hash(&[("z", "9")], 1).value));
    }

    #[tokio::test]
    async fn deleting_a_range_of_keys_deletes_their_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let mut b = store.batch(2);
        for k in ["a", "b", "c", "d"] {
            b.put(k.as_bytes(), &hash(&[("f", k)], 1), None, false);
        }
        store.commit(b).unwrap();
        let mut b = store.batch(2);
        b.delete_entries(Some(b"a"), Some(b"c"));
        store.commit(b).unwrap();
        let left: Vec<_> = store.scan(2, None, 10).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(left, vec![b"a".to_vec(), b"d".to_vec()]);
        // The fields of the deleted keys went with them: a new empty hash there has none.
        let mut b = store.batch(2);
        b.put(b"b", &hash(&[], 2), None, false);
        b.delete(b"d", None, true);
        store.commit(b).unwrap();
        assert_eq!(store.get(2, b"b").unwrap(), Some(hash(&[], 2)));
        assert_eq!(store.get(2, b"a").unwrap(), Some(hash(&[("f", "a")], 1)));
        let mut b = store.batch(2);
        b.put(b"d", &hash(&[], 3), None, false);
        store.commit(b).unwrap();
        assert_eq!(
            store.get(2, b"d").unwrap(),
            Some(hash(&[], 3)),
            "a deleted hash leaves no field"
        );
    }

    #[tokio::test]
    async fn an_operation_on_some_fields_reads_those_and_one_more() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let mut b = store.batch(1);
        b.put(b"h", &hash(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")], 5), None, false);
        b.put(b"s", &entry("v", None), None, false);
        store.commit(b).unwrap();
        let names = |n: &[&str]| FieldNeeds {
            names: n.iter().map(|f| Bytes::copy_from_slice(f.as_bytes())).collect(),
            others: true,
        };
        let view = store.get_fields(1, b"h", &names(&["c", "zz"])).unwrap().unwrap();
        assert_eq!(view, hash(&[("a", "1"), ("c", "3")], 5), "c, and a to show the hash has more");
        let view = store.get_fields(1, b"h", &names(&["a", "b", "c", "d"])).unwrap().unwrap();
        assert_eq!(
            view,
            hash(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")], 5),
            "nothing else"
        );
        assert_eq!(store.get_fields(1, b"s", &names(&["a"])).unwrap(), Some(entry("v", None)));
        assert_eq!(store.get_fields(1, b"nope", &names(&["a"])).unwrap(), None);
        let full = store.get(1, b"h").unwrap().unwrap();
        assert_eq!(full.view(&names(&["c", "zz"])), hash(&[("c", "3"), ("a", "1")], 5));
        let only = FieldNeeds { others: false, ..names(&["c", "zz"]) };
        assert_eq!(store.get_fields(1, b"h", &only).unwrap().unwrap(), hash(&[("c", "3")], 5));
        assert_eq!(full.view(&only), hash(&[("c", "3")], 5));
    }
}
