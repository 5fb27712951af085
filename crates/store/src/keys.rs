//! Byte layout of the three column families.
//!
//! | column family | key                                   | value                  |
//! |---------------|---------------------------------------|------------------------|
//! | `entries`     | partition (u16 BE) + user key         | postcard [`Entry`]     |
//! | `expiry`      | partition (u16 BE) + deadline (u64 BE) + user key | empty      |
//! | `meta`        | `partitions`                          | u16 BE                 |
//! | `meta`        | `p/` + partition (u16 BE)             | postcard `PartitionMeta` |
//! | `meta`        | `x/` + name                           | bytes owned by an upper layer |
//!
//! Big-endian prefixes keep a partition's rows contiguous and its expiry rows in deadline order, so
//! the sweeper reads only rows that are due.
//!
//! [`Entry`]: sessiongrid_model::Entry

use sessiongrid_model::PartitionId;

pub const CF_ENTRIES: &str = "entries";
pub const CF_EXPIRY: &str = "expiry";
pub const CF_META: &str = "meta";

pub const META_PARTITIONS: &[u8] = b"partitions";

pub fn entry_key(p: PartitionId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + key.len());
    k.extend_from_slice(&p.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Splits an `entries` row key into its user key.
pub fn user_key(row_key: &[u8]) -> &[u8] {
    &row_key[2.min(row_key.len())..]
}

pub fn expiry_key(p: PartitionId, at_ms: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + key.len());
    k.extend_from_slice(&p.to_be_bytes());
    k.extend_from_slice(&at_ms.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Splits an `expiry` row key into (deadline, user key); `None` if the row is malformed.
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
    fn malformed_expiry_row_is_detected() {
        assert_eq!(split_expiry_key(b"\x00\x01\x02"), None);
    }
}
