//! The data directory's layout version, and the upgrade of directories written in an older one.
//!
//! Format 1 (no `format` row) kept a hash's fields and a session's attributes inside its entry
//! row. Format 2 keeps them in rows of their own ([`keys::CF_FIELDS`]); opening a format-1
//! directory moves them there once, in batches, before anything else reads it. Format 3 adds
//! the metadata journal ([`crate::journal`]), which a format-2 build would not read: opening a
//! format-2 directory only records the new format. Format 4 files expiry rows under their
//! deadline's slot ([`keys::expiry_slot`]); opening an older directory moves every row filed
//! under its exact deadline to its slot. Format 5 adds the session's own version to every
//! session event; opening an older directory rewrites the events rows still kept, each event
//! with version 0 ("not known", which drops any cached copy). A directory of a newer format is
//! refused rather than misread.

use bytes::Bytes;
use rocksdb::{IteratorMode, WriteBatch, WriteOptions, DB};
use serde::Deserialize;
use sessiongrid_model::session::event::{EventKind, SessionEvent};
use tracing::info;

use crate::keys;
use crate::store::{decode_entry, StoreError};

/// Rows rewritten per batch while upgrading.
const UPGRADE_BATCH_ROWS: usize = 1024;

/// Brings the directory to [`keys::FORMAT`], or refuses one this build cannot read.
pub(crate) fn upgrade(db: &DB) -> Result<(), StoreError> {
    let cf = |name| db.cf_handle(name).expect("column families are created at open");
    let found = match db.get_cf(cf(keys::CF_META), keys::META_FORMAT)? {
        None => 1,
        Some(v) => {
            let bytes: [u8; 2] =
                v.as_slice().try_into().map_err(|_| StoreError::Corrupt { what: "format" })?;
            u16::from_be_bytes(bytes)
        }
    };
    if found > keys::FORMAT {
        return Err(StoreError::NewerFormat { found });
    }
    if found == keys::FORMAT {
        return Ok(());
    }
    let mut batch = WriteBatch::default();
    let moved = if found == 1 { move_fields_out(db, &mut batch)? } else { 0 };
    let reslotted = if found < 4 { file_expiry_rows_by_slot(db, &mut batch)? } else { 0 };
    let events_rows = if found < 5 { add_session_versions_to_events(db, &mut batch)? } else { 0 };
    batch.put_cf(cf(keys::CF_META), keys::META_FORMAT, keys::FORMAT.to_be_bytes());
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    db.write_opt(batch, &sync)?;
    if moved > 0 || reslotted > 0 || found > 1 {
        let to = keys::FORMAT;
        let (hashes_and_sessions, expiry_rows) = (moved, reslotted);
        info!(
            from = found,
            to, hashes_and_sessions, expiry_rows, events_rows, "upgraded the data directory"
        );
    }
    Ok(())
}

/// Moves every hash's and session's fields out of its entry row into rows of their own (format
/// 1 to 2); the last batch is left in `batch`.
fn move_fields_out(db: &DB, batch: &mut WriteBatch) -> Result<u64, StoreError> {
    let cf = |name| db.cf_handle(name).expect("column families are created at open");
    let (entries, fields) = (cf(keys::CF_ENTRIES), cf(keys::CF_FIELDS));
    rewrite_rows(db, keys::CF_ENTRIES, batch, |k, v, batch| {
        let entry = decode_entry(v)?;
        let rows = entry.value.field_rows();
        if rows.is_empty() {
            return Ok(false);
        }
        let (p, key) = keys::split_entry_key(k).ok_or(StoreError::Corrupt { what: "entry key" })?;
        batch.put_cf(entries, k, entry.header().encode());
        for (field, row) in rows {
            batch.put_cf(fields, keys::field_key(p, key, &field), row);
        }
        Ok(true)
    })
}

