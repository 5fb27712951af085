//! Key to partition mapping.
//!
//! A key maps to a partition by CRC16 (XMODEM, as Redis Cluster uses) of the key, or only of the
//! part between the first `{` and the next `}` when that part is non-empty (a *hash tag*), so
//! `{user42}.cart` and `{user42}.profile` always live together. The mapping is stable: it is part
//! of the on-disk format and of the cluster protocol.

/// Index of a partition, `0..partitions`.
pub type PartitionId = u16;

/// Redis' logical databases (`SELECT 0..15`).
pub const DATABASES: u8 = 16;

/// What a key of database `db` is stored as: as given in database 0 (so data written before
/// there were databases stays in 0), behind a prefix in the others: a NUL byte, `db`, the
/// database's number and a NUL byte. The prefix holds no brace, so a key's hash tag puts it in
/// the same partition in every database.
pub fn db_key(db: u8, key: bytes::Bytes) -> bytes::Bytes {
    if db == 0 {
        return key;
    }
    [DB_PREFIX, &[db, 0], &key].concat().into()
}

/// What every key of databases 1..15 starts with (see [`db_key`]): they sort together.
pub const DB_PREFIX: &[u8] = b"\0db";

/// The database of a stored key and the key as its clients name it (see [`db_key`]).
pub fn split_db(stored: &[u8]) -> (u8, &[u8]) {
    match stored {
        [0, b'd', b'b', db, 0, key @ ..] if *db > 0 && *db < DATABASES => (*db, key),
        _ => (0, stored),
    }
}

/// The part of `key` that decides its partition: its hash tag if it has a non-empty one.
pub fn hash_slice(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else { return key };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => &rest[..close],
        _ => key,
    }
}

/// The partition of `key` among `partitions` (must be > 0).
pub fn partition_of(key: &[u8], partitions: u16) -> PartitionId {
    assert!(partitions > 0, "partition count must be positive");
    crc16(hash_slice(key)) % partitions
}

/// Redis Cluster's hash slots. Slot `s` is partition `s % partitions` when the partition count
/// divides them, as a key's slot and partition are the same CRC16 modulo each.
pub const SLOTS: u16 = 16384;

/// The Redis Cluster hash slot of `key`.
pub fn slot(key: &[u8]) -> u16 {
    crc16(hash_slice(key)) % SLOTS
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0. A byte at a time, by table: every
/// request computes one, so eight shifts per byte would show in a profile.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)])
}

/// The CRC of each byte value on its own, shifted into the high byte.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = crc16_of_high_byte(i as u16);
        i += 1;
    }
    table
};

/// The bitwise definition: eight steps of the polynomial over `byte << 8`.
const fn crc16_of_high_byte(byte: u16) -> u16 {
    let mut crc = byte << 8;
    let mut bit = 0;
    while bit < 8 {
        crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        bit += 1;
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"123456789"), 0x31c3, "CRC16 XMODEM's check value");
    }

    #[test]
    fn a_key_of_another_database_keeps_its_name_and_its_tag_partition() {
        let key = bytes::Bytes::from_static(b"{user42}.cart");
        assert_eq!(db_key(0, key.clone()), key);
        let in_3 = db_key(3, key.clone());
        assert_eq!(split_db(&in_3), (3, &b"{user42}.cart"[..]));
        assert_eq!(partition_of(&in_3, 256), partition_of(&key, 256));
        assert_eq!(split_db(b"plain"), (0, &b"plain"[..]));
        // Not a prefix this grid writes: a key of database 0 as it is.
        assert_eq!(split_db(b"\0db\x20\0x"), (0, &b"\0db\x20\0x"[..]));
    }

    #[test]
    fn crc16_matches_redis_cluster_reference() {
        // The reference value from the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn crc16_by_table_matches_the_bitwise_definition() {
        let bitwise = |bytes: &[u8]| {
            bytes.iter().fold(0u16, |mut crc, &b| {
                crc ^= u16::from(b) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
                }
                crc
            })
        };
        let mut bytes = Vec::new();
        for i in 0..2000u32 {
            bytes.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
            assert_eq!(crc16(&bytes), bitwise(&bytes), "length {}", bytes.len());
        }
        for b in 0..=255u8 {
            assert_eq!(crc16(&[b]), bitwise(&[b]));
        }
    }

    #[test]
    fn hash_tags_follow_redis_rules() {
        assert_eq!(hash_slice(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_slice(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_slice(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_slice(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_slice(b"nobraces"), b"nobraces");
        assert_eq!(hash_slice(b"open{only"), b"open{only");
    }

    #[test]
    fn tagged_keys_share_a_partition() {
        let p = partition_of(b"{cart:7}.items", 256);
        assert_eq!(p, partition_of(b"{cart:7}.total", 256));
        assert!(p < 256);
    }
}
