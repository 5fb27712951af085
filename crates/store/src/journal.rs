//! Partition metadata without a row rewritten on every write.
//!
//! Every write of a partition changes its metadata (key counts, replication position), which
//! must land atomically with the write. Rewriting each touched partition's row in every commit
//! group cost a row per partition per group. Instead a group records the metadata of every
//! partition it touched in one journal row of its committer's [`MetaJournal`], and every
//! [`RING_ROWS`] journal rows a group is a checkpoint: it writes the partition rows of all that
//! the journal recorded since the last one, and the journal starts over in the same slots.
//!
//! Which copy of a partition's metadata is the newest is told by its
//! [`stamp`](PartitionMeta::stamp), which each write of the partition increments: whichever row
//! holds the highest stamp wins. So the journals of several engine threads, restarts, and rows
//! left over from before a checkpoint never need ordering against each other. At open the
//! store folds the journal into the partition rows and deletes it ([`fold`]).

use hashbrown::HashMap;
use rocksdb::{ColumnFamily, Direction, IteratorMode, WriteBatch, WriteOptions, DB};
use sessiongrid_model::PartitionId;
use tracing::info;

use crate::keys;
use crate::store::{PartitionMeta, StoreError};

/// Journal rows written between two checkpoints. A checkpoint writes at most one row per
/// partition the journal recorded since the one before; a partition restarted in between reads
/// at most this many rows to find its metadata.
pub const RING_ROWS: u16 = 128;

/// The metadata one commit group recorded: (partition, metadata) pairs.
pub(crate) type Metas = Vec<(PartitionId, PartitionMeta)>;

/// One committer's journal: its groups are written one at a time, in order.
pub struct MetaJournal {
    id: u32,
    /// Journal rows written since the last checkpoint (the next one's slot).
    rows: u16,
    /// The newest metadata of each partition in those rows.
    since_checkpoint: HashMap<PartitionId, PartitionMeta>,
    checkpoints: metrics::Counter,
}

impl MetaJournal {
    pub(crate) fn new(id: u32) -> Self {
        MetaJournal {
            id,
            rows: 0,
            since_checkpoint: HashMap::new(),
            checkpoints: metrics::counter!("sessiongrid_store_meta_checkpoints_total"),
        }
    }

    /// Adds the group's `metas` to `wb`: as a journal row, or, at a checkpoint, as partition
    /// rows together with every partition's recorded since the last one. Returns whether
    /// this group is a checkpoint; [`MetaJournal::landed`] must follow once `wb` is on disk.
    pub(crate) fn record(
        &self,
        meta_cf: &ColumnFamily,
        metas: &Metas,
        wb: &mut WriteBatch,
    ) -> bool {
        if metas.is_empty() {
            return false;
        }
        if self.rows < RING_ROWS {
            wb.put_cf(meta_cf, keys::journal_key(self.id, self.rows), encode(metas));
            return false;
        }
        // The group's own come last: of two writes of one row in a batch, the later stands.
        for (p, meta) in self.since_checkpoint.iter().chain(metas.iter().map(|(p, m)| (p, m))) {
            wb.put_cf(meta_cf, keys::meta_key(*p), meta.encode());
        }
        true
    }

    /// The write [`MetaJournal::record`] added `metas` to is on disk.
    pub(crate) fn landed(&mut self, metas: Metas, checkpoint: bool) {
        if checkpoint {
            self.since_checkpoint.clear();
            self.rows = 0;
            self.checkpoints.increment(1);
        } else if !metas.is_empty() {
            self.since_checkpoint.extend(metas);
            self.rows += 1;
        }
    }
}

fn encode(metas: &Metas) -> Vec<u8> {
    postcard::to_stdvec(metas).expect("metadata serialises")
}

fn decode(row: &[u8]) -> Result<Metas, StoreError> {
    postcard::from_bytes(row).map_err(|_| StoreError::Corrupt { what: "metadata journal row" })
}

/// A journal row: its key and the metadata it holds.
type Row = (Box<[u8]>, Metas);

/// Every journal row.
fn rows(db: &DB, meta_cf: &ColumnFamily) -> Result<Vec<Row>, StoreError> {
    let prefix = keys::JOURNAL_PREFIX;
    let mut rows = Vec::new();
    for row in db.iterator_cf(meta_cf, IteratorMode::From(prefix, Direction::Forward)) {
        let (k, v) = row?;
        if !k.starts_with(prefix) {
            break;
        }
        rows.push((k, decode(&v)?));
    }
    Ok(rows)
}

/// The newer of `a` and `b`.
fn newer(a: PartitionMeta, b: PartitionMeta) -> PartitionMeta {
    if b.stamp > a.stamp {
        b
    } else {
        a
    }
}

/// Partition `p`'s own row (the default if it has none), leaving the journal aside.
pub(crate) fn row(
    db: &DB,
    meta_cf: &ColumnFamily,
    p: PartitionId,
) -> Result<PartitionMeta, StoreError> {
    match db.get_cf(meta_cf, keys::meta_key(p))? {
        Some(bytes) => PartitionMeta::decode(&bytes),
        None => Ok(PartitionMeta::default()),
    }
}

/// The newest metadata of each partition found in `rows`.
fn newest_journaled(rows: &[Row]) -> HashMap<PartitionId, PartitionMeta> {
    let mut found: HashMap<PartitionId, PartitionMeta> = HashMap::new();
    for (p, meta) in rows.iter().flat_map(|(_, metas)| metas) {
        let newest = found.get(p).map_or(*meta, |seen| newer(*seen, *meta));
        found.insert(*p, newest);
    }
    found
}