/// Moves every expiry row filed under its exact deadline to the deadline's slot (format 3 to
/// 4); the last batch is left in `batch`.
fn file_expiry_rows_by_slot(db: &DB, batch: &mut WriteBatch) -> Result<u64, StoreError> {
    let expiry = db.cf_handle(keys::CF_EXPIRY).expect("column families are created at open");
    rewrite_rows(db, keys::CF_EXPIRY, batch, |k, _, batch| {
        // Every family's rows but `meta`'s start with their partition.
        let (p, _) = keys::split_entry_key(k).ok_or(StoreError::Corrupt { what: "expiry row" })?;
        let (at, key) =
            keys::split_expiry_key(k).ok_or(StoreError::Corrupt { what: "expiry row" })?;
        let slot = keys::expiry_slot(at);
        if slot == at {
            return Ok(false);
        }
        batch.delete_cf(expiry, k);
        batch.put_cf(expiry, keys::expiry_key(p, slot, key), []);
        Ok(true)
    })
}

/// A session event as formats before 5 kept it: without the session's own version.
#[derive(Deserialize)]
struct EventOfFormat4 {
    kind: EventKind,
    id: Bytes,
    group: Bytes,
    principal: Option<Bytes>,
    moved_to: Option<Bytes>,
    at_ms: u64,
    node: u64,
    partition: u16,
    version: u64,
}

/// Rewrites every kept session events row with the session's version added, as 0 (format 4
/// to 5); the last batch is left in `batch`. A row that does not read as format 4 is left as
/// it is: the layer that owns events rows warns of it and skips it, as it always has.
fn add_session_versions_to_events(db: &DB, batch: &mut WriteBatch) -> Result<u64, StoreError> {
    let meta = db.cf_handle(keys::CF_META).expect("column families are created at open");
    rewrite_rows(db, keys::CF_META, batch, |k, v, batch| {
        if !keys::is_events_key(k) {
            return Ok(false);
        }
        let Ok(old) = postcard::from_bytes::<Vec<EventOfFormat4>>(v) else { return Ok(false) };
        let events: Vec<SessionEvent> = old
            .into_iter()
            .map(|e| SessionEvent {
                kind: e.kind,
                id: e.id,
                group: e.group,
                principal: e.principal,
                moved_to: e.moved_to,
                at_ms: e.at_ms,
                node: e.node,
                partition: e.partition,
                version: e.version,
                session_version: 0,
            })
            .collect();
        let row = postcard::to_stdvec(&events).expect("events encode");
        batch.put_cf(meta, k, row);
        Ok(true)
    })
}

