//! Byte layout of the four column families.
//!
//! | column family | key                                   | value                  |
//! |---------------|---------------------------------------|------------------------|
//! | `entries`     | partition (u16 BE) + user key         | postcard [`Entry`] (a hash or session: its header, fields left out) |
//! | `fields`      | partition (u16 BE) + escaped user key + `00 01` + field | a hash field's value, or a postcard session attribute |
//! | `expiry`      | partition (u16 BE) + deadline's slot (u64 BE, [`expiry_slot`]) + user key | empty |
//! | `meta`        | `partitions`                          | u16 BE                 |
//! | `meta`        | `p/` + partition (u16 BE)             | postcard `PartitionMeta` |
//! | `meta`        | `j/` + journal (u32 BE) + slot (u16 BE) | postcard list of (partition, `PartitionMeta`): one commit group's, see [`crate::journal`] |
//! | `meta`        | `x/` + name                           | bytes owned by an upper layer |
//! | `meta`        | `e/` + partition (u16 BE) + version (u64 BE) | the session events of one write, owned by an upper layer, kept until every member has them |
//! | `meta`        | `format`                              | u16 BE: [`FORMAT`]     |
//!
//! Big-endian prefixes keep a partition's rows contiguous and its expiry rows in deadline order, so
//! the sweeper reads only rows that are due. In `fields` a key is escaped (`00` becomes `00 ff`)
//! and ended by `00 01`: no key's prefix is another's, and the field rows of a range of keys
//! are a range of rows, so deleting keys by range deletes their fields by range too.
//!
//! [`Entry`]: sessiongrid_model::Entry

use sessiongrid_model::PartitionId;

pub const CF_ENTRIES: &str = "entries";
pub const CF_EXPIRY: &str = "expiry";
pub const CF_META: &str = "meta";
pub const CF_FIELDS: &str = "fields";

pub const META_PARTITIONS: &[u8] = b"partitions";
pub const META_FORMAT: &[u8] = b"format";

/// The layout this code writes: 2 keeps hashes' and sessions' fields in rows of their own (1,
/// unrecorded, kept them inside their entry); 3 may keep a partition's newest metadata in the
/// metadata journal only, which a build reading only the partition rows would miss; 4 files
/// expiry rows under their deadline's slot ([`expiry_slot`]), where 3 filed them under the
/// deadline itself; 5 keeps each session event with its session's version, where 4 kept events
/// without it.
pub const FORMAT: u16 = 5;

/// Width of an expiry-index slot. Part of the layout: another width needs a new [`FORMAT`]
/// and an upgrade moving every row.
pub const EXPIRY_SLOT_MS: u64 = 1000;

/// The slot an expiry-index row of a key due at `deadline_ms` is filed under: the deadline
/// rounded up to a whole [`EXPIRY_SLOT_MS`]. A write that moves a deadline within its slot (a
/// session touched, `SET ... EX` again) leaves the row where it is, and a row due by its slot
/// is due by its deadline too; the sweeper removes a key at most a slot after its deadline
/// (reads treat it as gone from the deadline on).
pub fn expiry_slot(deadline_ms: u64) -> u64 {
    deadline_ms.checked_next_multiple_of(EXPIRY_SLOT_MS).unwrap_or(u64::MAX)
}

pub fn entry_key(p: PartitionId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + key.len());
    k.extend_from_slice(&p.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Splits an `entries` row key into its partition and user key.
pub fn split_entry_key(row_key: &[u8]) -> Option<(PartitionId, &[u8])> {
    let p: [u8; 2] = row_key.get(..2)?.try_into().ok()?;
    Some((PartitionId::from_be_bytes(p), &row_key[2..]))
}

/// Splits an `entries` row key into its user key.
pub fn user_key(row_key: &[u8]) -> &[u8] {
    &row_key[2.min(row_key.len())..]
}

/// Appends `key`, escaped and terminated, so that the result orders as `key` does and no
/// key's encoding is a prefix of another's.
fn push_escaped(out: &mut Vec<u8>, key: &[u8]) {
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 1]);
}

/// Prefix of every field row of `key`.
pub fn fields_prefix(p: PartitionId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + key.len());
    k.extend_from_slice(&p.to_be_bytes());
    push_escaped(&mut k, key);
    k
}

pub fn field_key(p: PartitionId, key: &[u8], field: &[u8]) -> Vec<u8> {
    let mut k = fields_prefix(p, key);
    k.extend_from_slice(field);
    k
}

/// First row after every field row of `key` (exclusive bound): past its prefix.
pub fn fields_end(p: PartitionId, key: &[u8]) -> Vec<u8> {
    let mut k = fields_prefix(p, key);
    // The prefix ends in `00 01`; `00 02` sorts after every row under it and before the
    // next key (which continues with a byte >= 01, or with `00 ff`).
    if let Some(last) = k.last_mut() {
        *last = 2;
    }
    k
}