/// Partition `p`'s newest metadata: its row, or a journal row holding a newer one.
pub(crate) fn newest(
    db: &DB,
    meta_cf: &ColumnFamily,
    p: PartitionId,
) -> Result<PartitionMeta, StoreError> {
    let row = row(db, meta_cf, p)?;
    let journaled = newest_journaled(&rows(db, meta_cf)?).remove(&p);
    Ok(journaled.map_or(row, |meta| newer(row, meta)))
}

/// Writes each partition's newest metadata found in the journal to its row and deletes the
/// journal, durably, before anything else reads the directory.
pub(crate) fn fold(db: &DB, meta_cf: &ColumnFamily) -> Result<(), StoreError> {
    let rows = rows(db, meta_cf)?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut wb = WriteBatch::default();
    let mut moved = 0;
    for (p, meta) in newest_journaled(&rows) {
        if meta.stamp > row(db, meta_cf, p)?.stamp {
            wb.put_cf(meta_cf, keys::meta_key(p), meta.encode());
            moved += 1;
        }
    }
    for (k, _) in &rows {
        wb.delete_cf(meta_cf, k);
    }
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    db.write_opt(wb, &sync)?;
    info!(journal_rows = rows.len(), partitions = moved, "folded the metadata journal");
    Ok(())
}

#[cfg(test)]
mod tests {
    use sessiongrid_model::config::Durability;

    use super::*;
    use crate::Store;

    fn meta(keys: u64, stamp: u64) -> PartitionMeta {
        PartitionMeta { keys, stamp, ..PartitionMeta::default() }
    }

    /// Commits, through `journal`, a batch of partition `p` carrying `meta`.
    fn commit(store: &Store, journal: &mut MetaJournal, p: PartitionId, meta: PartitionMeta) {
        let mut batch = store.batch(p);
        batch.put_extra(b"row", &meta.keys.to_be_bytes());
        batch.set_meta(&meta);
        store.commit_journaled(batch, journal).unwrap();
    }

    /// What partition `p`'s own row holds, leaving the journal aside.
    fn own_row(store: &Store, p: PartitionId) -> PartitionMeta {
        row(store.db(), store.meta(), p).unwrap()
    }

    fn journal_rows(store: &Store) -> usize {
        rows(store.db(), store.meta()).unwrap().len()
    }

    #[test]
    fn the_newest_metadata_is_read_between_checkpoints_and_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let mut journal = store.journal();
        let mut newest = [PartitionMeta::default(); 3];
        let mut behind = 0;
        // Past two checkpoints, and stopping between two.
        for i in 1..=2 * (u64::from(RING_ROWS) + 1) + 7 {
            let p = (i % 3) as PartitionId;
            newest[p as usize] = meta(i, newest[p as usize].stamp + 1);
            commit(&store, &mut journal, p, newest[p as usize]);
            for q in 0..3 {
                assert_eq!(store.partition_meta(q).unwrap(), newest[q as usize], "after write {i}");
            }
            behind += usize::from(own_row(&store, p) != newest[p as usize]);
            assert!(journal_rows(&store) <= usize::from(RING_ROWS));
        }
        assert!(behind > 2 * usize::from(RING_ROWS), "the rows were written on every write");
        assert!(
            (0..3).any(|p| own_row(&store, p) != newest[p as usize]),
            "stopped at a checkpoint"
        );
        drop(store);

        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        assert_eq!(journal_rows(&store), 0, "the journal is folded into the rows at open");
        for p in 0..3 {
            assert_eq!(own_row(&store, p), newest[p as usize]);
            assert_eq!(store.partition_meta(p).unwrap(), newest[p as usize]);
        }
    }

    #[test]
    fn the_highest_stamp_wins_whichever_row_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let (mut a, mut b) = (store.journal(), store.journal());
        commit(&store, &mut a, 1, meta(5, 5));
        // A partition moved to another thread and written there (after a restart, say).
        commit(&store, &mut b, 1, meta(6, 6));
        commit(&store, &mut a, 2, meta(1, 1));
        let mut batch = store.batch(2);
        batch.set_meta(&meta(3, 3));
        store.commit(batch).unwrap();
        // A journal row left from before a checkpoint holds an older copy.
        commit(&store, &mut a, 3, meta(9, 9));
        commit(&store, &mut b, 3, meta(8, 8));
        let expect = |store: &Store| {
            assert_eq!(store.partition_meta(1).unwrap(), meta(6, 6));
            assert_eq!(store.partition_meta(2).unwrap(), meta(3, 3));
            assert_eq!(store.partition_meta(3).unwrap(), meta(9, 9));
        };
        expect(&store);
        drop(store);
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        expect(&store);
    }

    #[test]
    fn metadata_written_before_stamps_is_older_than_any_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        #[derive(serde::Serialize)]
        struct BeforeStamp(u64, u64, u64, u64, crate::Position);
        let old =
            postcard::to_stdvec(&BeforeStamp(7, 7, 0, 0, crate::Position::Incomplete)).unwrap();
        store.db().put_cf(store.meta(), keys::meta_key(1), old).unwrap();
        assert_eq!(store.partition_meta(1).unwrap().keys, 7);
        let mut journal = store.journal();
        commit(&store, &mut journal, 1, meta(8, 1));
        assert_eq!(store.partition_meta(1).unwrap(), meta(8, 1));
    }
}