/// Hands every row of family `cf` to `rewrite`, which adds what replaces it to the batch and
/// says whether it did. The batch is written every [`UPGRADE_BATCH_ROWS`] rows rewritten; the
/// last one is left in `batch`. Returns how many rows were rewritten.
fn rewrite_rows(
    db: &DB,
    cf: &str,
    batch: &mut WriteBatch,
    mut rewrite: impl FnMut(&[u8], &[u8], &mut WriteBatch) -> Result<bool, StoreError>,
) -> Result<u64, StoreError> {
    let family = db.cf_handle(cf).expect("column families are created at open");
    let (mut rewritten, mut in_batch) = (0u64, 0);
    for row in db.iterator_cf(family, IteratorMode::Start) {
        let (k, v) = row?;
        if !rewrite(&k, &v, batch)? {
            continue;
        }
        rewritten += 1;
        in_batch += 1;
        if in_batch == UPGRADE_BATCH_ROWS {
            db.write(std::mem::take(batch))?;
            in_batch = 0;
        }
    }
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use indexmap::IndexMap;
    use rocksdb::{ColumnFamilyDescriptor, Options};
    use sessiongrid_model::config::Durability;
    use sessiongrid_model::{Entry, Value};

    use super::*;
    use crate::Store;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// Writes rows as format 1 did: the partition count, whole entries, no format row.
    fn write_format_1(dir: &std::path::Path, rows: &[(u16, &str, Entry)]) {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = [keys::CF_ENTRIES, keys::CF_EXPIRY, keys::CF_META]
            .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs).unwrap();
        let meta = db.cf_handle(keys::CF_META).unwrap();
        db.put_cf(meta, keys::META_PARTITIONS, 4u16.to_be_bytes()).unwrap();
        let entries = db.cf_handle(keys::CF_ENTRIES).unwrap();
        let expiry = db.cf_handle(keys::CF_EXPIRY).unwrap();
        for (p, key, entry) in rows {
            db.put_cf(entries, keys::entry_key(*p, key.as_bytes()), entry.encode()).unwrap();
            if let Some(at) = entry.expire_at_ms {
                // Filed under the exact deadline, as formats before 4 did.
                db.put_cf(expiry, keys::expiry_key(*p, at, key.as_bytes()), []).unwrap();
            }
        }
    }

    /// A directory holding `entry` under `key` of partition 1, written by this build.
    fn written(dir: &std::path::Path, key: &[u8], entry: &Entry) {
        let store = Store::open(dir, 4, Durability::Process).unwrap();
        let mut batch = store.batch(1);
        batch.put(key, entry, None, false);
        store.commit(batch).unwrap();
    }

    /// The directory's database opened as it is, to rewrite it as an older format had it.
    fn raw(dir: &std::path::Path) -> DB {
        let cfs = [keys::CF_ENTRIES, keys::CF_EXPIRY, keys::CF_META, keys::CF_FIELDS];
        DB::open_cf(&Options::default(), dir, cfs).unwrap()
    }

    #[test]
    fn a_directory_written_with_whole_hashes_opens_with_every_field_and_its_expiry_rows_by_slot() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = IndexMap::new();
        h.insert(b("f1"), b("v1"));
        h.insert(b("f\x002"), b("v2"));
        let hash = Entry { value: Value::Hash(h), expire_at_ms: Some(99), version: 4 };
        let string = Entry::new(Value::Str(b("s")));
        write_format_1(dir.path(), &[(1, "h", hash.clone()), (1, "s", string.clone())]);
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        assert_eq!(store.get(1, b"h").unwrap(), Some(hash.clone()));
        assert_eq!(store.get(1, b"s").unwrap(), Some(string));
        let header = store.inner_get_raw(1, b"h");
        assert_eq!(decode_entry(&header).unwrap(), hash.header(), "the fields moved out");
        assert_eq!(
            store.due_expiries(1, 999, 10).unwrap().rows,
            vec![],
            "its expiry row moved too"
        );
        assert_eq!(store.due_expiries(1, 1000, 10).unwrap().rows, vec![(1000, b"h".to_vec())]);
        drop(store);
        let again = Store::open(dir.path(), 4, Durability::Process).unwrap();
        assert_eq!(again.get(1, b"h").unwrap(), Some(hash), "upgraded once");
    }

    #[test]
    fn a_format_2_directory_keeps_its_rows_and_its_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let hash = Entry::new(Value::Hash(IndexMap::from([(b("f"), b("v"))])));
        written(dir.path(), b"h", &hash);
        {
            // Format 2: the format row, and metadata rows without stamps.
            let db = raw(dir.path());
            let meta = db.cf_handle(keys::CF_META).unwrap();
            db.put_cf(meta, keys::META_FORMAT, 2u16.to_be_bytes()).unwrap();
            let row =
                (5u64, 9u64, 0u64, 1u64, crate::Position::At { epoch: 1, primary: 2, version: 9 });
            db.put_cf(meta, keys::meta_key(1), postcard::to_stdvec(&row).unwrap()).unwrap();
        }
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        assert_eq!(store.get(1, b"h").unwrap(), Some(hash));
        let meta = store.partition_meta(1).unwrap();
        assert_eq!((meta.keys, meta.seq, meta.sessions, meta.stamp), (5, 9, 1, 0));
        let format = store.get_raw_meta(keys::META_FORMAT);
        assert_eq!(format, Some(keys::FORMAT.to_be_bytes().to_vec()));
    }

    #[test]
    fn a_format_3_directory_has_its_expiry_rows_filed_by_slot() {
        let dir = tempfile::tempdir().unwrap();
        let string = Entry { value: Value::Str(b("s")), expire_at_ms: Some(1234), version: 1 };
        written(dir.path(), b"s", &string);
        {
            // Format 3: the row under the exact deadline.
            let db = raw(dir.path());
            let (meta, expiry) =
                (db.cf_handle(keys::CF_META).unwrap(), db.cf_handle(keys::CF_EXPIRY).unwrap());
            db.put_cf(meta, keys::META_FORMAT, 3u16.to_be_bytes()).unwrap();
            db.delete_cf(expiry, keys::expiry_key(1, 2000, b"s")).unwrap();
            db.put_cf(expiry, keys::expiry_key(1, 1234, b"s"), []).unwrap();
        }
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        assert_eq!(store.get(1, b"s").unwrap(), Some(string));
        assert_eq!(store.due_expiries(1, 1999, 10).unwrap().rows, vec![], "not under its deadline");
        assert_eq!(store.due_expiries(1, 2000, 10).unwrap().rows, vec![(2000, b"s".to_vec())]);
        let mut batch = store.batch(1);
        batch.delete(b"s", Some(1234), false);
        store.commit(batch).unwrap();
        assert_eq!(
            store.due_expiries(1, 9999, 10).unwrap().rows,
            vec![],
            "found where writes look"
        );
    }

    #[test]
    fn a_format_4_directory_keeps_its_pending_events_with_their_session_version_unknown() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), 4, Durability::Process).unwrap());
        // Format 4: an event's fields in order, without the session's version.
        let old = vec![(
            EventKind::AttributeChanged,
            b("s1"),
            b("shop"),
            Some(b("ann")),
            None::<Bytes>,
            17u64,
            9u64,
            1u16,
            42u64,
        )];
        {
            let db = raw(dir.path());
            let meta = db.cf_handle(keys::CF_META).unwrap();
            db.put_cf(meta, keys::META_FORMAT, 4u16.to_be_bytes()).unwrap();
            db.put_cf(meta, keys::events_key(1, 42), postcard::to_stdvec(&old).unwrap()).unwrap();
            db.put_cf(meta, keys::events_key(1, 43), b"\xff\xff").unwrap();
        }
        let store = Store::open(dir.path(), 4, Durability::Process).unwrap();
        let rows = store.kept_events(1).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1], (43, b"\xff\xff".to_vec()), "an unreadable row is left as it was");
        let events: Vec<SessionEvent> = postcard::from_bytes(&rows[0].1).unwrap();
        let e = &events[0];
        assert_eq!(
            (e.kind, &e.id[..], &e.group[..]),
            (EventKind::AttributeChanged, &b"s1"[..], &b"shop"[..])
        );
        assert_eq!((e.at_ms, e.node, e.partition, e.version), (17, 9, 1, 42));
        assert_eq!((e.principal.clone(), e.session_version), (Some(b("ann")), 0));
        let format = store.get_raw_meta(keys::META_FORMAT);
        assert_eq!(format, Some(keys::FORMAT.to_be_bytes().to_vec()));
    }

    #[test]
    fn a_directory_of_a_newer_format_is_refused_with_a_way_out() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), 4, Durability::Process).unwrap());
        {
            let db = raw(dir.path());
            let meta = db.cf_handle(keys::CF_META).unwrap();
            db.put_cf(meta, keys::META_FORMAT, 9u16.to_be_bytes()).unwrap();
        }
        let err = Store::open(dir.path(), 4, Durability::Process).err().unwrap();
        assert!(matches!(err, StoreError::NewerFormat { found: 9 }), "{err}");
        assert!(err.to_string().contains("newer sessiongrid"), "{err}");
    }
}