/// The `expiry` row of `key` filed under `slot` (a slot from [`expiry_slot`], or a bound).
pub fn expiry_key(p: PartitionId, slot: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + key.len());
    k.extend_from_slice(&p.to_be_bytes());
    k.extend_from_slice(&slot.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Splits an `expiry` row key into (slot, user key); `None` if the row is malformed.
pub fn split_expiry_key(row_key: &[u8]) -> Option<(u64, &[u8])> {
    let at: [u8; 8] = row_key.get(2..10)?.try_into().ok()?;
    Some((u64::from_be_bytes(at), &row_key[10..]))
}

/// First key of partition `p` (inclusive) in `entries` or `expiry`.
pub fn partition_start(p: PartitionId) -> Vec<u8> {
    p.to_be_bytes().to_vec()
}

/// First key after partition `p` (exclusive bound).
pub fn partition_end(p: PartitionId) -> Vec<u8> {
    match p.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xff, 0xff, 0xff],
    }
}

pub fn meta_key(p: PartitionId) -> Vec<u8> {
    let mut k = b"p/".to_vec();
    k.extend_from_slice(&p.to_be_bytes());
    k
}

/// What every row of the metadata journal starts with.
pub const JOURNAL_PREFIX: &[u8] = b"j/";

/// Slot `slot` of journal `journal`.
pub fn journal_key(journal: u32, slot: u16) -> Vec<u8> {
    let mut k = JOURNAL_PREFIX.to_vec();
    k.extend_from_slice(&journal.to_be_bytes());
    k.extend_from_slice(&slot.to_be_bytes());
    k
}

/// The row keeping the session events of partition `p`'s write at `version`.
pub fn events_key(p: PartitionId, version: u64) -> Vec<u8> {
    let mut k = events_prefix(p);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// What every events row of partition `p` starts with.
pub fn events_prefix(p: PartitionId) -> Vec<u8> {
    let mut k = b"e/".to_vec();
    k.extend_from_slice(&p.to_be_bytes());
    k
}

/// True if `key` (of the `meta` family) is an events row.
pub fn is_events_key(key: &[u8]) -> bool {
    key.starts_with(b"e/") && key.len() == 2 + 2 + 8
}

/// A named row of the layers above (cluster identity, topology, replica positions).
pub fn extra_key(name: &[u8]) -> Vec<u8> {
    let mut k = b"x/".to_vec();
    k.extend_from_slice(name);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rows_sort_by_partition_then_deadline() {
        let a = expiry_key(1, 5, b"zzz");
        let b = expiry_key(1, 6, b"aaa");
        let c = expiry_key(2, 0, b"");
        assert!(a < b && b < c);
        assert!(partition_start(1) <= a && c >= partition_end(1));
        assert_eq!(split_expiry_key(&b), Some((6, &b"aaa"[..])));
    }

    #[test]
    fn a_deadline_is_filed_under_the_end_of_its_slot() {
        assert_eq!(expiry_slot(0), 0);
        assert_eq!(expiry_slot(1), 1000);
        assert_eq!(expiry_slot(1000), 1000);
        assert_eq!(expiry_slot(1001), 2000);
        assert_eq!(expiry_slot(u64::MAX - 5), u64::MAX, "no overflow");
    }

    #[test]
    fn field_rows_order_as_their_keys_and_no_key_holds_anothers() {
        let keys: [&[u8]; 6] = [b"", b"a", b"a\x00", b"a\x00b", b"a\x01", b"ab"];
        for pair in keys.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(field_key(0, a, b"\xff\xff") < field_key(0, b, b""), "{a:?} {b:?}");
            assert!(fields_end(0, a) <= fields_prefix(0, b), "{a:?} {b:?}");
            assert!(field_key(0, a, b"\xff\xff\xff") < fields_end(0, a));
            assert!(!fields_prefix(0, b).starts_with(&fields_prefix(0, a)));
        }
        assert!(fields_end(3, b"\xff") <= partition_end(3));
        assert!(fields_prefix(3, b"") >= partition_start(3));
    }

    #[test]
    fn events_rows_sort_by_version_within_their_partition() {
        assert!(events_key(1, 9) < events_key(1, 10) && events_key(1, u64::MAX) < events_key(2, 0));
        assert!(events_key(1, 0).starts_with(&events_prefix(1)));
        assert!(!events_key(1, 0).starts_with(&meta_key(1)) && !meta_key(1).starts_with(b"e/"));
    }

    #[test]
    fn malformed_expiry_row_is_detected() {
        assert_eq!(split_expiry_key(b"\x00\x01\x02"), None);
    }
}
